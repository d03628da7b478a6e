import { createHash, randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PolicyStatus } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyVersionStatus } from "../../proto/gen/fulcrum/policy/v1/policy_version_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import {
  BROKEN_REGO,
  DENY_DELETE_REGO,
  failure,
  must,
  toolRule,
  uniqueName,
  WARN_ALWAYS_REGO,
} from "../harness/policy-fixtures.js";
import { policyManagementHelpers } from "../harness/policy-management-helpers.js";

// PolicyService's management methods over the real stack: HTTP → functions app → Neon
// driver → WS proxy → PostgreSQL (RLS per tenant), compiled by the real OPA. Creating and
// updating policies and their versions; getting, ids, deleting and listing are in
// policy-get-list-delete.test.ts.
let stack: FunctionsStack;

beforeAll(async () => {
  stack = await startFunctionsStack();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

const { tenant, count, auditActions } = policyManagementHelpers(() => stack);

describe("CreatePolicy", () => {
  it("creates a DRAFT policy and version 1 from Rego, with hashes and an audit row", async () => {
    const t = await tenant();
    const res = await t.policies.createPolicy({
      policy: {
        name: uniqueName("rego"),
        description: "blocks deletes",
        tags: ["a"],
        regoSource: DENY_DELETE_REGO,
      },
      changeSummary: "first",
    });
    const policy = must(res.policy);
    const version = must(res.version);
    expect(policy.status).toBe(PolicyStatus.DRAFT);
    expect(policy.tenantId).toBe(t.tenantId);
    expect(policy.latestVersion).toBe(1);
    expect(policy.activeVersion).toBe(0);
    expect(policy.createdBy).toBe(t.adminUserId);
    expect(policy.regoSource).toBe(DENY_DELETE_REGO);
    expect(version.version).toBe(1);
    expect(version.status).toBe(PolicyVersionStatus.DRAFT);
    expect(version.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(version.changeSummary).toBe("first");

    const { rows } = await stack.owner.query(
      "SELECT sha256, wasm, wasm_sha256, source_kind, compile_status, entrypoint FROM policy_versions WHERE policy_id = $1",
      [policy.policyId],
    );
    expect(rows).toHaveLength(1);
    const row = rows[0] as {
      sha256: string;
      wasm: Buffer;
      wasm_sha256: string;
      source_kind: string;
      compile_status: string;
      entrypoint: string;
    };
    expect(row.sha256).toBe(version.sha256);
    expect(createHash("sha256").update(row.wasm).digest("hex")).toBe(row.wasm_sha256);
    expect(row).toMatchObject({
      source_kind: "rego",
      compile_status: "COMPILED",
      entrypoint: "fulcrum/entry/result",
    });

    const audit = await auditActions(t.tenantId, policy.policyId);
    expect(audit.map((a) => a.action)).toEqual(["policy.created"]);
    expect(audit[0]?.details).toMatchObject({
      version: 1,
      sha256: version.sha256,
      wasm_sha256: row.wasm_sha256,
    });
  });

  it("creates a policy from rules: generated Rego, assigned rule ids, the same hash for the same definition", async () => {
    const t = await tenant();
    const definition = { rules: [toolRule("delete_user")], enforcement: 0 };
    const a = await t.policies.createPolicy({
      policy: { name: uniqueName("rules"), ...definition },
    });
    const b = await t.policies.createPolicy({
      policy: { name: uniqueName("rules"), ...definition },
    });
    expect(a.version?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(a.version?.sha256).toBe(b.version?.sha256);
    expect(a.policy?.rules[0]?.ruleId).toBe("rule-1");
    expect(a.policy?.enforcement).toBe(3); // BLOCK by default
    const { rows } = await stack.owner.query(
      "SELECT source_kind, rego_source, rules FROM policy_versions WHERE policy_id = $1",
      [a.policy?.policyId],
    );
    const row = rows[0] as { source_kind: string; rego_source: string; rules: unknown[] };
    expect(row.source_kind).toBe("rules");
    expect(row.rego_source).toContain("package fulcrum.policy");
    expect(row.rules).toHaveLength(1);
  });

  it("refuses Rego that does not compile with positions, and writes nothing", async () => {
    const t = await tenant();
    const error = await failure(
      t.policies.createPolicy({ policy: { name: uniqueName("broken"), regoSource: BROKEN_REGO } }),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/rego_source: \d+:\d+: rego_/);
    expect(await count("policies WHERE tenant_id = $1", [t.tenantId])).toBe(0);
    expect(await count("policy_versions WHERE tenant_id = $1", [t.tenantId])).toBe(0);
    expect(
      await count("events WHERE tenant_id = $1 AND action LIKE 'policy.%'", [t.tenantId]),
    ).toBe(0);
  });

  it("refuses a module over 256 KiB, both sources, and no source", async () => {
    const t = await tenant();
    const big = `package fulcrum.policy\n\n# ${"x".repeat(262_144)}\n`;
    const tooBig = await failure(
      t.policies.createPolicy({ policy: { name: uniqueName("big"), regoSource: big } }),
    );
    expect(tooBig.code).toBe(Code.InvalidArgument);
    const both = await failure(
      t.policies.createPolicy({
        policy: { name: uniqueName("both"), regoSource: WARN_ALWAYS_REGO, rules: [toolRule("x")] },
      }),
    );
    expect(both.code).toBe(Code.InvalidArgument);
    const none = await failure(t.policies.createPolicy({ policy: { name: uniqueName("none") } }));
    expect(none.code).toBe(Code.InvalidArgument);
    expect(none.rawMessage).toMatch(/rules/);
    const inactive = await failure(
      t.policies.createPolicy({
        policy: {
          name: uniqueName("s"),
          regoSource: WARN_ALWAYS_REGO,
          status: PolicyStatus.INACTIVE,
        },
      }),
    );
    expect(inactive.code).toBe(Code.InvalidArgument);
    expect(await count("policies WHERE tenant_id = $1", [t.tenantId])).toBe(0);
  });

  it("refuses a duplicate name with AlreadyExists", async () => {
    const t = await tenant();
    const name = uniqueName("dup");
    await t.policies.createPolicy({ policy: { name, regoSource: WARN_ALWAYS_REGO } });
    const error = await failure(
      t.policies.createPolicy({ policy: { name, regoSource: WARN_ALWAYS_REGO } }),
    );
    expect(error.code).toBe(Code.AlreadyExists);
    expect(error.rawMessage).toBe(`a policy named "${name}" already exists`);
  });

  it("answers PermissionDenied for another tenant's id in the body, and writes nothing", async () => {
    const t = await tenant();
    const other = await stack.createTenant();
    const error = await failure(
      t.policies.createPolicy({
        policy: {
          name: uniqueName("forged"),
          tenantId: other.tenantId,
          regoSource: WARN_ALWAYS_REGO,
        },
      }),
    );
    expect(error.code).toBe(Code.PermissionDenied);
    expect(await count("policies WHERE tenant_id IN ($1, $2)", [t.tenantId, other.tenantId])).toBe(
      0,
    );
    // Its own tenant id is fine.
    await t.policies.createPolicy({
      policy: { name: uniqueName("own"), tenantId: t.tenantId, regoSource: WARN_ALWAYS_REGO },
    });
    const list = await failure(t.policies.listPolicies({ tenantId: other.tenantId }));
    expect(list.code).toBe(Code.PermissionDenied);
  });
});

describe("UpdatePolicy", () => {
  it("creates a version only when the definition changes, and audits each change", async () => {
    const t = await tenant();
    const name = uniqueName("upd");
    const created = await t.policies.createPolicy({
      policy: { name, regoSource: WARN_ALWAYS_REGO },
    });
    const id = must(created.policy).policyId;
    const revision = async () =>
      Number(
        (await stack.owner.query("SELECT revision FROM policies WHERE id = $1", [id])).rows[0]
          ?.revision,
      );
    const r0 = await revision();

    const same = await t.policies.updatePolicy({
      policy: { policyId: id, name, regoSource: WARN_ALWAYS_REGO },
      updateMask: { paths: ["rego_source"] },
    });
    expect(same.version).toBeUndefined();
    expect(await revision()).toBe(r0);

    const described = await t.policies.updatePolicy({
      policy: { policyId: id, name, description: "new text" },
      updateMask: { paths: ["description"] },
    });
    expect(described.version).toBeUndefined();
    expect(described.policy?.description).toBe("new text");
    expect(described.policy?.latestVersion).toBe(1);
    expect(await revision()).toBe(r0 + 1);

    const changed = await t.policies.updatePolicy({
      policy: { policyId: id, name, regoSource: DENY_DELETE_REGO },
      updateMask: { paths: ["rego_source"] },
      changeSummary: "block deletes",
    });
    expect(changed.version?.version).toBe(2);
    expect(changed.version?.status).toBe(PolicyVersionStatus.DRAFT);
    expect(changed.version?.sha256).not.toBe(created.version?.sha256);
    expect(changed.policy?.latestVersion).toBe(2);
    expect(changed.policy?.activeVersion).toBe(0);
    expect(changed.policy?.regoSource).toBe(DENY_DELETE_REGO);

    // Switching to rules names only `rules`.
    const rules = await t.policies.updatePolicy({
      policy: { policyId: id, name, rules: [toolRule("rm")] },
      updateMask: { paths: ["rules"] },
    });
    expect(rules.version?.version).toBe(3);
    expect(rules.policy?.regoSource).toBe("");

    const audit = await auditActions(t.tenantId, id);
    expect(audit.map((a) => a.action)).toEqual([
      "policy.created",
      "policy.updated",
      "policy.updated",
      "policy.updated",
    ]);
    expect(audit[1]?.details).toMatchObject({ changed_fields: ["description"] });
    expect(audit[2]?.details).toMatchObject({
      changed_fields: ["rego_source"],
      version: 2,
      sha256: changed.version?.sha256,
    });
    expect(await count("policy_versions WHERE policy_id = $1", [id])).toBe(3);
  });

  it("stores metadata unversioned: returned by Create/Get/List, replaced whole by update, audited, no new version", async () => {
    const t = await tenant();
    const name = uniqueName("meta");
    const created = await t.policies.createPolicy({
      policy: { name, regoSource: WARN_ALWAYS_REGO, metadata: { owner: "sec", ticket: "F-1" } },
    });
    const id = must(created.policy).policyId;
    expect(created.policy?.metadata).toEqual({ owner: "sec", ticket: "F-1" });
    const got = await t.policies.getPolicy({ policyId: id });
    expect(got.policy?.metadata).toEqual({ owner: "sec", ticket: "F-1" });
    const listed = await t.policies.listPolicies({});
    expect(listed.policies.find((p) => p.policyId === id)?.metadata).toEqual({
      owner: "sec",
      ticket: "F-1",
    });

    const updated = await t.policies.updatePolicy({
      policy: { policyId: id, name, metadata: { owner: "platform" } },
      updateMask: { paths: ["metadata"] },
    });
    expect(updated.version).toBeUndefined();
    expect(updated.policy?.metadata).toEqual({ owner: "platform" });
    expect(updated.policy?.latestVersion).toBe(1);
    expect((await t.policies.getPolicy({ policyId: id })).policy?.metadata).toEqual({
      owner: "platform",
    });
    expect(await count("policy_versions WHERE policy_id = $1", [id])).toBe(1);

    // The same map again changes nothing; a mask without `metadata` leaves it alone.
    await t.policies.updatePolicy({
      policy: { policyId: id, name, metadata: { owner: "platform" } },
      updateMask: { paths: ["metadata"] },
    });
    const described = await t.policies.updatePolicy({
      policy: { policyId: id, name, description: "d" },
      updateMask: { paths: ["description"] },
    });
    expect(described.policy?.metadata).toEqual({ owner: "platform" });
    const cleared = await t.policies.updatePolicy({
      policy: { policyId: id, name },
      updateMask: { paths: ["metadata"] },
    });
    expect(cleared.policy?.metadata).toEqual({});
    expect(await count("policy_versions WHERE policy_id = $1", [id])).toBe(1);

    const audit = await auditActions(t.tenantId, id);
    expect(audit.map((a) => [a.action, a.details.changed_fields])).toEqual([
      ["policy.created", undefined],
      ["policy.updated", ["metadata"]],
      ["policy.updated", ["description"]],
      ["policy.updated", ["metadata"]],
    ]);
  });

  it("keeps the lifecycle: no DRAFT → ACTIVE or INACTIVE by update, archived is gone, a failed compile changes nothing", async () => {
    const t = await tenant();
    const name = uniqueName("life");
    const created = await t.policies.createPolicy({
      policy: { name, regoSource: WARN_ALWAYS_REGO },
    });
    const id = must(created.policy).policyId;
    const activate = await failure(
      t.policies.updatePolicy({
        policy: { policyId: id, name, status: PolicyStatus.ACTIVE },
        updateMask: { paths: ["status"] },
      }),
    );
    expect(activate.code).toBe(Code.FailedPrecondition);
    expect(activate.rawMessage).toMatch(/activate a version first/);
    const inactive = await failure(
      t.policies.updatePolicy({
        policy: { policyId: id, name, status: PolicyStatus.INACTIVE },
        updateMask: { paths: ["status"] },
      }),
    );
    expect(inactive.code).toBe(Code.FailedPrecondition);
    const broken = await failure(
      t.policies.updatePolicy({
        policy: { policyId: id, name, regoSource: BROKEN_REGO },
        updateMask: { paths: ["rego_source"] },
      }),
    );
    expect(broken.code).toBe(Code.InvalidArgument);
    expect(await count("policy_versions WHERE policy_id = $1", [id])).toBe(1);
    const forged = await failure(
      t.policies.updatePolicy({
        policy: { policyId: id, tenantId: randomUUID(), name: "x" },
        updateMask: { paths: ["name"] },
      }),
    );
    expect(forged.code).toBe(Code.PermissionDenied);

    await t.policies.updatePolicy({
      policy: { policyId: id, name, status: PolicyStatus.ARCHIVED },
      updateMask: { paths: ["status"] },
    });
    const after = await failure(
      t.policies.updatePolicy({
        policy: { policyId: id, name, description: "x" },
        updateMask: { paths: ["description"] },
      }),
    );
    expect(after.code).toBe(Code.NotFound);
    const audit = await auditActions(t.tenantId, id);
    expect(audit.map((a) => a.action)).toEqual(["policy.created", "policy.archived"]);
  });
});
