/**
 * DryRunPolicy: evaluates a stored version (a draft, typically) or an unsaved definition
 * against a sample context with the same evaluator the edge uses
 * (core/policy-bundle/compiled-policy.ts), and, for comparison, the policy's active
 * version. Nothing is written, activated or published.
 *
 * The result's `decision` is the version's real verdict even when the version itself is
 * a dry-run policy (that is what the caller wants to see), and `dry_run` is true;
 * `active_decision` is what the edge answers today (UNSPECIFIED when the policy is not
 * ACTIVE).
 */
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { toPolicyContext } from "../../../core/policy/decision-input.js";
import {
  evaluateCompiledPolicy,
  loadCompiledPolicy,
} from "../../../core/policy-bundle/compiled-policy.js";
import type { PublishedPolicy } from "../../../core/policy-bundle/published-policy.js";
import {
  Decision,
  type EvaluationResult,
} from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  type DryRunPolicyRequest,
  type DryRunPolicyResponse,
  DryRunPolicyResponseSchema,
} from "../../../proto/gen/fulcrum/policy/v1/policy_version_pb.js";
import type { TenantPrincipal } from "../auth/principal.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { definitionOf, fromStoredDefinition, sourceOf } from "./policy-definition.js";
import {
  latestVersion,
  loadPolicy,
  loadVersion,
  type PolicyRow,
  requireOwnTenant,
  requirePolicyId,
  type VersionWithWasm,
} from "./policy-store.js";
import { publishedMeta } from "./published-meta.js";

interface Candidate {
  meta: PublishedPolicy;
  wasm: Uint8Array;
}

function storedCandidate(policy: PolicyRow, version: VersionWithWasm): Candidate {
  if (!version.wasm || !version.wasmSha256 || !version.entrypoint) {
    throw new FulcrumError("FailedPrecondition", `version ${version.version} did not compile`);
  }
  const meta = publishedMeta({
    tenantId: policy.tenantId,
    policyId: policy.id,
    name: policy.name,
    version: version.version,
    sha256: version.sha256,
    wasmSha256: version.wasmSha256,
    entrypoint: version.entrypoint,
    definition: fromStoredDefinition(version.definition).policy,
  });
  return { meta, wasm: version.wasm };
}

async function evaluate(
  candidate: Candidate,
  context: DryRunPolicyRequest["context"],
  now: Date,
): Promise<EvaluationResult> {
  try {
    const instance = await loadCompiledPolicy(candidate.wasm);
    return evaluateCompiledPolicy(instance, candidate.meta, toPolicyContext(context), now);
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new FulcrumError(
      "FailedPrecondition",
      `version ${candidate.meta.version} of the policy failed to evaluate for this context: ${message}`,
      { cause },
    );
  }
}

export async function dryRunPolicy(
  deps: FunctionsDeps,
  caller: TenantPrincipal,
  req: DryRunPolicyRequest,
): Promise<DryRunPolicyResponse> {
  requireOwnTenant(caller.tenantId, req.context?.tenantId ?? "", "context.tenant_id");
  const id = req.policyId ? requirePolicyId(req.policyId) : undefined;
  let candidate: Candidate | undefined;
  if (req.policy) {
    requireOwnTenant(caller.tenantId, req.policy.tenantId, "policy.tenant_id");
    const definition = definitionOf(req.policy);
    const compiled = await deps.compiler.compile(sourceOf(definition.policy));
    candidate = {
      wasm: compiled.wasm,
      meta: publishedMeta({
        tenantId: caller.tenantId,
        policyId: id ?? "",
        name: req.policy.name,
        version: 0,
        sha256: definition.sha256,
        wasmSha256: compiled.wasmSha256,
        entrypoint: compiled.entrypoint,
        definition: definition.policy,
      }),
    };
  }
  const stored = id
    ? await inTenant(deps.db, caller.tenantId, async (tx) => {
        const policy = await loadPolicy(tx, id);
        const number = req.policy
          ? undefined
          : req.version || (await latestVersion(tx, id)).version;
        const target =
          number === undefined
            ? undefined
            : storedCandidate(policy, await loadVersion(tx, id, number));
        const active =
          policy.status === "ACTIVE" && policy.activeVersion !== null
            ? storedCandidate(policy, await loadVersion(tx, id, policy.activeVersion))
            : undefined;
        return { target, active };
      })
    : undefined;
  candidate ??= stored?.target;
  if (!candidate)
    throw new FulcrumError("Invalid", "set policy_id or an inline policy", { field: "policy_id" });

  const now = req.context?.timestamp ? timestampDate(req.context.timestamp) : deps.now();
  // The real verdict: evaluated as if the version were active and not in dry-run mode.
  const result = await evaluate(
    { ...candidate, meta: { ...candidate.meta, dry_run: false } },
    req.context,
    now,
  );
  result.dryRun = true;
  const activeDecision = stored?.active
    ? (await evaluate(stored.active, req.context, now)).decision
    : Decision.UNSPECIFIED;
  return create(DryRunPolicyResponseSchema, {
    result,
    activeDecision,
    version: candidate.meta.version,
  });
}
