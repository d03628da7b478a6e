/**
 * Structured conditions → Rego helper rules (docs/policy-authoring.md,
 * "Structured rules"). Every condition node becomes a named helper
 * `c_<rule>_<n>` (pre-order): AND is one body referring to its children, OR
 * one body per child, NOT `not child`; a field condition is a comparison over
 * the field, `negate` wraps it in `not`.
 */
import { invalid } from "../../../core/errors/fulcrum-error.js";
import { globProblem, re2Problem } from "../../../core/policy/pattern-syntax.js";
import {
  type Condition,
  ConditionOperator,
  type FieldCondition,
  LogicalOperator,
} from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { listLiteral, type Scalar, scalarLiteral, stringLiteral } from "./rego-literals.js";

type FieldKind = "string" | "list" | "number";
interface FieldSpec {
  ref: string;
  kind: FieldKind;
  /** IN / NOT_IN values may be globs. */
  glob?: boolean;
}

const FIELDS: Readonly<Record<string, FieldSpec>> = {
  tool_names: { ref: "input.tool_names", kind: "list", glob: true },
  user_roles: { ref: "input.user_roles", kind: "list" },
  input_text: { ref: "input.input_text", kind: "string" },
  output_text: { ref: "input.output_text", kind: "string" },
  model_id: { ref: "input.model_id", kind: "string", glob: true },
  phase: { ref: "input.phase", kind: "string" },
  workflow_id: { ref: "input.workflow_id", kind: "string" },
  user_id: { ref: "input.user_id", kind: "string" },
  envelope_id: { ref: "input.envelope_id", kind: "string" },
  action: { ref: "input.action", kind: "string" },
  // toPolicyContext leaves a zero cost out: missing is 0, as in the governance library.
  estimated_cost_usd: { ref: `object.get(input, "estimated_cost_usd", 0)`, kind: "number" },
};

const PHASES = new Set([
  "PRE_EXECUTION",
  "PRE_LLM_CALL",
  "POST_LLM_CALL",
  "PRE_TOOL_CALL",
  "POST_TOOL_CALL",
  "POST_EXECUTION",
]);

// Rego keywords cannot follow a `.` in a reference (opa fmt writes other keys with one).
const KEYWORDS = new Set(
  "as contains default else every false if import in not null package some true with".split(" "),
);

const GLOB_META = /[*?[\]{}\\!,]/;

function fieldSpec(field: string, path: string): FieldSpec {
  if (Object.hasOwn(FIELDS, field)) return FIELDS[field] as FieldSpec;
  if (field.startsWith("attributes.") && field.length > "attributes.".length) {
    const key = field.slice("attributes.".length);
    const plain = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) && !KEYWORDS.has(key);
    const ref = plain ? `input.attributes.${key}` : `input.attributes[${stringLiteral(key, path)}]`;
    return { ref, kind: "string" };
  }
  throw invalid(
    path,
    `unknown field ${JSON.stringify(field)}; one of ${Object.keys(FIELDS).join(", ")}, attributes.<key>`,
  );
}

const COMPARE: Partial<Record<ConditionOperator, string>> = {
  [ConditionOperator.GT]: ">",
  [ConditionOperator.LT]: "<",
  [ConditionOperator.GE]: ">=",
  [ConditionOperator.LE]: "<=",
};

