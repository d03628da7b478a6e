import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  ActionSchema,
  ActionType,
  Decision,
  DecisionReason,
  RuleType,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { type Rule, RuleSchema } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { ApiKeyScope } from "../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import {
  clientOf,
  edge,
  edgeUrl,
  functionsUrl,
  newTenant,
  timeUntil,
} from "../harness/e2e-stack.js";
import { toolRule } from "../harness/policy-fixtures.js";

/**
 * The edge against the whole local stack: keys and policies made through the
 * management API, distributed through Redis, enforced by the Worker under wrangler dev.
 */

const codeOf = (call: Promise<unknown>) =>
  call.then(
    () => "OK",
    (e: unknown) => Code[ConnectError.from(e).code],
  );

function actionRule(name: string, tool: string, type: ActionType): Rule {
  const rule = toolRule(tool);
  return create(RuleSchema, {
    ...rule,
    name,
    ruleId: name,
    actions: [create(ActionSchema, { type, message: `${tool}: ${ActionType[type]}` })],
  });
}

describe("API keys at the edge", () => {
  it("a new check key works at once; once revoked it is refused within 5 s", async () => {
    const t = await newTenant();
    await t.activate({ rules: [toolRule("shell_run")] });
    const { key, keyId } = await t.newKey();
    const first = await edge(key).checkPolicy({ context: { toolNames: ["shell_run"] } });
    expect(first.decision).toBe(Decision.DENY);

    await t.keys.revokeApiKey({ keyId });
    const revokedAt = performance.now();
    const tookMs = await timeUntil(
      async () => (await codeOf(edge(key).checkPolicy({}))) === "Unauthenticated",
      5000,
    );
    expect(tookMs).toBeLessThan(5000);
    expect(performance.now() - revokedAt).toBeLessThan(5000);
    console.info(`revoked key refused at the edge after ${tookMs.toFixed(0)} ms`);
  });

  it("refuses missing, malformed and unknown keys, manage keys, and other tenants", async () => {
    const t = await newTenant();
    await t.activate({ rules: [toolRule("shell_run")] });
    const { key: checkKey } = await t.newKey();
    const { key: manageKey } = await t.newKey([ApiKeyScope.MANAGE]);
    const unknown = `fk_${"A".repeat(43)}`;
    expect(await codeOf(edge(undefined).checkPolicy({}))).toBe("Unauthenticated");
    expect(await codeOf(edge("not-a-key").checkPolicy({}))).toBe("Unauthenticated");
    expect(await codeOf(edge(unknown).checkPolicy({}))).toBe("Unauthenticated");
    expect(await codeOf(edge(manageKey).checkPolicy({}))).toBe("PermissionDenied");
    // A check key on the management API, the reverse.
    const management = clientOf(PolicyService, functionsUrl(), checkKey);
    expect(await codeOf(management.listPolicies({}))).toBe("PermissionDenied");
    // The tenant comes from the key: naming another is refused, naming its own is fine.
    const other = await newTenant();
    expect(await codeOf(edge(checkKey).checkPolicy({ tenantId: other.tenantId }))).toBe(
      "PermissionDenied",
    );
    expect(
      await codeOf(edge(checkKey).checkPolicy({ context: { tenantId: other.tenantId } })),
    ).toBe("PermissionDenied");
    const own = await edge(checkKey).checkPolicy({ tenantId: t.tenantId });
    expect(own.decision).toBe(Decision.ALLOW);
  });

  it("answers malformed and oversize requests with InvalidArgument", async () => {
    const t = await newTenant();
    await t.activate({ rules: [toolRule("shell_run")] });
    const { key } = await t.newKey();
    const url = `${edgeUrl()}/fulcrum.policy.v1.PolicyService/CheckPolicy`;
    const post = (body: string) =>
      fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": key },
        body,
      });
    const malformed = await post("{not json");
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { code: string }).code).toBe("invalid_argument");
    const unknownField = await post('{"context":{"tool_name":"x"}}');
    expect(((await unknownField.json()) as { code: string }).code).toBe("invalid_argument");
    const oversize = await post(
      JSON.stringify({ context: { inputText: "x".repeat(2 * 1024 * 1024) } }),
    );
    expect(((await oversize.json()) as { code: string }).code).toBe("invalid_argument");
  });
});

