import type { DecisionOutput, PolicyContext } from "../../../core/policy/tenant-config.js";
import type { TenantBundle } from "../distribution/tenant-bundle.js";

export interface BundleEvaluationRequest {
  context: PolicyContext;
  /** Policies to evaluate, in this order; empty: every policy of the bundle. */
  policyIds: readonly string[];
  /** Evaluate every policy as a dry run. */
  dryRun: boolean;
  /** The evaluation time (effective_at / expires_at are compared with it). */
  nowMs: number;
}

export interface BundleEvaluation {
  /** Combined over the evaluated policies as the governance library combines them. */
  output: DecisionOutput;
  /** Wall time of the evaluations (0 in deployed Workers: their clock stops without I/O). */
  durationMs: number;
}

/**
 * Evaluates a tenant bundle's compiled policies. At the edge, a Worker Loader isolate
 * per bundle digest runs the wasm (a Worker cannot compile wasm from bytes itself);
 * in Node, the same evaluation runs in process.
 *
 * Throws FulcrumError "NotFound" for a named policy the bundle lacks, "Internal" when
 * a policy traps or answers malformed: never an ALLOW.
 */
export interface BundleEvaluator {
  evaluate(bundle: TenantBundle, request: BundleEvaluationRequest): Promise<BundleEvaluation>;
}
