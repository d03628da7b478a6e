/**
 * A policy version's definition: the fields of the Policy message that change what the
 * policy decides (rules, rego_source, scope, enforcement, priority, dry_run, effective_at,
 * expires_at). Everything else (name, description, tags, metadata, status) can change
 * without a new version.
 *
 * The definition is stored as canonical proto JSON (snake_case names, keys sorted
 * recursively, zero values left out) so two equal definitions are equal documents, and
 * its hash is the hex SHA-256 of the deterministic binary encoding of a Policy holding
 * only these fields, decoded from that canonical JSON (so map entries, e.g. action
 * parameters, are encoded in sorted order whatever order the caller sent them in).
 */
import { createHash } from "node:crypto";
import {
  clone,
  create,
  fromJson,
  type JsonObject,
  type JsonValue,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { FulcrumError, invalid } from "../../../core/errors/fulcrum-error.js";
import {
  EnforcementLevel,
  type Policy,
  PolicySchema,
  RuleSchema,
} from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import type { PolicySource } from "../policy-compiler/index.js";

/** The Policy fields (proto names, as in an update_mask) that make up a version. */
export const VERSIONED_FIELDS = [
  "rules",
  "rego_source",
  "scope",
  "enforcement",
  "priority",
  "dry_run",
  "effective_at",
  "expires_at",
] as const;

export type VersionedField = (typeof VERSIONED_FIELDS)[number];

export interface Definition {
  /** A Policy holding only the versioned fields. */
  policy: Policy;
  /** Canonical JSON, as stored in policy_versions.definition. */
  json: Record<string, unknown>;
  /** Hex SHA-256 of the canonical binary encoding. */
  sha256: string;
}

function sortKeys(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const out: JsonObject = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key] as JsonValue);
    return out;
  }
  return value;
}

/** The versioned fields of `source` only, with the defaults the server applies. */
function versionedOnly(source: Policy): Policy {
  const rules = source.rules.map((r) => clone(RuleSchema, r));
  assignRuleIds(rules);
  return create(PolicySchema, {
    rules,
    regoSource: source.regoSource,
    scope: source.scope,
    enforcement:
      source.enforcement === EnforcementLevel.UNSPECIFIED
        ? EnforcementLevel.BLOCK
        : source.enforcement,
    priority: source.priority,
    dryRun: source.dryRun,
    effectiveAt: source.effectiveAt,
    expiresAt: source.expiresAt,
  });
}

/**
 * Rule ids are unique within a policy; an empty one is assigned (`rule-<n>`, the first n
 * not taken), so matched rules always name their rule. A repeated id is Invalid.
 */
function assignRuleIds(rules: Policy["rules"]): void {
  const taken = new Set<string>();
  rules.forEach((r, i) => {
    if (!r.ruleId) return;
    if (taken.has(r.ruleId))
      throw invalid(`rules[${i}].rule_id`, `"${r.ruleId}" is used by another rule`);
    taken.add(r.ruleId);
  });
  let n = 1;
  for (const r of rules) {
    if (r.ruleId) continue;
    while (taken.has(`rule-${n}`)) n++;
    r.ruleId = `rule-${n}`;
    taken.add(r.ruleId);
  }
}

/** The definition of `policy` (its versioned fields); Invalid unless exactly one source is set. */
export function definitionOf(policy: Policy): Definition {
  const hasRules = policy.rules.length > 0;
  const hasRego = policy.regoSource !== "";
  if (hasRules && hasRego) {
    throw invalid("rules", "define a policy with rules or with rego_source, not both");
  }
  if (!hasRules && !hasRego) {
    throw invalid("rules", "a policy needs rules or rego_source (exactly one of them)");
  }
  if (
    policy.effectiveAt &&
    policy.expiresAt &&
    timestampMs(policy.expiresAt) <= timestampMs(policy.effectiveAt)
  ) {
    throw invalid("expires_at", "expires_at must be after effective_at");
  }
  const canonical = sortKeys(
    toJson(PolicySchema, versionedOnly(policy), { useProtoFieldName: true }),
  );
  return fromStoredDefinition(canonical as Record<string, unknown>);
}

/** A stored definition (policy_versions.definition) read back, with its hash. */
export function fromStoredDefinition(json: Record<string, unknown>): Definition {
  let policy: Policy;
  try {
    policy = fromJson(PolicySchema, json as JsonObject);
  } catch (cause) {
    throw new FulcrumError("Internal", "a stored policy definition does not decode", { cause });
  }
  const sha256 = createHash("sha256").update(toBinary(PolicySchema, policy)).digest("hex");
  return { policy, json, sha256 };
}

/** What the compiler compiles for a definition. */
export function sourceOf(definition: Policy): PolicySource {
  return definition.rules.length > 0
    ? { kind: "rules", rules: definition.rules }
    : { kind: "rego", regoSource: definition.regoSource };
}

/** `target` with the versioned fields named in `paths` taken from `patch`. */
export function mergeVersioned(target: Policy, patch: Policy, paths: ReadonlySet<string>): Policy {
  const out = clone(PolicySchema, target);
  if (paths.has("rules")) out.rules = patch.rules;
  if (paths.has("rego_source")) out.regoSource = patch.regoSource;
  if (paths.has("scope")) out.scope = patch.scope;
  if (paths.has("enforcement")) out.enforcement = patch.enforcement;
  if (paths.has("priority")) out.priority = patch.priority;
  if (paths.has("dry_run")) out.dryRun = patch.dryRun;
  if (paths.has("effective_at")) out.effectiveAt = patch.effectiveAt;
  if (paths.has("expires_at")) out.expiresAt = patch.expiresAt;
  // Switching between rules and Rego names only the new source in the mask.
  if (paths.has("rules") && !paths.has("rego_source") && patch.rules.length > 0)
    out.regoSource = "";
  if (paths.has("rego_source") && !paths.has("rules") && patch.regoSource !== "") out.rules = [];
  return out;
}
