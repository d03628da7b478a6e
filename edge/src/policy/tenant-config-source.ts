import type { TenantConfig } from "../../../core/policy/tenant-config.js";

/**
 * Where the edge finds a tenant's policy configuration (the bundle's `data`).
 * Until per-tenant distribution through Redis lands, the edge serves a static
 * set: the bundled fixtures, or the `TENANT_CONFIGS` variable when set.
 */
export interface TenantConfigSource {
  get(tenantId: string): Promise<TenantConfig | undefined>;
}

export class StaticTenantConfigSource implements TenantConfigSource {
  constructor(private readonly configs: Readonly<Record<string, TenantConfig>>) {}

  async get(tenantId: string): Promise<TenantConfig | undefined> {
    return Object.hasOwn(this.configs, tenantId) ? this.configs[tenantId] : undefined;
  }
}
