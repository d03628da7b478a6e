import { FulcrumClient, FulcrumError } from "../src/index.js";

const baseUrl = process.env.FULCRUM_URL ?? "http://127.0.0.1:8787";

const client = new FulcrumClient({
  baseUrl,
  // Required: the key names the tenant (the SDK never sends a tenant id).
  apiKey: process.env.FULCRUM_API_KEY ?? "",
  failureMode: "FAIL_CLOSED",
  timeoutMs: 500,
  onEventError: (failure) =>
    console.warn(`event ${failure.type} not stored: ${failure.error.code}`),
});

const env = client.envelope({ workflowId: "support-bot", metadata: { team: "cx" } });

await env.run(async () => {
  // The full decision: verdict, why (for code and for people), matched rules, decision id.
  const shell = await env.guard("run_command", {
    tools: ["shell_run"],
    inputText: "clear the cache",
  });
  console.log(
    `run_command: ${shell.decision} ${shell.reason} (${shell.matchedRules[0]?.ruleId}) ${shell.decisionId}`,
  );

  // The boolean helper: true for ALLOW and WARN.
  const ok = await env.allowed("summarize", {
    model: "gpt-4o-mini",
    inputText: "Summarize the ticket",
    estimatedCost: 0.01,
    estimatedTokens: 900,
    phase: "PRE_LLM_CALL",
  });
  console.log(`summarize: ${ok ? "allowed" : "blocked"}`);
  if (ok) env.log("llm_call_completed", { model: "gpt-4o-mini", input_tokens: 812 });
});

// Mistakes (a wrong or revoked key, bad input) throw FulcrumError, whatever the
// failure mode: FAIL_OPEN covers outages, not misconfiguration.
const misconfigured = new FulcrumClient({
  baseUrl,
  apiKey: "fk_0000000000000000000000000000000000000000000", // well-formed, never issued
  failureMode: "FAIL_OPEN",
});
try {
  await misconfigured.evaluate({ inputText: "hello" });
} catch (error) {
  if (!(error instanceof FulcrumError)) throw error;
  console.log(`misconfigured: ${error.code}`);
}
