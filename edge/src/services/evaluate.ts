import { FulcrumError, invalid, notFound } from "../../../core/errors/fulcrum-error.js";
import { toDecisionInput } from "../../../core/policy/decision-input.js";
import type { DecisionOutput, TenantConfig } from "../../../core/policy/tenant-config.js";
import type { EvaluationContext } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { PolicyEngine } from "../policy/policy-engine.js";
import type { TenantConfigSource } from "../policy/tenant-config-source.js";

export interface EvaluationDeps {
  engine: PolicyEngine;
  tenants: TenantConfigSource;
}

export interface Evaluation {
  output: DecisionOutput;
  config: TenantConfig;
  evaluatedAtMs: number;
  /** See TimedDecision.durationMs. */
  durationMs: number;
}

/**
 * The evaluation path shared by EvaluatePolicy, EvaluatePolicies and
 * CheckPolicy: find the tenant's configuration, check that every named policy
 * exists, run the `decision` entrypoint once for all of them.
 */
export async function evaluate(
  deps: EvaluationDeps,
  tenantId: string,
  policyIds: readonly string[],
  context: EvaluationContext | undefined,
  dryRun: boolean,
): Promise<Evaluation> {
  const config = await deps.tenants.get(tenantId);
  if (!config) throw notFound(`tenant "${tenantId}" has no policy configuration at this edge`);

  const missing = policyIds.filter((id) => !Object.hasOwn(config.policies, id));
  if (missing.length > 0) {
    const list = missing.map((id) => `"${id}"`).join(", ");
    throw notFound(`policy ${list} does not exist for tenant "${tenantId}"`);
  }

  const input = toDecisionInput(context, policyIds, dryRun);
  const evaluatedAtMs = Date.now();
  const { output, durationMs } = deps.engine.evaluate(tenantId, config, input);

  if (output.results.length !== policyIds.length && policyIds.length > 0) {
    throw new FulcrumError("Internal", "policy evaluation skipped a named policy", {
      cause: new Error(`asked for ${policyIds.length} policies, got ${output.results.length}`),
    });
  }
  return { output, config, evaluatedAtMs, durationMs };
}

/**
 * The tenant a request is for: `tenant_id` (CheckPolicy only) or
 * `context.tenant_id`, which must agree when both are given. Until API keys
 * carry the tenant, a request that names none is invalid; the error names the
 * field the caller is expected to fill (`tenant_id` on CheckPolicy).
 */
export function requestTenant(
  topLevel: string,
  context: EvaluationContext | undefined,
  requiredField: "tenant_id" | "context.tenant_id" = "context.tenant_id",
): string {
  const fromContext = context?.tenantId ?? "";
  if (topLevel && fromContext && topLevel !== fromContext) {
    throw invalid("context.tenant_id", `"${fromContext}" does not match tenant_id "${topLevel}"`);
  }
  const tenantId = topLevel || fromContext;
  if (!tenantId) {
    throw invalid(requiredField, "value is required: name the tenant whose policies apply");
  }
  return tenantId;
}
