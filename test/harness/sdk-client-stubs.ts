import { createRouterTransport, type HandlerContext } from "@connectrpc/connect";
import { vi } from "vitest";
import {
  type EvaluatePolicyRequest,
  PolicyService,
} from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { FulcrumClient } from "../../sdk/src/index.js";

/**
 * Stand-ins for the SDK client's unit tests (sdk/src/client.test.ts: wire format and
 * decision mapping; sdk/src/client-failures.test.ts: failure modes and configuration
 * mistakes): a fetch answering Connect JSON that records each request, and a client over
 * an in-memory router transport.
 */

/** A well-formed Fulcrum API key (`fk_` + 43 base64url characters) for the SDK's unit tests. */
export const TEST_API_KEY = "fk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

/** A fetch answering Connect JSON, recording each request. */
export function jsonFetch(body: unknown, status = 200) {
  const requests: { url: string; headers: Headers; body: unknown }[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    requests.push({
      url: String(input),
      headers: new Headers(init?.headers),
      body: JSON.parse(
        init?.body instanceof Uint8Array ? new TextDecoder().decode(init.body) : String(init?.body),
      ),
    });
    return new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json" },
    });
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, requests };
}

/** A client (key TEST_API_KEY) whose EvaluatePolicy is `evaluatePolicy`, in memory. */
export function routerClient(
  evaluatePolicy: (req: EvaluatePolicyRequest, context: HandlerContext) => unknown,
  failureMode: "FAIL_OPEN" | "FAIL_CLOSED" = "FAIL_CLOSED",
) {
  const transport = createRouterTransport(({ service }) => {
    service(PolicyService, {
      evaluatePolicy: evaluatePolicy as never,
    });
  });
  return new FulcrumClient({
    baseUrl: "http://unused",
    apiKey: TEST_API_KEY,
    transport,
    failureMode,
  });
}
