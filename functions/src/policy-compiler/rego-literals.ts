/** Values embedded in generated Rego: JSON literals, refused when they cannot round-trip. */
import { invalid } from "../../../core/errors/fulcrum-error.js";
import type { Value } from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A Rego string literal for `s` (JSON syntax); `path` names it when it is not well-formed UTF-16. */
export function stringLiteral(s: string, path: string): string {
  if (LONE_SURROGATE.test(s)) throw invalid(path, "is not well-formed Unicode (a lone surrogate)");
  return JSON.stringify(s);
}

export type Scalar =
  | { kind: "string"; value: string; rego: string }
  | { kind: "number"; rego: string }
  | { kind: "bool"; rego: string };

/** A scalar Value (string, int, float, bool) as a Rego literal; lists and unset values throw. */
export function scalarLiteral(value: Value | undefined, path: string): Scalar {
  const kind = value?.kind;
  switch (kind?.case) {
    case "stringValue":
      return { kind: "string", value: kind.value, rego: stringLiteral(kind.value, path) };
    case "intValue":
      return { kind: "number", rego: kind.value.toString() };
    case "floatValue":
      if (!Number.isFinite(kind.value)) throw invalid(path, "must be a finite number");
      return { kind: "number", rego: JSON.stringify(kind.value) };
    case "boolValue":
      return { kind: "bool", rego: String(kind.value) };
    case "listValue":
      throw invalid(path, "must be a single value, not a list");
    default:
      throw invalid(path, "is required");
  }
}

/** The items of a list Value; anything else throws. */
export function listLiteral(value: Value | undefined, path: string): Scalar[] {
  if (value?.kind.case !== "listValue") throw invalid(path, "must be a list_value");
  const items = value.kind.value.values;
  if (items.length === 0) throw invalid(path, "must not be an empty list");
  return items.map((item, k) => scalarLiteral(item, `${path}[${k}]`));
}
