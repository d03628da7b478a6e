import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { generateApiKey } from "../../core/auth/api-key.js";
import { apiKeys, tenants, users } from "../../db/schema/index.js";
import { withTenant } from "../../db/tenant-context.js";
import {
  type ApiKeyDatabase,
  type SeededKey,
  useApiKeyDatabase,
} from "../harness/api-key-database.js";
import { type DbConnection, expectSqlState } from "../harness/fresh-database.js";

// API keys are authenticated before the tenant is known, through the one cross-tenant read
// fulcrum_app may make: fulcrum_authenticate_api_key(hash) (migration 0003), a SECURITY
// DEFINER function running as the NOLOGIN role fulcrum_auth. Called here as the application
// connects: fulcrum_app, drizzle/Neon Pool → proxy → PostgreSQL, with no tenant set, in a
// fresh database seeded by test/harness/api-key-database.ts. What the function returns and
// who may call it; its last_used_at bookkeeping is in api-key-last-used.test.ts.
let auth: ApiKeyDatabase;
let owner: DbConnection;
let app: DbConnection;
let keys: ApiKeyDatabase["keys"];
let activeTenant: string;
let suspendedTenant: string;
let adminUser: string;
const authenticate = (hash: string | null) => auth.authenticate(hash);
useApiKeyDatabase((opened) => {
  auth = opened;
  ({ owner, app, keys, activeTenant, suspendedTenant, adminUser } = opened);
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
