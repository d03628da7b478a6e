/// <reference path="./supplied-modules.d.ts" />
/**
 * The policy-bundle evaluator: the main module of the Worker Loader isolate the edge
 * starts per tenant bundle digest (edge/src/evaluation/loader-evaluator.ts). A Worker
 * cannot compile wasm from bytes, but an isolate loaded with the wasm as modules gets
 * them pre-compiled; instantiating a WebAssembly.Module is allowed.
 *
 * The host supplies, next to this code (bundled by scripts/build-evaluator.ts into
 * edge/build/policy-evaluator.bundle):
 * - `bundle.json`: {@link EvaluatorBundle}, the bundle's policies in evaluation order;
 * - `wasm.js`: `export default { "<wasm_sha256>": module, ... }` over
 * - `w/<wasm_sha256>.wasm`: each compiled policy.
 *
 * Each module is instantiated once per isolate, when a request first needs it; an
 * instance whose evaluation failed is dropped (its state after a trap is unknown).
 * Answers are plain data (structured clone over RPC); failures are thrown as Errors
 * (the host reports Internal).
 */

import { WorkerEntrypoint } from "cloudflare:workers";
import bundle from "bundle.json";
import wasmModules from "wasm.js";
import {
  type CompiledPolicyInstance,
  loadCompiledPolicy,
} from "../../core/policy-bundle/compiled-policy.js";
import {
  type BundleDecision,
  type EvaluateBundleRequest,
  evaluateBundle,
  PolicyEvaluationError,
  selectPolicies,
} from "../../core/policy-bundle/evaluate-bundle.js";
import type { PublishedPolicy } from "../../core/policy-bundle/published-policy.js";

/** The content of the supplied `bundle.json` module. */
export interface EvaluatorBundle {
  /** The tenant bundle's digest (for errors and logs). */
  digest: string;
  /** The active policies, in evaluation order. */
  policies: PublishedPolicy[];
  /** Most 64 KiB pages each policy's linear memory may grow to (loadCompiledPolicy). */
  maxMemoryPages?: number;
}

const instances = new Map<string, CompiledPolicyInstance>();
const loading = new Map<string, Promise<CompiledPolicyInstance>>();

function instanceFor(sha: string): Promise<CompiledPolicyInstance> | CompiledPolicyInstance {
  const loaded = instances.get(sha);
  if (loaded) return loaded;
  let pending = loading.get(sha);
  if (!pending) {
    const module = Object.hasOwn(wasmModules, sha) ? wasmModules[sha] : undefined;
    if (!module) throw new Error(`bundle ${bundle.digest} has no wasm ${sha}`);
    const options =
      bundle.maxMemoryPages === undefined ? {} : { maxMemoryPages: bundle.maxMemoryPages };
    pending = loadCompiledPolicy(module, options).then(
      (instance) => {
        instances.set(sha, instance);
        loading.delete(sha);
        return instance;
      },
      (error: unknown) => {
        loading.delete(sha);
        throw error;
      },
    );
    loading.set(sha, pending);
  }
  return pending;
}

export default class PolicyBundleEvaluator extends WorkerEntrypoint {
  /** The bundle's combined decision for `request` (see core/policy-bundle/evaluate-bundle.ts). */
  async evaluate(request: EvaluateBundleRequest): Promise<BundleDecision> {
    const selected = selectPolicies(bundle.policies, request.policyIds);
    await Promise.all([...new Set(selected.map((m) => m.wasm_sha256))].map(instanceFor));
    try {
      return evaluateBundle(instances, bundle.policies, request);
    } catch (error) {
      if (error instanceof PolicyEvaluationError) instances.delete(error.wasmSha256);
      throw error;
    }
  }
}
