import { type Decision, FulcrumClient } from "../src/index.js";

const client = new FulcrumClient({
  baseUrl: process.env.FULCRUM_URL ?? "http://127.0.0.1:8787",
  apiKey: process.env.FULCRUM_API_KEY ?? "",
});
const env = client.envelope({ workflowId: "rate-limit-demo" });

// A burst of calls until a rate limit answers. Being rate limited is not an error:
// it is a DENY with reason RATE_LIMITED that says which limit and when to retry.
let limited: Decision | undefined;
let calls = 0;
while (!limited && calls < 100) {
  calls++;
  const decision = await env.guard("summarize", { estimatedTokens: 500 });
  if (decision.reason === "RATE_LIMITED") limited = decision;
}

if (!limited) {
  console.log(`not rate limited after ${calls} calls`);
} else {
  const limit = limited.rateLimits.find((l) => l.exceeded);
  console.log(
    `call ${calls}: ${limited.decision} ${limited.reason} ${limit?.limitId} ` +
      `(${limit?.scope} ${limit?.unit}, limit ${limit?.limit}) retry in ${limited.retryAfterMs} ms`,
  );
}
await env.complete();
