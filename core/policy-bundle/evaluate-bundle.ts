/**
 * Evaluating a tenant's bundle of compiled policies (one wasm per policy version,
 * entrypoint {@link POLICY_ENTRYPOINT}) for one request, combined into the
 * {@link DecisionOutput} the governance library gives (core/policy/expand-decision.ts):
 * decision and would_decide are the strongest over the results, matched_rules carry
 * their policy id, one reason per matched rule ("<reason> (rule <id> of policy <id>)",
 * prefixed "dry run: " for a dry-run result), every result's actions in order.
 *
 * Pure and web-standard: the caller loads the instances (in Node with
 * `WebAssembly.compile`, in the edge's Worker Loader isolate from pre-compiled
 * modules) and maps failures to its errors.
 *
 * @example
 * const selected = selectPolicies(metas, request.policyIds);
 * const instances = new Map([[sha, await loadCompiledPolicy(module)]]);
 * const { output, durationMs } = evaluateBundle(instances, metas, request);
 */
import { FulcrumError, notFound } from "../errors/fulcrum-error.js";
import { combineResults } from "../policy/expand-decision.js";
import {
  DECISION_RANK,
  type DecisionName,
  type DecisionOutput,
  type PolicyContext,
  type PolicyResultOutput,
} from "../policy/tenant-config.js";
import { type CompiledPolicyInstance, evaluateVerdictSets } from "./compiled-policy.js";
import { notApplicableMessage } from "./policy-scope.js";
import { POLICY_ENTRYPOINT, type PublishedPolicy } from "./published-policy.js";
import { notApplicableResult, verdictResult } from "./verdict.js";

/**
 * The default bound of each policy instance's linear memory: 2,048 64 KiB pages
 * (128 MiB), as the management API's dry run (loadCompiledPolicy `maxMemoryPages`).
 */
export const DEFAULT_MAX_MEMORY_PAGES = 2_048;

export interface EvaluateBundleRequest {
  context: PolicyContext;
  /** The policies to evaluate, in this order; empty: every policy, in bundle order. */
  policyIds: readonly string[];
  /** Evaluate every policy as a dry run. */
  dryRun: boolean;
  /** The evaluation time: effective_at / expires_at are compared with it. */
  nowMs: number;
}

export interface BundleDecision {
  output: DecisionOutput;
  /** Wall time of the evaluations (performance.now; 0 in a deployed Worker). */
  durationMs: number;
}

/** Loaded instances by `wasm_sha256`. */
export type PolicyInstances = ReadonlyMap<string, CompiledPolicyInstance>;

/**
 * A policy that could not be evaluated: its wasm trapped, answered no or a malformed
 * value, or was not loaded. Never read as ALLOW; the caller reports Internal (and may
 * drop the instance of `wasmSha256`, whose state is unknown after a trap).
 */
export class PolicyEvaluationError extends Error {
  override readonly name = "PolicyEvaluationError";
  readonly policyId: string;
  readonly version: number;
  readonly wasmSha256: string;

  constructor(meta: PublishedPolicy, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`policy "${meta.policy_id}" version ${meta.version} failed: ${why}`, { cause });
    this.policyId = meta.policy_id;
    this.version = meta.version;
    this.wasmSha256 = meta.wasm_sha256;
  }
}

/**
 * The policies a request evaluates: the named ones in the named order (a name listed
 * twice is evaluated once, where it is first named), or every policy in bundle order
 * when none is named. Throws FulcrumError "NotFound" naming every id the bundle lacks.
 */
export function selectPolicies(
  policies: readonly PublishedPolicy[],
  policyIds: readonly string[],
): PublishedPolicy[] {
  if (policyIds.length === 0) return [...policies];
  const byId = new Map(policies.map((p) => [p.policy_id, p]));
  const missing = [...new Set(policyIds.filter((id) => !byId.has(id)))];
  if (missing.length > 0) {
    const list = missing.map((id) => JSON.stringify(id)).join(", ");
    throw notFound(
      missing.length === 1
        ? `policy ${list} is not active for this tenant`
        : `policies ${list} are not active for this tenant`,
    );
  }
  return [...new Set(policyIds)].map((id) => byId.get(id) as PublishedPolicy);
}

/** One policy's result; throws PolicyEvaluationError when its wasm fails. */
function evaluateOne(
  instances: PolicyInstances,
  meta: PublishedPolicy,
  request: EvaluateBundleRequest,
  now: Date,
): PolicyResultOutput {
  const skip = notApplicableMessage(meta, request.context, now);
  if (skip) return notApplicableResult(meta, skip, request.dryRun);
  try {
    const instance = instances.get(meta.wasm_sha256);
    if (!instance) throw new Error(`wasm ${meta.wasm_sha256} is not loaded`);
    const sets = evaluateVerdictSets(
      instance,
      request.context,
      meta.entrypoint || POLICY_ENTRYPOINT,
    );
    return verdictResult(sets, meta, request.dryRun);
  } catch (error) {
    throw new PolicyEvaluationError(meta, error);
  }
}

/**
 * Evaluates the request's policies (see {@link selectPolicies}) with the loaded
 * `instances` and combines their results. A policy outside its effective window or
 * scope at `nowMs` is not evaluated (a not-applicable ALLOW result, as
 * evaluateCompiledPolicy gives). Throws FulcrumError "NotFound" for a named policy
 * `policies` lacks, {@link PolicyEvaluationError} when a policy's wasm traps, answers
 * malformed or is not in `instances`: never an ALLOW.
 */
export function evaluateBundle(
  instances: PolicyInstances,
  policies: readonly PublishedPolicy[],
  request: EvaluateBundleRequest,
): BundleDecision {
  const selected = selectPolicies(policies, request.policyIds);
  const now = new Date(request.nowMs);
  const started = performance.now();
  const results = selected.map((meta) => evaluateOne(instances, meta, request, now));
  const output = combineResults(results);
  return { output, durationMs: performance.now() - started };
}

/**
 * Any failure of an evaluation once the policies are selected (a trap, a malformed
 * answer, a lost evaluator), as callers report it: Internal with a safe message, the
 * cause kept for the log. Never an ALLOW.
 */
export function evaluationFailed(cause: unknown): FulcrumError {
  return new FulcrumError("Internal", "policy evaluation failed", { cause });
}

const isDecision = (v: unknown): v is DecisionName =>
  typeof v === "string" && Object.hasOwn(DECISION_RANK, v);

/**
 * `value` as a BundleDecision, checked where it crosses a boundary (an RPC answer):
 * the verdicts must be decisions and the lists lists, else it throws a TypeError
 * (fail closed, never read as ALLOW).
 */
export function checkBundleDecision(value: unknown): BundleDecision {
  const v = value as Partial<BundleDecision> | null | undefined;
  const o = v?.output as Partial<DecisionOutput> | undefined;
  if (
    typeof v !== "object" ||
    v === null ||
    typeof v.durationMs !== "number" ||
    typeof o !== "object" ||
    o === null ||
    !isDecision(o.decision) ||
    !isDecision(o.would_decide) ||
    !Array.isArray(o.results) ||
    !Array.isArray(o.matched_rules) ||
    !Array.isArray(o.reasons) ||
    !Array.isArray(o.actions) ||
    !o.results.every((r) => isDecision(r?.decision) && isDecision(r?.would_decide))
  ) {
    throw new TypeError("not a bundle evaluation");
  }
  return v as BundleDecision;
}

export { combineResults };
