import type { TenantConfig } from "../../core/policy/tenant-config.js";
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

/** Parsed once per isolate at the entry point; nothing else reads `env`. */
export function parseEdgeConfig(env: Env): EdgeConfig {
  const environment = env.ENVIRONMENT?.trim() || "development";
  if (env.TENANT_CONFIGS === undefined || env.TENANT_CONFIGS === "") {
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
  for (const [tenantId, config] of Object.entries(parsed)) {
    const policies = (config as { policies?: unknown } | null)?.policies;
    if (typeof policies !== "object" || policies === null || Array.isArray(policies)) {
      throw new BadEnvironmentError(`TENANT_CONFIGS["${tenantId}"].policies must be an object`);
    }
  }
  return {
    environment,
    tenantConfigs: parsed as Record<string, TenantConfig>,
    tenantConfigOrigin: "TENANT_CONFIGS",
  };
}
