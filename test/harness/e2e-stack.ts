import { randomBytes } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { inject } from "vitest";
import type { Rule } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { ApiKeyScope } from "../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import { ApiKeyService } from "../../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";
import { TenantService } from "../../proto/gen/fulcrum/tenant/v1/tenant_service_pb.js";

/**
 * What an e2e test needs of the stack test/harness/global-setup.ts started: Connect
 * clients of the edge and of the management API, and tenants made the way a customer
 * makes them (TenantService → API keys → policies → activation).
 */
export const edgeUrl = () => inject("edgeUrl");
export const functionsUrl = () => inject("functionsUrl");

/** A Connect client of `service` at `baseUrl` sending `key` as `x-api-key`. */
export function clientOf<S extends DescService>(
  service: S,
  baseUrl: string,
  key: string | undefined,
  timeoutMs = 10_000,
): Client<S> {
  const auth: Interceptor = (next) => (req) => {
    if (key !== undefined) req.header.set("x-api-key", key);
    return next(req);
  };
  return createClient(
    service,
    createConnectTransport({
      baseUrl,
      httpVersion: "1.1",
      interceptors: [auth],
      defaultTimeoutMs: timeoutMs,
    }),
  );
}

/** The edge's PolicyService for `key`. */
export const edge = (key: string | undefined) => clientOf(PolicyService, edgeUrl(), key);

export interface E2eTenant {
  tenantId: string;
  /** The first admin's manage key. */
  adminKey: string;
  policies: Client<typeof PolicyService>;
  keys: Client<typeof ApiKeyService>;
  /** A new key of `scopes` (default check) acting as the admin. */
  newKey(scopes?: ApiKeyScope[]): Promise<{ key: string; keyId: string }>;
  /** Creates a policy from structured rules or Rego and activates version 1. */
  activate(
    definition: { rules: Rule[] } | { rego: string },
    options?: { name?: string; priority?: number; dryRun?: boolean },
  ): Promise<{ policyId: string; version: number }>;
}

/** A new tenant through TenantService, as the platform operator. */
export async function newTenant(label = "e2e"): Promise<E2eTenant> {
  const platform = clientOf(TenantService, functionsUrl(), inject("platformKey"));
  const slug = `${label}-${randomBytes(4).toString("hex")}`;
  const created = await platform.createTenant({
    name: `E2E ${slug}`,
    slug,
    adminEmail: `admin@${slug}.example.com`,
    adminDisplayName: "E2E admin",
  });
  const tenantId = created.tenant?.tenantId ?? "";
  const adminKey = created.secret;
  const policies = clientOf(PolicyService, functionsUrl(), adminKey);
  const keys = clientOf(ApiKeyService, functionsUrl(), adminKey);
  return {
    tenantId,
    adminKey,
    policies,
    keys,
    async newKey(scopes = [ApiKeyScope.CHECK]) {
      const res = await keys.createApiKey({
        name: `e2e ${randomBytes(3).toString("hex")}`,
        scopes,
      });
      return { key: res.secret, keyId: res.apiKey?.keyId ?? "" };
    },
    async activate(definition, options = {}) {
      const name = options.name ?? `e2e-${randomBytes(4).toString("hex")}`;
      const res = await policies.createPolicy({
        policy: {
          name,
          priority: options.priority ?? 0,
          dryRun: options.dryRun ?? false,
          ...("rules" in definition
            ? { rules: definition.rules }
            : { regoSource: definition.rego }),
        },
      });
      const policyId = res.policy?.policyId ?? "";
      await policies.activatePolicyVersion({ policyId, version: 1 });
      return { policyId, version: 1 };
    },
  };
}

/** Polls `probe` every 25 ms until it returns true; the time it took (ms), or throws after `withinMs`. */
export async function timeUntil(probe: () => Promise<boolean>, withinMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await probe()) return performance.now() - started;
    if (performance.now() - started > withinMs) {
      throw new Error(`condition not met within ${withinMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
