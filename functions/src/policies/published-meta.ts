/**
 * The metadata published with a compiled version (core/policy-bundle/published-policy.ts):
 * everything the edge needs besides the wasm to evaluate it (enforcement, dry run,
 * priority, scope, effective window, the rate limits of its RATE_LIMIT rules), taken from
 * the version's own definition so an activated version always means what it meant when
 * it was written. The policy's name is left out of what is published (it can change; a
 * version's metadata never does: the pointer carries it) and is added only for
 * evaluation here (dry run).
 */
import { toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { Phase as PhaseName } from "../../../core/policy/tenant-config.js";
import type {
  PublishedPolicy,
  PublishedPolicyScope,
} from "../../../core/policy-bundle/published-policy.js";
import { specsFromStructuredRules } from "../../../core/rate-limit/rate-limit-rules.js";
import {
  InvalidRateLimitSpecError,
  type RateLimitSpec,
} from "../../../core/rate-limit/rate-limit-spec.js";
import { Phase } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { type Policy, RuleSchema } from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { fromStoredDefinition } from "./policy-definition.js";
import { enforcementFromProto } from "./policy-lifecycle.js";
import type { PolicyRow, VersionWithWasm } from "./policy-store.js";

export interface PublishTarget {
  tenantId: string;
  policyId: string;
  /** Only for evaluation (dry run): never staged. */
  name?: string;
  version: number;
  sha256: string;
  wasmSha256: string;
  entrypoint: string;
  /** The version's definition. */
  definition: Policy;
}

function scopeOf(definition: Policy): PublishedPolicyScope {
  const s = definition.scope;
  const out: PublishedPolicyScope = {};
  if (!s) return out;
  if (s.applyToAll) out.apply_to_all = true;
  if (s.workflowIds.length > 0) out.workflow_ids = [...s.workflowIds];
  const phases = s.phases.filter((p) => p !== Phase.UNSPECIFIED).map((p) => Phase[p] as PhaseName);
  if (phases.length > 0) out.phases = phases;
  if (s.roles.length > 0) out.roles = [...s.roles];
  if (s.modelIds.length > 0) out.model_ids = [...s.modelIds];
  if (s.toolNames.length > 0) out.tool_names = [...s.toolNames];
  return out;
}

/**
 * The rate limits of the definition's enabled RATE_LIMIT rules. Rules are checked when a
 * version is written (rules-to-rego.ts), so a problem here means a version written before
 * rate limits were checked: FailedPrecondition, never a version published without them.
 */
function rateLimitsOf(target: PublishTarget): RateLimitSpec[] {
  try {
    return specsFromStructuredRules(target.policyId, target.definition.rules);
  } catch (error) {
    if (!(error instanceof InvalidRateLimitSpecError)) throw error;
    const first = error.problems[0];
    throw new FulcrumError(
      "FailedPrecondition",
      `version ${target.version} of policy ${target.policyId} has a RATE_LIMIT rule that is not valid (${first?.path}: ${first?.message}); write a new version`,
      { cause: error },
    );
  }
}

export function publishedMeta(target: PublishTarget): PublishedPolicy {
  const d = target.definition;
  if (!target.entrypoint || !target.wasmSha256) {
    throw new FulcrumError(
      "Internal",
      `version ${target.version} of policy ${target.policyId} is not compiled`,
    );
  }
  const rateLimits = rateLimitsOf(target);
  return {
    tenant_id: target.tenantId,
    policy_id: target.policyId,
    ...(target.name === undefined ? {} : { name: target.name }),
    version: target.version,
    sha256: target.sha256,
    wasm_sha256: target.wasmSha256,
    entrypoint: target.entrypoint,
    ...(d.rules.length > 0
      ? { source_kind: "rules" as const, rules: d.rules.map((r) => toJson(RuleSchema, r)) }
      : { source_kind: "rego" as const }),
    ...(rateLimits.length > 0 ? { rate_limits: rateLimits } : {}),
    enforcement: enforcementFromProto(d.enforcement),
    dry_run: d.dryRun,
    priority: d.priority,
    scope: scopeOf(d),
    ...(d.effectiveAt ? { effective_at: timestampDate(d.effectiveAt).toISOString() } : {}),
    ...(d.expiresAt ? { expires_at: timestampDate(d.expiresAt).toISOString() } : {}),
  };
}

/** A stored version as the edge loads it: its published metadata and its wasm. */
export interface PublishedVersion {
  meta: PublishedPolicy;
  wasm: Uint8Array;
}

/**
 * The metadata and wasm of a stored version of `policy` (activation stages them, dry run
 * evaluates them); `name` is added for evaluation only.
 *
 * @throws FulcrumError FailedPrecondition when the version has no compiled module.
 */
export function publishedVersion(
  policy: Pick<PolicyRow, "tenantId" | "id">,
  version: VersionWithWasm,
  name?: string,
): PublishedVersion {
  if (!version.wasm || !version.wasmSha256 || !version.entrypoint) {
    throw new FulcrumError(
      "FailedPrecondition",
      `version ${version.version} of policy ${policy.id} did not compile`,
    );
  }
  const meta = publishedMeta({
    tenantId: policy.tenantId,
    policyId: policy.id,
    ...(name === undefined ? {} : { name }),
    version: version.version,
    sha256: version.sha256,
    wasmSha256: version.wasmSha256,
    entrypoint: version.entrypoint,
    definition: fromStoredDefinition(version.definition).policy,
  });
  return { meta, wasm: version.wasm };
}
