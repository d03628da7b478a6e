import type { LoadedPolicy } from "@open-policy-agent/opa-wasm";
import * as opaWasm from "@open-policy-agent/opa-wasm";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { expandDecision } from "../../../core/policy/expand-decision.js";
import {
  InvalidTenantConfigError,
  type PreparedTenantData,
  prepareTenantData,
} from "../../../core/policy/prepare-tenant-data.js";
import type {
  DecisionInput,
  DecisionOutput,
  RawDecisionOutput,
  TenantConfig,
} from "../../../core/policy/tenant-config.js";

// The package's ESM entry exports only `loadPolicy` by name (its types claim
// more); the synchronous loader lives on the default export.
const { loadPolicySync } = (opaWasm as unknown as { default: typeof opaWasm }).default;

/** The single entrypoint compiled into the governance bundle. */
export const DECISION_ENTRYPOINT = "fulcrum/governance/decision";

export interface TimedDecision {
  output: DecisionOutput;
  /**
   * Wall time of the wasm evaluation and its expansion (expandDecision).
   * Deployed Workers advance the clock only across I/O (a Spectre
   * mitigation), so there it reads 0 for a pure in-memory evaluation;
   * `npm run bench:policy` measures the real figure.
   */
  durationMs: number;
}

interface TenantInstance {
  config: TenantConfig;
  policy: LoadedPolicy;
  /** The data document loaded into `policy`, which expandDecision renders from. */
  prepared: PreparedTenantData;
}

/** Tenants kept instantiated per isolate; each instance holds its own wasm memory. */
export const MAX_TENANT_INSTANCES = 256;

/**
 * Evaluates the governance bundle for a tenant. The wasm module is compiled
 * once (imported by the Worker as a compiled module); each tenant gets its own
 * instance with its configuration loaded as `data` once, because `setData`
 * costs far more than an evaluation. An instance is rebuilt when the tenant's
 * configuration object changes; the least recently used one is dropped past
 * `maxInstances`.
 */
export class PolicyEngine {
  private readonly instances = new Map<string, TenantInstance>();
  private bundleLoads: boolean | undefined;

  constructor(
    private readonly module: WebAssembly.Module,
    private readonly maxInstances: number = MAX_TENANT_INSTANCES,
  ) {}

  /** Whether the bundle instantiates at all: what the health check reports. */
  isReady(): boolean {
    if (this.bundleLoads === undefined) {
      try {
        loadPolicySync(this.module);
        this.bundleLoads = true;
      } catch {
        this.bundleLoads = false;
      }
    }
    return this.bundleLoads;
  }

  /** How many tenants are instantiated now (for tests and /healthz). */
  get size(): number {
    return this.instances.size;
  }

  evaluate(tenantId: string, config: TenantConfig, input: DecisionInput): TimedDecision {
    const { policy, prepared } = this.instanceFor(tenantId, config);
    let results: unknown;
    // Only the evaluation and its expansion are timed; loading a tenant's instance is not.
    const started = performance.now();
    try {
      results = policy.evaluate(input, DECISION_ENTRYPOINT);
    } catch (cause) {
      // A trap or an unimplemented builtin: never an ALLOW, never the raw text.
      this.instances.delete(tenantId);
      throw new FulcrumError("Internal", "policy evaluation failed", { cause });
    }
    const raw = Array.isArray(results) ? results[0]?.result : undefined;
    let output: DecisionOutput;
    try {
      // The wasm returns only the request-dependent facts; the rest comes from the prepared data.
      output = expandDecision(prepared, raw as RawDecisionOutput);
    } catch (cause) {
      throw new FulcrumError("Internal", "policy evaluation produced no decision", {
        cause: new Error(`unexpected result: ${JSON.stringify(results)?.slice(0, 200)}`, { cause }),
      });
    }
    return { output, durationMs: performance.now() - started };
  }

  private instanceFor(tenantId: string, config: TenantConfig): TenantInstance {
    const cached = this.instances.get(tenantId);
    if (cached && cached.config === config) {
      // Map order is insertion order: re-inserting marks the tenant most recently used.
      this.instances.delete(tenantId);
      this.instances.set(tenantId, cached);
      return cached;
    }
    try {
      const policy = loadPolicySync(this.module);
      const prepared = prepareTenantData(config);
      policy.setData(prepared);
      const instance = { config, policy, prepared };
      this.instances.delete(tenantId);
      this.instances.set(tenantId, instance);
      if (this.instances.size > this.maxInstances) {
        const oldest = this.instances.keys().next().value;
        if (oldest !== undefined) this.instances.delete(oldest);
      }
      return instance;
    } catch (cause) {
      if (cause instanceof InvalidTenantConfigError) {
        // Not transient: retrying cannot help until the configuration is fixed.
        throw new FulcrumError("FailedPrecondition", cause.message, { cause, retry: false });
      }
      throw new FulcrumError("Internal", "policy bundle could not be loaded", { cause });
    }
  }
}
