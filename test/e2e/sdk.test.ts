import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActionType, RuleType } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  ConditionOperator,
  PolicyStatus,
  type Rule,
  RuleSchema,
  type ValueSchema,
} from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { ApiKeyScope } from "../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import { freePort } from "../../scripts/lib/ports.js";
import {
  type Decision,
  type FailedEvent,
  FulcrumClient,
  type FulcrumClientOptions,
  FulcrumError,
} from "../../sdk/src/index.js";
import { type E2eTenant, edgeUrl, newTenant, timeUntil } from "../harness/e2e-stack.js";
import { toolRule } from "../harness/policy-fixtures.js";

/**
 * The SDK against the whole local stack (test/harness/global-setup.ts): tenants, API
 * keys and policies made through the management API, decisions from the edge Worker
 * under wrangler dev. The tenant is always the key's: the SDK sends no tenant id.
 * Then the SDK against an edge that is not there (a refused port, a server that never
 * answers), where the client's failure mode decides.
 */

const root = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);

/** Runs an SDK example with tsx, as a user would, and returns its stdout. */
async function runExample(name: string, env: Record<string, string>): Promise<string> {
  const { stdout } = await run(
    join(root, "node_modules", ".bin", "tsx"),
    [join(root, "sdk", "examples", name)],
    { cwd: root, env: { ...process.env, ...env }, timeout: 30_000 },
  );
  return stdout;
}

/** A client of the running edge; generous timeout: the first calls warm the Worker. */
const client = (apiKey: string, options: Partial<FulcrumClientOptions> = {}) =>
  new FulcrumClient({ baseUrl: edgeUrl(), apiKey, timeoutMs: 10_000, ...options });

/** Well-formed (fk_ + 43 base64url characters) but never issued. */
const UNKNOWN_KEY = `fk_${"0".repeat(43)}`;

/** What a call threw (fails the test when it resolved). */
async function thrown(call: Promise<unknown>): Promise<FulcrumError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, "expected the call to throw").toBeInstanceOf(FulcrumError);
  return error as FulcrumError;
}

function fieldRule(
  ruleId: string,
  ruleType: RuleType,
  field: string,
  operator: ConditionOperator,
  value: MessageInitShape<typeof ValueSchema>,
  message: string,
): Rule {
  return create(RuleSchema, {
    ruleId,
    name: ruleId,
    ruleType,
    conditions: [{ kind: { case: "field", value: { field, operator, value } } }],
    actions: [{ type: ActionType.DENY, message }],
  });
}

/** The README's tenant: shell tools denied (rule `no_shell`), approved models, a cost cap. */
const GUARD_RULES: Rule[] = [
  create(RuleSchema, { ...toolRule("shell_run"), ruleId: "no_shell", name: "no_shell" }),
  fieldRule(
    "approved_models",
    RuleType.MODEL_RESTRICTION,
    "model_id",
    ConditionOperator.NOT_IN,
    {
      kind: {
        case: "listValue",
        value: {
          values: [
            { kind: { case: "stringValue", value: "gpt-4o-mini" } },
            { kind: { case: "stringValue", value: "gpt-4o" } },
          ],
        },
      },
    },
    "model not approved",
  ),
  fieldRule(
    "cost_cap",
    RuleType.COST_CONTROL,
    "estimated_cost_usd",
    ConditionOperator.GT,
    { kind: { case: "floatValue", value: 1 } },
    "over the cost cap",
  ),
];

