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
 *
 * Evaluations run in the sandbox (functions/src/sandbox/): a worker thread with a 2 s
 * deadline and capped memory, so a tenant's inline Rego cannot stall the process. A
 * policy over either limit is Invalid (not retryable: it will run over again).
 */
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { toPolicyContext } from "../../../core/policy/decision-input.js";
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
import {
  type EvaluationSandbox,
  SandboxEvaluationError,
  SandboxLimitError,
} from "../sandbox/evaluation-sandbox.js";
import { definitionOf, sourceOf } from "./policy-definition.js";
import {
  latestVersion,
  loadPolicy,
  loadVersion,
  type PolicyRow,
  requireOwnTenant,
  requirePolicyId,
  type VersionWithWasm,
} from "./policy-store.js";
import { publishedMeta, publishedVersion } from "./published-meta.js";

interface Candidate {
  meta: PublishedPolicy;
  wasm: Uint8Array;
  /** What the candidate is, for errors: the inline policy, the requested or the active version. */
  role: "inline" | "version" | "active";
}

const FIELD_OF_ROLE = { inline: "policy", version: "version", active: "policy_id" } as const;

function describeCandidate(candidate: Candidate): string {
  if (candidate.role === "inline") return "the policy";
  const which = candidate.role === "active" ? "the active version" : "version";
  return `${which} ${candidate.meta.version} of the policy`;
}

function storedCandidate(
  policy: PolicyRow,
  version: VersionWithWasm,
  role: Candidate["role"],
): Candidate {
  return { ...publishedVersion(policy, version, policy.name), role };
}

async function evaluate(
  sandbox: EvaluationSandbox,
  candidate: Candidate,
  context: DryRunPolicyRequest["context"],
  now: Date,
): Promise<EvaluationResult> {
  try {
    return await sandbox.evaluate({
      wasm: candidate.wasm,
      meta: candidate.meta,
      context: toPolicyContext(context),
      now,
    });
  } catch (cause) {
    if (cause instanceof SandboxLimitError) {
      const what =
        cause.limit === "time"
          ? `did not finish evaluating within ${cause.amount}`
          : `needed more than ${cause.amount} of memory to evaluate`;
      throw new FulcrumError(
        "Invalid",
        `${describeCandidate(candidate)} ${what}: simplify it (iterate over less, e.g. smaller numbers.range or fewer nested comprehensions)`,
        { field: FIELD_OF_ROLE[candidate.role], retry: false, cause },
      );
    }
    if (cause instanceof SandboxEvaluationError) {
      throw new FulcrumError(
        "FailedPrecondition",
        `${describeCandidate(candidate)} failed to evaluate for this context: ${cause.message}`,
        { cause },
      );
    }
    throw cause;
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
      role: "inline",
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
            : storedCandidate(policy, await loadVersion(tx, id, number), "version");
        const active =
          policy.status === "ACTIVE" && policy.activeVersion !== null
            ? storedCandidate(policy, await loadVersion(tx, id, policy.activeVersion), "active")
            : undefined;
        return { target, active };
      })
    : undefined;
  candidate ??= stored?.target;
  if (!candidate)
    throw new FulcrumError("Invalid", "set policy_id or an inline policy", { field: "policy_id" });

  const now = req.context?.timestamp ? timestampDate(req.context.timestamp) : deps.now();
  // The real verdict: evaluated as if the version were active and not in dry-run mode.
  const sandbox = deps.sandbox;
  const result = await evaluate(
    sandbox,
    { ...candidate, meta: { ...candidate.meta, dry_run: false } },
    req.context,
    now,
  );
  result.dryRun = true;
  const activeDecision = stored?.active
    ? (await evaluate(sandbox, stored.active, req.context, now)).decision
    : Decision.UNSPECIFIED;
  return create(DryRunPolicyResponseSchema, {
    result,
    activeDecision,
    version: candidate.meta.version,
  });
}
