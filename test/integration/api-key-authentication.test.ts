import { randomBytes, randomUUID } from "node:crypto";
import { join } from "node:path";
import { Client, neonConfig, Pool } from "@neondatabase/serverless";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type ApiKeyScope, generateApiKey, type UserRole } from "../../core/auth/api-key.js";
import { createDb } from "../../db/client.js";
import { migrate } from "../../db/migrate.js";
import { configureNeonForLocalProxy } from "../../db/neon-local-proxy.js";
import { apiKeys, tenants, users } from "../../db/schema/index.js";
import { withTenant } from "../../db/tenant-context.js";
import { type PgWsProxy, startPgWsProxy } from "../../scripts/lib/pg-ws-proxy.js";
import { repoRoot } from "../../scripts/services/service.js";
import { dropTempDatabase } from "../harness/temp-database.js";

// API keys are authenticated before the tenant is known, through the one cross-tenant read
// fulcrum_app may make: fulcrum_authenticate_api_key(hash) (migration 0003), a SECURITY
// DEFINER function running as the NOLOGIN role fulcrum_auth. Called here as the application
// connects: fulcrum_app, drizzle/Neon Pool → proxy → PostgreSQL, with no tenant set.
const PG = inject("pgAddress");
const DATABASE = `fulcrum_auth_${randomBytes(4).toString("hex")}`;

let proxy: PgWsProxy;
let admin: Pool;
let owner: ReturnType<typeof createDb>;
let app: ReturnType<typeof createDb>;

interface AuthRow {
  key_id: string;
  tenant_id: string;
  user_id: string;
  scopes: string[];
  role: string;
  created_by: string | null;
}

/** The function, called as fulcrum_app outside any tenant context. */
async function authenticate(hash: string | null): Promise<AuthRow[]> {
  const { rows } = await app.pool.query("SELECT * FROM fulcrum_authenticate_api_key($1)", [hash]);
  return rows as AuthRow[];
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

const activeTenant = randomUUID();
const suspendedTenant = randomUUID();
const author = randomUUID();
const adminUser = randomUUID();
const disabledUser = randomUUID();
const suspendedTenantUser = randomUUID();

interface SeededKey {
  id: string;
  secret: string;
  hash: string;
  tenantId: string;
  userId: string;
  scopes: ApiKeyScope[];
  role: UserRole;
  createdBy: string | null;
}
const keys: Record<string, SeededKey> = {};

async function seedKey(
  label: string,
  tenantId: string,
  userId: string,
  role: UserRole,
  scopes: ApiKeyScope[],
  extra: Partial<typeof apiKeys.$inferInsert> = {},
): Promise<void> {
  const { secret, prefix, hash } = await generateApiKey();
  const id = randomUUID();
  await owner.db.insert(apiKeys).values({
    id,
    tenantId,
    userId,
    name: label,
    prefix,
    keyHash: hash,
    scopes,
    createdBy: userId,
    ...extra,
  });
  const createdBy = extra.createdBy === undefined ? userId : extra.createdBy;
  keys[label] = { id, secret, hash, tenantId, userId, scopes, role, createdBy };
}

const lastUsedAt = async (key: SeededKey): Promise<Date | null> => {
  const [row] = await owner.db
    .select({ at: apiKeys.lastUsedAt })
    .from(apiKeys)
    .where(eq(apiKeys.id, key.id));
  return row?.at ?? null;
};

const setLastUsedAt = (key: SeededKey, secondsAgo: number | null) =>
  owner.db
    .update(apiKeys)
    .set({
      lastUsedAt: secondsAgo === null ? null : sql`now() - make_interval(secs => ${secondsAgo})`,
    })
    .where(eq(apiKeys.id, key.id));

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

  // Seeded as the owner (a superuser: RLS does not apply to it).
  owner = createDb({ connectionString: `postgres://postgres@${PG}/${DATABASE}`, max: 2 });
  await owner.db.insert(tenants).values([
    { id: activeTenant, name: "Active", slug: `a-${activeTenant}` },
    { id: suspendedTenant, name: "Suspended", slug: `s-${suspendedTenant}`, status: "suspended" },
  ]);
  await owner.db.insert(users).values([
    { id: author, tenantId: activeTenant, email: "author@a.example", role: "policy_author" },
    { id: adminUser, tenantId: activeTenant, email: "admin@a.example", role: "admin" },
    {
      id: disabledUser,
      tenantId: activeTenant,
      email: "gone@a.example",
      role: "admin",
      disabledAt: new Date(),
    },
    { id: suspendedTenantUser, tenantId: suspendedTenant, email: "x@s.example", role: "admin" },
  ]);
  // Made by the admin to act as the author: created_by is not the key's user.
  await seedKey("check", activeTenant, author, "policy_author", ["check"], {
    createdBy: adminUser,
  });
  // A tenant's first key, made by the platform operator: no creator.
  await seedKey("first", activeTenant, adminUser, "admin", ["check", "manage"], {
    createdBy: null,
  });
  await seedKey("manage", activeTenant, adminUser, "admin", ["check", "manage"], {
    expiresAt: new Date(Date.now() + 3_600_000),
  });
  await seedKey("revoked", activeTenant, adminUser, "admin", ["manage"], {
    revokedAt: new Date(),
  });
  await seedKey("expired", activeTenant, adminUser, "admin", ["manage"], {
    expiresAt: new Date(Date.now() - 1_000),
  });
  await seedKey("disabledUser", activeTenant, disabledUser, "admin", ["manage"]);
  await seedKey("suspendedTenant", suspendedTenant, suspendedTenantUser, "admin", ["manage"]);

  // max 1: every query reuses one session, so anything left in it would show.
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
    await dropTempDatabase(admin, DATABASE);
    await admin.end();
  }
  await proxy?.close();
});

