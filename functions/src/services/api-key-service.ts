import { timestampDate } from "@bufbuild/protobuf/wkt";
/**
 * ApiKeyService: the API keys of the caller's tenant, for admins only (api_keys.read /
 * api_keys.write; see permissions.ts). A key's secret exists once, in the CreateApiKey
 * response: only its SHA-256 and its first 11 characters are stored, reads never select
 * the hash (`apiKeyColumns`), and audit rows carry the prefix and scopes, never either.
 *
 * Revocation is idempotent, as the contract says: revoking a revoked key returns it
 * unchanged and writes no second audit row (but deletes its edge record again).
 *
 * After the commit, a created key's record is written to the edge's key store and a
 * revoked key's record deleted (tenancy/key-distribution.ts).
 */
import type { ServiceImpl } from "@connectrpc/connect";
import { and, desc, eq, isNull, sql } from "drizzle-orm";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { apiKeys, users } from "../../../db/schema/index.js";
import type { ApiKeyService } from "../../../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";
import { recordAudit } from "../audit/audit-trail.js";
import { requirePermission } from "../auth/permissions.js";
import { type TenantPrincipal, tenantCaller } from "../auth/principal.js";
import { inTenant, type Tx } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { afterCursor, cursorColumn, keysetPage } from "../pagination/page-token.js";
import { assertAdminAccessRemains } from "../tenancy/admin-access.js";
import {
  type ApiKeyRow,
  apiKeyAuditDetails,
  apiKeyColumns,
  insertApiKey,
  scopesFromProto,
  toApiKeyProto,
} from "../tenancy/api-key-rows.js";
import { optionalUuid, requireUuid } from "../tenancy/ids.js";
import { keySyncFor, stageKeySync } from "../tenancy/key-distribution.js";

async function loadKey(tx: Tx, id: string, lock = false): Promise<ApiKeyRow> {
  const query = tx.select(apiKeyColumns).from(apiKeys).where(eq(apiKeys.id, id));
  const [row] = lock ? await query.for("update") : await query;
  if (!row) throw new FulcrumError("NotFound", `API key ${id} not found`);
  return row;
}

/** Revokes `id` (a revoked key stays as it is, with no second audit row). */
async function revokeInTx(tx: Tx, caller: TenantPrincipal, id: string): Promise<ApiKeyRow> {
  const current = await loadKey(tx, id, true);
  if (current.revokedAt) return current;
  if (current.scopes.includes("manage")) {
    await assertAdminAccessRemains(tx, { withoutKey: id });
  }
  const [revoked] = await tx
    .update(apiKeys)
    .set({ revokedAt: sql`now()` })
    .where(eq(apiKeys.id, id))
    .returning(apiKeyColumns);
  if (!revoked) throw new Error("update returned no row");
  await recordAudit(tx, caller.tenantId, caller, {
    action: "api_key.revoked",
    targetType: "api_key",
    targetId: id,
    details: apiKeyAuditDetails(revoked),
  });
  return revoked;
}

export function apiKeyService(deps: FunctionsDeps): Partial<ServiceImpl<typeof ApiKeyService>> {
  return {
    /**
     * A key acting as `user_id` (default: the caller's user), who must be an enabled
     * user of the caller's tenant — a user of another tenant is NotFound, like an
     * unknown one. `created_by` is the caller's user.
     */
    async createApiKey(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "api_keys.write");
      const userId = optionalUuid("user_id", req.userId) ?? caller.userId;
      const scopes = scopesFromProto(req.scopes);
      if (scopes.length === 0) {
        throw new FulcrumError("Invalid", "scopes must name at least one scope", {
          field: "scopes",
        });
      }
      // protovalidate bounds it to years 0001–9999, so the Date is always valid.
      const expiresAt = req.expiresAt ? timestampDate(req.expiresAt) : null;
      if (expiresAt && expiresAt.getTime() <= deps.now().getTime()) {
        throw new FulcrumError("Invalid", "expires_at must be in the future", {
          field: "expires_at",
        });
      }
      const created = await inTenant(deps.db, caller.tenantId, async (tx) => {
        const [user] = await tx
          .select({ id: users.id, disabledAt: users.disabledAt })
          .from(users)
          .where(eq(users.id, userId))
          .for("share");
        if (!user) throw new FulcrumError("NotFound", `user ${userId} not found`);
        if (user.disabledAt) {
          throw new FulcrumError(
            "FailedPrecondition",
            `user ${userId} is disabled: enable the user before giving them a key`,
          );
        }
        const key = await insertApiKey(tx, {
          tenantId: caller.tenantId,
          userId,
          name: req.name,
          scopes,
          // The person behind the call: a key minted for someone else acts as them, but
          // whoever minted it is who creates keys with it.
          createdBy: caller.keyCreatedBy ?? caller.userId,
          expiresAt,
        });
        await recordAudit(tx, caller.tenantId, caller, {
          action: "api_key.created",
          targetType: "api_key",
          targetId: key.row.id,
          details: apiKeyAuditDetails(key.row),
        });
        // The record goes first (before the commit): the secret is shown only once, so
        // it must already work at the edge when it is.
        await stageKeySync(deps, await keySyncFor(tx, eq(apiKeys.id, key.row.id)), {
          newKeys: true,
        });
        return { apiKey: toApiKeyProto(key.row), secret: key.secret };
      });
      return created;
    },

    async getApiKey(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "api_keys.read");
      const id = requireUuid("key_id", req.keyId);
      const row = await inTenant(deps.db, caller.tenantId, (tx) => loadKey(tx, id));
      return { apiKey: toApiKeyProto(row) };
    },

    /** Newest first; revoked keys only with include_revoked; optionally one user's. */
    async listApiKeys(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "api_keys.read");
      const userId = optionalUuid("user_id", req.userId);
      const scope = `api_keys?user=${userId ?? ""}&revoked=${req.includeRevoked}`;
      const page = await keysetPage(scope, req, (cursor, limit) =>
        inTenant(deps.db, caller.tenantId, (tx) =>
          tx
            .select({ row: apiKeyColumns, cursor: cursorColumn(apiKeys.createdAt), id: apiKeys.id })
            .from(apiKeys)
            .where(
              and(
                userId ? eq(apiKeys.userId, userId) : undefined,
                req.includeRevoked ? undefined : isNull(apiKeys.revokedAt),
                afterCursor(apiKeys.createdAt, apiKeys.id, cursor, "desc"),
              ),
            )
            .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id))
            .limit(limit),
        ),
      );
      return {
        apiKeys: page.rows.map((r) => toApiKeyProto(r.row)),
        nextPageToken: page.nextPageToken,
      };
    },

    /**
     * Revokes for good. Refused (FailedPrecondition) when it is the tenant's last usable
     * manage key of an enabled admin: nothing could then manage the tenant.
     */
    async revokeApiKey(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "api_keys.write");
      const id = requireUuid("key_id", req.keyId);
      const row = await inTenant(deps.db, caller.tenantId, async (tx) => {
        const revoked = await revokeInTx(tx, caller, id);
        // Removed before the commit, also when it was revoked already (repeating
        // RevokeApiKey repairs a record left behind).
        await stageKeySync(deps, await keySyncFor(tx, eq(apiKeys.id, id)));
        return revoked;
      });
      return { apiKey: toApiKeyProto(row) };
    },
  };
}
