/**
 * Loading and evaluating one compiled tenant policy (the wasm the policy
 * compiler builds, entrypoint {@link POLICY_ENTRYPOINT}). Shared by the
 * management API's dry run and the edge. Web-standard only.
 *
 * @example
 * const policy = await loadCompiledPolicy(wasmBytes);
 * const result = evaluateCompiledPolicy(policy, meta, toPolicyContext(ctx), new Date());
 */
import type { LoadedPolicy } from "@open-policy-agent/opa-wasm";
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import type { EvaluationResult } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { toEvaluationResult } from "../policy/decision-result.js";
import type { PolicyContext } from "../policy/tenant-config.js";
import { notApplicableMessage } from "./policy-scope.js";
import { POLICY_ENTRYPOINT, type PublishedPolicy, type VerdictSets } from "./published-policy.js";
import { notApplicableResult, verdictResult } from "./verdict.js";

export type CompiledPolicyInstance = LoadedPolicy;

/** OPA's own default: the wasm memory starts at 5 pages (64 KiB each). */
const INITIAL_MEMORY_PAGES = 5;

export interface LoadOptions {
  /**
   * Most 64 KiB pages the policy's linear memory may grow to. Wasm memory is not part
   * of the V8 heap (a Worker's `resourceLimits` do not cover it): an evaluation that
   * needs more fails (OPA aborts in `opa_malloc`). Default: the wasm32 limit (4 GiB).
   */
  maxMemoryPages?: number;
}

export async function loadCompiledPolicy(
  wasm: BufferSource | WebAssembly.Module,
  options: LoadOptions = {},
): Promise<CompiledPolicyInstance> {
  if (options.maxMemoryPages === undefined) return await loadPolicy(wasm);
  return await loadPolicy(wasm, {
    initial: Math.min(INITIAL_MEMORY_PAGES, options.maxMemoryPages),
    maximum: options.maxMemoryPages,
  });
}

/** The raw value of the entrypoint for `context` (throws when the policy gives none). */
export function evaluateVerdictSets(
  instance: CompiledPolicyInstance,
  context: PolicyContext,
  entrypoint: string = POLICY_ENTRYPOINT,
): VerdictSets {
  const out: unknown = instance.evaluate(context, entrypoint);
  const first = Array.isArray(out) ? (out[0] as { result?: unknown } | undefined) : undefined;
  if (!first || typeof first.result !== "object" || first.result === null) {
    throw new TypeError(`the policy's ${entrypoint} is undefined`);
  }
  return first.result as VerdictSets;
}

export interface EvaluateOptions {
  /** Request-level dry run: the policy is evaluated as a dry run whatever its own setting. */
  dryRun?: boolean;
}

/**
 * The policy's EvaluationResult for `context` at `now`. A policy outside its
 * effective window or scope is not evaluated: ALLOW, no matched rules, a
 * message starting `not applicable:` (as the governance library reports
 * out-of-scope policies). Evaluation errors and malformed answers throw.
 */
export function evaluateCompiledPolicy(
  instance: CompiledPolicyInstance,
  meta: PublishedPolicy,
  context: PolicyContext,
  now: Date,
  options: EvaluateOptions = {},
): EvaluationResult {
  const started = performance.now();
  const dryRun = options.dryRun === true;
  const skip = notApplicableMessage(meta, context, now);
  const result = skip
    ? notApplicableResult(meta, skip, dryRun)
    : verdictResult(
        evaluateVerdictSets(instance, context, meta.entrypoint || POLICY_ENTRYPOINT),
        meta,
        dryRun,
      );
  return toEvaluationResult(result, {
    evaluatedAtMs: now.getTime(),
    durationMs: performance.now() - started,
  });
}
