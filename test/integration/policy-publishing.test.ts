import { createHash } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PolicyPointer } from "../../core/distribution/policy-keys.js";
import type { PublishedPolicy } from "../../core/policy-bundle/published-policy.js";
import { PolicyStatus } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { PolicyVersionStatus } from "../../proto/gen/fulcrum/policy/v1/policy_version_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import {
  DENY_DELETE_REGO,
  failure,
  must,
  toolRule,
  uniqueName,
  WARN_ALWAYS_REGO,
} from "../harness/policy-fixtures.js";
import { publishingHelpers } from "../harness/publishing-helpers.js";

// Activation and rollback as the edge sees them: Redis (through the Upstash REST
// stand-in) holds the wasm, each version's metadata, the pointer and the tenant's active
// set; PostgreSQL holds the history. Status changes, the active version in the Policy
// message, dry runs and an unreachable database are in policy-lifecycle.test.ts.
let stack: FunctionsStack;

beforeAll(async () => {
  stack = await startFunctionsStack();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

const { tenantWithPolicy, pointer, activeIn, activationRows, auditActions } = publishingHelpers(
  () => stack,
);

describe("ActivatePolicyVersion", () => {
  it("publishes structured rules as data too, since a Worker cannot compile their wasm", async () => {
    const t = await stack.createTenant();
    const policies = stack.client(PolicyService, t.adminKey);
    const created = await policies.createPolicy({
      policy: { name: uniqueName("rules"), rules: [toolRule("rm_rf")] },
    });
    const id = must(created.policy).policyId;
    await policies.activatePolicyVersion({ policyId: id, version: 1 });
    const meta = await stack.redis.get<PublishedPolicy>(stack.keys.version(t.tenantId, id, 1));
    expect(meta?.source_kind).toBe("rules");
    expect(meta?.rules).toEqual([
      expect.objectContaining({
        name: "block rm_rf",
        ruleType: "RULE_TYPE_TOOL_RESTRICTION",
        actions: [expect.objectContaining({ type: "ACTION_TYPE_DENY" })],
      }),
    ]);
  });

  it("publishes the wasm, the version's metadata, the pointer and the active set", async () => {
    const t = await tenantWithPolicy();
    const res = await t.policies.activatePolicyVersion({ policyId: t.id, version: 1 });
    expect(res.policy?.status).toBe(PolicyStatus.ACTIVE);
    expect(res.policy?.activeVersion).toBe(1);
    expect(res.version?.status).toBe(PolicyVersionStatus.ACTIVE);
    expect(res.version?.activatedBy).toBe(t.adminUserId);
    expect(res.version?.activatedAt).toBeDefined();

    const { rows } = await stack.owner.query(
      "SELECT wasm_sha256 FROM policy_versions WHERE policy_id = $1",
      [t.id],
    );
    const wasmSha256 = (rows[0] as { wasm_sha256: string }).wasm_sha256;
    const wasm = await stack.redis.get<string>(stack.keys.wasm(wasmSha256));
    expect(typeof wasm).toBe("string");
    expect(
      createHash("sha256")
        .update(Buffer.from(wasm as string, "base64"))
        .digest("hex"),
    ).toBe(wasmSha256);
    const meta = await stack.redis.get<PublishedPolicy>(stack.keys.version(t.tenantId, t.id, 1));
    expect(meta).toMatchObject({
      tenant_id: t.tenantId,
      policy_id: t.id,
      version: 1,
      sha256: t.v1.sha256,
      wasm_sha256: wasmSha256,
      entrypoint: "fulcrum/entry/result",
      source_kind: "rego",
      enforcement: "BLOCK",
      dry_run: false,
    });
    expect(meta).not.toHaveProperty("rules");
    expect(await pointer(t.tenantId, t.id)).toMatchObject({
      version: 1,
      sha256: t.v1.sha256,
      wasm_sha256: wasmSha256,
      name: t.name,
    });
    expect(await activeIn(t.tenantId, t.id)).toBe(1);
    expect(await activationRows(t.id)).toEqual([
      { version: 1, previous_version: null, kind: "activate", reason: "" },
    ]);
    const audit = await auditActions(t.id);
    expect(audit.map((a) => a.action)).toEqual(["policy.created", "policy.version_activated"]);
    expect(audit[1]?.details).toMatchObject({
      version: 1,
      previous_version: null,
      sha256: t.v1.sha256,
      wasm_sha256: wasmSha256,
    });
  });

  it("writes a version's metadata once, without the (mutable) policy name", async () => {
    const t = await tenantWithPolicy();
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 1 });
    const key = stack.keys.version(t.tenantId, t.id, 1);
    const first = await stack.redis.get<Record<string, unknown>>(key);
    expect(first).toMatchObject({ policy_id: t.id, version: 1 });
    expect(first).not.toHaveProperty("name");
    // A rename and a republish (INACTIVE → ACTIVE) stage the version again: SET NX keeps
    // the first write, so a marker planted in it stays.
    await stack.redis.set(key, JSON.stringify({ ...first, marker: "first write" }));
    await t.policies.updatePolicy({
      policy: { policyId: t.id, name: uniqueName("renamed"), status: PolicyStatus.INACTIVE },
      updateMask: { paths: ["name", "status"] },
    });
    await t.policies.updatePolicy({
      policy: { policyId: t.id, name: t.name, status: PolicyStatus.ACTIVE },
      updateMask: { paths: ["status"] },
    });
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 1 });
    expect(await stack.redis.get(key)).toEqual({ ...first, marker: "first write" });
    expect(await pointer(t.tenantId, t.id)).toMatchObject({ version: 1 });
  });

  it("audits the previous version's hashes with an activation and a rollback", async () => {
    const t = await tenantWithPolicy();
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 1 });
    const v2 = must(
      (
        await t.policies.updatePolicy({
          policy: { policyId: t.id, name: t.name, regoSource: DENY_DELETE_REGO },
          updateMask: { paths: ["rego_source"] },
        })
      ).version,
    );
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 2 });
    await t.policies.rollbackPolicy({ policyId: t.id, reason: "too strict" });
    const audit = await auditActions(t.id);
    const v1Hashes = { sha256: t.v1.sha256, wasm_sha256: t.v1.wasmSha256 };
    const v2Hashes = { sha256: v2.sha256, wasm_sha256: v2.wasmSha256 };
    expect(audit.filter((a) => a.action !== "policy.updated").map((a) => a.details)).toEqual([
      expect.objectContaining({ version: 1 }),
      expect.objectContaining({
        version: 1,
        previous_version: null,
        previous_sha256: null,
        previous_wasm_sha256: null,
      }),
      expect.objectContaining({
        version: 2,
        ...v2Hashes,
        previous_version: 1,
        previous_sha256: v1Hashes.sha256,
        previous_wasm_sha256: v1Hashes.wasm_sha256,
      }),
      expect.objectContaining({
        version: 1,
        ...v1Hashes,
        previous_version: 2,
        previous_sha256: v2Hashes.sha256,
        previous_wasm_sha256: v2Hashes.wasm_sha256,
        reason: "too strict",
      }),
    ]);
  });

  it("activating the active version again writes nothing and re-publishes (repair)", async () => {
    const t = await tenantWithPolicy();
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 1 });
    await stack.redis.del(stack.keys.version(t.tenantId, t.id, 1));
    const again = await t.policies.activatePolicyVersion({
      policyId: t.id,
      version: 1,
      expectedActiveVersion: 1,
    });
    expect(again.policy?.activeVersion).toBe(1);
    expect(await activationRows(t.id)).toHaveLength(1);
    expect(await stack.redis.get(stack.keys.version(t.tenantId, t.id, 1))).not.toBeNull();
  });

  it("answers FailedPrecondition when expected_active_version is not the active one, NotFound for an unknown version", async () => {
    const t = await tenantWithPolicy();
    const error = await failure(
      t.policies.activatePolicyVersion({ policyId: t.id, version: 1, expectedActiveVersion: 3 }),
    );
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(await activationRows(t.id)).toHaveLength(0);
    expect(await pointer(t.tenantId, t.id)).toBeNull();
    expect(
      (await failure(t.policies.activatePolicyVersion({ policyId: t.id, version: 9 }))).code,
    ).toBe(Code.NotFound);
  });

  it("creating with status ACTIVE activates version 1", async () => {
    const t = await stack.createTenant();
    const policies = stack.client(PolicyService, t.adminKey);
    const res = await policies.createPolicy({
      policy: { name: uniqueName("on"), regoSource: WARN_ALWAYS_REGO, status: PolicyStatus.ACTIVE },
    });
    expect(res.policy?.status).toBe(PolicyStatus.ACTIVE);
    expect(res.version?.status).toBe(PolicyVersionStatus.ACTIVE);
    expect(await pointer(t.tenantId, must(res.policy).policyId)).toMatchObject({ version: 1 });
  });

  it("reports a failed pointer write as Unavailable, and the same call repairs it", async () => {
    const t = await tenantWithPolicy();
    const publisher = stack.deps.publisher;
    stack.deps.publisher = {
      ...publisher,
      point: () => Promise.reject(new Error("redis is down")),
    };
    try {
      const error = await failure(t.policies.activatePolicyVersion({ policyId: t.id, version: 1 }));
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toMatch(
        /recorded but not yet published.*repeat ActivatePolicyVersion/,
      );
    } finally {
      stack.deps.publisher = publisher;
    }
    expect(await pointer(t.tenantId, t.id)).toBeNull();
    expect((await t.policies.getPolicy({ policyId: t.id })).policy?.activeVersion).toBe(1);
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 1 });
    expect(await pointer(t.tenantId, t.id)).toMatchObject({ version: 1 });
    expect(await activeIn(t.tenantId, t.id)).toBe(1);
  });
});

