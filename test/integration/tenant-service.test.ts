import { createHash, randomBytes, randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { type Client, Code } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FulcrumError } from "../../core/errors/fulcrum-error.js";
import { tenantService } from "../../functions/src/services/tenant-service.js";
import { ApiKeyScope } from "../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import { TenantStatus } from "../../proto/gen/fulcrum/tenant/v1/tenant_pb.js";
import {
  GetTenantRequestSchema,
  TenantService,
} from "../../proto/gen/fulcrum/tenant/v1/tenant_service_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import { UserService } from "../../proto/gen/fulcrum/tenant/v1/user_service_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { auditRows, expectCode, tableCounts } from "../harness/management-helpers.js";

// TenantService over the real stack: the platform key, the platform connection
// (fulcrum_platform: the application role's grants plus `tenants`, which the application
// role may not touch; no superuser, no BYPASSRLS), one transaction per CreateTenant.
let stack: FunctionsStack;
let tenantsApi: Client<typeof TenantService>;
const slug = () => `t-${randomBytes(5).toString("hex")}`;

beforeAll(async () => {
  stack = await startFunctionsStack();
  tenantsApi = stack.client(TenantService, stack.platformKey);
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

describe("CreateTenant", () => {
  it("creates the tenant, its first admin and a check+manage key shown once", async () => {
    const s = slug();
    const res = await tenantsApi.createTenant({
      name: "Acme",
      slug: s,
      adminEmail: "Owner@Acme.Example",
      adminDisplayName: "Owner",
    });
    const tenant = res.tenant;
    expect(tenant).toMatchObject({ name: "Acme", slug: s, status: TenantStatus.ACTIVE });
    expect(res.adminUser).toMatchObject({
      tenantId: tenant?.tenantId,
      email: "owner@acme.example",
      displayName: "Owner",
      role: UserRole.ADMIN,
      disabled: false,
    });
    expect(res.apiKey?.scopes.sort()).toEqual([ApiKeyScope.CHECK, ApiKeyScope.MANAGE]);
    expect(res.apiKey?.userId).toBe(res.adminUser?.userId);
    expect(res.secret).toMatch(/^fk_[A-Za-z0-9_-]{43}$/);
    expect(res.apiKey?.prefix).toBe(res.secret.slice(0, 11));

    // Only the hash and the prefix are stored; the secret appears nowhere in the database.
    const { rows } = await stack.owner.query(
      "SELECT key_hash, prefix, scopes, user_id FROM api_keys WHERE tenant_id = $1",
      [tenant?.tenantId],
    );
    expect(rows).toEqual([
      {
        key_hash: createHash("sha256").update(res.secret).digest("hex"),
        prefix: res.secret.slice(0, 11),
        scopes: ["check", "manage"],
        user_id: res.adminUser?.userId,
      },
    ]);
    const dump = await stack.owner.query(
      `SELECT (SELECT json_agg(k)::text FROM api_keys k) || (SELECT json_agg(e)::text FROM events e) AS t`,
    );
    expect(dump.rows[0].t).not.toContain(res.secret);
    expect(dump.rows[0].t).not.toContain(res.secret.slice(11));

    // The key works at once, as x-api-key and as Bearer.
    for (const how of ["x-api-key", "bearer"] as const) {
      const { users } = await stack.client(UserService, res.secret, how).listUsers({});
      expect(users.map((u) => u.userId)).toEqual([res.adminUser?.userId]);
    }
  });

  it("records tenant.created, user.created and api_key.created by the platform operator", async () => {
    const res = await tenantsApi.createTenant({
      name: "Audited",
      slug: slug(),
      adminEmail: "a@b.example",
    });
    const tenantId = res.tenant?.tenantId as string;
    const rows = await auditRows(stack, tenantId);
    expect(rows.map((r) => r.action).sort()).toEqual([
      "api_key.created",
      "tenant.created",
      "user.created",
    ]);
    for (const row of rows) {
      expect(row).toMatchObject({ actor_type: "system", actor_id: "platform_admin" });
      expect(JSON.stringify(row.details)).not.toContain(res.secret);
    }
    const byAction = Object.fromEntries(rows.map((r) => [r.action, r]));
    expect(byAction["tenant.created"]).toMatchObject({
      target_type: "tenant",
      target_id: tenantId,
    });
    expect(byAction["user.created"]).toMatchObject({
      target_id: res.adminUser?.userId,
      details: { email: "a@b.example", user_role: "admin" },
    });
    expect(byAction["api_key.created"]).toMatchObject({
      target_id: res.apiKey?.keyId,
      details: { prefix: res.apiKey?.prefix, scopes: ["check", "manage"] },
    });
    expect(Object.keys(byAction["api_key.created"]?.details ?? {})).not.toContain("key_hash");
  });

  it("refuses a taken slug with AlreadyExists and leaves nothing behind", async () => {
    const s = slug();
    await tenantsApi.createTenant({ name: "First", slug: s, adminEmail: "first@example.com" });
    const before = await tableCounts(stack);
    await expectCode(
      tenantsApi.createTenant({ name: "Second", slug: s, adminEmail: "second@example.com" }),
      Code.AlreadyExists,
      new RegExp(`a tenant with slug "${s}" already exists`),
    );
    expect(await tableCounts(stack)).toEqual(before);
    const { rows } = await stack.owner.query(
      "SELECT 1 FROM users WHERE email = 'second@example.com'",
    );
    expect(rows).toEqual([]);
  });

  it("validates the request", async () => {
    const ok = { name: "X", slug: slug(), adminEmail: "x@example.com" };
    await expectCode(
      tenantsApi.createTenant({ ...ok, slug: "Bad_Slug" }),
      Code.InvalidArgument,
      /slug/,
    );
    await expectCode(tenantsApi.createTenant({ ...ok, name: "" }), Code.InvalidArgument, /name/);
    await expectCode(
      tenantsApi.createTenant({ ...ok, adminEmail: "nope" }),
      Code.InvalidArgument,
      /admin_email/,
    );
    await expectCode(
      tenantsApi.createTenant({ ...ok, adminEmail: "" }),
      Code.InvalidArgument,
      /admin_email/,
    );
  });
});

describe("GetTenant", () => {
  it("answers a tenant, NotFound for an unknown id, InvalidArgument for a malformed one", async () => {
    const t = await stack.createTenant();
    const { tenant } = await tenantsApi.getTenant({ tenantId: t.tenantId });
    expect(tenant).toMatchObject({ tenantId: t.tenantId, status: TenantStatus.ACTIVE });
    await expectCode(tenantsApi.getTenant({ tenantId: randomUUID() }), Code.NotFound, /not found/);
    await expectCode(tenantsApi.getTenant({ tenantId: "nope" }), Code.InvalidArgument, /tenant_id/);
    await expectCode(tenantsApi.getTenant({ tenantId: "" }), Code.InvalidArgument, /tenant_id/);
  });

  it("connects as fulcrum_platform, never as a superuser or a BYPASSRLS role", async () => {
    const db = stack.deps.platformDb;
    if (!db) throw new Error("the stack configures the platform connection");
    const { rows } = await db.execute(
      sql`select current_user as name, rolsuper, rolbypassrls from pg_roles where rolname = current_user`,
    );
    expect(rows).toEqual([{ name: "fulcrum_platform", rolsuper: false, rolbypassrls: false }]);
    expect(stack.config.databasePlatformUrl).toMatch(/^postgres:\/\/fulcrum_platform@/);
  });

  it("answers FailedPrecondition when the platform database is not configured", async () => {
    const service = tenantService({ ...stack.deps, platformDb: undefined });
    const call = service.getTenant?.(
      create(GetTenantRequestSchema, { tenantId: randomUUID() }),
      {} as never,
    );
    await expect(call).rejects.toThrow(FulcrumError);
    await expect(call).rejects.toMatchObject({
      kind: "FailedPrecondition",
      message: "the tenant service is not configured (DATABASE_PLATFORM_URL)",
    });
  });
});

describe("ListTenants", () => {
  it("pages oldest first with opaque tokens, without repeats or gaps", async () => {
    for (let i = 0; i < 3; i++) await stack.createTenant();
    const all = (await tenantsApi.listTenants({ pageSize: 1000 })).tenants.map((t) => t.tenantId);
    expect(all.length).toBeGreaterThanOrEqual(5);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await tenantsApi.listTenants({ pageSize: 2, pageToken });
      expect(page.tenants.length).toBeLessThanOrEqual(2);
      seen.push(...page.tenants.map((t) => t.tenantId));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(all);
    const created = (await tenantsApi.listTenants({ pageSize: 1000 })).tenants.map((t) =>
      t.createdAt ? Number(t.createdAt.seconds) * 1e9 + t.createdAt.nanos : 0,
    );
    expect(created).toEqual([...created].sort((a, b) => a - b));
  });

  it("filters by status", async () => {
    const t = await stack.createTenant();
    await tenantsApi.updateTenant({
      tenant: { tenantId: t.tenantId, status: TenantStatus.SUSPENDED },
      updateMask: { paths: ["status"] },
    });
    const suspended = await tenantsApi.listTenants({ status: TenantStatus.SUSPENDED });
    expect(suspended.tenants.map((x) => x.tenantId)).toContain(t.tenantId);
    expect(suspended.tenants.every((x) => x.status === TenantStatus.SUSPENDED)).toBe(true);
    const active = await tenantsApi.listTenants({ status: TenantStatus.ACTIVE, pageSize: 1000 });
    expect(active.tenants.map((x) => x.tenantId)).not.toContain(t.tenantId);
  });

  it("refuses malformed page tokens and tokens of another filter", async () => {
    for (const pageToken of [
      "garbage!",
      "e30",
      Buffer.from('{"s":"tenants?status=","t":"x","i":"y"}').toString("base64url"),
    ]) {
      await expectCode(
        tenantsApi.listTenants({ pageToken }),
        Code.InvalidArgument,
        /page_token is not valid/,
      );
    }
    const { nextPageToken } = await tenantsApi.listTenants({ pageSize: 1 });
    expect(nextPageToken).not.toBe("");
    await expectCode(
      tenantsApi.listTenants({ pageToken: nextPageToken, status: TenantStatus.ACTIVE }),
      Code.InvalidArgument,
      /page_token is not valid/,
    );
  });
});

describe("UpdateTenant", () => {
  it("renames, suspends (its keys stop authenticating) and reactivates, auditing each change", async () => {
    const t = await stack.createTenant();
    const users = stack.client(UserService, t.adminKey);
    const original = (await tenantsApi.getTenant({ tenantId: t.tenantId })).tenant?.name;
    const renamed = await tenantsApi.updateTenant({
      tenant: { tenantId: t.tenantId, name: "Renamed", status: TenantStatus.SUSPENDED },
      updateMask: { paths: ["name"] },
    });
    expect(renamed.tenant).toMatchObject({ name: "Renamed", status: TenantStatus.ACTIVE });
    await users.listUsers({});

    await tenantsApi.updateTenant({
      tenant: { tenantId: t.tenantId, status: TenantStatus.SUSPENDED },
      updateMask: { paths: ["status"] },
    });
    await expectCode(users.listUsers({}), Code.Unauthenticated);
    await tenantsApi.updateTenant({
      tenant: { tenantId: t.tenantId, status: TenantStatus.ACTIVE },
      updateMask: { paths: ["status"] },
    });
    await users.listUsers({});

    const updates = (await auditRows(stack, t.tenantId, t.tenantId)).filter(
      (r) => r.action === "tenant.updated",
    );
    expect(updates.map((r) => r.details.changes)).toEqual([
      { name: { from: original, to: "Renamed" } },
      { status: { from: "active", to: "suspended" } },
      { status: { from: "suspended", to: "active" } },
    ]);
    expect(updates.every((r) => r.actor_type === "system" && r.actor_id === "platform_admin")).toBe(
      true,
    );
  });

  it("writes nothing when nothing changes", async () => {
    const t = await stack.createTenant();
    const before = await auditRows(stack, t.tenantId);
    const { tenant } = await tenantsApi.getTenant({ tenantId: t.tenantId });
    const res = await tenantsApi.updateTenant({
      tenant: { tenantId: t.tenantId, name: tenant?.name ?? "", status: TenantStatus.ACTIVE },
      updateMask: { paths: ["name", "status"] },
    });
    expect(res.tenant?.updatedAt).toEqual(tenant?.updatedAt);
    expect(await auditRows(stack, t.tenantId)).toEqual(before);
  });

  it("refuses unknown and malformed ids, bad masks and empty values", async () => {
    const mask = { paths: ["name"] };
    await expectCode(
      tenantsApi.updateTenant({ tenant: { tenantId: randomUUID(), name: "x" }, updateMask: mask }),
      Code.NotFound,
    );
    await expectCode(
      tenantsApi.updateTenant({ tenant: { tenantId: "nope", name: "x" }, updateMask: mask }),
      Code.InvalidArgument,
      /tenant_id/,
    );
    const t = await stack.createTenant();
    await expectCode(
      tenantsApi.updateTenant({
        tenant: { tenantId: t.tenantId, name: "x" },
        updateMask: { paths: ["slug"] },
      }),
      Code.InvalidArgument,
    );
    await expectCode(
      tenantsApi.updateTenant({ tenant: { tenantId: t.tenantId }, updateMask: mask }),
      Code.InvalidArgument,
      /name/,
    );
    await expectCode(
      tenantsApi.updateTenant({
        tenant: { tenantId: t.tenantId },
        updateMask: { paths: ["status"] },
      }),
      Code.InvalidArgument,
      /status/,
    );
  });
});
