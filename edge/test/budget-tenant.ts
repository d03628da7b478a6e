/**
 * A fresh tenant for a workerd test that changes tenant-wide state (budgets, approvals):
 * a `check` key and a copy of the seeded tenant's published bundle (same fixtures),
 * written through the tier's Upstash REST server exactly as the control plane lays
 * them out, so tests running beside it on the seeded tenant are not disturbed.
 */
import { Redis } from "@upstash/redis";
import { inject } from "vitest";
import { generateApiKey } from "../../core/auth/api-key.js";
import type { BudgetDef, BudgetSet } from "../../core/budget/budget-keys.js";
import { budgetKeysIn, type EnvelopeRecord } from "../../core/budget/budget-keys.js";
import type { ApiKeyRecord } from "../../core/distribution/key-records.js";
import { policyKeysIn } from "../../core/distribution/policy-keys.js";
import { seed } from "./seed.js";

export function testRedis(): Redis {
  const { restUrl, restToken } = inject("workerdRedis");
  return new Redis({ url: restUrl, token: restToken, automaticDeserialization: false });
}

export const namespace = () => inject("workerdRedis").namespace;
export const budgetKeys = () => budgetKeysIn(namespace());

let tenants = 0;

/** A new tenant with the seeded bundle and a check key; returns its id and key. */
export async function freshTenant(label: string): Promise<{ tenantId: string; key: string }> {
  const redis = testRedis();
  const keys = policyKeysIn(namespace());
  const source = seed();
  const tenantId = `${label}-${Date.now().toString(36)}-${tenants++}`;
  const key = await generateApiKey();
  const record: ApiKeyRecord = {
    key_id: `key-${tenantId}`,
    tenant_id: tenantId,
    user_id: `user-${tenantId}`,
    scopes: ["check"],
    role: "admin",
  };
  const p = redis.multi();
  p.set(keys.apiKey(key.hash), JSON.stringify(record));
  for (const policy of Object.values(source.policies)) {
    const meta = await redis.get<string>(keys.version(source.tenantId, policy.id, policy.version));
    const pointer = await redis.get<string>(keys.pointer(source.tenantId, policy.id));
    if (!meta || !pointer) throw new Error(`the seeded policy ${policy.id} is not in Redis`);
    p.set(
      keys.version(tenantId, policy.id, policy.version),
      JSON.stringify({ ...JSON.parse(meta), tenant_id: tenantId }),
    );
    p.set(keys.pointer(tenantId, policy.id), pointer);
    p.hset(keys.activeSet(tenantId), { [policy.id]: policy.version });
  }
  p.incr(keys.generation(tenantId));
  await p.exec();
  return { tenantId, key: key.secret };
}

/** A budget definition with test defaults (tenant scope, INFINITE, thresholds 80/100). */
export function budget(
  id: string,
  overrides: Partial<BudgetDef> & Pick<BudgetDef, "limits">,
): BudgetDef {
  return {
    id,
    name: `Budget ${id}`,
    scope: "tenant",
    period: "INFINITE",
    anchorMs: 0,
    thresholds: [80, 100],
    suspended: false,
    ...overrides,
  };
}

/** Publishes the tenant's BudgetSet (as functions would). */
export async function publishBudgets(tenantId: string, budgets: BudgetDef[]): Promise<void> {
  const set: BudgetSet = { version: Date.now(), budgets, prices: {}, fallback: [3, 15] };
  await testRedis().set(budgetKeys().budgetSet(tenantId), JSON.stringify(set));
}

/** Writes an EnvelopeRecord (as EnvelopeService would). */
export async function publishEnvelope(
  tenantId: string,
  envelope: Partial<EnvelopeRecord> & Pick<EnvelopeRecord, "id">,
): Promise<void> {
  const record: EnvelopeRecord = {
    status: "RUNNING",
    workflowId: "",
    ancestors: [],
    limits: {},
    allowedModels: [],
    allowedTools: [],
    updatedAtMs: Date.now(),
    ...envelope,
  };
  await testRedis().set(budgetKeys().envelope(tenantId, envelope.id), JSON.stringify(record));
}

/** The edge caches a tenant's BudgetSet for 500 ms: a change is seen after this. */
export const afterRefresh = () => new Promise((resolve) => setTimeout(resolve, 600));
