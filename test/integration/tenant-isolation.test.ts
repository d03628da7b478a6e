import { createHash, randomBytes, randomUUID } from "node:crypto";
import { join } from "node:path";
import { Client, neonConfig, Pool } from "@neondatabase/serverless";
import { eq, getTableName, sql, TransactionRollbackError } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDb, type Db } from "../../db/client.js";
import { migrate } from "../../db/migrate.js";
import { configureNeonForLocalProxy } from "../../db/neon-local-proxy.js";
import {
  apiKeys,
  approvals,
  budgets,
  costEvents,
  envelopes,
  events,
  policies,
  policyVersions,
  tenants,
  tenantTables,
  users,
} from "../../db/schema/index.js";
import { InvalidTenantIdError, withTenant } from "../../db/tenant-context.js";
import { type PgWsProxy, startPgWsProxy } from "../../scripts/lib/pg-ws-proxy.js";
import { repoRoot } from "../../scripts/services/service.js";

// A fresh database with the real migrations; seeded as the owner (postgres, a superuser,
// so RLS does not apply to it); then read and written as the application role fulcrum_app
// (NOSUPERUSER NOBYPASSRLS), as the functions do: drizzle → Neon Pool → proxy → PostgreSQL.
const PG = inject("pgAddress");
const DATABASE = `fulcrum_iso_${randomBytes(4).toString("hex")}`;

type TableKey = keyof typeof tenantTables;
const TABLE_KEYS = Object.keys(tenantTables) as TableKey[];
type Ids = Record<TableKey, string[]>;

let proxy: PgWsProxy;
let admin: Pool;
let owner: ReturnType<typeof createDb>;
let app: ReturnType<typeof createDb>;
/** tenant id → the ids of its rows, per table. */
const seeded = new Map<string, Ids>();

const hex64 = () => createHash("sha256").update(randomBytes(16)).digest("hex");
const later = () => new Date(Date.now() + 3_600_000);

/**
 * Rows for every tenant table, `n` of some of them so tenants differ in counts too. The
 * ids are chosen here, so the test knows exactly which rows each tenant owns.
 */
async function seedTenant(db: Db, tenantId: string, n: number): Promise<Ids> {
  const ids: Ids = {
    users: [],
    apiKeys: [],
    policies: [],
    policyVersions: [],
    budgets: [],
    envelopes: [],
    events: [],
    costEvents: [],
    approvals: [],
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
      wasmSha256: hex64(),
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
  return ids;
}

/** A valid new row of `key` belonging to `owner` (referencing that tenant's own rows). */
function newRow(key: TableKey, ownerId: string): Record<string, unknown> {
  const ids = seeded.get(ownerId) as Ids;
  const tenantId = ownerId;
  switch (key) {
    case "users":
      return { tenantId, email: `intruder-${randomUUID()}@x.example`, role: "admin" };
    case "apiKeys":
      return { tenantId, name: "x", prefix: "fk_live_x", keyHash: hex64(), scopes: ["manage"] };
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
      };
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
  }
}

/** The SQLSTATE of a driver error, through drizzle's DrizzleQueryError wrapper. */
function sqlState(error: unknown): string | undefined {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause as never) {
    if (typeof e.code === "string") return e.code;
  }
  return undefined;
}

async function expectSqlState(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected SQLSTATE ${code}, but it succeeded`).toBeDefined();
  expect(sqlState(error)).toBe(code);
}

const idsOf = (rows: { id: string }[]) => rows.map((r) => r.id).sort();

beforeAll(async () => {
  proxy = await startPgWsProxy({ port: 0, host: "127.0.0.1", allowedTargets: [PG] });
  configureNeonForLocalProxy(neonConfig, proxy.port);
  admin = new Pool({ connectionString: `postgres://postgres@${PG}/postgres` });
  await admin.query(`CREATE DATABASE ${DATABASE}`);

  const migrator = new Client(`postgres://postgres@${PG}/${DATABASE}`);
  await migrator.connect();
  try {
    await migrate(migrator, join(repoRoot, "db", "migrations"));
  } finally {
    await migrator.end();
  }

  owner = createDb({ connectionString: `postgres://postgres@${PG}/${DATABASE}`, max: 2 });
  const count = 3 + Math.floor(Math.random() * 3); // 3–5 random tenants
  for (let i = 1; i <= count; i++) {
    const tenantId = randomUUID();
    seeded.set(tenantId, await seedTenant(owner.db, tenantId, i));
  }
  // The application role, as the functions connect. max 1: every query and transaction
  // reuses one connection, so anything a transaction left in the session would show.
  app = createDb({
    connectionString: `postgres://fulcrum_app@${PG}/${DATABASE}`,
    localProxyPort: proxy.port,
    max: 1,
  });
}, 60_000);

