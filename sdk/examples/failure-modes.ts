import { FulcrumClient } from "../src/index.js";

// An edge that cannot be reached: the failure mode decides.
const baseUrl = process.env.FULCRUM_URL ?? "http://127.0.0.1:9";
const apiKey = process.env.FULCRUM_API_KEY ?? "";

for (const failureMode of ["FAIL_OPEN", "FAIL_CLOSED"] as const) {
  const client = new FulcrumClient({ baseUrl, apiKey, failureMode, timeoutMs: 200 });
  const decision = await client.evaluate({ action: "send_email", tools: ["smtp_send"] });
  console.log(
    `${failureMode}: ${decision.decision} failedOpen=${decision.failedOpen} ` +
      `failedClosed=${decision.failedClosed} (${decision.error?.code}) reason=${decision.reason}`,
  );
}
