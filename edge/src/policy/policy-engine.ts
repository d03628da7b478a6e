import type { LoadedPolicy } from "@open-policy-agent/opa-wasm";
import * as opaWasm from "@open-policy-agent/opa-wasm";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { prepareTenantData } from "../../../core/policy/prepare-tenant-data.js";
import type {
  DecisionInput,
  DecisionOutput,
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
   * Wall time of the wasm evaluation alone. Deployed Workers advance the clock
   * only across I/O (a Spectre mitigation), so there it reads 0 for a pure
   * in-memory evaluation; `npm run bench:policy` measures the real figure.
   */
  durationMs: number;
}

interface TenantInstance {
  config: TenantConfig;
  policy: LoadedPolicy;
}

/**
 * Evaluates the governance bundle for a tenant. The wasm module is compiled
 * once (imported by the Worker as a compiled module); each tenant gets its own
 * instance with its configuration loaded as `data` once, because `setData`
 * costs far more than an evaluation. An instance is rebuilt when the tenant's
 * configuration object changes.
 */
export class PolicyEngine {
  private readonly instances = new Map<string, TenantInstance>();

  constructor(private readonly module: WebAssembly.Module) {}

  evaluate(tenantId: string, config: TenantConfig, input: DecisionInput): TimedDecision {
    const policy = this.instanceFor(tenantId, config);
    let results: unknown;
    // Only the evaluation is timed; loading a tenant's instance is not.
    const started = performance.now();
    try {
      results = policy.evaluate(input, DECISION_ENTRYPOINT);
    } catch (cause) {
      // A trap or an unimplemented builtin: never an ALLOW, never the raw text.
      this.instances.delete(tenantId);
      throw new FulcrumError("Internal", "policy evaluation failed", { cause });
    }
    const durationMs = performance.now() - started;
    const output = Array.isArray(results) ? results[0]?.result : undefined;
    if (!isDecisionOutput(output)) {
      throw new FulcrumError("Internal", "policy evaluation produced no decision", {
        cause: new Error(`unexpected result: ${JSON.stringify(results)?.slice(0, 200)}`),
      });
    }
    return { output, durationMs };
  }

  private instanceFor(tenantId: string, config: TenantConfig): LoadedPolicy {
    const cached = this.instances.get(tenantId);
    if (cached && cached.config === config) return cached.policy;
    try {
      const policy = loadPolicySync(this.module);
      policy.setData(prepareTenantData(config));
      this.instances.set(tenantId, { config, policy });
      return policy;
    } catch (cause) {
      throw new FulcrumError("Internal", "policy bundle could not be loaded", { cause });
    }
  }
}

function isDecisionOutput(value: unknown): value is DecisionOutput {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { decision?: unknown }).decision === "string" &&
    Array.isArray((value as { results?: unknown }).results)
  );
}
