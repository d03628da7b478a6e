import { createHash, randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiKeyRecord, parseApiKeyRecord } from "../../core/distribution/key-records.js";
import { ApiKeyScope } from "../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import { ApiKeyService } from "../../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";
import { TenantStatus } from "../../proto/gen/fulcrum/tenant/v1/tenant_pb.js";
import { TenantService } from "../../proto/gen/fulcrum/tenant/v1/tenant_service_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import { UserService } from "../../proto/gen/fulcrum/tenant/v1/user_service_pb.js";
import { syncApiKeys } from "../../scripts/sync-api-keys.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { expectCode, userWithKey } from "../harness/management-helpers.js";

// The control plane's half of edge authentication: every usable API key has a record in
// the edge's Redis (core/distribution/key-records.ts), written after the commit that
// makes it usable and deleted after the one that makes it unusable.
let stack: FunctionsStack;
type Tenant = Awaited<ReturnType<FunctionsStack["createTenant"]>>;
let tenant: Tenant;
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const keysOf = (key: string) => stack.client(ApiKeyService, key);
const usersOf = (key: string) => stack.client(UserService, key);
const tenantsApi = () => stack.client(TenantService, stack.platformKey);

async function recordOf(secret: string): Promise<ApiKeyRecord | null> {
  const raw = await stack.redis.get(stack.keys.apiKey(sha256(secret)));
  if (raw === null) return null;
  const record = parseApiKeyRecord(raw);
  if (!record) throw new Error(`not a key record: ${JSON.stringify(raw)}`);
  return record;
}

/** Runs `fn` with the key publisher's `put` and `remove` failing like a Redis outage. */
async function withRedisDown<T>(fn: () => Promise<T>): Promise<T> {
  const publisher = stack.deps.keyPublisher;
  stack.deps.keyPublisher = {
    put: () => Promise.reject(new Error("redis is down")),
    remove: () => Promise.reject(new Error("redis is down")),
  };
  try {
    return await fn();
  } finally {
    stack.deps.keyPublisher = publisher;
  }
}