/** The value test over `x` as alternatives (each a list of expressions). */
function valueTests(fc: FieldCondition, spec: FieldSpec, path: string): string[][] {
  const at = `${path}.value`;
  const op = fc.operator;
  const elementKind = spec.kind === "number" ? "number" : "string";
  const same = (v: Scalar, where: string): Scalar => {
    if (v.kind !== elementKind) throw invalid(where, `must be a ${elementKind} for ${fc.field}`);
    if (fc.field === "phase" && v.kind === "string" && !PHASES.has(v.value)) {
      throw invalid(where, `unknown phase ${v.rego}; one of ${[...PHASES].join(", ")}`);
    }
    return v;
  };
  const str = (): string => {
    const v = scalarLiteral(fc.value, at);
    if (v.kind !== "string" || spec.kind === "number") {
      throw invalid(at, `${ConditionOperator[op]} takes a string and a text field`);
    }
    return v.rego;
  };
  switch (op) {
    case ConditionOperator.EQUALS:
      return [[`x == ${same(scalarLiteral(fc.value, at), at).rego}`]];
    case ConditionOperator.NOT_EQUALS:
      return [[`x != ${same(scalarLiteral(fc.value, at), at).rego}`]];
    case ConditionOperator.GT:
    case ConditionOperator.LT:
    case ConditionOperator.GE:
    case ConditionOperator.LE: {
      const v = scalarLiteral(fc.value, at);
      if (spec.kind !== "number" || v.kind !== "number") {
        throw invalid(at, `${ConditionOperator[op]} compares numbers (field estimated_cost_usd)`);
      }
      return [[`x ${COMPARE[op]} ${v.rego}`]];
    }
    case ConditionOperator.MATCHES: {
      const v = scalarLiteral(fc.value, at);
      const problem = v.kind === "string" ? re2Problem(v.value) : "must be a string";
      if (problem || spec.kind === "number") {
        throw invalid(at, `invalid RE2 pattern ${v.rego}: ${problem ?? "not a text field"}`);
      }
      return [[`regex.match(${v.rego}, x)`]];
    }
    case ConditionOperator.CONTAINS:
      return spec.kind === "list" ? [[`x == ${str()}`]] : [[`contains(x, ${str()})`]];
    case ConditionOperator.STARTS_WITH:
      return [[`startswith(x, ${str()})`]];
    case ConditionOperator.ENDS_WITH:
      return [[`endswith(x, ${str()})`]];
    case ConditionOperator.IN:
    case ConditionOperator.NOT_IN: {
      const items = listLiteral(fc.value, at).map((v, k) => same(v, `${at}[${k}]`));
      const globs = spec.glob
        ? items.filter((v) => v.kind === "string" && GLOB_META.test(v.value))
        : [];
      items.forEach((v, k) => {
        const problem = globs.includes(v) && v.kind === "string" ? globProblem(v.value) : null;
        if (problem) throw invalid(`${at}[${k}]`, `invalid glob ${v.rego}: ${problem}`);
      });
      const exact = [...new Set(items.filter((v) => !globs.includes(v)).map((v) => v.rego))];
      const tests: string[][] = [];
      if (exact.length === 1) tests.push([`x == ${exact[0]}`]);
      if (exact.length > 1) tests.push([`x in {${exact.join(", ")}}`]);
      for (const g of globs) tests.push([`glob.match(${g.rego}, null, x)`]);
      return tests;
    }
    default:
      throw invalid(`${path}.operator`, "must be one of EQUALS .. ENDS_WITH");
  }
}

/** Generated Rego rules, in emission order. */
export type Chunks = string[];

export const rule = (head: string, body: readonly string[]): string =>
  body.length === 1 ? `${head} if ${body[0]}` : `${head} if {\n\t${body.join("\n\t")}\n}`;

function fieldCondition(name: string, fc: FieldCondition, path: string, out: Chunks): void {
  const spec = fieldSpec(fc.field, `${path}.field`);
  const tests = valueTests(fc, spec, path);
  const negative = fc.operator === ConditionOperator.NOT_IN;
  const positive = fc.negate ? `${name}_p` : name;
  // The test as one expression over x (a helper function when it takes several).
  let test = tests.length === 1 && tests[0]?.length === 1 ? (tests[0][0] as string) : "";
  if (!test) {
    for (const alt of tests) out.push(rule(`${name}_t(x)`, alt));
    test = `${name}_t(x)`;
  }
  const guard = spec.kind === "number" ? "is_number(x)" : "is_string(x)";
  if (spec.kind === "list") {
    const each = [`some x in ${spec.ref}`, guard, test];
    if (negative) {
      // NOT_IN over a list: no element is in it (an empty or missing list holds).
      out.push(rule(`${name}_any`, each));
      out.push(rule(positive, [`not ${name}_any`]));
    } else out.push(rule(positive, each));
  } else {
    // A missing scalar field satisfies no comparison, NOT_IN included.
    out.push(rule(positive, [`x := ${spec.ref}`, guard, negative ? `not ${test}` : test]));
  }
  if (fc.negate) out.push(rule(name, [`not ${positive}`]));
}

/** Emits condition `c` of rule `ruleIndex` (and its children) as `c_<ruleIndex>_<n>`; returns its name. */
export function emitCondition(
  c: Condition,
  path: string,
  ruleIndex: number,
  counter: { n: number },
  out: Chunks,
): string {
  const name = `c_${ruleIndex}_${counter.n++}`;
  if (c.kind.case === "field") {
    fieldCondition(name, c.kind.value, path, out);
    return name;
  }
  if (c.kind.case !== "logical") throw invalid(path, "must be a field or a logical condition");
  const lc = c.kind.value;
  if (lc.conditions.length === 0) throw invalid(`${path}.conditions`, "must not be empty");
  const children = lc.conditions.map((child, k) =>
    emitCondition(child, `${path}.conditions[${k}]`, ruleIndex, counter, out),
  );
  switch (lc.operator) {
    case LogicalOperator.AND:
      out.push(rule(name, children));
      break;
    case LogicalOperator.OR:
      for (const child of children) out.push(rule(name, [child]));
      break;
    case LogicalOperator.NOT:
      if (children.length !== 1)
        throw invalid(`${path}.conditions`, "NOT takes exactly one condition");
      out.push(rule(name, [`not ${children[0]}`]));
      break;
    default:
      throw invalid(`${path}.operator`, "must be AND, OR or NOT");
  }
  return name;
}