describe("fulcrum_authenticate_api_key, called as fulcrum_app with no tenant set", () => {
  it("runs as fulcrum_app, outside any tenant", async () => {
    const { rows } = await app.pool.query(
      "SELECT current_user AS name, current_setting('fulcrum.current_tenant', true) AS tenant",
    );
    expect(rows).toEqual([{ name: "fulcrum_app", tenant: null }]);
  });

  it("returns the key's id, tenant, user, scopes, the user's role and its creator for a valid key", async () => {
    for (const label of ["check", "manage", "first"]) {
      const key = keys[label] as SeededKey;
      expect(await authenticate(key.hash), label).toEqual([
        {
          key_id: key.id,
          tenant_id: key.tenantId,
          user_id: key.userId,
          scopes: key.scopes,
          role: key.role,
          created_by: key.createdBy,
        },
      ]);
    }
  });

  it("returns nothing for an unknown hash, a malformed one, an empty one or NULL", async () => {
    const { hash: unknown } = await generateApiKey();
    for (const hash of [unknown, "garbage", "", "%", (keys.check as SeededKey).secret, null]) {
      expect(await authenticate(hash), String(hash)).toEqual([]);
    }
  });

  it("returns nothing for a revoked or expired key, a disabled user's, a suspended tenant's", async () => {
    for (const label of ["revoked", "expired", "disabledUser", "suspendedTenant"]) {
      expect(await authenticate((keys[label] as SeededKey).hash), label).toEqual([]);
    }
  });

  it("follows changes at once: revoking a key, disabling its user, suspending its tenant", async () => {
    const key = keys.check as SeededKey;
    const changes = [
      [apiKeys, { revokedAt: new Date() }, { revokedAt: null }, apiKeys.id, key.id],
      [users, { disabledAt: new Date() }, { disabledAt: null }, users.id, key.userId],
      [tenants, { status: "suspended" }, { status: "active" }, tenants.id, key.tenantId],
    ] as const;
    for (const [table, off, on, idColumn, id] of changes) {
      await owner.db
        .update(table)
        .set(off as never)
        .where(eq(idColumn, id));
      expect(await authenticate(key.hash)).toEqual([]);
      await owner.db
        .update(table)
        .set(on as never)
        .where(eq(idColumn, id));
      expect(await authenticate(key.hash)).toHaveLength(1);
    }
  });

  it("is the only way: fulcrum_app still sees no key, user or tenant without a tenant", async () => {
    expect(await app.db.select().from(apiKeys)).toEqual([]);
    expect(await app.db.select().from(users)).toEqual([]);
    const { rows } = await app.pool.query("SELECT id FROM api_keys WHERE key_hash = $1", [
      (keys.check as SeededKey).hash,
    ]);
    expect(rows).toEqual([]);
    await expectSqlState(app.db.select().from(tenants), "42501");
    // …nor through fulcrum_auth's UPDATE policy: no row is visible, so none is touched.
    const touched = await app.db
      .update(apiKeys)
      .set({ lastUsedAt: new Date() })
      .returning({ id: apiKeys.id });
    expect(touched).toEqual([]);
    // With a tenant set, its own keys only, as before.
    const other = await withTenant(app.db, suspendedTenant, (tx) =>
      tx.select({ id: apiKeys.id }).from(apiKeys),
    );
    expect(other).toEqual([{ id: (keys.suspendedTenant as SeededKey).id }]);
  });

  it("fulcrum_app cannot become fulcrum_auth, and nobody else may call the function", async () => {
    await expectSqlState(app.pool.query("SET ROLE fulcrum_auth"), "42501");
    const { rows } = await app.pool.query(
      `SELECT r.rolcanlogin, r.rolsuper, r.rolbypassrls,
          pg_has_role('fulcrum_app', 'fulcrum_auth', 'MEMBER') AS app_is_member,
          has_function_privilege('public', 'fulcrum_authenticate_api_key(text)', 'EXECUTE')
            AS public_may_execute,
          has_function_privilege('fulcrum_app', 'fulcrum_authenticate_api_key(text)', 'EXECUTE')
            AS app_may_execute,
          p.prosecdef AS security_definer, p.proowner::regrole::text AS owner, p.proconfig
        FROM pg_roles r, pg_proc p
        WHERE r.rolname = 'fulcrum_auth' AND p.proname = 'fulcrum_authenticate_api_key'`,
    );
    expect(rows).toEqual([
      {
        rolcanlogin: false,
        rolsuper: false,
        rolbypassrls: false,
        app_is_member: false,
        public_may_execute: false,
        app_may_execute: true,
        security_definer: true,
        owner: "fulcrum_auth",
        proconfig: ["search_path=pg_catalog, public"],
      },
    ]);
  });

  it("cannot be fooled by temporary tables shadowing the real ones", async () => {
    // fulcrum_app may create temporary tables, and pg_temp is searched first for
    // unqualified names: the function names its tables with their schema.
    const forged = await generateApiKey();
    const client = await app.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query(
        `CREATE TEMP TABLE api_keys ON COMMIT DROP AS
           SELECT $1::uuid AS id, $2::uuid AS tenant_id, $3::uuid AS user_id,
             ARRAY['manage']::text[] AS scopes, $4::text AS key_hash,
             NULL::timestamptz AS revoked_at, NULL::timestamptz AS expires_at,
             NULL::timestamptz AS last_used_at`,
        [randomUUID(), activeTenant, adminUser, forged.hash],
      );
      const { rows } = await client.query("SELECT * FROM fulcrum_authenticate_api_key($1)", [
        forged.hash,
      ]);
      expect(rows).toEqual([]);
    } finally {
      await client.query("ROLLBACK");
      client.release();
    }
  });
});

