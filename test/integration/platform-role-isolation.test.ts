import { randomBytes, randomUUID } from "node:crypto";
import { eq, getTableName, inArray, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { tenants, tenantTables, users } from "../../db/schema/index.js";
import { withTenant } from "../../db/tenant-context.js";
import { type DbConnection, expectSqlState, sqlState } from "../harness/fresh-database.js";
import {
  appendOnlyTables,
  attempt,
  type IsolationDatabase,
  idsOf,
  useIsolationDatabase,
} from "../harness/isolation-database.js";
import { type Ids, newRow, TABLE_KEYS } from "../harness/tenant-fixtures.js";

// Row-level security for the platform role fulcrum_platform (TenantService's role:
// fulcrum_app's grants plus `tenants`, migration 0003), connected as the functions do:
// drizzle → Neon Pool → proxy → PostgreSQL. The same fresh, seeded database as
// tenant-isolation.test.ts (test/harness/isolation-database.ts), which checks fulcrum_app.
let app: DbConnection;
let platform: DbConnection;
let seeded: IsolationDatabase["seeded"];
useIsolationDatabase((iso) => {
  ({ app, platform, seeded } = iso);
});

describe("the platform role fulcrum_platform (TenantService), row-level security included", () => {
  it("is a login role without superuser, BYPASSRLS, CREATEDB or CREATEROLE, a member of fulcrum_app only", async () => {
    const { rows } = await platform.pool.query(
      `SELECT current_user AS name, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole,
          rolreplication, rolinherit,
          pg_has_role(current_user, 'fulcrum_app', 'USAGE') AS app_member,
          pg_has_role(current_user, 'fulcrum_auth', 'MEMBER') AS auth_member,
          pg_has_role('fulcrum_app', current_user, 'MEMBER') AS app_is_platform
        FROM pg_roles WHERE rolname = current_user`,
    );
    expect(rows).toEqual([
      {
        name: "fulcrum_platform",
        rolsuper: false,
        rolbypassrls: false,
        rolcreatedb: false,
        rolcreaterole: false,
        rolreplication: false,
        rolinherit: true,
        app_member: true,
        auth_member: false,
        app_is_platform: false,
      },
    ]);
    // Neither it nor the application can become a more powerful role.
    for (const role of ["fulcrum_auth", "postgres"]) {
      await expectSqlState(platform.pool.query(`SET ROLE ${role}`), "42501");
    }
    await expectSqlState(app.pool.query("SET ROLE fulcrum_platform"), "42501");
  });

  it("sees no row of any tenant table without a tenant set, and changes none", async () => {
    const appendOnly = await appendOnlyTables(platform);
    expect([...appendOnly].sort()).toEqual(["events", "policy_activations", "policy_versions"]);
    for (const key of TABLE_KEYS) {
      const table = tenantTables[key] as typeof users;
      const name = getTableName(table);
      expect(await platform.db.select().from(table), name).toEqual([]);
      const touched = await platform.db
        .transaction(async (tx) => {
          const updated = await tx
            .update(table)
            .set({ tenantId: sql`tenant_id` })
            .returning({ id: table.id });
          const deleted = await tx.delete(table).returning({ id: table.id });
          return [...updated, ...deleted];
        })
        .catch((e: unknown) => sqlState(e));
      expect(touched, name).toEqual(appendOnly.has(name) ? "42501" : []);
    }
  });

  it("cannot bypass row-level security: a tenant set shows that tenant's rows only", async () => {
    // row_security = off makes a role without BYPASSRLS fail rather than see everything.
    await expectSqlState(
      platform.db.transaction(async (tx) => {
        await tx.execute(sql`set local row_security = off`);
        return tx.select().from(users);
      }),
      "42501",
    );
    const tenantIds = [...seeded.keys()];
    for (const [tenantId, ids] of seeded) {
      for (const key of TABLE_KEYS) {
        const table = tenantTables[key] as typeof users;
        const rows = await withTenant(platform.db, tenantId, (tx) =>
          tx.select({ id: table.id }).from(table),
        );
        expect(idsOf(rows), `${getTableName(table)} of ${tenantId}`).toEqual([...ids[key]].sort());
      }
    }
    // Writing another tenant's row, or moving one's own there, is refused as for fulcrum_app.
    const [me, victim] = tenantIds as [string, string];
    await expectSqlState(
      withTenant(platform.db, me, (tx) =>
        tx.insert(users).values(newRow("users", victim, seeded) as never),
      ),
      "42501",
    );
    const moved = await attempt(
      me,
      (tx) =>
        tx
          .update(users)
          .set({ tenantId: victim })
          .where(eq(users.id, (seeded.get(me) as Ids).users[0] as string)),
      platform.db,
    );
    expect(moved).toBe("42501");
    const theirs = await attempt(
      me,
      (tx) =>
        tx
          .update(users)
          .set({ displayName: "pwned" })
          .where(inArray(users.id, (seeded.get(victim) as Ids).users))
          .returning({ id: users.id }),
      platform.db,
    );
    expect(theirs).toEqual([]);
  });

  it("reads, creates and updates tenants (which has no RLS), but never deletes one", async () => {
    const rows = await platform.db.select({ id: tenants.id }).from(tenants);
    expect(idsOf(rows)).toEqual([...seeded.keys()].sort());
    const created = await attempt(
      randomUUID(),
      async (tx) => {
        const [row] = await tx
          .insert(tenants)
          .values({ name: "New", slug: `n-${randomBytes(4).toString("hex")}` })
          .returning({ id: tenants.id });
        const renamed = await tx
          .update(tenants)
          .set({ name: "Renamed" })
          .where(eq(tenants.id, row?.id as string))
          .returning({ name: tenants.name });
        return renamed;
      },
      platform.db,
    );
    expect(created).toEqual([{ name: "Renamed" }]);
    await expectSqlState(
      platform.db.delete(tenants).where(eq(tenants.id, [...seeded.keys()][0] as string)),
      "42501",
    );
    // The application role still may not read it at all.
    await expectSqlState(app.db.select().from(tenants), "42501");
  });
});
