/**
 * TenantService: the platform operator's API (the auth interceptor admits only the
 * platform key here). `tenants` is not granted to the application role, so every call
 * goes through `deps.platformDb`, connected as `fulcrum_platform` (migration 0003): the
 * application's grants plus SELECT/INSERT/UPDATE on `tenants`, no superuser, no
 * BYPASSRLS. Row-level security applies to it on every tenant table, so writes of a
 * tenant's users, keys and audit rows run inside `inTenant(platformDb, tenantId, …)`,
 * which sets `fulcrum.current_tenant` as every tenant-scoped write does.
 *
 * After the commit, the edge's key records follow (tenancy/key-distribution.ts): the
 * first admin key's record is written on CreateTenant; an UpdateTenant naming `status`
 * deletes every record of a suspended tenant and rewrites the usable keys' records of an
 * active one (also when the status did not change, so repeating it repairs a failure).
 */
import type { ServiceImpl } from "@connectrpc/connect";
import { and, asc, eq, sql } from "drizzle-orm";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { Db } from "../../../db/client.js";
import { toDatabaseError } from "../../../db/database-errors.js";
import { apiKeys, tenants, users } from "../../../db/schema/index.js";
import type { TenantService } from "../../../proto/gen/fulcrum/tenant/v1/tenant_service_pb.js";
import { recordAudit } from "../audit/audit-trail.js";
import type { Principal } from "../auth/principal.js";
import { inTenant, type Tx } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { afterCursor, cursorColumn, keysetPage } from "../pagination/page-token.js";
import { apiKeyAuditDetails, insertApiKey, toApiKeyProto } from "../tenancy/api-key-rows.js";
import { requireUuid } from "../tenancy/ids.js";
import {
  keySyncFor,
  NO_KEY_CHANGES,
  publishKeySync,
  stageKeySync,
} from "../tenancy/key-distribution.js";
import { type TenantRow, tenantStatusFromProto, toTenantProto } from "../tenancy/tenant-rows.js";
import { normaliseEmail, toUserProto } from "../tenancy/user-rows.js";

const PLATFORM: Principal = { kind: "platform_admin" };
const NOT_CONFIGURED = "the tenant service is not configured (DATABASE_PLATFORM_URL)";