describe("last_used_at", () => {
  it("is set on first use, then at most once a minute", async () => {
    const key = keys.manage as SeededKey;
    await setLastUsedAt(key, null);
    await authenticate(key.hash);
    const first = await lastUsedAt(key);
    expect(first).toBeInstanceOf(Date);
    expect(Math.abs(Date.now() - (first as Date).getTime())).toBeLessThan(60_000);

    // Used again within the minute: unchanged.
    await authenticate(key.hash);
    await authenticate(key.hash);
    expect(await lastUsedAt(key)).toEqual(first);

    // 30 s ago: still unchanged.
    await setLastUsedAt(key, 30);
    const recent = await lastUsedAt(key);
    await authenticate(key.hash);
    expect(await lastUsedAt(key)).toEqual(recent);

    // 61 s ago: refreshed to now.
    await setLastUsedAt(key, 61);
    const stale = (await lastUsedAt(key)) as Date;
    await authenticate(key.hash);
    const refreshed = (await lastUsedAt(key)) as Date;
    expect(refreshed.getTime() - stale.getTime()).toBeGreaterThanOrEqual(60_000);
  });

  it("is not touched for a key the function refuses", async () => {
    for (const label of ["revoked", "expired", "disabledUser", "suspendedTenant"]) {
      await authenticate((keys[label] as SeededKey).hash);
      expect(await lastUsedAt(keys[label] as SeededKey), label).toBeNull();
    }
  });

  it("is left alone, without failing, in a read-only transaction", async () => {
    const key = keys.check as SeededKey;
    await setLastUsedAt(key, null);
    const client = await app.pool.connect();
    try {
      await client.query("BEGIN READ ONLY");
      const { rows } = await client.query("SELECT * FROM fulcrum_authenticate_api_key($1)", [
        key.hash,
      ]);
      expect(rows.map((r) => r.key_id)).toEqual([key.id]);
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    expect(await lastUsedAt(key)).toBeNull();
  });

  it("never waits for a key row another transaction holds locked", async () => {
    const key = keys.check as SeededKey;
    await setLastUsedAt(key, null);
    const locker = await owner.pool.connect();
    try {
      await locker.query("BEGIN");
      await locker.query("SELECT id FROM api_keys WHERE id = $1 FOR UPDATE", [key.id]);
      // Answers (the touch is skipped) instead of blocking until the lock is released; were
      // it to wait, lock_timeout would fail it (55P03) after 2 s instead of hanging the test.
      const client = await app.pool.connect();
      try {
        await client.query("BEGIN");
        await client.query("SET LOCAL lock_timeout = '2s'");
        const { rows } = await client.query("SELECT * FROM fulcrum_authenticate_api_key($1)", [
          key.hash,
        ]);
        expect(rows.map((r) => r.key_id)).toEqual([key.id]);
        await client.query("COMMIT");
      } finally {
        await client.query("ROLLBACK").catch(() => undefined);
        client.release();
        await locker.query("ROLLBACK");
      }
    } finally {
      locker.release();
    }
    expect(await lastUsedAt(key)).toBeNull();
    await authenticate(key.hash);
    expect(await lastUsedAt(key)).toBeInstanceOf(Date);
  });
});
