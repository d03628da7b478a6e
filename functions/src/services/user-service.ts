/**
 * UserService: the users of the caller's tenant (the tenant of its key; requests never
 * name one). Every query runs in `inTenant(deps.db, caller.tenantId, …)` as the
 * application role, so another tenant's user is simply not there (NotFound). Reading
 * needs users.read (every role), changing needs users.write (admin).
 *
 * A user's role and disabled flag bound every key acting as them: the SQL that
 * authenticates keys reads both on every request, so a change here takes effect on the
 * management API's next call without touching the keys. The edge reads the key records
 * instead, which carry the role: an UpdateUser naming `role` or `disabled` rewrites the
 * records of the user's usable keys and deletes the others after the commit
 * (tenancy/key-distribution.ts), also when nothing changed, so repeating it repairs a
 * failed write.
 */
import type { ServiceImpl } from "@connectrpc/connect";
import { and, asc, eq, isNull, sql } from "drizzle-orm";
import type { PgUpdateSetSource } from "drizzle-orm/pg-core";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { apiKeys, users } from "../../../db/schema/index.js";
import type { UserService } from "../../../proto/gen/fulcrum/tenant/v1/user_service_pb.js";
import { recordAudit } from "../audit/audit-trail.js";
import { requirePermission } from "../auth/permissions.js";
import { tenantCaller } from "../auth/principal.js";
import { inTenant, type Tx } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { afterCursor, cursorColumn, keysetPage } from "../pagination/page-token.js";
import { assertAdminAccessRemains } from "../tenancy/admin-access.js";
import { requireUuid } from "../tenancy/ids.js";
import {
  keySyncFor,
  NO_KEY_CHANGES,
  publishKeySync,
  stageKeySync,
} from "../tenancy/key-distribution.js";
import {
  normaliseEmail,
  type RoleValue,
  roleFromProto,
  toUserProto,
  type UserRow,
} from "../tenancy/user-rows.js";

async function loadUser(tx: Tx, id: string, lock = false): Promise<UserRow> {
  const query = tx.select().from(users).where(eq(users.id, id));
  const [row] = lock ? await query.for("update") : await query;
  if (!row) throw new FulcrumError("NotFound", `user ${id} not found`);
  return row;
}

export function userService(deps: FunctionsDeps): Partial<ServiceImpl<typeof UserService>> {
  return {
    async createUser(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "users.write");
      const role = roleFromProto(req.role);
      if (!role) throw new FulcrumError("Invalid", "role is required", { field: "role" });
      const email = normaliseEmail(req.email);
      return inTenant(
        deps.db,
        caller.tenantId,
        async (tx) => {
          const [row] = await tx
            .insert(users)
            .values({ tenantId: caller.tenantId, email, displayName: req.displayName, role })
            .returning();
          if (!row) throw new Error("insert returned no row");
          await recordAudit(tx, caller.tenantId, caller, {
            action: "user.created",
            targetType: "user",
            targetId: row.id,
            details: { email: row.email, user_role: row.role, display_name: row.displayName },
          });
          return { user: toUserProto(row) };
        },
        { unique: { users_tenant_id_email_key: `a user with email "${email}" already exists` } },
      );
    },

    async getUser(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "users.read");
      const id = requireUuid("user_id", req.userId);
      const row = await inTenant(deps.db, caller.tenantId, (tx) => loadUser(tx, id));
      return { user: toUserProto(row) };
    },

    /** Oldest first; disabled users only with include_disabled. */
    async listUsers(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "users.read");
      const role = roleFromProto(req.role);
      const scope = `users?role=${role ?? ""}&disabled=${req.includeDisabled}`;
      const page = await keysetPage(scope, req, (cursor, limit) =>
        inTenant(deps.db, caller.tenantId, (tx) =>
          tx
            .select({ row: users, cursor: cursorColumn(users.createdAt), id: users.id })
            .from(users)
            .where(
              and(
                role ? eq(users.role, role) : undefined,
                req.includeDisabled ? undefined : isNull(users.disabledAt),
                afterCursor(users.createdAt, users.id, cursor, "asc"),
              ),
            )
            .orderBy(asc(users.createdAt), asc(users.id))
            .limit(limit),
        ),
      );
      return { users: page.rows.map((r) => toUserProto(r.row)), nextPageToken: page.nextPageToken };
    },

    /**
     * Changes display_name, role and/or disabled (the mask's fields). Demoting or
     * disabling an admin must leave the tenant an active admin with a usable manage
     * key (assertAdminAccessRemains). Only real changes are written and audited.
     */
    async updateUser(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "users.write");
      const id = requireUuid("user_id", req.userId);
      const paths = req.updateMask?.paths ?? [];
      if (paths.length === 0) {
        throw new FulcrumError(
          "Invalid",
          "update_mask must name display_name, role and/or disabled",
          {
            field: "update_mask",
          },
        );
      }
      const role = roleFromProto(req.role);
      if (paths.includes("role") && !role) {
        throw new FulcrumError("Invalid", "role must be set when update_mask names it", {
          field: "role",
        });
      }
      const touchesKeys = paths.includes("role") || paths.includes("disabled");
      const keysOfUser = async (tx: Tx) =>
        touchesKeys
          ? stageKeySync(deps, await keySyncFor(tx, eq(apiKeys.userId, id)))
          : NO_KEY_CHANGES;
      const result = await inTenant(deps.db, caller.tenantId, async (tx) => {
        const current = await loadUser(tx, id, true);
        const changes: Record<string, { from: unknown; to: unknown }> = {};
        const set: PgUpdateSetSource<typeof users> = {};
        if (paths.includes("display_name") && req.displayName !== current.displayName) {
          changes.display_name = { from: current.displayName, to: req.displayName };
          set.displayName = req.displayName;
        }
        if (paths.includes("role") && role && role !== current.role) {
          changes.role = { from: current.role, to: role };
          set.role = role as RoleValue;
        }
        const disabled = current.disabledAt !== null;
        if (paths.includes("disabled") && req.disabled !== disabled) {
          changes.disabled = { from: disabled, to: req.disabled };
          set.disabledAt = req.disabled ? sql`now()` : null;
        }
        if (Object.keys(changes).length === 0) {
          return { user: toUserProto(current), sync: await keysOfUser(tx) };
        }
        const losesAdmin =
          current.role === "admin" &&
          !disabled &&
          (changes.role !== undefined || changes.disabled?.to === true);
        if (losesAdmin) await assertAdminAccessRemains(tx, { withoutUser: id });
        const [updated] = await tx
          .update(users)
          .set({ ...set, updatedAt: sql`now()` })
          .where(eq(users.id, id))
          .returning();
        if (!updated) throw new Error("update returned no row");
        await recordAudit(tx, caller.tenantId, caller, {
          action: "user.updated",
          targetType: "user",
          targetId: id,
          details: { changes },
        });
        return { user: toUserProto(updated), sync: await keysOfUser(tx) };
      });
      await publishKeySync(deps, result.sync, `the change of user ${id}`);
      return { user: result.user };
    },
  };
}
