import { randomUUID } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, inject } from "vitest";
import { type ApiKeyScope, generateApiKey, type UserRole } from "../../core/auth/api-key.js";
import { apiKeys, tenants, users } from "../../db/schema/index.js";
import { type DbConnection, type FreshDatabase, openFreshDatabase } from "./fresh-database.js";

/**
 * The setup the API-key authentication tests share (api-key-authentication.test.ts and
 * api-key-last-used.test.ts): a fresh database seeded as the owner with an active and a
 * suspended tenant, their users and one key per case (valid, first, revoked, expired, a
 * disabled user's, a suspended tenant's), and fulcrum_app's connection, which calls
 * fulcrum_authenticate_api_key(hash) (migration 0003) with no tenant set.
 */

export interface AuthRow {
  key_id: string;
  tenant_id: string;
  user_id: string;
  scopes: string[];
  role: string;
  created_by: string | null;
}

export interface SeededKey {
  id: string;
  secret: string;
  hash: string;
  tenantId: string;
  userId: string;
  scopes: ApiKeyScope[];
  role: UserRole;
  createdBy: string | null;
}

export interface ApiKeyDatabase {
  readonly db: FreshDatabase;
  /** The owner (a superuser: RLS does not apply to it). */
  readonly owner: DbConnection;
  /** fulcrum_app; max 1: every query reuses one session, so anything left in it would show. */
  readonly app: DbConnection;
  readonly activeTenant: string;
  readonly suspendedTenant: string;
  readonly adminUser: string;
  /** label → the seeded key. */
  readonly keys: Readonly<Record<string, SeededKey>>;
  /** The function, called as fulcrum_app outside any tenant context. */
  authenticate(hash: string | null): Promise<AuthRow[]>;
  /** The key's last_used_at, as the owner reads it. */
  lastUsedAt(key: SeededKey): Promise<Date | null>;
  /** Sets the key's last_used_at to `secondsAgo` before now, or to NULL. */
  setLastUsedAt(key: SeededKey, secondsAgo: number | null): Promise<unknown>;
}

/** A fresh, migrated database with the tenants, users and keys above. */
export async function openApiKeyDatabase(pg: string): Promise<ApiKeyDatabase> {
  const db = await openFreshDatabase(pg, "fulcrum_auth");
  const { owner } = db;
  const activeTenant = randomUUID();
  const suspendedTenant = randomUUID();
  const author = randomUUID();
  const adminUser = randomUUID();
  const disabledUser = randomUUID();
  const suspendedTenantUser = randomUUID();
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

  try {
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
  } catch (error) {
    await db.close();
    throw error;
  }

  const app = db.connectAs("fulcrum_app");
  return {
    db,
    owner,
    app,
    activeTenant,
    suspendedTenant,
    adminUser,
    keys,
    async authenticate(hash) {
      const { rows } = await app.pool.query("SELECT * FROM fulcrum_authenticate_api_key($1)", [
        hash,
      ]);
      return rows as AuthRow[];
    },
    async lastUsedAt(key) {
      const [row] = await owner.db
        .select({ at: apiKeys.lastUsedAt })
        .from(apiKeys)
        .where(eq(apiKeys.id, key.id));
      return row?.at ?? null;
    },
    setLastUsedAt: (key, secondsAgo) =>
      owner.db
        .update(apiKeys)
        .set({
          lastUsedAt:
            secondsAgo === null ? null : sql`now() - make_interval(secs => ${secondsAgo})`,
        })
        .where(eq(apiKeys.id, key.id)),
  };
}

/**
 * Registers the file's beforeAll/afterAll: opens the API-key database on the machine's
 * PostgreSQL before the file's tests (handing it to `onOpen`) and closes it after them.
 */
export function useApiKeyDatabase(onOpen: (auth: ApiKeyDatabase) => void): void {
  let auth: ApiKeyDatabase | undefined;
  beforeAll(async () => {
    auth = await openApiKeyDatabase(inject("pgAddress"));
    onOpen(auth);
  }, 60_000);
  afterAll(async () => {
    await auth?.db.close();
  });
}
