import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";
import { ApiKeyScope } from "../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import { ApiKeyService } from "../../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import { UserService } from "../../proto/gen/fulcrum/tenant/v1/user_service_pb.js";
import type { FunctionsStack } from "./functions-stack.js";

/**
 * Helpers for the management API's integration tests (tenant, user and API-key
 * services): asserting Connect error codes, minting users with keys, reading the audit
 * trail through the owner connection.
 */

/** Awaits a call that must fail with `code` (and, when given, a message matching). */
export async function expectCode(
  call: Promise<unknown>,
  code: Code,
  message?: RegExp,
): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected ${Code[code]}, but the call succeeded`).toBeInstanceOf(ConnectError);
  const connectError = error as ConnectError;
  expect(Code[connectError.code], connectError.rawMessage).toBe(Code[code]);
  if (message) expect(connectError.rawMessage).toMatch(message);
  return connectError;
}

export interface UserWithKey {
  userId: string;
  keyId: string;
  key: string;
  email: string;
}

/** A new user of the tenant of `adminKey`, with a key of `scopes` acting as them. */
export async function userWithKey(
  stack: FunctionsStack,
  adminKey: string,
  role: UserRole,
  scopes: ApiKeyScope[] = [ApiKeyScope.MANAGE],
): Promise<UserWithKey> {
  const email = `${UserRole[role].toLowerCase()}-${randomBytes(4).toString("hex")}@example.com`;
  const { user } = await stack.client(UserService, adminKey).createUser({ email, role });
  if (!user) throw new Error("CreateUser returned no user");
  const created = await stack
    .client(ApiKeyService, adminKey)
    .createApiKey({ name: `${email} key`, scopes, userId: user.userId });
  if (!created.apiKey) throw new Error("CreateApiKey returned no key");
  return { userId: user.userId, keyId: created.apiKey.keyId, key: created.secret, email };
}

export interface AuditRow {
  action: string;
  actor_type: string;
  actor_id: string | null;
  target_type: string;
  target_id: string | null;
  details: Record<string, unknown>;
}

/** The tenant's audit rows, oldest first, optionally for one target. */
export async function auditRows(
  stack: FunctionsStack,
  tenantId: string,
  targetId?: string,
): Promise<AuditRow[]> {
  const { rows } = await stack.owner.query(
    `SELECT action, actor_type, actor_id, target_type, target_id, details FROM events
      WHERE tenant_id = $1 AND ($2::text IS NULL OR target_id = $2)
      ORDER BY occurred_at, action`,
    [tenantId, targetId ?? null],
  );
  return rows as AuditRow[];
}

/** Row counts of the tables a management write touches, to prove nothing partial stayed. */
export async function tableCounts(stack: FunctionsStack): Promise<Record<string, number>> {
  const { rows } = await stack.owner.query(
    `SELECT (SELECT count(*) FROM tenants)::int AS tenants, (SELECT count(*) FROM users)::int AS users,
            (SELECT count(*) FROM api_keys)::int AS api_keys, (SELECT count(*) FROM events)::int AS events`,
  );
  return rows[0] as Record<string, number>;
}
