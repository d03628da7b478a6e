import { randomUUID } from "node:crypto";
import { eq, getTableName, inArray, sql, TransactionRollbackError } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import {
  apiKeys,
  events,
  policyActivations,
  policyVersions,
  tenants,
  tenantTables,
  users,
} from "../../db/schema/index.js";
import { InvalidTenantIdError, withTenant } from "../../db/tenant-context.js";
import { type DbConnection, expectSqlState } from "../harness/fresh-database.js";
import {
  appendOnlyTables,
  attempt,
  type IsolationDatabase,
  idsOf,
  useIsolationDatabase,
} from "../harness/isolation-database.js";
import { type Ids, newRow, TABLE_KEYS, WASM, WASM_SHA256 } from "../harness/tenant-fixtures.js";

// Row-level tenant isolation as the application role fulcrum_app (NOSUPERUSER
// NOBYPASSRLS), as the functions connect: drizzle → Neon Pool → proxy → PostgreSQL. A fresh
// database with the real migrations, seeded as the owner (postgres, a superuser, so RLS
// does not apply to it) with 3–5 random tenants (test/harness/isolation-database.ts). The
// platform role fulcrum_platform is checked in platform-role-isolation.test.ts.
let owner: DbConnection;
let app: DbConnection;
let seeded: IsolationDatabase["seeded"];
useIsolationDatabase((iso) => {
  ({ owner, app, seeded } = iso);
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
        withTenant(app.db, me, (tx) =>
          tx.insert(table).values(newRow(key, victim, seeded) as never),
        ),
        "42501",
      );
      // The same row for its own tenant is accepted (so the refusal above was RLS, not
      // a bad row); rolled back by throwing, to keep the seeded counts.
      const inserted = await withTenant(app.db, victim, async (tx) => {
        const rows = await tx
          .insert(table)
          .values(newRow(key, victim, seeded) as never)
          .returning({ id: table.id });
        tx.rollback();
        return rows;
      }).catch((e: unknown) => (e instanceof TransactionRollbackError ? "rolled back" : e));
      expect(inserted, getTableName(table)).toBe("rolled back");
    }
  });

  it("updating or deleting another tenant's rows affects 0 rows, and moving a row to it is refused, in every table, for every pair of tenants", async () => {
    const tenantIds = [...seeded.keys()];
    const appendOnly = await appendOnlyTables(app);
    // The grants (0002, 0003): only these are append-only for fulcrum_app.
    expect([...appendOnly].sort()).toEqual(["events", "policy_activations", "policy_versions"]);
    let checks = 0;
    for (const key of TABLE_KEYS) {
      const table = tenantTables[key] as typeof users;
      const name = getTableName(table);
      // Append-only: the privilege is missing, so PostgreSQL refuses before RLS is consulted.
      const refused = appendOnly.has(name);
      for (const me of tenantIds) {
        for (const victim of tenantIds) {
          if (me === victim) continue;
          const theirs = (seeded.get(victim) as Ids)[key];
          const mine = (seeded.get(me) as Ids)[key][0] as string;
          const what = `${name}: ${me} → ${victim}`;
          // USING hides the victim's rows, so UPDATE/DELETE find nothing to change: no error,
          // 0 rows (PostgreSQL does not reveal whether an invisible row exists).
          const updated = await attempt(
            me,
            (tx) =>
              tx
                .update(table)
                .set({ tenantId: sql`tenant_id` })
                .where(inArray(table.id, theirs))
                .returning({ id: table.id }),
            app.db,
          );
          expect(updated, `UPDATE ${what}`).toEqual(refused ? "42501" : []);
          const deleted = await attempt(
            me,
            (tx) => tx.delete(table).where(inArray(table.id, theirs)).returning({ id: table.id }),
            app.db,
          );
          expect(deleted, `DELETE ${what}`).toEqual(refused ? "42501" : []);
          // Rewriting one's own row to belong to the victim fails WITH CHECK (or, for an
          // append-only table, the missing privilege): 42501 either way.
          const moved = await attempt(
            me,
            (tx) =>
              tx
                .update(table)
                .set({ tenantId: victim })
                .where(eq(table.id, mine))
                .returning({ id: table.id }),
            app.db,
          );
          expect(moved, `moving ${what}`).toBe("42501");
          checks += 3;
        }
      }
    }
    expect(checks).toBe(TABLE_KEYS.length * tenantIds.length * (tenantIds.length - 1) * 3);

    // Nothing changed, as the owner sees it: every seeded row is where it was.
    for (const key of TABLE_KEYS) {
      const table = tenantTables[key] as typeof users;
      const rows = await owner.db.select({ id: table.id, tenantId: table.tenantId }).from(table);
      for (const [tenantId, ids] of seeded) {
        expect(
          idsOf(rows.filter((r) => r.tenantId === tenantId)),
          `${getTableName(table)} of ${tenantId}`,
        ).toEqual([...ids[key]].sort());
      }
    }
  });

  it("cannot point at another tenant's row through a foreign key", async () => {
    const [me, victim] = [...seeded.keys()] as [string, string];
    const theirPolicy = seeded.get(victim)?.policies[0];
    // (tenant_id, policy_id) → policies (tenant_id, id): the victim's policy is not "me"'s.
    await expectSqlState(
      withTenant(app.db, me, (tx) =>
        tx.insert(policyVersions).values({
          ...(newRow("policyVersions", me, seeded) as typeof policyVersions.$inferInsert),
          policyId: theirPolicy as string,
        }),
      ),
      "23503",
    );
  });

  it("cannot make a key act as, or an activation point at, another tenant's rows", async () => {
    const [me, victim] = [...seeded.keys()] as [string, string];
    const theirs = seeded.get(victim) as Ids;
    // (tenant_id, user_id) → users (tenant_id, id).
    await expectSqlState(
      withTenant(app.db, me, (tx) =>
        tx.insert(apiKeys).values({
          ...(newRow("apiKeys", me, seeded) as typeof apiKeys.$inferInsert),
          userId: theirs.users[0] as string,
        }),
      ),
      "23503",
    );
    // (tenant_id, policy_id, version) → policy_versions: the victim's policy has a version 1,
    // but not under "me".
    await expectSqlState(
      withTenant(app.db, me, (tx) =>
        tx.insert(policyActivations).values({
          ...(newRow("policyActivations", me, seeded) as typeof policyActivations.$inferInsert),
          policyId: theirs.policies[0] as string,
        }),
      ),
      "23503",
    );
    // …and activated_by → users of the same tenant only.
    await expectSqlState(
      withTenant(app.db, me, (tx) =>
        tx.insert(policyActivations).values({
          ...(newRow("policyActivations", me, seeded) as typeof policyActivations.$inferInsert),
          activatedBy: theirs.users[0] as string,
        }),
      ),
      "23503",
    );
  });

  it("a version's compiled module reads back as the same bytes, and must match its hash", async () => {
    const [tenantId, ids] = [...seeded.entries()][0] as [string, Ids];
    const [row] = await withTenant(app.db, tenantId, (tx) =>
      tx
        .select({ wasm: policyVersions.wasm, sha: policyVersions.wasmSha256 })
        .from(policyVersions)
        .where(eq(policyVersions.id, ids.policyVersions[0] as string)),
    );
    expect(row?.wasm).toBeInstanceOf(Uint8Array);
    expect([...(row?.wasm ?? [])]).toEqual([...WASM]);
    expect(row?.sha).toBe(WASM_SHA256);
    // 23514: wasm_sha256 must be the module's SHA-256.
    await expectSqlState(
      withTenant(app.db, tenantId, (tx) =>
        tx.insert(policyVersions).values({
          ...(newRow("policyVersions", tenantId, seeded) as typeof policyVersions.$inferInsert),
          compileStatus: "COMPILED",
          wasm: WASM,
          wasmSha256: "0".repeat(64),
        }),
      ),
      "23514",
    );
  });

  it("every api key acts as a user of its own tenant", async () => {
    for (const [tenantId, ids] of seeded) {
      const keys = await withTenant(app.db, tenantId, (tx) =>
        tx.select({ userId: apiKeys.userId }).from(apiKeys),
      );
      expect(keys.length).toBe(ids.apiKeys.length);
      for (const key of keys) expect(ids.users).toContain(key.userId);
    }
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

  it("policy_versions, policy_activations and events are append-only: UPDATE and DELETE are refused (42501)", async () => {
    const [tenantId, ids] = [...seeded.entries()][0] as [string, Ids];
    const version = ids.policyVersions[0] as string;
    const event = ids.events[0] as string;
    const activation = ids.policyActivations[0] as string;
    // Whatever the tenant: the privilege is missing, so even one's own row is refused…
    for (const tenant of [tenantId, [...seeded.keys()][1] as string]) {
      await expectSqlState(
        withTenant(app.db, tenant, (tx) =>
          tx
            .update(policyActivations)
            .set({ reason: "rewritten" })
            .where(eq(policyActivations.id, activation)),
        ),
        "42501",
      );
      await expectSqlState(
        withTenant(app.db, tenant, (tx) =>
          tx.delete(policyActivations).where(eq(policyActivations.id, activation)),
        ),
        "42501",
      );
    }
    // …and moving it to another tenant as well.
    await expectSqlState(
      withTenant(app.db, tenantId, (tx) =>
        tx
          .update(policyActivations)
          .set({ tenantId: [...seeded.keys()][1] as string })
          .where(eq(policyActivations.id, activation)),
      ),
      "42501",
    );
    const [kept] = await owner.db
      .select()
      .from(policyActivations)
      .where(eq(policyActivations.id, activation));
    expect(kept?.reason).toBe("");
    expect(kept?.tenantId).toBe(tenantId);
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
