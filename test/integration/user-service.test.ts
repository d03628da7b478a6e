import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyScope } from "../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import { ApiKeyService } from "../../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import { UserService } from "../../proto/gen/fulcrum/tenant/v1/user_service_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { auditRows, expectCode, userWithKey } from "../harness/management-helpers.js";

// UserService over the real stack: the application role, row-level security per tenant,
// the caller's tenant taken from its key.
let stack: FunctionsStack;
type Tenant = Awaited<ReturnType<FunctionsStack["createTenant"]>>;
let tenant: Tenant;
let other: Tenant;
const usersOf = (key: string) => stack.client(UserService, key);

beforeAll(async () => {
  stack = await startFunctionsStack();
  tenant = await stack.createTenant();
  other = await stack.createTenant();
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

describe("CreateUser", () => {
  it("stores the email lower-case, refuses a duplicate in any case and audits user.created", async () => {
    const api = usersOf(tenant.adminKey);
    const { user } = await api.createUser({
      email: "Mixed.Case@Example.COM",
      displayName: "Mixed",
      role: UserRole.POLICY_AUTHOR,
    });
    expect(user).toMatchObject({
      tenantId: tenant.tenantId,
      email: "mixed.case@example.com",
      displayName: "Mixed",
      role: UserRole.POLICY_AUTHOR,
      disabled: false,
    });
    await expectCode(
      api.createUser({ email: "MIXED.case@example.com", role: UserRole.VIEWER }),
      Code.AlreadyExists,
      /a user with email "mixed.case@example.com" already exists/,
    );
    // The same address in another tenant is another user.
    await usersOf(other.adminKey).createUser({
      email: "mixed.case@example.com",
      role: UserRole.VIEWER,
    });

    const [row] = await auditRows(stack, tenant.tenantId, user?.userId);
    const { rows: key } = await stack.owner.query(
      "SELECT id FROM api_keys WHERE tenant_id = $1 AND user_id = $2",
      [tenant.tenantId, tenant.adminUserId],
    );
    expect(row).toMatchObject({
      action: "user.created",
      actor_type: "api_key",
      actor_id: key[0].id,
      target_type: "user",
      details: {
        email: "mixed.case@example.com",
        user_role: "policy_author",
        // Who did it: recordAudit adds the caller's user and role under `actor`.
        actor: { user_id: tenant.adminUserId, role: "admin" },
      },
    });
  });

  it("validates the request", async () => {
    const api = usersOf(tenant.adminKey);
    await expectCode(
      api.createUser({ email: "nope", role: UserRole.VIEWER }),
      Code.InvalidArgument,
      /email/,
    );
    await expectCode(api.createUser({ email: "a@example.com" }), Code.InvalidArgument, /role/);
    await expectCode(
      api.createUser({ email: "a@example.com", role: 99 as UserRole }),
      Code.InvalidArgument,
      /role/,
    );
  });
});

describe("GetUser", () => {
  it("answers the tenant's users only", async () => {
    const api = usersOf(tenant.adminKey);
    const { user } = await api.getUser({ userId: tenant.adminUserId });
    expect(user).toMatchObject({ userId: tenant.adminUserId, role: UserRole.ADMIN });
    await expectCode(api.getUser({ userId: randomUUID() }), Code.NotFound, /not found/);
    await expectCode(api.getUser({ userId: other.adminUserId }), Code.NotFound, /not found/);
    await expectCode(api.getUser({ userId: "nope" }), Code.InvalidArgument, /user_id/);
  });
});

describe("ListUsers", () => {
  it("pages oldest first, filters by role, leaves disabled users out unless asked", async () => {
    const t = await stack.createTenant();
    const api = usersOf(t.adminKey);
    const made: string[] = [t.adminUserId];
    for (let i = 0; i < 4; i++) {
      const { user } = await api.createUser({
        email: `u${i}@example.com`,
        role: i % 2 ? UserRole.VIEWER : UserRole.POLICY_AUTHOR,
      });
      made.push(user?.userId as string);
    }
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await api.listUsers({ pageSize: 2, pageToken });
      seen.push(...page.users.map((u) => u.userId));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(made);

    const viewers = await api.listUsers({ role: UserRole.VIEWER });
    expect(viewers.users.map((u) => u.userId)).toEqual([made[2], made[4]]);

    await api.updateUser({ userId: made[2], disabled: true, updateMask: { paths: ["disabled"] } });
    expect((await api.listUsers({})).users.map((u) => u.userId)).not.toContain(made[2]);
    const all = await api.listUsers({ includeDisabled: true });
    expect(all.users.find((u) => u.userId === made[2])?.disabled).toBe(true);
  });

  it("refuses malformed page tokens and a token of another filter", async () => {
    const api = usersOf(tenant.adminKey);
    await expectCode(
      api.listUsers({ pageToken: "%%%" }),
      Code.InvalidArgument,
      /page_token is not valid/,
    );
    await expectCode(
      api.listUsers({ pageToken: "bm9wZQ" }),
      Code.InvalidArgument,
      /page_token is not valid/,
    );
    const { nextPageToken } = await api.listUsers({ pageSize: 1 });
    expect(nextPageToken).not.toBe("");
    await expectCode(
      api.listUsers({ pageToken: nextPageToken, role: UserRole.ADMIN }),
      Code.InvalidArgument,
      /page_token is not valid/,
    );
  });
});

describe("UpdateUser", () => {
  it("changes the masked fields only and audits what changed", async () => {
    const api = usersOf(tenant.adminKey);
    const { user } = await api.createUser({
      email: "upd@example.com",
      displayName: "Before",
      role: UserRole.VIEWER,
    });
    const id = user?.userId as string;
    const res = await api.updateUser({
      userId: id,
      displayName: "After",
      role: UserRole.ADMIN,
      updateMask: { paths: ["display_name"] },
    });
    expect(res.user).toMatchObject({ displayName: "After", role: UserRole.VIEWER });
    await api.updateUser({
      userId: id,
      role: UserRole.POLICY_AUTHOR,
      updateMask: { paths: ["role"] },
    });
    // A no-op writes no audit row.
    await api.updateUser({
      userId: id,
      role: UserRole.POLICY_AUTHOR,
      updateMask: { paths: ["role"] },
    });
    const updates = (await auditRows(stack, tenant.tenantId, id)).filter(
      (r) => r.action === "user.updated",
    );
    expect(updates.map((r) => r.details.changes)).toEqual([
      { display_name: { from: "Before", to: "After" } },
      { role: { from: "viewer", to: "policy_author" } },
    ]);
    expect(updates.every((r) => r.actor_type === "api_key")).toBe(true);
  });

  it("refuses unknown, foreign and malformed ids and bad masks", async () => {
    const api = usersOf(tenant.adminKey);
    const mask = { paths: ["display_name"] };
    await expectCode(api.updateUser({ userId: randomUUID(), updateMask: mask }), Code.NotFound);
    await expectCode(
      api.updateUser({ userId: other.adminUserId, updateMask: mask }),
      Code.NotFound,
    );
    await expectCode(
      api.updateUser({ userId: "x", updateMask: mask }),
      Code.InvalidArgument,
      /user_id/,
    );
    await expectCode(
      api.updateUser({ userId: tenant.adminUserId, updateMask: { paths: ["email"] } }),
      Code.InvalidArgument,
    );
    await expectCode(
      api.updateUser({ userId: tenant.adminUserId, updateMask: { paths: ["role"] } }),
      Code.InvalidArgument,
      /role/,
    );
    // The other tenant's user is untouched.
    const { rows } = await stack.owner.query("SELECT display_name FROM users WHERE id = $1", [
      other.adminUserId,
    ]);
    expect(rows[0].display_name).toBe("Admin");
  });

  it("disabling a user stops their keys; enabling restores them", async () => {
    const viewer = await userWithKey(stack, tenant.adminKey, UserRole.VIEWER);
    const api = usersOf(tenant.adminKey);
    await usersOf(viewer.key).listUsers({});
    await api.updateUser({
      userId: viewer.userId,
      disabled: true,
      updateMask: { paths: ["disabled"] },
    });
    await expectCode(usersOf(viewer.key).listUsers({}), Code.Unauthenticated);
    await api.updateUser({
      userId: viewer.userId,
      disabled: false,
      updateMask: { paths: ["disabled"] },
    });
    await usersOf(viewer.key).listUsers({});
  });

  it("the last active admin cannot demote or disable themselves, nor lock the tenant out", async () => {
    const t = await stack.createTenant();
    const api = usersOf(t.adminKey);
    const self = { userId: t.adminUserId };
    await expectCode(
      api.updateUser({ ...self, role: UserRole.VIEWER, updateMask: { paths: ["role"] } }),
      Code.FailedPrecondition,
      /without an active admin/,
    );
    await expectCode(
      api.updateUser({ ...self, disabled: true, updateMask: { paths: ["disabled"] } }),
      Code.FailedPrecondition,
      /without an active admin/,
    );
    // A second admin without a manage key does not help: nobody could manage the tenant.
    const { user: second } = await api.createUser({
      email: "second@example.com",
      role: UserRole.ADMIN,
    });
    await expectCode(
      api.updateUser({ ...self, role: UserRole.VIEWER, updateMask: { paths: ["role"] } }),
      Code.FailedPrecondition,
      /usable manage API key/,
    );
    // With a manage key for the second admin, the first may step down.
    const secondKey = await stack
      .client(ApiKeyService, t.adminKey)
      .createApiKey({ name: "second", scopes: [ApiKeyScope.MANAGE], userId: second?.userId });
    const res = await api.updateUser({
      ...self,
      role: UserRole.VIEWER,
      updateMask: { paths: ["role"] },
    });
    expect(res.user?.role).toBe(UserRole.VIEWER);
    // The demoted user's key now acts as a viewer.
    await expectCode(
      api.createUser({ email: "late@example.com", role: UserRole.VIEWER }),
      Code.PermissionDenied,
      /role viewer may not users write/,
    );
    // And the second admin is now the last one.
    await expectCode(
      usersOf(secondKey.secret).updateUser({
        userId: second?.userId as string,
        disabled: true,
        updateMask: { paths: ["disabled"] },
      }),
      Code.FailedPrecondition,
    );
  });
  it("two admins demoting each other at once cannot both succeed", async () => {
    const t = await stack.createTenant();
    const b = await userWithKey(stack, t.adminKey, UserRole.ADMIN);
    const demote = (key: string, userId: string) =>
      usersOf(key).updateUser({ userId, role: UserRole.VIEWER, updateMask: { paths: ["role"] } });
    const results = await Promise.allSettled([
      demote(t.adminKey, b.userId),
      demote(b.key, t.adminUserId),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const failed = results.find((r) => r.status === "rejected");
    await expectCode(Promise.reject(failed?.reason), Code.FailedPrecondition);
    const { rows } = await stack.owner.query(
      "SELECT count(*)::int AS n FROM users WHERE tenant_id = $1 AND role = 'admin' AND disabled_at IS NULL",
      [t.tenantId],
    );
    expect(rows[0].n).toBe(1);
  });
});

describe("permissions", () => {
  it("viewers and policy authors read users but cannot change them; admins can", async () => {
    for (const role of [UserRole.VIEWER, UserRole.POLICY_AUTHOR]) {
      const u = await userWithKey(stack, tenant.adminKey, role);
      const api = usersOf(u.key);
      expect((await api.listUsers({})).users.length).toBeGreaterThan(1);
      expect((await api.getUser({ userId: u.userId })).user?.role).toBe(role);
      await expectCode(
        api.createUser({ email: "x@example.com", role: UserRole.ADMIN }),
        Code.PermissionDenied,
      );
      await expectCode(
        api.updateUser({ userId: u.userId, role: UserRole.ADMIN, updateMask: { paths: ["role"] } }),
        Code.PermissionDenied,
      );
    }
    const admin = await userWithKey(stack, tenant.adminKey, UserRole.ADMIN);
    await usersOf(admin.key).createUser({ email: "by-admin@example.com", role: UserRole.VIEWER });
  });
});
