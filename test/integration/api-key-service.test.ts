import { createHash, randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyScope } from "../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import { ApiKeyService } from "../../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import { UserService } from "../../proto/gen/fulcrum/tenant/v1/user_service_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { auditRows, expectCode, userWithKey } from "../harness/management-helpers.js";

// ApiKeyService over the real stack: secrets shown once, hashes never read back,
// tenants isolated by row-level security, revocation idempotent.
let stack: FunctionsStack;
type Tenant = Awaited<ReturnType<FunctionsStack["createTenant"]>>;
let tenant: Tenant;
let other: Tenant;
const keysOf = (key: string) => stack.client(ApiKeyService, key);
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

beforeAll(async () => {
  stack = await startFunctionsStack();
  tenant = await stack.createTenant();
  other = await stack.createTenant();
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

describe("CreateApiKey", () => {
  it("returns the secret once and stores only its hash and prefix", async () => {
    const api = keysOf(tenant.adminKey);
    const res = await api.createApiKey({ name: "ci", scopes: [ApiKeyScope.CHECK] });
    const key = res.apiKey;
    expect(res.secret).toMatch(/^fk_[A-Za-z0-9_-]{43}$/);
    expect(key).toMatchObject({
      tenantId: tenant.tenantId,
      userId: tenant.adminUserId,
      createdBy: tenant.adminUserId,
      name: "ci",
      prefix: res.secret.slice(0, 11),
      scopes: [ApiKeyScope.CHECK],
    });
    expect(key?.revokedAt).toBeUndefined();
    const { rows } = await stack.owner.query(
      "SELECT key_hash, prefix FROM api_keys WHERE id = $1",
      [key?.keyId],
    );
    expect(rows).toEqual([{ key_hash: sha256(res.secret), prefix: res.secret.slice(0, 11) }]);

    // Get and List never carry the secret or the hash.
    const got = await api.getApiKey({ keyId: key?.keyId as string });
    const listed = await api.listApiKeys({ includeRevoked: true });
    for (const answer of [got, listed]) {
      const text = JSON.stringify(answer, (_k, v) => (typeof v === "bigint" ? String(v) : v));
      expect(text).not.toContain(res.secret.slice(11));
      expect(text).not.toContain(sha256(res.secret));
    }
    expect(got.apiKey).toEqual(key);

    const [audit] = await auditRows(stack, tenant.tenantId, key?.keyId);
    expect(audit).toMatchObject({
      action: "api_key.created",
      actor_type: "api_key",
      target_type: "api_key",
      details: {
        prefix: key?.prefix,
        scopes: ["check"],
        name: "ci",
        key_user_id: tenant.adminUserId,
      },
    });
    const details = JSON.stringify(audit?.details);
    expect(details).not.toContain(res.secret.slice(11));
    expect(details).not.toContain(sha256(res.secret));
  });

  it("creates keys for other users of the tenant, never of another tenant", async () => {
    const api = keysOf(tenant.adminKey);
    const { user } = await stack
      .client(UserService, tenant.adminKey)
      .createUser({ email: "keyed@example.com", role: UserRole.VIEWER });
    const res = await api.createApiKey({
      name: "v",
      scopes: [ApiKeyScope.MANAGE],
      userId: user?.userId,
    });
    expect(res.apiKey).toMatchObject({ userId: user?.userId, createdBy: tenant.adminUserId });
    // The key acts as the viewer.
    await expectCode(keysOf(res.secret).listApiKeys({}), Code.PermissionDenied, /role viewer/);

    await expectCode(
      api.createApiKey({ name: "x", scopes: [ApiKeyScope.MANAGE], userId: other.adminUserId }),
      Code.NotFound,
      /not found/,
    );
    await expectCode(
      api.createApiKey({ name: "x", scopes: [ApiKeyScope.MANAGE], userId: randomUUID() }),
      Code.NotFound,
    );
    await stack.client(UserService, tenant.adminKey).updateUser({
      userId: user?.userId as string,
      disabled: true,
      updateMask: { paths: ["disabled"] },
    });
    await expectCode(
      api.createApiKey({ name: "x", scopes: [ApiKeyScope.MANAGE], userId: user?.userId }),
      Code.FailedPrecondition,
      /disabled/,
    );
  });

  it("validates scopes, names, ids and the expiry", async () => {
    const api = keysOf(tenant.adminKey);
    const ok = { name: "k", scopes: [ApiKeyScope.CHECK] };
    await expectCode(api.createApiKey({ ...ok, scopes: [] }), Code.InvalidArgument, /scopes/);
    await expectCode(
      api.createApiKey({ ...ok, scopes: [ApiKeyScope.UNSPECIFIED] }),
      Code.InvalidArgument,
      /scopes/,
    );
    await expectCode(
      api.createApiKey({ ...ok, scopes: [ApiKeyScope.CHECK, ApiKeyScope.CHECK] }),
      Code.InvalidArgument,
      /scopes/,
    );
    await expectCode(api.createApiKey({ ...ok, name: "" }), Code.InvalidArgument, /name/);
    await expectCode(api.createApiKey({ ...ok, userId: "nope" }), Code.InvalidArgument, /user_id/);
    await expectCode(
      api.createApiKey({ ...ok, expiresAt: timestampFromDate(new Date(Date.now() - 60_000)) }),
      Code.InvalidArgument,
      /expires_at/,
    );
    const future = new Date(Date.now() + 3_600_000);
    const res = await api.createApiKey({ ...ok, expiresAt: timestampFromDate(future) });
    expect(Number(res.apiKey?.expiresAt?.seconds)).toBe(Math.floor(future.getTime() / 1000));
  });
});

describe("GetApiKey and ListApiKeys", () => {
  it("answer the tenant's keys only", async () => {
    const api = keysOf(tenant.adminKey);
    const { rows } = await stack.owner.query("SELECT id FROM api_keys WHERE tenant_id = $1", [
      other.tenantId,
    ]);
    await expectCode(api.getApiKey({ keyId: rows[0].id }), Code.NotFound, /not found/);
    await expectCode(api.getApiKey({ keyId: randomUUID() }), Code.NotFound);
    await expectCode(api.getApiKey({ keyId: "nope" }), Code.InvalidArgument, /key_id/);
    const listed = await api.listApiKeys({ includeRevoked: true, pageSize: 1000 });
    expect(listed.apiKeys.every((k) => k.tenantId === tenant.tenantId)).toBe(true);
    expect(listed.apiKeys.map((k) => k.keyId)).not.toContain(rows[0].id);
  });

  it("pages newest first, filters by user and by revocation", async () => {
    const t = await stack.createTenant();
    const api = keysOf(t.adminKey);
    const made: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await api.createApiKey({ name: `k${i}`, scopes: [ApiKeyScope.CHECK] });
      made.push(res.apiKey?.keyId as string);
    }
    const { rows } = await stack.owner.query(
      "SELECT id FROM api_keys WHERE tenant_id = $1 AND created_by IS NULL",
      [t.tenantId],
    );
    const expected = [...made].reverse().concat(rows[0].id);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await api.listApiKeys({ pageSize: 2, pageToken });
      seen.push(...page.apiKeys.map((k) => k.keyId));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(expected);

    await api.revokeApiKey({ keyId: made[1] as string });
    expect((await api.listApiKeys({})).apiKeys.map((k) => k.keyId)).not.toContain(made[1]);
    const withRevoked = await api.listApiKeys({ includeRevoked: true });
    expect(withRevoked.apiKeys.find((k) => k.keyId === made[1])?.revokedAt).toBeDefined();

    const viewer = await userWithKey(stack, t.adminKey, UserRole.VIEWER);
    const mine = await api.listApiKeys({ userId: viewer.userId });
    expect(mine.apiKeys.map((k) => k.keyId)).toEqual([viewer.keyId]);
    expect((await api.listApiKeys({ userId: randomUUID() })).apiKeys).toEqual([]);
    await expectCode(api.listApiKeys({ userId: "nope" }), Code.InvalidArgument, /user_id/);
  });

  it("refuses malformed page tokens and a token of another filter", async () => {
    const api = keysOf(tenant.adminKey);
    await expectCode(
      api.listApiKeys({ pageToken: "not a token" }),
      Code.InvalidArgument,
      /page_token is not valid/,
    );
    const { nextPageToken } = await api.listApiKeys({ pageSize: 1 });
    expect(nextPageToken).not.toBe("");
    await expectCode(
      api.listApiKeys({ pageToken: nextPageToken, includeRevoked: true }),
      Code.InvalidArgument,
      /page_token is not valid/,
    );
  });
});

describe("RevokeApiKey", () => {
  it("revokes for good, idempotently, with one audit row", async () => {
    const api = keysOf(tenant.adminKey);
    const res = await api.createApiKey({ name: "to revoke", scopes: [ApiKeyScope.MANAGE] });
    const keyId = res.apiKey?.keyId as string;
    await keysOf(res.secret).getApiKey({ keyId });
    const first = await api.revokeApiKey({ keyId });
    expect(first.apiKey?.revokedAt).toBeDefined();
    await expectCode(keysOf(res.secret).getApiKey({ keyId }), Code.Unauthenticated);
    const again = await api.revokeApiKey({ keyId });
    expect(again.apiKey).toEqual(first.apiKey);
    const revoked = (await auditRows(stack, tenant.tenantId, keyId)).filter(
      (r) => r.action === "api_key.revoked",
    );
    expect(revoked).toHaveLength(1);
    expect(revoked[0]?.details).toMatchObject({ prefix: res.apiKey?.prefix, scopes: ["manage"] });
    expect(JSON.stringify(revoked[0]?.details)).not.toContain(res.secret.slice(11));
  });

  it("refuses unknown, foreign and malformed ids", async () => {
    const api = keysOf(tenant.adminKey);
    const { rows } = await stack.owner.query("SELECT id FROM api_keys WHERE tenant_id = $1", [
      other.tenantId,
    ]);
    await expectCode(api.revokeApiKey({ keyId: rows[0].id }), Code.NotFound);
    const still = await stack.owner.query("SELECT revoked_at FROM api_keys WHERE id = $1", [
      rows[0].id,
    ]);
    expect(still.rows[0].revoked_at).toBeNull();
    await expectCode(api.revokeApiKey({ keyId: randomUUID() }), Code.NotFound);
    await expectCode(api.revokeApiKey({ keyId: "1" }), Code.InvalidArgument, /key_id/);
  });

  it("refuses to revoke the tenant's last admin manage key", async () => {
    const t = await stack.createTenant();
    const api = keysOf(t.adminKey);
    const { rows } = await stack.owner.query("SELECT id FROM api_keys WHERE tenant_id = $1", [
      t.tenantId,
    ]);
    await expectCode(
      api.revokeApiKey({ keyId: rows[0].id }),
      Code.FailedPrecondition,
      /locking the tenant out/,
    );
    // A check-only key or a second manage key changes nothing / makes it possible.
    const check = await api.createApiKey({ name: "c", scopes: [ApiKeyScope.CHECK] });
    await api.revokeApiKey({ keyId: check.apiKey?.keyId as string });
    const spare = await api.createApiKey({ name: "spare", scopes: [ApiKeyScope.MANAGE] });
    await api.revokeApiKey({ keyId: rows[0].id });
    await expectCode(keysOf(t.adminKey).listApiKeys({}), Code.Unauthenticated);
    await keysOf(spare.secret).listApiKeys({});
  });
});

describe("permissions", () => {
  it("only admins manage keys", async () => {
    for (const role of [UserRole.VIEWER, UserRole.POLICY_AUTHOR]) {
      const u = await userWithKey(stack, tenant.adminKey, role);
      const api = keysOf(u.key);
      await expectCode(api.listApiKeys({}), Code.PermissionDenied, /api_keys read/);
      await expectCode(api.getApiKey({ keyId: u.keyId }), Code.PermissionDenied);
      await expectCode(
        api.createApiKey({ name: "x", scopes: [ApiKeyScope.CHECK] }),
        Code.PermissionDenied,
      );
      await expectCode(api.revokeApiKey({ keyId: u.keyId }), Code.PermissionDenied);
    }
  });
});
