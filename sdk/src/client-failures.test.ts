import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { jsonFetch, routerClient } from "../../test/harness/sdk-client-stubs.js";
import { FulcrumClient, FulcrumError } from "./index.js";

// FulcrumClient when things go wrong: timeouts, network errors, error answers and
// cancellation in FAIL_OPEN and FAIL_CLOSED, and configuration mistakes refused loudly. The
// wire format and decision mapping are in client.test.ts; the fetch and router stand-ins
// are in test/harness/sdk-client-stubs.ts.

/** A fetch that never answers; it rejects only when the call is aborted. */
const hangingFetch = ((_input: RequestInfo | URL, init?: RequestInit) =>
  new Promise((_resolve, reject) => {
    init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
  })) as typeof globalThis.fetch;

const refusedFetch = (async () => {
  throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:1") });
}) as typeof globalThis.fetch;

function connectErrorFetch(code: string, status: number) {
  return jsonFetch({ code, message: `server says ${code}` }, status).fetch;
}

describe("failure modes", () => {
  const modes = [
    ["FAIL_OPEN", "ALLOW", true],
    ["FAIL_CLOSED", "DENY", false],
  ] as const;

  it.each(modes)("%s: a timeout becomes a synthetic %s", async (failureMode, verdict, allowed) => {
    const client = new FulcrumClient({
      baseUrl: "https://e",
      fetch: hangingFetch,
      failureMode,
      timeoutMs: 50,
    });
    const started = Date.now();
    const decision = await client.evaluate({ tools: ["x"] });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(decision).toMatchObject({
      decision: verdict,
      allowed,
      decisionId: "",
      failedOpen: failureMode === "FAIL_OPEN",
      failedClosed: failureMode === "FAIL_CLOSED",
    });
    expect(decision.error).toBeInstanceOf(FulcrumError);
    expect(decision.error?.code).toBe("DeadlineExceeded");
    expect(decision.reasons[0]).toContain(failureMode);
    expect(decision.latencyMs).toBeGreaterThanOrEqual(45);
  });

  it.each(modes)("%s: a network error becomes a synthetic %s", async (failureMode, verdict) => {
    const client = new FulcrumClient({ baseUrl: "https://e", fetch: refusedFetch, failureMode });
    const decision = await client.evaluate({});
    expect(decision.decision).toBe(verdict);
    expect(decision.error?.code).toBe("Unknown");
    expect(decision.error?.message).toContain("fetch failed");
  });

  it.each([
    ["unavailable", 503],
    ["internal", 500],
    ["deadline_exceeded", 504],
  ])("FAIL_OPEN: a %s answer (HTTP %i) fails open", async (code, status) => {
    const client = new FulcrumClient({
      baseUrl: "https://e",
      fetch: connectErrorFetch(code, status),
      failureMode: "FAIL_OPEN",
      useBinaryFormat: false,
    });
    expect(await client.evaluate({})).toMatchObject({ decision: "ALLOW", failedOpen: true });
  });

  it("a 502 from a proxy (not a Connect error body) fails closed", async () => {
    const fetch = (async () =>
      new Response("<html>bad gateway</html>", {
        status: 502,
        headers: { "content-type": "text/html" },
      })) as typeof globalThis.fetch;
    const client = new FulcrumClient({ baseUrl: "https://e", fetch });
    const decision = await client.evaluate({});
    expect(decision).toMatchObject({ decision: "DENY", failedClosed: true });
    expect(decision.error?.code).toBe("Unavailable");
  });

  it("the default failure mode is FAIL_CLOSED and the default timeout 500 ms", () => {
    const client = new FulcrumClient({ baseUrl: "https://e" });
    expect(client.failureMode).toBe("FAIL_CLOSED");
    expect(client.timeoutMs).toBe(500);
  });

  it.each([
    ["invalid_argument", 400, "InvalidArgument"],
    ["unauthenticated", 401, "Unauthenticated"],
    ["permission_denied", 403, "PermissionDenied"],
    ["not_found", 404, "NotFound"],
    ["unimplemented", 404, "Unimplemented"],
    ["resource_exhausted", 429, "ResourceExhausted"],
    ["failed_precondition", 400, "FailedPrecondition"],
  ])("FAIL_OPEN does not swallow %s: it throws FulcrumError", async (code, status, name) => {
    const client = new FulcrumClient({
      baseUrl: "https://e",
      fetch: connectErrorFetch(code, status),
      failureMode: "FAIL_OPEN",
      useBinaryFormat: false,
    });
    const error = await client.evaluate({}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FulcrumError);
    expect((error as FulcrumError).code).toBe(name);
    expect((error as FulcrumError).transportFailure).toBe(false);
    expect((error as FulcrumError).message).toBe(`server says ${code}`);
  });

  it("a wrong base URL (plain 404) throws rather than failing open", async () => {
    const fetch = (async () =>
      new Response("not found", { status: 404 })) as typeof globalThis.fetch;
    const client = new FulcrumClient({ baseUrl: "https://e", fetch, failureMode: "FAIL_OPEN" });
    await expect(client.evaluate({})).rejects.toMatchObject({ code: "Unimplemented" });
  });

  it("a call the caller cancels throws Canceled in either mode", async () => {
    const client = new FulcrumClient({
      baseUrl: "https://e",
      fetch: hangingFetch,
      failureMode: "FAIL_OPEN",
    });
    const controller = new AbortController();
    const pending = client.evaluate({}, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: "FulcrumError", code: "Canceled" });
  });

  it("the per-call timeout overrides the client's", async () => {
    const client = new FulcrumClient({
      baseUrl: "https://e",
      fetch: hangingFetch,
      timeoutMs: 60_000,
    });
    const decision = await client.evaluate({}, { timeoutMs: 20 });
    expect(decision).toMatchObject({ failedClosed: true, error: { code: "DeadlineExceeded" } });
  });

  it("wraps errors from a router transport the same way", async () => {
    const client = routerClient(() => {
      throw new ConnectError("down", Code.Unavailable);
    }, "FAIL_OPEN");
    expect(await client.evaluate({})).toMatchObject({ failedOpen: true });
    const invalid = routerClient(() => {
      throw new ConnectError("context.tenant_id: value is required", Code.InvalidArgument);
    }, "FAIL_OPEN");
    await expect(invalid.evaluate({})).rejects.toMatchObject({
      code: "InvalidArgument",
      message: "context.tenant_id: value is required",
    });
  });
});

describe("configuration mistakes are loud", () => {
  it("refuses a bad failure mode, timeout or phase", async () => {
    expect(() => new FulcrumClient({ baseUrl: "x", failureMode: "OPEN" as "FAIL_OPEN" })).toThrow(
      /failureMode/,
    );
    expect(() => new FulcrumClient({ baseUrl: "x", timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => new FulcrumClient({ baseUrl: "" })).toThrow(/baseUrl/);
    const client = new FulcrumClient({ baseUrl: "x", fetch: refusedFetch });
    await expect(client.evaluate({ phase: "LATER" as "PRE_EXECUTION" })).rejects.toThrow(
      /unknown phase/,
    );
  });

  it("refuses an api key with a custom transport (it could not be applied)", () => {
    const transport = createRouterTransport(() => {});
    expect(() => new FulcrumClient({ baseUrl: "x", apiKey: "k", transport })).toThrow(
      /apiKeyInterceptor/,
    );
  });
});
