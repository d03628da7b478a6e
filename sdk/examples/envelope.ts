import { FulcrumClient, FulcrumError } from "../src/index.js";

const client = new FulcrumClient({
  baseUrl: process.env.FULCRUM_URL ?? "http://127.0.0.1:8787",
  // With managementUrl, envelopes are created and ended through EnvelopeService.
  managementUrl: process.env.FULCRUM_MANAGEMENT_URL ?? "http://127.0.0.1:8080",
  apiKey: process.env.FULCRUM_API_KEY ?? "",
});

// An execution with its own limits: PENDING → AUTHORIZED → RUNNING.
const parent = await client.startEnvelope({
  workflowId: "research-agent",
  governance: { tokenBudget: 20_000, allowedModels: ["gpt-4o-mini"], timeoutMs: 600_000 },
});
console.log(`parent ${parent.envelopeId}: ${parent.status}`);

// A sub-agent draws on its parent's limits; run() completes it, or fails it on a throw.
const child = parent.child({ governance: { tokenBudget: 5_000 } });
await child.run(async (agent) => {
  const step = await agent.guard("search", {
    phase: "PRE_LLM_CALL",
    model: "gpt-4o-mini",
    estimatedTokens: 800,
  });
  console.log(`child ${agent.envelopeId} step: ${step.decision} ${step.reason}`);
  if (!step.allowed) throw new Error(`denied: ${step.reasons.join("; ")}`);
  await step.settle({ inputTokens: 640, outputTokens: 120 });
});
console.log(`child: ${child.status}`);

// The envelope's governance applies to every guard inside it.
const other = await parent.guard("chat", { phase: "PRE_LLM_CALL", model: "gpt-4o" });
console.log(`gpt-4o in the parent: ${other.decision} ${other.reason}`);
if (other.allowed) throw new Error("a model outside allowedModels was allowed");

// A child can never ask for more than its parent.
try {
  await parent.child({ governance: { tokenBudget: 50_000 } }).start();
  throw new Error("a child larger than its parent was created");
} catch (error) {
  if (!(error instanceof FulcrumError)) throw error;
  console.log(`greedy child: ${error.code}`);
}

await parent.complete({ steps: 1 });
console.log(`parent: ${parent.status}`);

// A block that throws ends FAILED, with the error as the reason.
const failing = client.envelope({ workflowId: "research-agent" });
await failing
  .run(async () => {
    throw new Error("tool crashed");
  })
  .catch((error: Error) => console.log(`failing: ${failing.status} (${error.message})`));
if (failing.status !== "FAILED") throw new Error(`expected FAILED, got ${failing.status}`);
