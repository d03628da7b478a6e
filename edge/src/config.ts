import type { TenantConfig } from "../../core/policy/tenant-config.js";
import {
  type ConfigProblem,
  validateTenantConfig,
} from "../../core/policy/validate-tenant-config.js";
import fixtureTenants from "../../policies/fixtures/tenants.json";

/** The Worker's bindings, as declared in wrangler.toml. */
export interface Env {
  /** `development`, `staging`, `production`: reported by /healthz. */
  ENVIRONMENT?: string;
  /**
   * Tenant configurations as JSON (`{ "<tenant id>": { "policies": { … } } }`).
   * When unset, the fixtures in policies/fixtures/tenants.json are served.
   */
  TENANT_CONFIGS?: string | Record<string, unknown>;
}

export interface EdgeConfig {
  environment: string;
  tenantConfigs: Record<string, TenantConfig>;
  tenantConfigOrigin: "fixtures" | "TENANT_CONFIGS";
}

export class BadEnvironmentError extends Error {
  override readonly name = "BadEnvironmentError";
}

/** How many problems a BadEnvironmentError lists. */
const SHOWN_PROBLEMS = 5;

/**
 * Every tenant's configuration must validate strictly (validateTenantConfig):
 * a mistake in a policy must stop the Worker at startup, not turn a DENY into
 * an ALLOW at request time. `tenant_id`, when set, must be the tenant's key.
 */
function validateTenants(configs: Record<string, unknown>, origin: string): void {
  const problems: string[] = [];
  for (const [tenantId, config] of Object.entries(configs)) {
    const at = `${origin}[${JSON.stringify(tenantId)}]`;
    const found: ConfigProblem[] = validateTenantConfig(config);
    const declared = (config as { tenant_id?: unknown } | null)?.tenant_id;
    if (typeof declared === "string" && declared !== "" && declared !== tenantId) {
      found.push({ path: "tenant_id", message: `"${declared}" is not the tenant's key` });
    }
    for (const p of found) problems.push(`${at}${p.path === "" ? "" : "."}${p.path}: ${p.message}`);
  }
  if (problems.length === 0) return;
  const more = problems.length - SHOWN_PROBLEMS;
  throw new BadEnvironmentError(
    `invalid tenant configuration: ${problems.slice(0, SHOWN_PROBLEMS).join("; ")}${more > 0 ? ` (and ${more} more)` : ""}`,
  );
}

/** Parsed once per isolate at the entry point; nothing else reads `env`. */
export function parseEdgeConfig(env: Env): EdgeConfig {
  const environment = env.ENVIRONMENT?.trim() || "development";
  if (env.TENANT_CONFIGS === undefined || env.TENANT_CONFIGS === "") {
    validateTenants(fixtureTenants, "fixtures");
    return {
      environment,
      tenantConfigs: fixtureTenants as unknown as Record<string, TenantConfig>,
      tenantConfigOrigin: "fixtures",
    };
  }
  let parsed: unknown = env.TENANT_CONFIGS;
  if (typeof parsed === "string") {
    try {
      parsed = JSON.parse(parsed);
    } catch {
      throw new BadEnvironmentError("TENANT_CONFIGS is not valid JSON");
    }
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new BadEnvironmentError("TENANT_CONFIGS must be a JSON object keyed by tenant id");
  }
  validateTenants(parsed as Record<string, unknown>, "TENANT_CONFIGS");
  return {
    environment,
    tenantConfigs: parsed as Record<string, TenantConfig>,
    tenantConfigOrigin: "TENANT_CONFIGS",
  };
}