afterAll(async () => {
  await app?.close();
  await owner?.close();
  if (admin) {
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin.end();
  }
  await proxy?.close();
});

describe("row-level tenant isolation, as fulcrum_app", () => {
  it("connects as a role that is neither superuser nor BYPASSRLS", async () => {
    const { rows } = await app.pool.query(
      "SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    );
    expect(rows).toEqual([{ name: "fulcrum_app", rolsuper: false, rolbypassrls: false }]);
  });

  it("every tenant sees exactly its own rows, in every tenant table", async () => {
    expect(seeded.size).toBeGreaterThanOrEqual(3);
    for (const [tenantId, ids] of seeded) {
      for (const key of TABLE_KEYS) {
        // Every tenant table has `id` and `tenantId`; typed as users for the builder.
        const table = tenantTables[key] as typeof users;
        const rows = await withTenant(app.db, tenantId, (tx) =>
          tx.select({ id: table.id, tenantId: table.tenantId }).from(table),
        );
        expect(idsOf(rows), `${getTableName(table)} of ${tenantId}`).toEqual([...ids[key]].sort());
        expect(rows.every((r) => r.tenantId === tenantId)).toBe(true);
      }
    }
  });

  it("a session with no tenant set sees no row in any tenant table", async () => {
    for (const key of TABLE_KEYS) {
      const table = tenantTables[key] as typeof users;
      // Outside any transaction: the setting was never set on this connection…
      expect(await app.db.select().from(table), getTableName(table)).toEqual([]);
      // …and after withTenant it is gone again (set_config(…, true) is transaction-local;
      // the pool has one connection, so this is the very session withTenant used).
      await withTenant(app.db, [...seeded.keys()][0] as string, async () => {});
      expect(await app.db.select().from(table)).toEqual([]);
      // An explicitly empty setting matches nothing too, instead of failing the uuid cast.
      const rows = await app.db.transaction(async (tx) => {
        await tx.execute(sql`select set_config('fulcrum.current_tenant', '', true)`);
        return tx.select().from(table);
      });
      expect(rows).toEqual([]);
    }
  });

  it("inserting a row of another tenant is refused (42501, WITH CHECK), in every table", async () => {
    const [me, victim] = [...seeded.keys()] as [string, string];
    for (const key of TABLE_KEYS) {
      const table = tenantTables[key] as typeof users;
      await expectSqlState(
        withTenant(app.db, me, (tx) => tx.insert(table).values(newRow(key, victim) as never)),
        "42501",
      );
      // The same row for its own tenant is accepted (so the refusal above was RLS, not
      // a bad row); rolled back by throwing, to keep the seeded counts.
      const inserted = await withTenant(app.db, victim, async (tx) => {
        const rows = await tx
          .insert(table)
          .values(newRow(key, victim) as never)
          .returning({ id: table.id });
        tx.rollback();
        return rows;
      }).catch((e: unknown) => (e instanceof TransactionRollbackError ? "rolled back" : e));
      expect(inserted, getTableName(table)).toBe("rolled back");
    }
  });

  it("updating or deleting another tenant's row affects 0 rows; moving a row to it is refused", async () => {
    const [me, victim] = [...seeded.keys()] as [string, string];
    const theirs = seeded.get(victim)?.users[0] as string;
    const mine = seeded.get(me)?.users[0] as string;

    // USING hides the victim's rows, so UPDATE/DELETE find nothing to change: no error,
    // 0 rows (PostgreSQL does not reveal whether an invisible row exists).
    const updated = await withTenant(app.db, me, (tx) =>
      tx
        .update(users)
        .set({ displayName: "pwned" })
        .where(eq(users.id, theirs))
        .returning({ id: users.id }),
    );
    expect(updated).toEqual([]);
    const deleted = await withTenant(app.db, me, (tx) =>
      tx.delete(users).where(eq(users.id, theirs)).returning({ id: users.id }),
    );
    expect(deleted).toEqual([]);

    // Rewriting one's own row to belong to the victim fails WITH CHECK: 42501.
    await expectSqlState(
      withTenant(app.db, me, (tx) =>
        tx.update(users).set({ tenantId: victim }).where(eq(users.id, mine)),
      ),
      "42501",
    );

    // Nothing changed, as the owner sees it.
    const [row] = await owner.db.select().from(users).where(eq(users.id, theirs));
    expect(row?.displayName).toBe("");
    expect(row?.tenantId).toBe(victim);
    const [own] = await owner.db.select().from(users).where(eq(users.id, mine));
    expect(own?.tenantId).toBe(me);
  });

  it("cannot point at another tenant's row through a foreign key", async () => {
    const [me, victim] = [...seeded.keys()] as [string, string];
    const theirPolicy = seeded.get(victim)?.policies[0];
    // (tenant_id, policy_id) → policies (tenant_id, id): the victim's policy is not "me"'s.
    await expectSqlState(
      withTenant(app.db, me, (tx) =>
        tx.insert(policyVersions).values({
          ...(newRow("policyVersions", me) as typeof policyVersions.$inferInsert),
          policyId: theirPolicy as string,
        }),
      ),
      "23503",
    );
  });

  it("tenants is not readable or writable by fulcrum_app at all (42501)", async () => {
    const tenantId = [...seeded.keys()][0] as string;
    await expectSqlState(app.db.select().from(tenants), "42501");
    await expectSqlState(
      withTenant(app.db, tenantId, (tx) => tx.select().from(tenants)),
      "42501",
    );
    await expectSqlState(
      app.db.insert(tenants).values({ name: "evil", slug: "evil-corp" }),
      "42501",
    );
  });

  it("policy_versions and events are append-only: UPDATE and DELETE are refused (42501)", async () => {
    const [tenantId, ids] = [...seeded.entries()][0] as [string, Ids];
    const version = ids.policyVersions[0] as string;
    const event = ids.events[0] as string;
    await expectSqlState(
      withTenant(app.db, tenantId, (tx) =>
        tx
          .update(policyVersions)
          .set({ regoSource: "package evil" })
          .where(eq(policyVersions.id, version)),
      ),
      "42501",
    );
    await expectSqlState(
      withTenant(app.db, tenantId, (tx) =>
        tx.delete(policyVersions).where(eq(policyVersions.id, version)),
      ),
      "42501",
    );
    await expectSqlState(
      withTenant(app.db, tenantId, (tx) =>
        tx.update(events).set({ action: "rewritten" }).where(eq(events.id, event)),
      ),
      "42501",
    );
    await expectSqlState(
      withTenant(app.db, tenantId, (tx) => tx.delete(events).where(eq(events.id, event))),
      "42501",
    );
    // Inserting is allowed (an append), and the rows are intact.
    const [row] = await owner.db
      .select()
      .from(policyVersions)
      .where(eq(policyVersions.id, version));
    expect(row?.regoSource).toContain("package fulcrum.tenant");
  });

  it("withTenant refuses a tenant id that is not a UUID, before touching the database", async () => {
    for (const bad of [
      "",
      "abc",
      "00000000-0000-0000-0000-00000000000",
      "'; drop table users; --",
    ]) {
      await expect(withTenant(app.db, bad, async () => 1)).rejects.toBeInstanceOf(
        InvalidTenantIdError,
      );
    }
    // A well-formed but unknown tenant simply owns nothing.
    const rows = await withTenant(app.db, randomUUID(), (tx) => tx.select().from(users));
    expect(rows).toEqual([]);
  });
});
