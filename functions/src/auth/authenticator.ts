import { timingSafeEqual } from "node:crypto";
import { sql } from "drizzle-orm";
import { hashApiKey, looksLikeApiKey } from "../../../core/auth/api-key.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { Db } from "../../../db/client.js";
import { toDatabaseError } from "../../../db/database-errors.js";
import type { ApiKeyScope, Principal, UserRole } from "./principal.js";

export interface Authenticator {
  /** The caller a presented secret stands for; Unauthenticated when it stands for none. */
  authenticate(secret: string): Promise<Principal>;
}

const INVALID_KEY = "the API key is not valid: it is unknown, revoked or expired";

interface KeyRow extends Record<string, unknown> {
  key_id: string;
  tenant_id: string;
  user_id: string;
  scopes: ApiKeyScope[];
  role: UserRole;
  created_by: string | null;
}

/**
 * Resolves a secret to a principal. The platform operator's key is compared by hash
 * with the configured one; tenant keys are looked up by hash through
 * `fulcrum_authenticate_api_key` (migration 0003), the one narrow cross-tenant read the
 * application role may make: row-level security hides api_keys until the tenant is
 * known, and the tenant is what the key tells us.
 */
export function createAuthenticator(
  db: Db,
  platformAdminKeySha256: string | undefined,
): Authenticator {
  const adminHash = platformAdminKeySha256 ? Buffer.from(platformAdminKeySha256, "hex") : undefined;
  return {
    async authenticate(secret) {
      const hash = await hashApiKey(secret);
      if (adminHash && timingSafeEqual(Buffer.from(hash, "hex"), adminHash)) {
        return { kind: "platform_admin" };
      }
      if (!looksLikeApiKey(secret)) throw new FulcrumError("Unauthenticated", INVALID_KEY);
      let rows: KeyRow[];
      try {
        const result = await db.execute<KeyRow>(
          sql`select key_id, tenant_id, user_id, scopes, role, created_by from fulcrum_authenticate_api_key(${hash})`,
        );
        rows = result.rows;
      } catch (error) {
        throw toDatabaseError(error);
      }
      const row = rows[0];
      if (!row) throw new FulcrumError("Unauthenticated", INVALID_KEY);
      return {
        kind: "tenant_key",
        tenantId: row.tenant_id,
        userId: row.user_id,
        keyId: row.key_id,
        keyCreatedBy: row.created_by,
        role: row.role,
        scopes: row.scopes,
      };
    },
  };
}