/** A second policy of that tenant, in Rego: gpt-4o is allowed but watched (WARN). */
const WATCH_GPT4O_REGO = `package fulcrum.policy

warn contains {"message": "gpt-4o is watched", "rule_id": "watch_gpt4o"} if {
	input.model_id == "gpt-4o"
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

describe("the SDK against the running edge", () => {
  let key: string;
  let rulesPolicy: string;
  let watchPolicy: string;

  beforeAll(async () => {
    const tenant = await newTenant("sdk");
    rulesPolicy = (await tenant.activate({ rules: GUARD_RULES }, { name: "guardrails" })).policyId;
    watchPolicy = (await tenant.activate({ rego: WATCH_GPT4O_REGO }, { name: "watch" })).policyId;
    key = (await tenant.newKey()).key;
  });

  it("guard() gets a policy DENY with its rule, reason, policy versions and decision id", async () => {
    const env = client(key).envelope({ workflowId: "e2e-sdk" });
    const decision = await env.guard("run_command", { tools: ["shell_run"], inputText: "ls" });
    expect(decision).toMatchObject({
      decision: "DENY",
      allowed: false,
      reason: "POLICY",
      failedOpen: false,
      failedClosed: false,
      rateLimits: [],
      retryAfterMs: undefined,
      failureMode: undefined,
      policyVersions: { [rulesPolicy]: "1", [watchPolicy]: "1" },
    });
    expect(decision.decisionId).toMatch(/^dec_/);
    expect(decision.matchedRules.map((r) => [r.policyId, r.ruleId, r.ruleType])).toEqual([
      [rulesPolicy, "no_shell", "TOOL_RESTRICTION"],
    ]);
    expect(decision.reasons.join(" ")).toContain("shell_run");
    expect(decision.error).toBeUndefined();
    await env.complete();
  });

  it("guard() gets an ALLOW with no matched rule; a WARN is allowed; other models and costs are not", async () => {
    const env = client(key).envelope({ workflowId: "e2e-sdk" });
    const allow = await env.guard("summarize", {
      model: "gpt-4o-mini",
      inputText: "Summarize the ticket",
      estimatedCost: 0.01,
    });
    expect(allow).toMatchObject({
      decision: "ALLOW",
      allowed: true,
      reason: "POLICY",
      matchedRules: [],
      rateLimits: [],
    });
    expect(allow.decisionId).toMatch(/^dec_/);

    const warn = await env.guard("summarize", { model: "gpt-4o", inputText: "hello" });
    expect(warn).toMatchObject({ decision: "WARN", allowed: true, reason: "POLICY" });
    expect(warn.matchedRules.map((r) => [r.policyId, r.ruleId])).toEqual([
      [watchPolicy, "watch_gpt4o"],
    ]);
    expect(await env.allowed("summarize", { model: "gpt-4o", inputText: "hello" })).toBe(true);

    const model = await env.guard("summarize", { model: "llama-3", estimatedCost: 0.01 });
    expect(model.matchedRules.map((r) => [r.ruleId, r.ruleType])).toEqual([
      ["approved_models", "MODEL_RESTRICTION"],
    ]);
    expect(model.allowed).toBe(false);
    expect(await env.allowed("summarize", { model: "gpt-4o-mini", estimatedCost: 2 })).toBe(false);
    await env.complete();
  });

  it("the same decisions over Connect JSON", async () => {
    const json = client(key, { useBinaryFormat: false });
    const deny = await json.evaluate({ action: "run_command", tools: ["shell_run"] });
    expect(deny).toMatchObject({ decision: "DENY", reason: "POLICY" });
    expect(deny.matchedRules.map((r) => r.ruleId)).toEqual(["no_shell"]);
    const allow = await json.evaluate({ model: "gpt-4o-mini", estimatedCost: 0.01 });
    expect(allow).toMatchObject({ decision: "ALLOW", reason: "POLICY", matchedRules: [] });
  });

  it("evaluates named policies one result each, and check() calls CheckPolicy", async () => {
    const decision = await client(key).evaluate(
      { tools: ["shell_run"], model: "gpt-4o" },
      { policyIds: [rulesPolicy, watchPolicy] },
    );
    expect(decision).toMatchObject({ decision: "DENY", reason: "POLICY" });
    expect(decision.decisionId).toMatch(/^dec_/);
    expect(decision.results.map((r) => [r.policyId, r.decision, r.policyVersion])).toEqual(
      expect.arrayContaining([
        [rulesPolicy, "DENY", "1"],
        [watchPolicy, "WARN", "1"],
      ]),
    );
    expect(decision.results).toHaveLength(2);
    expect(decision.policyVersions).toEqual({ [rulesPolicy]: "1", [watchPolicy]: "1" });

    const one = await client(key).evaluate({ model: "gpt-4o" }, { policyIds: [watchPolicy] });
    expect(one).toMatchObject({ decision: "WARN", policyVersions: { [watchPolicy]: "1" } });
    expect(one.results.map((r) => r.policyId)).toEqual([watchPolicy]);

    const check = await client(key).check({ tools: ["shell_run"] }, { policyId: rulesPolicy });
    expect(check).toMatchObject({
      decision: "DENY",
      reason: "POLICY",
      policyVersions: { [rulesPolicy]: "1" },
    });
    expect(check.matchedRules.map((r) => r.ruleId)).toEqual(["no_shell"]);
    const all = await client(key).check({ model: "gpt-4o-mini" });
    expect(all).toMatchObject({ decision: "ALLOW", allowed: true, reason: "POLICY" });
  });

  it("dry run answers ALLOW and reports what would have been decided", async () => {
    const decision = await client(key).evaluate({ tools: ["shell_run"] }, { dryRun: true });
    expect(decision).toMatchObject({ decision: "ALLOW", dryRun: true, wouldDecide: "DENY" });
  });

  it("a tenant whose policies were all deactivated gets ALLOW with reason NO_ACTIVE_POLICIES", async () => {
    const t = await newTenant("sdk-inactive");
    const { policyId } = await t.activate({ rules: [toolRule("shell_run")] }, { name: "off" });
    const { key: k } = await t.newKey();
    const sdk = client(k);
    expect((await sdk.evaluate({ tools: ["shell_run"] })).decision).toBe("DENY");
    await t.policies.updatePolicy({
      policy: { policyId, name: "off", status: PolicyStatus.INACTIVE },
      updateMask: { paths: ["status"] },
    });
    let last: Decision | undefined;
    await timeUntil(async () => {
      last = await sdk.evaluate({ tools: ["shell_run"] });
      return last.reason === "NO_ACTIVE_POLICIES";
    }, 5000);
    expect(last).toMatchObject({
      decision: "ALLOW",
      allowed: true,
      reason: "NO_ACTIVE_POLICIES",
      matchedRules: [],
      policyVersions: {},
      failedOpen: false,
    });
    expect(last?.decisionId).toMatch(/^dec_/);
  });

  it("log() publishes through the edge: every event accepted, none failed", async () => {
    const reported: FailedEvent[] = [];
    const env = client(key, { onEventError: (f) => reported.push(f) }).envelope({
      workflowId: "e2e-sdk",
    });
    env.log("tool_invoked", { tool: "search" });
    await expect(env.run(async () => "ok")).resolves.toBe("ok");
    expect(env.status).toBe("COMPLETED");
    await timeUntil(async () => env.pendingEvents === 0, 10_000);
    expect(env.failedEvents).toEqual([]);
    expect(reported).toEqual([]);
  });

  it("log() does not fail the caller when the edge refuses an event", async () => {
    const reported: FailedEvent[] = [];
    const env = client(key, { onEventError: (f) => reported.push(f) }).envelope({
      workflowId: "e2e-sdk",
    });
    // Over the 64 KiB limit: InvalidArgument, which is not retried.
    env.log("tool_invoked", { blob: "x".repeat(70_000) });
    await expect(env.run(async () => "ok")).resolves.toBe("ok");
    await timeUntil(async () => env.pendingEvents === 0, 10_000);
    expect(env.failedEvents.map((f) => [f.type, f.attempts, f.error.code])).toEqual([
      ["tool_invoked", 1, "InvalidArgument"],
    ]);
    expect(reported).toHaveLength(1);
  });

  it("runs the README's guard example", async () => {
    const stdout = await runExample("guard.ts", { FULCRUM_URL: edgeUrl(), FULCRUM_API_KEY: key });
    expect(stdout).toMatch(/^run_command: DENY POLICY \(no_shell\) dec_\S+$/m);
    expect(stdout).toMatch(/^summarize: allowed$/m);
    expect(stdout).toMatch(/^misconfigured: Unauthenticated$/m);
  });
});

/**
 * Waits for the next minute when less than 10 s of this one are left: the limits' sliding
 * windows are whole minutes, and a sequence that straddles two is weighted differently.
 */
async function awayFromMinuteBoundary(): Promise<void> {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 50_000) {
    await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 50));
  }
}

describe("rate limits through the SDK", () => {
  it("a request limit per workflow: remaining counts down, then a DENY RATE_LIMITED with retryAfterMs", async () => {
    const t = await newTenant("sdk-rpm");
    const limit = 3;
    const { policyId } = await t.activate({
      rules: [rateLimitRule({ requests_per_minute: String(limit), per: "workflow" })],
    });
    const { key } = await t.newKey();
    const env = client(key).envelope({ workflowId: "wf-sdk-limit" });
    await awayFromMinuteBoundary();
    const decisions: Decision[] = [];
    for (let i = 0; i <= limit; i++) decisions.push(await env.guard("summarize"));

    const last = decisions.pop() as Decision;
    const limitId = `${policyId}/limit/requests_per_minute`;
    const counter = {
      limitId,
      scope: "workflow",
      subject: "wf-sdk-limit",
      unit: "requests",
      limit,
    };
    expect(decisions.map((d) => [d.decision, d.allowed, d.reason])).toEqual(
      Array(limit).fill(["ALLOW", true, "POLICY"]),
    );
    decisions.forEach((d, i) => {
      expect(d.rateLimits).toEqual([
        expect.objectContaining({ ...counter, remaining: limit - 1 - i, exceeded: false }),
      ]);
      expect(d.retryAfterMs).toBeUndefined();
    });

    expect(last).toMatchObject({
      decision: "DENY",
      allowed: false,
      reason: "RATE_LIMITED",
      failedOpen: false,
      failedClosed: false,
    });
    expect(last.decisionId).toMatch(/^dec_/);
    expect(last.retryAfterMs).toBeGreaterThan(0);
    expect(last.retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(last.rateLimits).toHaveLength(1);
    const [state] = last.rateLimits;
    expect(state).toMatchObject({ ...counter, remaining: 0, exceeded: true, failed: false });
    expect(state?.resetAt).toBeInstanceOf(Date);
    expect(state?.retryAfterMs).toBeGreaterThan(0);
    expect(last.matchedRules.map((r) => [r.policyId, r.ruleId, r.ruleType])).toContainEqual([
      policyId,
      "limit",
      "RATE_LIMIT",
    ]);

    // Another workflow has its own counter.
    const other = await client(key).envelope({ workflowId: "wf-sdk-other" }).guard("summarize");
    expect(other).toMatchObject({ decision: "ALLOW", reason: "POLICY" });
    expect(other.rateLimits[0]).toMatchObject({ subject: "wf-sdk-other", remaining: limit - 1 });
  });

  async function tokensTenant() {
    const t = await newTenant("sdk-tpm");
    const { policyId } = await t.activate({
      // Token bucket: exact. A sliding-window token limit counts the call that overshoots
      // it (@upstash/ratelimit's script adds before it compares; docs/decisions.md).
      rules: [rateLimitRule({ tokens_per_minute: "1000", algorithm: "token_bucket" })],
    });
    const { key } = await t.newKey();
    return { env: client(key).envelope({ workflowId: "wf-sdk-tokens" }), policyId };
  }

  it("a tokens-per-minute limit counts estimatedTokens", async () => {
    const { env, policyId } = await tokensTenant();
    const limitId = `${policyId}/limit/tokens_per_minute`;
    await awayFromMinuteBoundary();

    const first = await env.guard("summarize", { model: "gpt-4o-mini", estimatedTokens: 600 });
    expect(first).toMatchObject({ decision: "ALLOW", reason: "POLICY" });
    expect(first.rateLimits).toEqual([
      expect.objectContaining({
        limitId,
        scope: "tenant",
        subject: "",
        unit: "tokens",
        limit: 1000,
        remaining: 400,
        exceeded: false,
      }),
    ]);

    // 600 more would go over: DENY RATE_LIMITED.
    const second = await env.guard("summarize", { model: "gpt-4o-mini", estimatedTokens: 600 });
    expect(second).toMatchObject({ decision: "DENY", allowed: false, reason: "RATE_LIMITED" });
    expect(second.retryAfterMs).toBeGreaterThan(0);
    expect(second.rateLimits).toEqual([
      expect.objectContaining({ limitId, unit: "tokens", remaining: 0, exceeded: true }),
    ]);

    // A call without estimatedTokens is not counted against a tokens limit.
    const untracked = await env.guard("summarize", { model: "gpt-4o-mini" });
    expect(untracked).toMatchObject({ decision: "ALLOW", reason: "POLICY", rateLimits: [] });
  });

  it("a token call that was refused is not counted: what was left still fits", async () => {
    const { env, policyId } = await tokensTenant();
    await awayFromMinuteBoundary();
    expect((await env.guard("summarize", { estimatedTokens: 600 })).decision).toBe("ALLOW");
    const refused = await env.guard("summarize", { estimatedTokens: 600 });
    expect(refused).toMatchObject({ decision: "DENY", reason: "RATE_LIMITED" });
    // 400 were left before the refused call; it must not have taken them (SDK README:
    // "An exceeded call is not counted"). A fraction is rounded up: 399.5 → 400.
    const rest = await env.guard("summarize", { estimatedTokens: 399.5 });
    expect(rest.rateLimits).toEqual([
      expect.objectContaining({
        limitId: `${policyId}/limit/tokens_per_minute`,
        exceeded: false,
        remaining: 0,
      }),
    ]);
    expect(rest).toMatchObject({ decision: "ALLOW", reason: "POLICY" });
  });

  it("runs the README's rate-limit example", async () => {
    const t = await newTenant("sdk-rl-example");
    const { policyId } = await t.activate({
      rules: [rateLimitRule({ requests_per_minute: "10", per: "workflow" })],
    });
    const { key } = await t.newKey();
    // Warm this tenant at the edge on another workflow (the example's timeout is 500 ms).
    expect((await client(key).evaluate({ workflowId: "warm-up" })).decision).toBe("ALLOW");
    const stdout = await runExample("rate-limits.ts", {
      FULCRUM_URL: edgeUrl(),
      FULCRUM_API_KEY: key,
    });
    expect(stdout).toMatch(
      /^call \d+: DENY RATE_LIMITED \S+\/requests_per_minute \(workflow requests, limit \d+\) retry in \d+ ms$/m,
    );
    expect(stdout).toContain(
      `DENY RATE_LIMITED ${policyId}/limit/requests_per_minute (workflow requests, limit 10)`,
    );
    expect(Number(/^call (\d+):/m.exec(stdout)?.[1])).toBeGreaterThanOrEqual(11);
  });
});

describe("mistakes throw FulcrumError, even under FAIL_OPEN", () => {
  let tenant: E2eTenant;
  let checkKey: string;

  beforeAll(async () => {
    tenant = await newTenant("sdk-mistakes");
    await tenant.activate({ rules: [toolRule("shell_run")] });
    checkKey = (await tenant.newKey()).key;
  });

  const open = (apiKey: string) => client(apiKey, { failureMode: "FAIL_OPEN" });

  it("a well-formed key that was never issued: Unauthenticated", async () => {
    const error = await thrown(open(UNKNOWN_KEY).evaluate({ inputText: "hello" }));
    expect(error.code).toBe("Unauthenticated");
    expect(error.transportFailure).toBe(false);
    const viaGuard = open(UNKNOWN_KEY).envelope({ workflowId: "e2e" }).guard("chat");
    expect((await thrown(viaGuard)).code).toBe("Unauthenticated");
  });

  it("a revoked key: Unauthenticated", async () => {
    const { key, keyId } = await tenant.newKey();
    expect((await open(key).evaluate({})).decision).toBe("ALLOW");
    await tenant.keys.revokeApiKey({ keyId });
    await timeUntil(
      () =>
        open(key)
          .evaluate({})
          .then(
            () => false,
            (e: unknown) => e instanceof FulcrumError && e.code === "Unauthenticated",
          ),
      5000,
    );
  });

  it("a manage-only key: PermissionDenied", async () => {
    const { key } = await tenant.newKey([ApiKeyScope.MANAGE]);
    const error = await thrown(open(key).evaluate({ tools: ["shell_run"] }));
    expect(error.code).toBe("PermissionDenied");
  });

  it("invalid input (65 user roles): InvalidArgument", async () => {
    const error = await thrown(open(checkKey).evaluate({ userRoles: Array(65).fill("r") }));
    expect(error.code).toBe("InvalidArgument");
    // A negative token estimate never leaves the client.
    expect((await thrown(open(checkKey).evaluate({ estimatedTokens: -1 }))).code).toBe(
      "InvalidArgument",
    );
  });

  it("an unknown policy id: NotFound", async () => {
    const error = await thrown(open(checkKey).evaluate({}, { policyIds: ["pol_no_such"] }));
    expect(error.code).toBe("NotFound");
  });

  it("a tenant with nothing published: FailedPrecondition, never an ALLOW", async () => {
    const t = await newTenant("sdk-empty");
    const { key } = await t.newKey();
    const error = await thrown(open(key).evaluate({ tools: ["shell_run"] }));
    expect(error.code).toBe("FailedPrecondition");
  });

  it("a malformed key, a missing key or a tenantId throw at construction, without echoing the key", () => {
    const construct = (options: Record<string, unknown>) => {
      try {
        new FulcrumClient({ baseUrl: edgeUrl(), ...options } as unknown as FulcrumClientOptions);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const malformed = construct({ apiKey: "sk-live-secret-value", failureMode: "FAIL_OPEN" });
    expect(malformed).toBeInstanceOf(FulcrumError);
    expect(malformed).toMatchObject({ code: "InvalidArgument" });
    expect((malformed as Error).message).not.toContain("sk-live-secret-value");
    expect(construct({ failureMode: "FAIL_OPEN" })).toMatchObject({ code: "InvalidArgument" });
    expect(construct({ apiKey: checkKey, tenantId: tenant.tenantId })).toMatchObject({
      code: "InvalidArgument",
    });
    // Surrounding whitespace is trimmed: the key still works.
    expect(construct({ apiKey: ` ${checkKey}\n` })).toBeUndefined();
  });
});

describe("the SDK against a stopped edge", () => {
  let stoppedUrl: string;
  let hanging: Server;
  let hangingUrl: string;

  beforeAll(async () => {
    // A port that was free a moment ago: nothing listens, connections are refused.
    stoppedUrl = `http://127.0.0.1:${await freePort()}`;
    // A server that accepts and never answers: only the timeout ends the call.
    hanging = createServer(() => {});
    await new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve));
    hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    hanging.closeAllConnections();
    await new Promise((resolve) => hanging.close(resolve));
  });

  const modes = [
    ["FAIL_OPEN", "ALLOW"],
    ["FAIL_CLOSED", "DENY"],
  ] as const;

  it.each(modes)("%s: a refused connection gives a synthetic %s", async (failureMode, verdict) => {
    const sdk = new FulcrumClient({ baseUrl: stoppedUrl, apiKey: UNKNOWN_KEY, failureMode });
    const decision = await sdk.envelope({ workflowId: "e2e" }).guard("send_email", {
      tools: ["smtp_send"],
    });
    expect(decision).toMatchObject({
      decision: verdict,
      allowed: failureMode === "FAIL_OPEN",
      reason: failureMode,
      failedOpen: failureMode === "FAIL_OPEN",
      failedClosed: failureMode === "FAIL_CLOSED",
      failureMode: { component: "edge", mode: failureMode },
      decisionId: "",
      matchedRules: [],
      rateLimits: [],
      retryAfterMs: undefined,
      error: { code: "Unknown" },
    });
    expect(decision.error).toBeInstanceOf(FulcrumError);
    expect(decision.error?.message).toContain("fetch failed");
    expect(decision.reasons.join(" ")).toContain(failureMode);
  });

  it.each(modes)(
    "%s: an edge that hangs times out into a synthetic %s",
    async (failureMode, verdict) => {
      const sdk = new FulcrumClient({
        baseUrl: hangingUrl,
        apiKey: UNKNOWN_KEY,
        failureMode,
        timeoutMs: 500,
      });
      const started = performance.now();
      const decision = await sdk.evaluate({ tools: ["smtp_send"] });
      const elapsed = performance.now() - started;
      expect(decision).toMatchObject({
        decision: verdict,
        reason: failureMode,
        failedOpen: failureMode === "FAIL_OPEN",
        failedClosed: failureMode === "FAIL_CLOSED",
        failureMode: { component: "edge", mode: failureMode },
        decisionId: "",
        error: { code: "DeadlineExceeded" },
      });
      // The 500 ms deadline, not a hang.
      expect(elapsed).toBeGreaterThanOrEqual(480);
      expect(elapsed).toBeLessThan(3000);
    },
  );

  it("an envelope against a stopped edge still runs; its events are retried, then reported", async () => {
    const failures: string[] = [];
    const sdk = new FulcrumClient({
      baseUrl: stoppedUrl,
      apiKey: UNKNOWN_KEY,
      failureMode: "FAIL_OPEN",
      eventRetries: 2,
      eventBackoffMs: 10,
      onEventError: (f) => failures.push(`${f.type}:${f.attempts}:${f.error.code}`),
    });
    const env = sdk.envelope({ workflowId: "e2e" });
    const allowed = await env.run((e) => e.allowed("send_email"));
    expect(allowed).toBe(true);
    expect(env.status).toBe("COMPLETED");
    expect(env.pendingEvents).toBe(0);
    // One attempt and two retries each, then given up on, in order.
    expect(failures).toEqual(["EXECUTION_STARTED:3:Unknown", "EXECUTION_COMPLETED:3:Unknown"]);
    expect(env.failedEvents.map((f) => f.type)).toEqual([
      "EXECUTION_STARTED",
      "EXECUTION_COMPLETED",
    ]);
  });

  it("runs the README's failure-mode example", async () => {
    const stdout = await runExample("failure-modes.ts", {
      FULCRUM_URL: hangingUrl,
      FULCRUM_API_KEY: UNKNOWN_KEY,
    });
    expect(stdout).toContain(
      "FAIL_OPEN: ALLOW failedOpen=true failedClosed=false (DeadlineExceeded) reason=FAIL_OPEN",
    );
    expect(stdout).toContain(
      "FAIL_CLOSED: DENY failedOpen=false failedClosed=true (DeadlineExceeded) reason=FAIL_CLOSED",
    );
  });
});
