/**
 * API-key rows ↔ the fulcrum.tenant.v1.ApiKey message, and the one place keys are
 * minted. Reads select `apiKeyColumns`, which leaves out `key_hash`: no handler ever
 * holds a key's hash, and the secret exists only in the CreateApiKey / CreateTenant
 * response that shows it once.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { generateApiKey, type ApiKeyScope as ScopeValue } from "../../../core/auth/api-key.js";
import { apiKeys } from "../../../db/schema/index.js";
import {
  type ApiKey,
  ApiKeySchema,
  ApiKeyScope,
} from "../../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import type { Tx } from "../db/tenant-transaction.js";

/** Every column but key_hash. */
export const apiKeyColumns = {
  id: apiKeys.id,
  tenantId: apiKeys.tenantId,
  userId: apiKeys.userId,
  name: apiKeys.name,
  prefix: apiKeys.prefix,
  scopes: apiKeys.scopes,
  createdBy: apiKeys.createdBy,
  createdAt: apiKeys.createdAt,
  expiresAt: apiKeys.expiresAt,
  revokedAt: apiKeys.revokedAt,
  lastUsedAt: apiKeys.lastUsedAt,
};

export type ApiKeyRow = Omit<typeof apiKeys.$inferSelect, "keyHash">;

const TO_PROTO: Record<ScopeValue, ApiKeyScope> = {
  check: ApiKeyScope.CHECK,
  manage: ApiKeyScope.MANAGE,
};

export function scopesFromProto(scopes: readonly ApiKeyScope[]): ScopeValue[] {
  const out = new Set<ScopeValue>();
  for (const scope of scopes) {
    if (scope === ApiKeyScope.CHECK) out.add("check");
    else if (scope === ApiKeyScope.MANAGE) out.add("manage");
  }
  return [...out].sort();
}

export function toApiKeyProto(row: ApiKeyRow): ApiKey {
  return create(ApiKeySchema, {
    keyId: row.id,
    tenantId: row.tenantId,
    userId: row.userId,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes.map((s) => TO_PROTO[s]),
    createdBy: row.createdBy ?? "",
    createdAt: timestampFromDate(row.createdAt),
    ...(row.expiresAt ? { expiresAt: timestampFromDate(row.expiresAt) } : {}),
    ...(row.revokedAt ? { revokedAt: timestampFromDate(row.revokedAt) } : {}),
    ...(row.lastUsedAt ? { lastUsedAt: timestampFromDate(row.lastUsedAt) } : {}),
  });
}

export interface NewApiKey {
  tenantId: string;
  userId: string;
  name: string;
  scopes: ScopeValue[];
  /** The user who made it; null when the platform operator did (CreateTenant). */
  createdBy: string | null;
  expiresAt: Date | null;
}

/**
 * Mints a key and stores its hash and prefix (never the secret) inside `tx`. The
 * secret is returned for the response alone: callers must not log or audit it.
 */
export async function insertApiKey(
  tx: Tx,
  key: NewApiKey,
): Promise<{ row: ApiKeyRow; secret: string }> {
  const { secret, prefix, hash } = await generateApiKey();
  const [row] = await tx
    .insert(apiKeys)
    .values({ ...key, prefix, keyHash: hash })
    .returning(apiKeyColumns);
  if (!row) throw new Error("insert into api_keys returned no row");
  return { row, secret };
}

/** What the audit trail says about a key: never its secret or hash. */
export function apiKeyAuditDetails(row: ApiKeyRow): Record<string, unknown> {
  return {
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes,
    key_user_id: row.userId,
    expires_at: row.expiresAt?.toISOString() ?? null,
  };
}