export function tenantService(deps: FunctionsDeps): Partial<ServiceImpl<typeof TenantService>> {
  const platformDb = (): Db => {
    if (!deps.platformDb) throw new FulcrumError("FailedPrecondition", NOT_CONFIGURED);
    return deps.platformDb;
  };

  /** A read outside any tenant (tenants has no RLS), with database errors translated. */
  async function read<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    const db = platformDb();
    try {
      return await fn(db);
    } catch (error) {
      throw toDatabaseError(error);
    }
  }

  async function loadTenant(id: string): Promise<TenantRow> {
    const [row] = await read((db) => db.select().from(tenants).where(eq(tenants.id, id)));
    if (!row) throw new FulcrumError("NotFound", `tenant ${id} not found`);
    return row;
  }

  return {
    /**
     * The tenant, its first admin and a check+manage key for that admin, with their
     * audit rows, in one transaction: a failure (a taken slug) leaves nothing behind.
     */
    async createTenant(req) {
      const db = platformDb();
      const tenantId = crypto.randomUUID();
      const email = normaliseEmail(req.adminEmail);
      const created = await inTenant(
        db,
        tenantId,
        async (tx) => {
          const [tenant] = await tx
            .insert(tenants)
            .values({ id: tenantId, name: req.name, slug: req.slug })
            .returning();
          const [user] = await tx
            .insert(users)
            .values({ tenantId, email, displayName: req.adminDisplayName, role: "admin" })
            .returning();
          if (!tenant || !user) throw new Error("insert returned no row");
          const key = await insertApiKey(tx, {
            tenantId,
            userId: user.id,
            name: "initial admin key",
            scopes: ["check", "manage"],
            createdBy: null,
            expiresAt: null,
          });
          await recordAudit(tx, tenantId, PLATFORM, {
            action: "tenant.created",
            targetType: "tenant",
            targetId: tenantId,
            details: { name: tenant.name, slug: tenant.slug },
          });
          await recordAudit(tx, tenantId, PLATFORM, {
            action: "user.created",
            targetType: "user",
            targetId: user.id,
            details: { email: user.email, user_role: user.role },
          });
          await recordAudit(tx, tenantId, PLATFORM, {
            action: "api_key.created",
            targetType: "api_key",
            targetId: key.row.id,
            details: apiKeyAuditDetails(key.row),
          });
          // Before the commit: the first admin's key must work at the edge when its
          // secret is shown (once); if Redis is down, nothing is created.
          await stageKeySync(deps, await keySyncFor(tx, eq(apiKeys.id, key.row.id)), {
            newKeys: true,
          });
          return {
            tenant: toTenantProto(tenant),
            adminUser: toUserProto(user),
            apiKey: toApiKeyProto(key.row),
            secret: key.secret,
          };
        },
        { unique: { tenants_slug_key: `a tenant with slug "${req.slug}" already exists` } },
      );
      return created;
    },

    async getTenant(req) {
      return { tenant: toTenantProto(await loadTenant(requireUuid("tenant_id", req.tenantId))) };
    },

    /** Oldest first; `status` UNSPECIFIED lists every status. */
    async listTenants(req) {
      const status = tenantStatusFromProto(req.status);
      const scope = `tenants?status=${status ?? ""}`;
      const page = await keysetPage(scope, req, (cursor, limit) =>
        read((db) =>
          db
            .select({ row: tenants, cursor: cursorColumn(tenants.createdAt), id: tenants.id })
            .from(tenants)
            .where(
              and(
                status ? eq(tenants.status, status) : undefined,
                afterCursor(tenants.createdAt, tenants.id, cursor, "asc"),
              ),
            )
            .orderBy(asc(tenants.createdAt), asc(tenants.id))
            .limit(limit),
        ),
      );
      return {
        tenants: page.rows.map((r) => toTenantProto(r.row)),
        nextPageToken: page.nextPageToken,
      };
    },

    /**
     * Renames, suspends or reactivates. In the database suspension needs nothing else:
     * the SQL that authenticates keys accepts only keys of active tenants (the edge's
     * records are deleted after the commit). A mask naming only fields
     * that already hold the requested values changes nothing and writes no audit row.
     */
    async updateTenant(req) {
      const input = req.tenant;
      if (!input) throw new FulcrumError("Invalid", "tenant is required", { field: "tenant" });
      const id = requireUuid("tenant.tenant_id", input.tenantId);
      const paths = req.updateMask?.paths ?? [];
      if (paths.length === 0) {
        throw new FulcrumError("Invalid", "update_mask must name name and/or status", {
          field: "update_mask",
        });
      }
      const keysOfTenant = async (tx: Tx, status: TenantRow["status"]) =>
        paths.includes("status")
          ? keySyncFor(tx, undefined, { tenantActive: status === "active" })
          : NO_KEY_CHANGES;
      const result = await inTenant(platformDb(), id, async (tx) => {
        const [current] = await tx.select().from(tenants).where(eq(tenants.id, id)).for("update");
        if (!current) throw new FulcrumError("NotFound", `tenant ${id} not found`);
        const changes: Record<string, { from: string; to: string }> = {};
        const set: Partial<typeof tenants.$inferInsert> = {};
        if (paths.includes("name") && input.name !== current.name) {
          changes.name = { from: current.name, to: input.name };
          set.name = input.name;
        }
        const status = tenantStatusFromProto(input.status);
        if (paths.includes("status") && status && status !== current.status) {
          changes.status = { from: current.status, to: status };
          set.status = status;
        }
        if (Object.keys(changes).length === 0) {
          return {
            tenant: toTenantProto(current),
            sync: await stageKeySync(deps, await keysOfTenant(tx, current.status)),
          };
        }
        const [updated] = await tx
          .update(tenants)
          .set({ ...set, updatedAt: sql`now()` })
          .where(eq(tenants.id, id))
          .returning();
        if (!updated) throw new Error("update returned no row");
        await recordAudit(tx, id, PLATFORM, {
          action: "tenant.updated",
          targetType: "tenant",
          targetId: id,
          details: { changes },
        });
        return {
          tenant: toTenantProto(updated),
          sync: await stageKeySync(deps, await keysOfTenant(tx, updated.status)),
        };
      });
      await publishKeySync(deps, result.sync, `the change of tenant ${id}`);
      return { tenant: result.tenant };
    },
  };
}
