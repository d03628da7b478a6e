import { createHash, randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RuleType } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { PolicyStatus } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
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

// PolicyService's management methods over the real stack: HTTP → functions app → Neon
// driver → WS proxy → PostgreSQL (RLS per tenant), compiled by the real OPA.
let stack: FunctionsStack;

beforeAll(async () => {
  stack = await startFunctionsStack();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

async function tenant() {
  const t = await stack.createTenant();
  return { ...t, policies: stack.client(PolicyService, t.adminKey) };
}

async function count(sql: string, params: unknown[]): Promise<number> {
  const { rows } = await stack.owner.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${sql}`,
    params,
  );
  return (rows[0] as { n: number }).n;
}

async function auditActions(
  tenantId: string,
  policyId: string,
): Promise<{ action: string; details: Record<string, unknown> }[]> {
  const { rows } = await stack.owner.query(
    "SELECT action, details FROM events WHERE tenant_id = $1 AND target_id = $2 ORDER BY occurred_at, action",
    [tenantId, policyId],
  );
  return rows as { action: string; details: Record<string, unknown> }[];
}

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

describe("GetPolicy and ids", () => {
  it("answers InvalidArgument for a non-UUID id, NotFound for unknown and other tenants' ids", async () => {
    const t = await tenant();
    const other = await tenant();
    const theirs = await other.policies.createPolicy({
      policy: { name: uniqueName("theirs"), regoSource: WARN_ALWAYS_REGO },
    });
    const bad = await failure(t.policies.getPolicy({ policyId: "not-a-uuid" }));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.rawMessage).toBe('policy_id must be a UUID, got "not-a-uuid"');
    const unknown = randomUUID();
    const missing = await failure(t.policies.getPolicy({ policyId: unknown }));
    expect(missing.code).toBe(Code.NotFound);
    expect(missing.rawMessage).toBe(`policy ${unknown} not found`);
    const foreign = must(theirs.policy).policyId;
    for (const call of [
      () => t.policies.getPolicy({ policyId: foreign }),
      () => t.policies.deletePolicy({ policyId: foreign }),
      () => t.policies.activatePolicyVersion({ policyId: foreign, version: 1 }),
      () => t.policies.listPolicyVersions({ policyId: foreign }),
      () =>
        t.policies.updatePolicy({
          policy: { policyId: foreign, name: "x" },
          updateMask: { paths: ["name"] },
        }),
    ]) {
      expect((await failure(call())).code).toBe(Code.NotFound);
    }
    const got = await other.policies.getPolicy({ policyId: foreign });
    expect(got.policy?.name).toBe(theirs.policy?.name);
    const noVersion = await failure(
      other.policies.getPolicyVersion({ policyId: foreign, version: 7 }),
    );
    expect(noVersion.code).toBe(Code.NotFound);
  });

  it("leaves evaluation to the edge", async () => {
    const t = await tenant();
    const error = await failure(t.policies.checkPolicy({ tenantId: t.tenantId }));
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.rawMessage).toMatch(/edge Worker/);
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

describe("DeletePolicy", () => {
  it("archives the policy, hides it, keeps its versions and frees its name", async () => {
    const t = await tenant();
    const name = uniqueName("del");
    const created = await t.policies.createPolicy({
      policy: { name, regoSource: WARN_ALWAYS_REGO },
    });
    const id = must(created.policy).policyId;
    await t.policies.deletePolicy({ policyId: id });
    expect((await failure(t.policies.getPolicy({ policyId: id }))).code).toBe(Code.NotFound);
    expect((await failure(t.policies.deletePolicy({ policyId: id }))).code).toBe(Code.NotFound);
    expect(
      (await failure(t.policies.activatePolicyVersion({ policyId: id, version: 1 }))).code,
    ).toBe(Code.NotFound);
    const versions = await t.policies.listPolicyVersions({ policyId: id });
    expect(versions.versions.map((v) => v.status)).toEqual([PolicyVersionStatus.ARCHIVED]);
    const archived = await t.policies.listPolicies({ status: PolicyStatus.ARCHIVED });
    expect(archived.policies.map((p) => p.policyId)).toEqual([id]);
    const { rows } = await stack.owner.query(
      "SELECT status, archived_at FROM policies WHERE id = $1",
      [id],
    );
    expect(rows[0]).toMatchObject({ status: "ARCHIVED" });
    expect(rows[0]?.archived_at).not.toBeNull();
    const again = await t.policies.createPolicy({ policy: { name, regoSource: WARN_ALWAYS_REGO } });
    expect(again.policy?.policyId).not.toBe(id);
    expect((await auditActions(t.tenantId, id)).map((a) => a.action)).toEqual([
      "policy.created",
      "policy.archived",
    ]);
  });
});

describe("ListPolicies", () => {
  it("filters by status, rule type and tags, pages with opaque tokens and counts every match", async () => {
    const t = await tenant();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await t.policies.createPolicy({
        policy: {
          name: `list-${i}`,
          tags: i % 2 === 0 ? ["even", "all"] : ["all"],
          ...(i < 2
            ? { rules: [toolRule(`t${i}`, i === 0 ? RuleType.TOOL_RESTRICTION : RuleType.RBAC)] }
            : { regoSource: WARN_ALWAYS_REGO }),
        },
      });
      ids.push(must(res.policy).policyId);
    }
    await t.policies.deletePolicy({ policyId: ids[4] as string });

    const all = await t.policies.listPolicies({});
    expect(all.totalCount).toBe(4);
    expect(all.policies.map((p) => p.policyId)).toEqual(ids.slice(0, 4));
    expect(all.nextPageToken).toBe("");

    const seen: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const page = await t.policies.listPolicies({ pageSize: 3, pageToken: token });
      expect(page.totalCount).toBe(4);
      seen.push(...page.policies.map((p) => p.policyId));
      token = page.nextPageToken;
      pages++;
    } while (token);
    expect(pages).toBe(2);
    expect(seen).toEqual(ids.slice(0, 4));

    const even = await t.policies.listPolicies({ tags: ["even", "all"] });
    expect(even.policies.map((p) => p.name)).toEqual(["list-0", "list-2"]);
    expect(even.totalCount).toBe(2);
    const rbac = await t.policies.listPolicies({ ruleType: RuleType.RBAC });
    expect(rbac.policies.map((p) => p.name)).toEqual(["list-1"]);
    const drafts = await t.policies.listPolicies({ status: PolicyStatus.DRAFT });
    expect(drafts.totalCount).toBe(4);
    const bad = await failure(t.policies.listPolicies({ pageToken: "bm90IGEgdG9rZW4" }));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.rawMessage).toMatch(/^page_token is not valid/);
    // A token is bound to its filters: replayed with others it is refused.
    const first = await t.policies.listPolicies({ pageSize: 1, tags: ["all"] });
    expect(first.nextPageToken).not.toBe("");
    const second = await t.policies.listPolicies({
      pageSize: 1,
      tags: ["all"],
      pageToken: first.nextPageToken,
    });
    expect(second.policies.map((p) => p.policyId)).toEqual([ids[1]]);
    for (const other of [{ tags: ["even"] }, { status: PolicyStatus.DRAFT }, {}]) {
      const replayed = await failure(
        t.policies.listPolicies({ pageSize: 1, pageToken: first.nextPageToken, ...other }),
      );
      expect(replayed.code).toBe(Code.InvalidArgument);
      expect(replayed.rawMessage).toMatch(/^page_token is not valid/);
    }
  });

  it("answers a page and a count that agree while policies are being created", async () => {
    const t = await tenant();
    let writing = true;
    const writes = Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        t.policies.createPolicy({ policy: { name: `race-${i}`, regoSource: WARN_ALWAYS_REGO } }),
      ),
    ).finally(() => {
      writing = false;
    });
    let lists = 0;
    while (writing || lists === 0) {
      const page = await t.policies.listPolicies({});
      expect(page.totalCount).toBe(page.policies.length);
      lists++;
    }
    await writes;
    expect((await t.policies.listPolicies({})).totalCount).toBe(8);
  });
});
