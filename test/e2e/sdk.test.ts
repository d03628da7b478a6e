import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { freePort } from "../../scripts/lib/ports.js";
import { FulcrumClient, FulcrumError } from "../../sdk/src/index.js";

const edgeUrl = inject("edgeUrl");
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

describe("the SDK against the running Worker", () => {
  // Generous: the first calls warm the Worker's policy engine.
  const client = (tenantId: string) =>
    new FulcrumClient({ baseUrl: edgeUrl, apiKey: "fk_e2e_unused", tenantId, timeoutMs: 10_000 });

  it("guard() gets a DENY with its rule, reason and decision id (tenant demo)", async () => {
    const env = client("demo").envelope({ workflowId: "e2e-sdk" });
    const decision = await env.guard("run_command", { tools: ["shell_run"], inputText: "ls" });
    expect(decision).toMatchObject({
      decision: "DENY",
      allowed: false,
      failedOpen: false,
      failedClosed: false,
      policyVersions: { pol_safe_tools: "v1", pol_models: "v2", pol_pii: "v1" },
    });
    expect(decision.decisionId).toMatch(/^dec_/);
    expect(decision.matchedRules.map((r) => [r.policyId, r.ruleId, r.ruleType])).toContainEqual([
      "pol_safe_tools",
      "no_shell",
      "TOOL_RESTRICTION",
    ]);
    expect(decision.reasons.join(" ")).toContain("shell_run");
    expect(decision.policyVersions).not.toHaveProperty("pol_draft_rbac");
    await env.complete();
  });

  it("guard() gets an ALLOW for an approved model under the cost cap, and a WARN is allowed", async () => {
    const env = client("demo").envelope({ workflowId: "e2e-sdk" });
    const allow = await env.guard("summarize", {
      model: "gpt-4o-mini",
      inputText: "Summarize the ticket",
      estimatedCost: 0.01,
    });
    expect(allow).toMatchObject({ decision: "ALLOW", allowed: true, matchedRules: [] });
    const warn = await env.guard("summarize", { model: "gpt-4o", inputText: "my api_key is x" });
    expect(warn).toMatchObject({ decision: "WARN", allowed: true });
    expect(await env.allowed("summarize", { model: "llama-3", estimatedCost: 0.01 })).toBe(false);
    expect(await env.allowed("summarize", { model: "gpt-4o", estimatedCost: 2 })).toBe(false);
  });

  it("tenant test: a credential in the prompt is denied, a plain prompt allowed", async () => {
    const env = client("test").envelope({ workflowId: "e2e-sdk" });
    expect((await env.guard("chat", { inputText: "password: hunter2" })).decision).toBe("DENY");
    expect((await env.guard("chat", { inputText: "what is the weather?" })).decision).toBe("ALLOW");
  });

  it("evaluates named policies one result each, and check() calls CheckPolicy", async () => {
    const decision = await client("demo").evaluate(
      { model: "claude-x", tools: ["delete_all"] },
      { policyIds: ["pol_models", "pol_safe_tools"] },
    );
    expect(decision.decision).toBe("REQUIRE_APPROVAL");
    expect(decision.results.map((r) => [r.policyId, r.decision, r.policyVersion])).toEqual([
      ["pol_models", "ALLOW", "v2"],
      ["pol_safe_tools", "REQUIRE_APPROVAL", "v1"],
    ]);
    const check = await client("test").check({ tools: ["shell_x"] }, { policyId: "test" });
    expect(check).toMatchObject({ decision: "DENY", policyVersions: { test: "v1" } });
  });

  it("dry run answers ALLOW and reports what would have been decided", async () => {
    const decision = await client("demo").evaluate({ tools: ["exec"] }, { dryRun: true });
    expect(decision).toMatchObject({ decision: "ALLOW", dryRun: true, wouldDecide: "DENY" });
  });

  it("throws FulcrumError for an unknown tenant and invalid input, even with FAIL_OPEN", async () => {
    const open = new FulcrumClient({
      baseUrl: edgeUrl,
      tenantId: "no-such-tenant",
      failureMode: "FAIL_OPEN",
      timeoutMs: 10_000,
    });
    await expect(open.evaluate({})).rejects.toMatchObject({ code: "NotFound" });
    const invalid = open.evaluate({ tenantId: "demo", userRoles: Array(65).fill("r") });
    await expect(invalid).rejects.toBeInstanceOf(FulcrumError);
    await expect(invalid).rejects.toMatchObject({ code: "InvalidArgument" });
  });

  it("log() does not fail the caller while the edge answers PublishEvent Unimplemented", async () => {
    const env = client("demo").envelope({ workflowId: "e2e-sdk" });
    env.log("tool_invoked", { tool: "search" });
    await expect(env.run(async () => "ok")).resolves.toBe("ok");
    expect(env.pendingEvents).toBe(0);
    expect(env.failedEvents.map((f) => [f.type, f.attempts, f.error.code])).toEqual([
      ["EXECUTION_STARTED", 1, "Unimplemented"],
      ["tool_invoked", 1, "Unimplemented"],
      ["EXECUTION_COMPLETED", 1, "Unimplemented"],
    ]);
  });

  it("runs the README's guard example", async () => {
    const stdout = await runExample("guard.ts", { FULCRUM_URL: edgeUrl, FULCRUM_TENANT: "demo" });
    expect(stdout).toMatch(/^run_command: DENY \(no_shell\) dec_\S+$/m);
    expect(stdout).toMatch(/^summarize: allowed$/m);
    expect(stdout).toMatch(/^misconfigured: NotFound$/m);
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
    const client = new FulcrumClient({ baseUrl: stoppedUrl, tenantId: "demo", failureMode });
    const decision = await client.envelope({ workflowId: "e2e" }).guard("send_email", {
      tools: ["smtp_send"],
    });
    expect(decision).toMatchObject({
      decision: verdict,
      failedOpen: failureMode === "FAIL_OPEN",
      failedClosed: failureMode === "FAIL_CLOSED",
      decisionId: "",
      error: { code: "Unknown" },
    });
    expect(decision.error?.message).toContain("fetch failed");
  });

  it.each(modes)(
    "%s: an edge that hangs times out into a synthetic %s",
    async (failureMode, verdict) => {
      const client = new FulcrumClient({ baseUrl: hangingUrl, tenantId: "demo", failureMode });
      const started = performance.now();
      const decision = await client.evaluate({ tools: ["smtp_send"] });
      const elapsed = performance.now() - started;
      expect(decision).toMatchObject({ decision: verdict, error: { code: "DeadlineExceeded" } });
      // The default 500 ms deadline, not a hang.
      expect(elapsed).toBeGreaterThanOrEqual(480);
      expect(elapsed).toBeLessThan(3000);
    },
  );

  it("an envelope against a stopped edge still runs; its events are retried, then reported", async () => {
    const failures: string[] = [];
    const client = new FulcrumClient({
      baseUrl: stoppedUrl,
      tenantId: "demo",
      failureMode: "FAIL_OPEN",
      eventRetries: 2,
      eventBackoffMs: 10,
      onEventError: (f) => failures.push(`${f.type}:${f.attempts}:${f.error.code}`),
    });
    const env = client.envelope({ workflowId: "e2e" });
    const allowed = await env.run((e) => e.allowed("send_email"));
    expect(allowed).toBe(true);
    expect(failures).toEqual(["EXECUTION_STARTED:3:Unknown", "EXECUTION_COMPLETED:3:Unknown"]);
  });

  it("runs the README's failure-mode example", async () => {
    const stdout = await runExample("failure-modes.ts", { FULCRUM_URL: hangingUrl });
    expect(stdout).toContain(
      "FAIL_OPEN: ALLOW failedOpen=true failedClosed=false (DeadlineExceeded)",
    );
    expect(stdout).toContain(
      "FAIL_CLOSED: DENY failedOpen=false failedClosed=true (DeadlineExceeded)",
    );
  });
});