describe("policy distribution", () => {
  it("an activation takes effect at the edge within 1 s", async () => {
    const t = await newTenant();
    const { policyId } = await t.activate({ rules: [toolRule("shell_run")] });
    const { key } = await t.newKey();
    const before = await edge(key).checkPolicy({ context: { toolNames: ["web_search"] } });
    expect(before.decision).toBe(Decision.ALLOW);

    // Version 2 also blocks web_search; activating it must reach the edge within 1 s.
    await t.policies.updatePolicy({
      policy: { policyId, rules: [toolRule("shell_run"), toolRule("web_search")] },
      updateMask: { paths: ["rules"] },
    });
    await t.policies.activatePolicyVersion({ policyId, version: 2 });
    const tookMs = await timeUntil(async () => {
      const res = await edge(key).checkPolicy({ context: { toolNames: ["web_search"] } });
      return res.decision === Decision.DENY;
    }, 1000);
    expect(tookMs).toBeLessThan(1000);
    console.info(`activation visible at the edge after ${tookMs.toFixed(0)} ms`);
    const after = await edge(key).checkPolicy({ context: { toolNames: ["web_search"] } });
    expect(after.policyVersions).toEqual({ [policyId]: "2" });
  });

  it("with no policy id, combines every active policy: DENY > REQUIRE_APPROVAL > WARN; dry runs reported only", async () => {
    const t = await newTenant();
    const deny = await t.activate({ rules: [actionRule("no-shell", "shell", ActionType.DENY)] });
    const approve = await t.activate({
      rules: [actionRule("approve-delete", "delete_db", ActionType.REQUIRE_APPROVAL)],
    });
    const warn = await t.activate({ rego: WARN_ON_SEARCH });
    const dry = await t.activate(
      { rules: [actionRule("dry-deny", "web_search", ActionType.DENY)] },
      { dryRun: true },
    );
    const { key } = await t.newKey();
    const check = (tools: string[]) => edge(key).checkPolicy({ context: { toolNames: tools } });

    const all = await check(["shell", "delete_db", "web_search"]);
    expect(all.decision).toBe(Decision.DENY);
    expect(all.reason).toBe(DecisionReason.POLICY);
    expect(Object.keys(all.policyVersions).sort()).toEqual(
      [deny.policyId, approve.policyId, warn.policyId, dry.policyId].sort(),
    );
    expect((await check(["delete_db", "web_search"])).decision).toBe(Decision.REQUIRE_APPROVAL);
    const warned = await check(["web_search"]);
    // The dry-run DENY is reported (an AUDIT action), not enforced: the Rego WARN decides.
    expect(warned.decision).toBe(Decision.WARN);
    expect(warned.allowed).toBe(true);
    expect(warned.reasons.join(" ")).toContain("dry run");
    expect(warned.decisionId).toMatch(/^dec_/);
    expect((await check([])).decision).toBe(Decision.ALLOW);
  });

  it("a tenant with nothing published gets an error, never an ALLOW", async () => {
    const t = await newTenant();
    const { key } = await t.newKey();
    expect(await codeOf(edge(key).checkPolicy({}))).toBe("FailedPrecondition");
  });
});

const WARN_ON_SEARCH = `package fulcrum.policy

warn contains {"message": "search is watched", "rule_id": "watch-search"} if {
	"web_search" in input.tool_names
}
`;

function rateLimitRule(parameters: Record<string, string>): Rule {
  return create(RuleSchema, {
    ruleId: "limit",
    name: "limit",
    ruleType: RuleType.RATE_LIMIT,
    actions: [{ type: ActionType.THROTTLE, parameters }],
  });
}

describe("rate limits", () => {
  it("are exact at the boundary under 35 concurrent callers, with reason RATE_LIMITED and retry-after", async () => {
    const t = await newTenant();
    const { policyId } = await t.activate({
      rules: [rateLimitRule({ requests_per_minute: "20", per: "workflow" })],
    });
    const { key } = await t.newKey();
    const client = edge(key);
    const results = await Promise.all(
      Array.from({ length: 35 }, () =>
        client.checkPolicy({ context: { workflowId: "wf-boundary" } }),
      ),
    );
    const allowed = results.filter((r) => r.decision === Decision.ALLOW);
    const limited = results.filter((r) => r.decision === Decision.DENY);
    expect(allowed).toHaveLength(20);
    expect(limited).toHaveLength(15);
    for (const r of limited) {
      expect(r.reason).toBe(DecisionReason.RATE_LIMITED);
      const [state] = r.rateLimits;
      expect(state).toMatchObject({
        limitId: `${policyId}/limit/requests_per_minute`,
        scope: "workflow",
        subject: "wf-boundary",
        limit: 20,
        remaining: 0,
        exceeded: true,
      });
      expect(state?.retryAfterMs).toBeGreaterThan(0);
    }
    expect(
      allowed.map((r) => r.rateLimits[0]?.remaining).sort((a, b) => (a ?? 0) - (b ?? 0)),
    ).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // Another workflow has its own counter.
    const other = await client.checkPolicy({ context: { workflowId: "wf-other" } });
    expect(other.decision).toBe(Decision.ALLOW);
  });
});
