import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PublishedPolicy } from "../../core/policy-bundle/published-policy.js";
import { ActionType, RuleType } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  PolicyStatus,
  type Rule,
  RuleSchema,
} from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { failure, must, toolRule, uniqueName } from "../harness/policy-fixtures.js";
import { publishingHelpers } from "../harness/publishing-helpers.js";

// Rate limits in structured rules (docs/policy-authoring.md, "Rate limits"): a
// RULE_TYPE_RATE_LIMIT rule's THROTTLE parameters are checked when the version is written
// and published as the version's `rate_limits` on activation; the pointer carries the
// policy's name.
let stack: FunctionsStack;

beforeAll(async () => {
  stack = await startFunctionsStack();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

const { pointer, activeIn } = publishingHelpers(() => stack);

const limitRule = (ruleId: string, parameters: Record<string, string>): Rule =>
  create(RuleSchema, {
    ruleId,
    name: `limit ${ruleId}`,
    ruleType: RuleType.RATE_LIMIT,
    actions: [{ type: ActionType.THROTTLE, parameters }],
  });

async function tenantPolicies() {
  const t = await stack.createTenant();
  return { ...t, policies: stack.client(PolicyService, t.adminKey) };
}

/** Every Redis key of the test namespace that names the tenant. */
async function tenantKeys(tenantId: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await stack.redis.scan(cursor, {
      match: `${stack.keys.namespace}:*${tenantId}*`,
      count: 500,
    });
    found.push(...keys);
    cursor = String(next);
  } while (cursor !== "0");
  return found.sort();
}

describe("RATE_LIMIT rules", () => {
  it("CreatePolicy ACTIVE publishes the rules' limits as rate_limits, and the pointer names the policy", async () => {
    const t = await tenantPolicies();
    const name = uniqueName("limits");
    const res = await t.policies.createPolicy({
      policy: {
        name,
        status: PolicyStatus.ACTIVE,
        rules: [
          toolRule("rm_rf"),
          limitRule("per-key", { requests_per_minute: "60", per: "api_key" }),
          limitRule("search", {
            tokens_per_minute: "20000",
            per: "tool",
            tools: "search_*, {web,news}_lookup",
            failure_mode: "FAIL_OPEN",
          }),
        ],
      },
    });
    const id = must(res.policy).policyId;
    expect(res.policy?.status).toBe(PolicyStatus.ACTIVE);
    const meta = await stack.redis.get<PublishedPolicy>(stack.keys.version(t.tenantId, id, 1));
    expect(meta?.source_kind).toBe("rules");
    expect(meta?.rate_limits).toEqual([
      {
        id: `${id}/per-key/requests_per_minute`,
        scope: "api_key",
        unit: "requests",
        limit: 60,
        window: "1m",
        algorithm: "sliding_window",
        failure_mode: "FAIL_CLOSED",
      },
      {
        id: `${id}/search/tokens_per_minute`,
        scope: "tool",
        unit: "tokens",
        limit: 20000,
        window: "1m",
        algorithm: "sliding_window",
        failure_mode: "FAIL_OPEN",
        tools: ["search_*", "{web,news}_lookup"],
      },
    ]);
    // The rules stay in the published rules as written.
    expect(meta?.rules).toHaveLength(3);
    expect(await pointer(t.tenantId, id)).toMatchObject({ version: 1, name });
    expect(await activeIn(t.tenantId, id)).toBe(1);
  });

  it("a policy of RATE_LIMIT rules only compiles (to no verdicts) and publishes its limits", async () => {
    const t = await tenantPolicies();
    const created = await t.policies.createPolicy({
      policy: {
        name: uniqueName("only-limits"),
        rules: [limitRule("hourly", { requests_per_hour: "1000" })],
      },
    });
    const id = must(created.policy).policyId;
    await t.policies.activatePolicyVersion({ policyId: id, version: 1 });
    const meta = await stack.redis.get<PublishedPolicy>(stack.keys.version(t.tenantId, id, 1));
    expect(meta?.rate_limits).toEqual([
      expect.objectContaining({ id: `${id}/hourly/requests_per_hour`, limit: 1000, window: "1h" }),
    ]);
  });

  it("a bad parameter is InvalidArgument naming its path, and writes nothing", async () => {
    const t = await tenantPolicies();
    const before = await tenantKeys(t.tenantId);
    const name = uniqueName("bad-limit");
    const error = await failure(
      t.policies.createPolicy({
        policy: {
          name,
          status: PolicyStatus.ACTIVE,
          rules: [
            toolRule("rm_rf"),
            toolRule("drop_db"),
            limitRule("rpm", { requests_per_minute: "sixty", per: "api_key" }),
          ],
        },
      }),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe(
      'rules[2].actions[0].parameters.requests_per_minute: must be a positive integer in decimal digits, not "sixty"',
    );
    const { rows } = await stack.owner.query(
      "SELECT count(*)::int AS n FROM policies WHERE tenant_id = $1",
      [t.tenantId],
    );
    expect(rows[0]).toEqual({ n: 0 });
    expect(await tenantKeys(t.tenantId)).toEqual(before);
    expect(before.filter((k) => k.includes(":policy:") || k.includes(":pointer:"))).toEqual([]);

    const unknown = await failure(
      t.policies.createPolicy({
        policy: { name, rules: [limitRule("rpm", { requests_per_minute: "5", window: "1m" })] },
      }),
    );
    expect(unknown.code).toBe(Code.InvalidArgument);
    expect(unknown.rawMessage).toMatch(
      /^rules\[0\]\.actions\[0\]\.parameters\.window: unknown rate limit parameter/,
    );
  });

  it("UpdatePolicy refuses a bad RATE_LIMIT rule with the same path and writes no version", async () => {
    const t = await tenantPolicies();
    const name = uniqueName("upd");
    const created = await t.policies.createPolicy({
      policy: { name, rules: [limitRule("rpm", { requests_per_minute: "5" })] },
    });
    const id = must(created.policy).policyId;
    const error = await failure(
      t.policies.updatePolicy({
        policy: {
          policyId: id,
          name,
          rules: [limitRule("rpm", { requests_per_minute: "5", burst: "2" })],
        },
        updateMask: { paths: ["rules"] },
      }),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe(
      'rules[0].actions[0].parameters.burst: is for algorithm "token_bucket" only',
    );
    const versions = await t.policies.listPolicyVersions({ policyId: id });
    expect(versions.versions.map((v) => v.version)).toEqual([1]);
  });

  it("activation and rollback write the policy's current name in the pointer", async () => {
    const t = await tenantPolicies();
    const first = uniqueName("first");
    const created = await t.policies.createPolicy({
      policy: { name: first, rules: [limitRule("rpm", { requests_per_minute: "5" })] },
    });
    const id = must(created.policy).policyId;
    await t.policies.activatePolicyVersion({ policyId: id, version: 1 });
    expect(await pointer(t.tenantId, id)).toMatchObject({ version: 1, name: first });

    const second = uniqueName("second");
    await t.policies.updatePolicy({
      policy: {
        policyId: id,
        name: second,
        rules: [limitRule("rpm", { requests_per_minute: "10" })],
      },
      updateMask: { paths: ["name", "rules"] },
    });
    await t.policies.activatePolicyVersion({ policyId: id, version: 2 });
    expect(await pointer(t.tenantId, id)).toMatchObject({ version: 2, name: second });
    const v2 = await stack.redis.get<PublishedPolicy>(stack.keys.version(t.tenantId, id, 2));
    expect(v2?.rate_limits).toEqual([expect.objectContaining({ limit: 10 })]);
    expect(v2).not.toHaveProperty("name");

    const third = uniqueName("third");
    await t.policies.updatePolicy({
      policy: { policyId: id, name: third },
      updateMask: { paths: ["name"] },
    });
    await t.policies.rollbackPolicy({ policyId: id, reason: "too loose" });
    expect(await pointer(t.tenantId, id)).toMatchObject({ version: 1, name: third });

    // Deactivation takes the policy out of the active set; its pointer needs no name.
    await t.policies.updatePolicy({
      policy: { policyId: id, name: third, status: PolicyStatus.INACTIVE },
      updateMask: { paths: ["status"] },
    });
    expect(await pointer(t.tenantId, id)).toMatchObject({ version: 0 });
    expect(await activeIn(t.tenantId, id)).toBeUndefined();
  });
});
