import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { Db } from "../../db/client.js";
import {
  apiKeys,
  approvals,
  budgets,
  costEvents,
  envelopes,
  events,
  modelPrices,
  policies,
  policyActivations,
  policyVersions,
  tenants,
  tenantTables,
  users,
  webhookDeliveries,
  webhooks,
} from "../../db/schema/index.js";

/**
 * Fixtures of the row-level isolation tests (test/integration/tenant-isolation.test.ts and
 * platform-role-isolation.test.ts, through isolation-database.ts): the
 * seeding of a tenant's rows in every tenant table, and a valid new row per table.
 */

export type TableKey = keyof typeof tenantTables;
export const TABLE_KEYS = Object.keys(tenantTables) as TableKey[];
/** The ids of a tenant's rows, per table. */
export type Ids = Record<TableKey, string[]>;

export const hex64 = () => createHash("sha256").update(randomBytes(16)).digest("hex");
export const later = () => new Date(Date.now() + 3_600_000);
/** A stand-in compiled module (the wasm magic and version) and its SHA-256, as stored. */
export const WASM = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
export const WASM_SHA256 = createHash("sha256").update(WASM).digest("hex");

/**
 * Rows for every tenant table, `n` of some of them so tenants differ in counts too. The
 * ids are chosen here, so the test knows exactly which rows each tenant owns.
 */
export async function seedTenant(db: Db, tenantId: string, n: number): Promise<Ids> {
  const ids: Ids = {
    users: [],
    apiKeys: [],
    policies: [],
    policyVersions: [],
    policyActivations: [],
    budgets: [],
    envelopes: [],
    events: [],
    costEvents: [],
    approvals: [],
    modelPrices: [],
    webhooks: [],
    webhookDeliveries: [],
  };
  const id = (key: TableKey) => {
    const value = randomUUID();
    ids[key].push(value);
    return value;
  };
  await db.insert(tenants).values({ id: tenantId, name: `Tenant ${n}`, slug: `t-${tenantId}` });
  const admins = [];
  for (let i = 0; i < n; i++) {
    admins.push(id("users"));
    await db.insert(users).values({
      id: admins[i],
      tenantId,
      email: `user${i}@t${n}.example`,
      role: i === 0 ? "admin" : "viewer",
    });
  }
  const author = admins[0];
  await db.insert(apiKeys).values({
    id: id("apiKeys"),
    tenantId,
    name: "ci",
    prefix: "fk_live_ab",
    keyHash: hex64(),
    scopes: ["check", "manage"],
    createdBy: author,
    userId: author as string,
  });
  for (let i = 0; i < n; i++) {
    const policyId = id("policies");
    await db.insert(policies).values({
      id: policyId,
      tenantId,
      name: `policy-${i}`,
      createdBy: author,
    });
    await db.insert(policyVersions).values({
      id: id("policyVersions"),
      tenantId,
      policyId,
      version: 1,
      sha256: hex64(),
      sourceKind: "rego",
      regoSource: "package fulcrum.tenant\n\nallow := true\n",
      compileStatus: "COMPILED",
      definition: { rego_source: "package fulcrum.tenant\n\nallow := true\n" },
      wasm: WASM,
      wasmSha256: WASM_SHA256,
      entrypoint: "fulcrum/tenant/allow",
    });
    await db.insert(policyActivations).values({
      id: id("policyActivations"),
      tenantId,
      policyId,
      version: 1,
      kind: "activate",
      activatedBy: author,
    });
  }
  const budgetId = id("budgets");
  await db.insert(budgets).values({ id: budgetId, tenantId, name: "monthly", period: "MONTHLY" });
  const parent = id("envelopes");
  await db
    .insert(envelopes)
    .values({ id: parent, tenantId, workflowId: "wf", executionId: `exec-${parent}`, budgetId });
  const child = id("envelopes");
  await db.insert(envelopes).values({
    id: child,
    tenantId,
    workflowId: "wf",
    executionId: `exec-${child}`,
    parentEnvelopeId: parent,
  });
  for (let i = 0; i < n; i++) {
    await db.insert(events).values({
      id: id("events"),
      tenantId,
      actorType: "user",
      actorId: author,
      action: "policy.created",
      targetType: "policy",
      details: { i },
    });
  }
  await db.insert(costEvents).values({
    id: id("costEvents"),
    tenantId,
    envelopeId: parent,
    budgetId,
    modelId: "gpt-4o",
    inputTokens: 10,
    outputTokens: 5,
    costUsd: "0.001250",
    llmCalls: 1,
    occurredAt: new Date(),
  });
  await db.insert(approvals).values({
    id: id("approvals"),
    tenantId,
    envelopeId: parent,
    policyId: ids.policies[0],
    actionName: "delete_user",
    actionArguments: { user: 42 },
    expiresAt: later(),
  });
  await db.insert(modelPrices).values({
    id: id("modelPrices"),
    tenantId,
    modelId: "gpt-4o",
    inputUsdPerMillion: "2.5",
    outputUsdPerMillion: "10",
  });
  const webhookId = id("webhooks");
  await db.insert(webhooks).values({
    id: webhookId,
    tenantId,
    url: "https://hooks.example/fulcrum",
    eventTypes: ["BUDGET_WARNING"],
    secret: `whsec_${hex64()}`,
  });
  await db.insert(webhookDeliveries).values({
    id: id("webhookDeliveries"),
    tenantId,
    webhookId,
    eventId: randomUUID(),
    eventType: "BUDGET_WARNING",
  });
  return ids;
}

/**
 * A valid new row of `key` belonging to `ownerId` (referencing that tenant's own rows, as
 * `seeded` records them).
 */
export function newRow(
  key: TableKey,
  ownerId: string,
  seeded: ReadonlyMap<string, Ids>,
): Record<string, unknown> {
  const ids = seeded.get(ownerId) as Ids;
  const tenantId = ownerId;
  switch (key) {
    case "users":
      return { tenantId, email: `intruder-${randomUUID()}@x.example`, role: "admin" };
    case "apiKeys":
      return {
        tenantId,
        name: "x",
        prefix: "fk_live_x",
        keyHash: hex64(),
        scopes: ["manage"],
        userId: ids.users[0],
      };
    case "policies":
      return { tenantId, name: `intruder-${randomUUID()}` };
    case "policyVersions":
      return {
        tenantId,
        policyId: ids.policies[0],
        version: 99,
        sha256: hex64(),
        sourceKind: "rego",
        regoSource: "package x",
        compileStatus: "FAILED",
        definition: { rego_source: "package x" },
      };
    case "policyActivations":
      return { tenantId, policyId: ids.policies[0], version: 1, kind: "rollback", reason: "x" };
    case "budgets":
      return { tenantId, name: `intruder-${randomUUID()}`, period: "DAILY" };
    case "envelopes":
      return { tenantId, workflowId: "wf", executionId: randomUUID() };
    case "events":
      return { tenantId, actorType: "system", action: "intrusion", targetType: "tenant" };
    case "costEvents":
      return { tenantId, occurredAt: new Date() };
    case "approvals":
      return { tenantId, actionName: "x", expiresAt: later() };
    case "modelPrices":
      return {
        tenantId,
        modelId: `intruder-${randomUUID()}`,
        inputUsdPerMillion: "1",
        outputUsdPerMillion: "1",
      };
    case "webhooks":
      return { tenantId, url: "https://x.example", secret: `whsec_${hex64()}` };
    case "webhookDeliveries":
      return {
        tenantId,
        webhookId: ids.webhooks[0],
        eventId: randomUUID(),
        eventType: "BUDGET_EXCEEDED",
      };
  }
}
