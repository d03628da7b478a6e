/**
 * The edge's BundleEvaluator: each tenant bundle runs in a Worker Loader isolate of its
 * own, keyed by the bundle digest, started from the evaluator bundle
 * (edge/build/policy-evaluator.bundle, built from edge/evaluator/main.ts) with the
 * bundle's metadata and compiled wasm as modules. A Worker cannot compile wasm from
 * bytes; the loaded isolate gets the modules pre-compiled.
 *
 * The isolate has no network (`globalOutbound: null`) and a CPU limit per request.
 * `LOADER.get` with the same id reuses a loaded isolate; its stub is bound to the
 * request that got it, so one is obtained per evaluation.
 *
 * @example
 * import evaluatorSource from "../../build/policy-evaluator.bundle";
 * const evaluator = new LoaderEvaluator(env.LOADER, evaluatorSource);
 * const { output } = await evaluator.evaluate(bundle, { context, policyIds, dryRun, nowMs });
 */
import {
  checkBundleDecision,
  DEFAULT_MAX_MEMORY_PAGES,
  evaluationFailed,
  selectPolicies,
} from "../../../core/policy-bundle/evaluate-bundle.js";
import type PolicyBundleEvaluator from "../../evaluator/main.js";
import type { EvaluatorBundle } from "../../evaluator/main.js";
import type { TenantBundle } from "../distribution/tenant-bundle.js";
import type {
  BundleEvaluation,
  BundleEvaluationRequest,
  BundleEvaluator,
} from "./bundle-evaluator.js";

export const DEFAULT_CPU_MS = 50;
/** wrangler.toml `compatibility_date`. */
export const DEFAULT_COMPATIBILITY_DATE = "2026-11-01";

export interface LoaderEvaluatorOptions {
  /** CPU time an evaluation may use in the loaded isolate. Default {@link DEFAULT_CPU_MS}. */
  cpuMs?: number;
  /** The loaded isolate's compatibility date. Default {@link DEFAULT_COMPATIBILITY_DATE}. */
  compatibilityDate?: string;
  /** Most 64 KiB pages per policy's wasm memory. Default {@link DEFAULT_MAX_MEMORY_PAGES}. */
  maxMemoryPages?: number;
}

/** The module names edge/evaluator/main.ts imports (see edge/evaluator/supplied-modules.d.ts). */
const MAIN_MODULE = "main.js";
const BUNDLE_MODULE = "bundle.json";
const WASM_INDEX_MODULE = "wasm.js";
const wasmModuleName = (sha: string) => `w/${sha}.wasm`;

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Throws unless every policy's wasm is in the bundle under a hex SHA-256 (the sha names
 * a module in generated code: only a hex digest may).
 */
function checkWasm(bundle: TenantBundle): void {
  for (const { policy_id, wasm_sha256: sha } of bundle.policies) {
    if (!SHA256_HEX.test(sha) || !bundle.wasm.has(sha)) {
      throw new TypeError(`bundle ${bundle.digest}: policy ${policy_id} has no wasm ${sha}`);
    }
  }
}

/** The isolate's modules for `bundle`: the evaluator, the metadata, the wasm and their index. */
export function evaluatorModules(
  bundle: TenantBundle,
  evaluatorSource: string,
  maxMemoryPages: number = DEFAULT_MAX_MEMORY_PAGES,
): Record<string, string | WorkerLoaderModule> {
  checkWasm(bundle);
  const shas = [...new Set(bundle.policies.map((p) => p.wasm_sha256))];
  const modules: Record<string, string | WorkerLoaderModule> = {
    [MAIN_MODULE]: { js: evaluatorSource },
  };
  const imports: string[] = [];
  const entries: string[] = [];
  shas.forEach((sha, i) => {
    modules[wasmModuleName(sha)] = { wasm: bundle.wasm.get(sha) as Uint8Array };
    imports.push(`import m${i} from "./${wasmModuleName(sha)}";`);
    entries.push(`"${sha}": m${i}`);
  });
  modules[WASM_INDEX_MODULE] = {
    js: `${imports.join("\n")}\nexport default Object.freeze({ ${entries.join(", ")} });\n`,
  };
  const data: EvaluatorBundle = {
    digest: bundle.digest,
    policies: [...bundle.policies],
    maxMemoryPages,
  };
  modules[BUNDLE_MODULE] = { json: data };
  return modules;
}

export class LoaderEvaluator implements BundleEvaluator {
  readonly #loader: WorkerLoader;
  readonly #source: string;
  readonly #cpuMs: number;
  readonly #compatibilityDate: string;
  readonly #maxMemoryPages: number;

  constructor(loader: WorkerLoader, evaluatorSource: string, options: LoaderEvaluatorOptions = {}) {
    this.#loader = loader;
    this.#source = evaluatorSource;
    this.#cpuMs = options.cpuMs ?? DEFAULT_CPU_MS;
    this.#compatibilityDate = options.compatibilityDate ?? DEFAULT_COMPATIBILITY_DATE;
    this.#maxMemoryPages = options.maxMemoryPages ?? DEFAULT_MAX_MEMORY_PAGES;
  }

  /** The Worker Loader id of a bundle's isolate. */
  static isolateId(bundle: TenantBundle): string {
    return `fulcrum-bundle:${bundle.digest}`;
  }

  #code(bundle: TenantBundle): WorkerLoaderWorkerCode {
    return {
      compatibilityDate: this.#compatibilityDate,
      mainModule: MAIN_MODULE,
      modules: evaluatorModules(bundle, this.#source, this.#maxMemoryPages),
      globalOutbound: null,
      limits: { cpuMs: this.#cpuMs },
    };
  }

  async evaluate(
    bundle: TenantBundle,
    request: BundleEvaluationRequest,
  ): Promise<BundleEvaluation> {
    selectPolicies(bundle.policies, request.policyIds); // NotFound before any RPC
    try {
      // Checked here too: a throw in the code callback is reported as uncaught.
      checkWasm(bundle);
      const worker = this.#loader.get(LoaderEvaluator.isolateId(bundle), () => this.#code(bundle));
      const evaluator = worker.getEntrypoint<PolicyBundleEvaluator>();
      const answer: unknown = await evaluator.evaluate({
        context: request.context,
        policyIds: [...request.policyIds],
        dryRun: request.dryRun,
        nowMs: request.nowMs,
      });
      return checkBundleDecision(answer);
    } catch (error) {
      throw evaluationFailed(error);
    }
  }
}
