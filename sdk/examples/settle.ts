import { AlreadySettledError, FulcrumClient } from "../src/index.js";

const client = new FulcrumClient({
  baseUrl: process.env.FULCRUM_URL ?? "http://127.0.0.1:8787",
  // The management API (functions): settling usage goes there, not to the edge.
  managementUrl: process.env.FULCRUM_MANAGEMENT_URL ?? "http://127.0.0.1:8080",
  apiKey: process.env.FULCRUM_API_KEY ?? "",
});

// Before the call: the edge reserves the estimate against every budget that applies.
const decision = await client.evaluate({
  workflowId: "support-bot",
  action: "summarize",
  phase: "PRE_LLM_CALL",
  model: "gpt-4o-mini",
  estimatedTokens: 1200,
});
const reservation = decision.budget?.reservationId || "none (no budget applies)";
console.log(`decision: ${decision.decision} ${decision.reason}, reservation ${reservation}`);
for (const budget of decision.budget?.budgets ?? []) {
  console.log(
    `  budget ${budget.name || budget.budgetId}: ${budget.status}, ${budget.tokensRemaining ?? "∞"} tokens left`,
  );
}
if (!decision.allowed) throw new Error(`not allowed: ${decision.reasons.join("; ")}`);

// ... call the model here; then settle what it actually used (the reservation is
// released and the real usage counted, priced with the tenant's price table).
const settled = await decision.settle({ inputTokens: 950, outputTokens: 180 });
console.log(`settled: cost event ${settled.costEventId}, $${settled.costUsd?.toFixed(6)}`);
for (const budget of settled.budgets) {
  console.log(`  budget ${budget.budgetId}: ${budget.status}, ${budget.used.tokens} tokens used`);
}

// Settling twice is refused (locally here; by the server with AlreadyExists elsewhere).
try {
  await decision.settle({ inputTokens: 950, outputTokens: 180 });
  throw new Error("a second settle was accepted");
} catch (error) {
  if (!(error instanceof AlreadySettledError)) throw error;
  console.log(`second settle: ${error.code} (local: ${error.local})`);
}