describe("RollbackPolicy", () => {
  it("re-activates the previous version: pointer and active set name it, versions show it", async () => {
    const t = await tenantWithPolicy();
    expect((await failure(t.policies.rollbackPolicy({ policyId: t.id }))).code).toBe(
      Code.FailedPrecondition,
    );
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 1 });
    const first = await failure(t.policies.rollbackPolicy({ policyId: t.id }));
    expect(first.code).toBe(Code.FailedPrecondition);
    expect(first.rawMessage).toMatch(/no earlier version/);
    const v2 = await t.policies.updatePolicy({
      policy: { policyId: t.id, name: t.name, regoSource: DENY_DELETE_REGO },
      updateMask: { paths: ["rego_source"] },
    });
    expect(v2.version?.version).toBe(2);
    expect(v2.policy?.activeVersion).toBe(1); // an update never activates
    await t.policies.activatePolicyVersion({
      policyId: t.id,
      version: 2,
      expectedActiveVersion: 1,
    });
    expect(await pointer(t.tenantId, t.id)).toMatchObject({ version: 2 });

    const back = await t.policies.rollbackPolicy({ policyId: t.id, reason: "v2 blocks too much" });
    expect(back.policy?.activeVersion).toBe(1);
    expect(back.version?.version).toBe(1);
    expect(await pointer(t.tenantId, t.id)).toMatchObject({ version: 1, sha256: t.v1.sha256 });
    expect(await activeIn(t.tenantId, t.id)).toBe(1);
    const versions = await t.policies.listPolicyVersions({ policyId: t.id });
    expect(versions.versions.map((v) => [v.version, v.status])).toEqual([
      [2, PolicyVersionStatus.SUPERSEDED],
      [1, PolicyVersionStatus.ACTIVE],
    ]);
    expect((await activationRows(t.id)).at(-1)).toEqual({
      version: 1,
      previous_version: 2,
      kind: "rollback",
      reason: "v2 blocks too much",
    });
    const audit = await auditActions(t.id);
    expect(audit.at(-1)).toMatchObject({
      action: "policy.rolled_back",
      details: { version: 1, previous_version: 2 },
    });
    const paged = await t.policies.listPolicyVersions({ policyId: t.id, pageSize: 1 });
    expect(paged.versions.map((v) => v.version)).toEqual([2]);
    const rest = await t.policies.listPolicyVersions({
      policyId: t.id,
      pageSize: 1,
      pageToken: paged.nextPageToken,
    });
    expect(rest.versions.map((v) => v.version)).toEqual([1]);
    expect(rest.nextPageToken).toBe("");
    // A version token belongs to its policy.
    const other = await t.policies.createPolicy({
      policy: { name: uniqueName("other"), regoSource: WARN_ALWAYS_REGO },
    });
    const replayed = await failure(
      t.policies.listPolicyVersions({
        policyId: must(other.policy).policyId,
        pageToken: paged.nextPageToken,
      }),
    );
    expect(replayed.code).toBe(Code.InvalidArgument);
    expect(replayed.rawMessage).toMatch(/^page_token is not valid/);
  });

  it("concurrent activations serialize: the pointer ends on the version the database says is active", async () => {
    const t = await tenantWithPolicy();
    await t.policies.updatePolicy({
      policy: { policyId: t.id, name: t.name, regoSource: DENY_DELETE_REGO },
      updateMask: { paths: ["rego_source"] },
    });
    await Promise.all(
      [1, 2, 1, 2].map((version) => t.policies.activatePolicyVersion({ policyId: t.id, version })),
    );
    const { rows } = await stack.owner.query(
      "SELECT active_version, revision FROM policies WHERE id = $1",
      [t.id],
    );
    const row = rows[0] as { active_version: number; revision: string };
    expect(await pointer(t.tenantId, t.id)).toMatchObject({
      version: row.active_version,
      revision: Number(row.revision),
    });
    expect(await activeIn(t.tenantId, t.id)).toBe(row.active_version);
  });

  it("the pointer ignores a write with a stale revision", async () => {
    const t = await tenantWithPolicy();
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 1 });
    const current = (await pointer(t.tenantId, t.id)) as PolicyPointer;
    await stack.deps.publisher.point({
      tenantId: t.tenantId,
      policyId: t.id,
      version: 0,
      revision: current.revision - 1,
      sha256: "",
      wasmSha256: "",
    });
    expect(await pointer(t.tenantId, t.id)).toMatchObject({
      version: 1,
      revision: current.revision,
    });
    expect(await activeIn(t.tenantId, t.id)).toBe(1);
  });
});
