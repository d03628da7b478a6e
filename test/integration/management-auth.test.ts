import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey } from "../../core/auth/api-key.js";
import { ApiKeyScope } from "../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import { ApiKeyService } from "../../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";
import { TenantStatus } from "../../proto/gen/fulcrum/tenant/v1/tenant_pb.js";
import { TenantService } from "../../proto/gen/fulcrum/tenant/v1/tenant_service_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import { UserService } from "../../proto/gen/fulcrum/tenant/v1/user_service_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { auditRows, expectCode, userWithKey } from "../harness/management-helpers.js";

// Who may call what on the management API: the key in x-api-key or Authorization: Bearer,
// its scopes, its user's role and status, its tenant's status — end to end over HTTP.
let stack: FunctionsStack;
type Tenant = Awaited<ReturnType<FunctionsStack["createTenant"]>>;
let tenant: Tenant;

beforeAll(async () => {
  stack = await startFunctionsStack();
  tenant = await stack.createTenant();
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

describe("authentication", () => {
  it("accepts a created key as x-api-key and as Authorization: Bearer", async () => {
    const res = await stack
      .client(ApiKeyService, tenant.adminKey)
      .createApiKey({ name: "both", scopes: [ApiKeyScope.MANAGE] });
    for (const how of ["x-api-key", "bearer"] as const) {
      const { user } = await stack
        .client(UserService, res.secret, how)
        .getUser({ userId: tenant.adminUserId });
      expect(user?.userId).toBe(tenant.adminUserId);
    }
  });

  it("refuses calls without a key, with garbage, and with an unknown key", async () => {
    const unknown = (await generateApiKey()).secret;
    for (const key of [undefined, "garbage", `${tenant.adminKey}x`, unknown]) {
      await expectCode(stack.client(UserService, key).listUsers({}), Code.Unauthenticated);
      await expectCode(stack.client(ApiKeyService, key).listApiKeys({}), Code.Unauthenticated);
      await expectCode(stack.client(TenantService, key).listTenants({}), Code.Unauthenticated);
    }
    await expectCode(
      stack.client(UserService, undefined).listUsers({}),
      Code.Unauthenticated,
      /API key is required/,
    );
  });

  it("refuses revoked and expired keys", async () => {
    const api = stack.client(ApiKeyService, tenant.adminKey);
    const revoked = await api.createApiKey({ name: "revoked", scopes: [ApiKeyScope.MANAGE] });
    await api.revokeApiKey({ keyId: revoked.apiKey?.keyId as string });
    await expectCode(stack.client(UserService, revoked.secret).listUsers({}), Code.Unauthenticated);

    const expiring = await api.createApiKey({ name: "expiring", scopes: [ApiKeyScope.MANAGE] });
    await stack.client(UserService, expiring.secret).listUsers({});
    await stack.owner.query(
      "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
      [expiring.apiKey?.keyId],
    );
    await expectCode(
      stack.client(UserService, expiring.secret, "bearer").listUsers({}),
      Code.Unauthenticated,
    );
  });

  it("refuses every key of a suspended tenant and of a disabled user", async () => {
    const t = await stack.createTenant();
    const viewer = await userWithKey(stack, t.adminKey, UserRole.VIEWER);
    const platform = stack.client(TenantService, stack.platformKey);
    await platform.updateTenant({
      tenant: { tenantId: t.tenantId, status: TenantStatus.SUSPENDED },
      updateMask: { paths: ["status"] },
    });
    for (const key of [t.adminKey, viewer.key]) {
      await expectCode(stack.client(UserService, key).listUsers({}), Code.Unauthenticated);
    }
    await platform.updateTenant({
      tenant: { tenantId: t.tenantId, status: TenantStatus.ACTIVE },
      updateMask: { paths: ["status"] },
    });
    await stack
      .client(UserService, t.adminKey)
      .updateUser({ userId: viewer.userId, disabled: true, updateMask: { paths: ["disabled"] } });
    await expectCode(stack.client(UserService, viewer.key).listUsers({}), Code.Unauthenticated);
    await stack.client(UserService, t.adminKey).listUsers({});
  });
});

describe("which caller may call which service", () => {
  it("a check-only key cannot call the management API", async () => {
    const check = await userWithKey(stack, tenant.adminKey, UserRole.ADMIN, [ApiKeyScope.CHECK]);
    await expectCode(
      stack.client(UserService, check.key).listUsers({}),
      Code.PermissionDenied,
      /check scope/,
    );
    await expectCode(
      stack.client(ApiKeyService, check.key).listApiKeys({}),
      Code.PermissionDenied,
      /check scope/,
    );
  });

  it("the platform key manages tenants only", async () => {
    await expectCode(
      stack.client(UserService, stack.platformKey).listUsers({}),
      Code.PermissionDenied,
    );
    await expectCode(
      stack.client(ApiKeyService, stack.platformKey).listApiKeys({}),
      Code.PermissionDenied,
    );
    await stack.client(TenantService, stack.platformKey).listTenants({});
  });

  it("a tenant key, even an admin's, cannot call TenantService", async () => {
    const tenants = stack.client(TenantService, tenant.adminKey);
    await expectCode(tenants.listTenants({}), Code.PermissionDenied, /platform operator/);
    await expectCode(tenants.getTenant({ tenantId: tenant.tenantId }), Code.PermissionDenied);
    await expectCode(
      tenants.createTenant({ name: "x", slug: "sneaky", adminEmail: "x@example.com" }),
      Code.PermissionDenied,
    );
  });

  it("follows the role matrix for users and keys", async () => {
    const keys: Record<string, string> = {
      admin: tenant.adminKey,
      policy_author: (await userWithKey(stack, tenant.adminKey, UserRole.POLICY_AUTHOR)).key,
      viewer: (await userWithKey(stack, tenant.adminKey, UserRole.VIEWER)).key,
    };
    const expected = {
      "users.list": { admin: true, policy_author: true, viewer: true },
      "users.create": { admin: true, policy_author: false, viewer: false },
      "keys.list": { admin: true, policy_author: false, viewer: false },
      "keys.create": { admin: true, policy_author: false, viewer: false },
    } as const;
    let n = 0;
    const calls: Record<keyof typeof expected, (key: string) => Promise<unknown>> = {
      "users.list": (key) => stack.client(UserService, key).listUsers({}),
      "users.create": (key) =>
        stack
          .client(UserService, key)
          .createUser({ email: `m${n++}@example.com`, role: UserRole.VIEWER }),
      "keys.list": (key) => stack.client(ApiKeyService, key).listApiKeys({}),
      "keys.create": (key) =>
        stack.client(ApiKeyService, key).createApiKey({ name: "m", scopes: [ApiKeyScope.CHECK] }),
    };
    for (const [call, byRole] of Object.entries(expected)) {
      for (const [role, allowed] of Object.entries(byRole)) {
        const run = calls[call as keyof typeof expected](keys[role] as string);
        if (allowed) await run;
        else await expectCode(run, Code.PermissionDenied, new RegExp(`role ${role}`));
      }
    }
  });

  it("a tenant admin cannot see or change another tenant's users and keys", async () => {
    const t = await stack.createTenant();
    const { rows } = await stack.owner.query("SELECT id FROM api_keys WHERE tenant_id = $1", [
      t.tenantId,
    ]);
    const foreignKey = rows[0].id as string;
    const users = stack.client(UserService, tenant.adminKey);
    const keys = stack.client(ApiKeyService, tenant.adminKey);
    await expectCode(users.getUser({ userId: t.adminUserId }), Code.NotFound);
    await expectCode(
      users.updateUser({
        userId: t.adminUserId,
        disabled: true,
        updateMask: { paths: ["disabled"] },
      }),
      Code.NotFound,
    );
    await expectCode(keys.getApiKey({ keyId: foreignKey }), Code.NotFound);
    await expectCode(keys.revokeApiKey({ keyId: foreignKey }), Code.NotFound);
    expect((await users.listUsers({ pageSize: 1000 })).users.map((u) => u.userId)).not.toContain(
      t.adminUserId,
    );
    expect((await keys.listApiKeys({ pageSize: 1000 })).apiKeys.map((k) => k.keyId)).not.toContain(
      foreignKey,
    );
    // The other tenant still works untouched.
    await stack.client(UserService, t.adminKey).getUser({ userId: t.adminUserId });
  });
});

describe("the audit trail names who stands behind a key", () => {
  it("records the key's creator when an admin acts through a key minted for another admin", async () => {
    const t = await stack.createTenant();
    // Admin A (the tenant's first admin) creates admin B and a manage key acting as B.
    const b = await userWithKey(stack, t.adminKey, UserRole.ADMIN);
    // Whoever holds B's key creates a user: the row must not name B alone.
    const { user } = await stack
      .client(UserService, b.key)
      .createUser({ email: "made-by-b@example.com", role: UserRole.VIEWER });
    const [row] = await auditRows(stack, t.tenantId, user?.userId);
    expect(row).toMatchObject({ action: "user.created", actor_type: "api_key", actor_id: b.keyId });
    expect(row?.details.actor).toEqual({
      user_id: b.userId,
      role: "admin",
      key_id: b.keyId,
      key_created_by: t.adminUserId,
    });
    // The entry's own fields are kept beside it.
    expect(row?.details).toMatchObject({ email: "made-by-b@example.com", user_role: "viewer" });

    // A's first key was made by the platform operator: no creator.
    const [keyRow] = await auditRows(stack, t.tenantId, b.keyId);
    const { rows } = await stack.owner.query(
      "SELECT id FROM api_keys WHERE tenant_id = $1 AND user_id = $2",
      [t.tenantId, t.adminUserId],
    );
    expect(keyRow?.details.actor).toEqual({
      user_id: t.adminUserId,
      role: "admin",
      key_id: rows[0].id,
      key_created_by: null,
    });
  });
});
