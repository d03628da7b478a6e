import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RuleType } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { PolicyStatus } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyVersionStatus } from "../../proto/gen/fulcrum/policy/v1/policy_version_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import {
  failure,
  must,
  toolRule,
  uniqueName,
  WARN_ALWAYS_REGO,
} from "../harness/policy-fixtures.js";
import { policyManagementHelpers } from "../harness/policy-management-helpers.js";

// PolicyService's read and delete methods over the real stack: HTTP → functions app →
// Neon driver → WS proxy → PostgreSQL (RLS per tenant). GetPolicy and malformed, unknown and
// other tenants' ids, DeletePolicy (archiving) and ListPolicies (filters, pages, counts).
// Creating and updating policies is in policy-management.test.ts.
let stack: FunctionsStack;

beforeAll(async () => {
  stack = await startFunctionsStack();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

const { tenant, auditActions } = policyManagementHelpers(() => stack);

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
