/**
 * The BundleEvaluator for Node (tests, benchmarks, the local stand-ins): the same
 * evaluation as the edge's Worker Loader isolate (core/policy-bundle/evaluate-bundle.ts),
 * run in process. Not for a Worker: it compiles wasm from bytes.
 *
 * Instances are kept per `wasm_sha256` (the bytes are verified against it), at most
 * `maxInstances`, the least recently used dropped first; an instance whose evaluation
 * failed is dropped (its state after a trap is unknown).
 */
import {
  type CompiledPolicyInstance,
  loadCompiledPolicy,
} from "../../../core/policy-bundle/compiled-policy.js";
import {
  checkBundleDecision,
  DEFAULT_MAX_MEMORY_PAGES,
  evaluateBundle,
  evaluationFailed,
  PolicyEvaluationError,
  selectPolicies,
} from "../../../core/policy-bundle/evaluate-bundle.js";
import type { TenantBundle } from "../distribution/tenant-bundle.js";
import type {
  BundleEvaluation,
  BundleEvaluationRequest,
  BundleEvaluator,
} from "./bundle-evaluator.js";

export const DEFAULT_MAX_INSTANCES = 256;

export interface InProcessEvaluatorOptions {
  /** Instances kept (one per distinct wasm). Default {@link DEFAULT_MAX_INSTANCES}. */
  maxInstances?: number;
  /** Most 64 KiB pages per policy's wasm memory. Default: as the Worker Loader evaluator. */
  maxMemoryPages?: number;
}

export class InProcessEvaluator implements BundleEvaluator {
  readonly #cache = new Map<string, Promise<CompiledPolicyInstance>>();
  readonly #maxInstances: number;
  readonly #maxMemoryPages: number;

  constructor(options: InProcessEvaluatorOptions = {}) {
    this.#maxInstances = Math.max(1, options.maxInstances ?? DEFAULT_MAX_INSTANCES);
    this.#maxMemoryPages = options.maxMemoryPages ?? DEFAULT_MAX_MEMORY_PAGES;
  }

  /** Instances currently kept. */
  get size(): number {
    return this.#cache.size;
  }

  #instance(bundle: TenantBundle, sha: string): Promise<CompiledPolicyInstance> {
    const cached = this.#cache.get(sha);
    if (cached) {
      this.#cache.delete(sha); // most recently used last
      this.#cache.set(sha, cached);
      return cached;
    }
    const bytes = bundle.wasm.get(sha);
    if (!bytes) return Promise.reject(new Error(`bundle ${bundle.digest} has no wasm ${sha}`));
    // Compiles the bytes (WebAssembly.instantiate): fine in Node, refused in a Worker.
    const loading = loadCompiledPolicy(bytes as Uint8Array<ArrayBuffer>, {
      maxMemoryPages: this.#maxMemoryPages,
    });
    loading.catch(() => {
      if (this.#cache.get(sha) === loading) this.#cache.delete(sha);
    });
    this.#cache.set(sha, loading);
    while (this.#cache.size > this.#maxInstances) {
      const oldest = this.#cache.keys().next().value as string;
      this.#cache.delete(oldest);
    }
    return loading;
  }

  async evaluate(
    bundle: TenantBundle,
    request: BundleEvaluationRequest,
  ): Promise<BundleEvaluation> {
    const selected = selectPolicies(bundle.policies, request.policyIds); // NotFound
    try {
      const instances = new Map<string, CompiledPolicyInstance>();
      for (const sha of new Set(selected.map((m) => m.wasm_sha256))) {
        instances.set(sha, await this.#instance(bundle, sha));
      }
      // Checked as the Worker Loader answer is: both evaluators fail alike.
      return checkBundleDecision(evaluateBundle(instances, bundle.policies, request));
    } catch (error) {
      if (error instanceof PolicyEvaluationError) this.#cache.delete(error.wasmSha256);
      throw evaluationFailed(error);
    }
  }
}