beforeAll(async () => {
  stack = await startFunctionsStack();
  tenant = await stack.createTenant();
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

describe("CreateTenant and CreateApiKey", () => {
  it("write the first admin key's record", async () => {
    expect(await recordOf(tenant.adminKey)).toEqual({
      key_id: expect.any(String),
      tenant_id: tenant.tenantId,
      user_id: tenant.adminUserId,
      scopes: ["check", "manage"],
      role: "admin",
    });
    expect(await stack.redis.pttl(stack.keys.apiKey(sha256(tenant.adminKey)))).toBe(-1);
  });

  it("write a new key's record, with a TTL ending at expires_at", async () => {
    const u = await userWithKey(stack, tenant.adminKey, UserRole.POLICY_AUTHOR, [
      ApiKeyScope.CHECK,
    ]);
    expect(await recordOf(u.key)).toEqual({
      key_id: u.keyId,
      tenant_id: tenant.tenantId,
      user_id: u.userId,
      scopes: ["check"],
      role: "policy_author",
      created_by: tenant.adminUserId,
    });
    const expires = new Date(Date.now() + 3_600_000);
    const res = await keysOf(tenant.adminKey).createApiKey({
      name: "expiring",
      scopes: [ApiKeyScope.CHECK, ApiKeyScope.MANAGE],
      expiresAt: timestampFromDate(expires),
    });
    const record = await recordOf(res.secret);
    expect(record).toMatchObject({ key_id: res.apiKey?.keyId, scopes: ["check", "manage"] });
    expect(record?.expires_at).toBe(expires.toISOString());
    const ttl = await stack.redis.pttl(stack.keys.apiKey(sha256(res.secret)));
    expect(ttl).toBeGreaterThan(3_500_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
  });

  it("write nothing when the create fails", async () => {
    const before = await namespaceKeyCount();
    await expectCode(
      keysOf(tenant.adminKey).createApiKey({
        name: "nobody's",
        scopes: [ApiKeyScope.CHECK],
        userId: randomUUID(),
      }),
      Code.NotFound,
    );
    expect(await namespaceKeyCount()).toBe(before);
  });

  it("create nothing when the record cannot be written: a shown secret always works", async () => {
    const error = await withRedisDown(() =>
      expectCode(
        keysOf(tenant.adminKey).createApiKey({ name: "lost", scopes: [ApiKeyScope.CHECK] }),
        Code.Unavailable,
        /API-key store .* unavailable: nothing was changed; retry/,
      ),
    );
    expect(error.rawMessage).not.toMatch(/fk_/);
    const { rows } = await stack.owner.query("SELECT 1 FROM api_keys WHERE name = 'lost'");
    expect(rows).toHaveLength(0);
    const slug = `down-${randomUUID().slice(0, 8)}`;
    await withRedisDown(() =>
      expectCode(
        stack.client(TenantService, stack.platformKey).createTenant({
          name: "Down",
          slug,
          adminEmail: "a@down.example",
        }),
        Code.Unavailable,
      ),
    );
    const tenants = await stack.owner.query("SELECT 1 FROM tenants WHERE slug = $1", [slug]);
    expect(tenants.rows).toHaveLength(0);
  });
});

describe("RevokeApiKey", () => {
  it("deletes the record, and deletes it again when revoked again", async () => {
    const u = await userWithKey(stack, tenant.adminKey, UserRole.VIEWER, [ApiKeyScope.CHECK]);
    const written = await recordOf(u.key);
    expect(written).not.toBeNull();
    await keysOf(tenant.adminKey).revokeApiKey({ keyId: u.keyId });
    expect(await recordOf(u.key)).toBeNull();

    // A record left behind (say, by a failed delete) goes with the next RevokeApiKey.
    await stack.redis.set(stack.keys.apiKey(sha256(u.key)), JSON.stringify(written));
    const again = await keysOf(tenant.adminKey).revokeApiKey({ keyId: u.keyId });
    expect(again.apiKey?.revokedAt).toBeDefined();
    expect(await recordOf(u.key)).toBeNull();
  });

  it("answers Unavailable and changes nothing when the record cannot be deleted", async () => {
    const u = await userWithKey(stack, tenant.adminKey, UserRole.VIEWER, [ApiKeyScope.CHECK]);
    await withRedisDown(() =>
      expectCode(
        keysOf(tenant.adminKey).revokeApiKey({ keyId: u.keyId }),
        Code.Unavailable,
        /nothing was changed; retry/,
      ),
    );
    // Neither revoked in the database nor removed at the edge: the call simply failed.
    const got = await keysOf(tenant.adminKey).getApiKey({ keyId: u.keyId });
    expect(got.apiKey?.revokedAt).toBeUndefined();
    expect(await recordOf(u.key)).not.toBeNull();
    await keysOf(tenant.adminKey).revokeApiKey({ keyId: u.keyId });
    expect(await recordOf(u.key)).toBeNull();
  });
});

describe("UpdateUser", () => {
  it("deletes a disabled user's records and writes back the usable ones on enable", async () => {
    const u = await userWithKey(stack, tenant.adminKey, UserRole.POLICY_AUTHOR, [
      ApiKeyScope.CHECK,
    ]);
    const second = await keysOf(tenant.adminKey).createApiKey({
      name: "second",
      scopes: [ApiKeyScope.CHECK],
      userId: u.userId,
    });
    const revoked = await keysOf(tenant.adminKey).createApiKey({
      name: "revoked",
      scopes: [ApiKeyScope.CHECK],
      userId: u.userId,
    });
    await keysOf(tenant.adminKey).revokeApiKey({ keyId: revoked.apiKey?.keyId as string });

    await usersOf(tenant.adminKey).updateUser({
      userId: u.userId,
      disabled: true,
      updateMask: { paths: ["disabled"] },
    });
    expect(await recordOf(u.key)).toBeNull();
    expect(await recordOf(second.secret)).toBeNull();

    await usersOf(tenant.adminKey).updateUser({
      userId: u.userId,
      disabled: false,
      updateMask: { paths: ["disabled"] },
    });
    expect(await recordOf(u.key)).toMatchObject({ key_id: u.keyId, role: "policy_author" });
    expect(await recordOf(second.secret)).toMatchObject({ key_id: second.apiKey?.keyId });
    expect(await recordOf(revoked.secret)).toBeNull();
  });

  it("rewrites the records with the new role", async () => {
    const u = await userWithKey(stack, tenant.adminKey, UserRole.VIEWER, [ApiKeyScope.CHECK]);
    await usersOf(tenant.adminKey).updateUser({
      userId: u.userId,
      role: UserRole.POLICY_AUTHOR,
      updateMask: { paths: ["role"] },
    });
    expect(await recordOf(u.key)).toMatchObject({ role: "policy_author" });
  });

  it("repairs a failed delete when repeated", async () => {
    const u = await userWithKey(stack, tenant.adminKey, UserRole.VIEWER, [ApiKeyScope.CHECK]);
    const disable = () =>
      usersOf(tenant.adminKey).updateUser({
        userId: u.userId,
        disabled: true,
        updateMask: { paths: ["disabled"] },
      });
    await withRedisDown(() => expectCode(disable(), Code.Unavailable, /nothing was changed/));
    expect(await recordOf(u.key)).not.toBeNull();
    const still = await usersOf(tenant.adminKey).getUser({ userId: u.userId });
    expect(still.user?.disabled).toBe(false);
    await disable();
    expect(await recordOf(u.key)).toBeNull();
  });
});

describe("UpdateTenant", () => {
  it("deletes a suspended tenant's records and writes back the usable ones", async () => {
    const t = await stack.createTenant();
    const u = await userWithKey(stack, t.adminKey, UserRole.VIEWER, [ApiKeyScope.CHECK]);
    const disabled = await userWithKey(stack, t.adminKey, UserRole.VIEWER, [ApiKeyScope.CHECK]);
    await usersOf(t.adminKey).updateUser({
      userId: disabled.userId,
      disabled: true,
      updateMask: { paths: ["disabled"] },
    });
    const setStatus = (status: TenantStatus) =>
      tenantsApi().updateTenant({
        tenant: { tenantId: t.tenantId, status },
        updateMask: { paths: ["status"] },
      });

    await setStatus(TenantStatus.SUSPENDED);
    expect(await recordOf(t.adminKey)).toBeNull();
    expect(await recordOf(u.key)).toBeNull();

    await setStatus(TenantStatus.ACTIVE);
    expect(await recordOf(t.adminKey)).toMatchObject({ tenant_id: t.tenantId, role: "admin" });
    expect(await recordOf(u.key)).toMatchObject({ key_id: u.keyId });
    expect(await recordOf(disabled.key)).toBeNull();

    // A suspension whose deletes fail does not happen at all; repeating it does.
    await withRedisDown(() =>
      expectCode(setStatus(TenantStatus.SUSPENDED), Code.Unavailable, /nothing was changed/),
    );
    expect(await recordOf(u.key)).not.toBeNull();
    const { rows } = await stack.owner.query("SELECT status FROM tenants WHERE id = $1", [
      t.tenantId,
    ]);
    expect(rows).toEqual([{ status: "active" }]);
    await setStatus(TenantStatus.SUSPENDED);
    expect(await recordOf(u.key)).toBeNull();
    expect(await recordOf(t.adminKey)).toBeNull();
  });
});

describe("npm run keys:sync", () => {
  it("writes every usable key's record and deletes every other record", async () => {
    const t = await stack.createTenant();
    const kept = await userWithKey(stack, t.adminKey, UserRole.VIEWER, [ApiKeyScope.CHECK]);
    const gone = await userWithKey(stack, t.adminKey, UserRole.VIEWER, [ApiKeyScope.CHECK]);
    const written = await recordOf(gone.key);
    await keysOf(t.adminKey).revokeApiKey({ keyId: gone.keyId });
    // The store drifted: a usable key's record lost, a revoked key's and an unknown one left.
    await stack.redis.del(stack.keys.apiKey(sha256(kept.key)));
    await stack.redis.set(stack.keys.apiKey(sha256(gone.key)), JSON.stringify(written));
    const unknown = stack.keys.apiKey(sha256("nobody's key"));
    await stack.redis.set(unknown, JSON.stringify(written));

    const report = await syncApiKeys(stack.owner, stack.redis, stack.config.redisKeyNamespace);
    expect(report.deleted).toBe(2);
    expect(await recordOf(kept.key)).toMatchObject({ key_id: kept.keyId, role: "viewer" });
    expect(await recordOf(t.adminKey)).toMatchObject({ tenant_id: t.tenantId });
    expect(await recordOf(gone.key)).toBeNull();
    expect(await stack.redis.get(unknown)).toBeNull();
    expect(report.written).toBe(await namespaceKeyCount());
  });
});

async function namespaceKeyCount(): Promise<number> {
  let cursor = "0";
  let count = 0;
  do {
    const [next, keys] = await stack.redis.scan(cursor, {
      match: `${stack.config.redisKeyNamespace}:apikey:*`,
      count: 500,
    });
    cursor = String(next);
    count += keys.length;
  } while (cursor !== "0");
  return count;
}
