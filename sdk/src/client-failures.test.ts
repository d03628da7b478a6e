import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { jsonFetch, routerClient, TEST_API_KEY } from "../../test/harness/sdk-client-stubs.js";
import { FulcrumClient, type FulcrumClientOptions, FulcrumError } from "./index.js";

/** A client with a valid key; the options under test on top. */
function makeClient(options: Omit<FulcrumClientOptions, "apiKey">) {
  return new FulcrumClient({ apiKey: TEST_API_KEY, ...options });
}

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
    const client = makeClient({
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
    // The synthetic decision's machine-readable side: reason = the mode, component "edge".
    expect(decision).toMatchObject({
      reason: failureMode,
      failureMode: { component: "edge", mode: failureMode },
      rateLimits: [],
      retryAfterMs: undefined,
      matchedRules: [],
      policyVersions: {},
    });
    expect(decision.failureMode?.message).toContain("DeadlineExceeded");
    expect(decision.latencyMs).toBeGreaterThanOrEqual(45);
  });

  it.each(modes)("%s: a network error becomes a synthetic %s", async (failureMode, verdict) => {
    const client = makeClient({ baseUrl: "https://e", fetch: refusedFetch, failureMode });
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
    const client = makeClient({
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
    const client = makeClient({ baseUrl: "https://e", fetch });
    const decision = await client.evaluate({});
    expect(decision).toMatchObject({ decision: "DENY", failedClosed: true });
    expect(decision.error?.code).toBe("Unavailable");
  });

  it("the default failure mode is FAIL_CLOSED and the default timeout 500 ms", () => {
    const client = makeClient({ baseUrl: "https://e" });
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
    const client = makeClient({
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
    const client = makeClient({ baseUrl: "https://e", fetch, failureMode: "FAIL_OPEN" });
    await expect(client.evaluate({})).rejects.toMatchObject({ code: "Unimplemented" });
  });

  it("a call the caller cancels throws Canceled in either mode", async () => {
    const client = makeClient({
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
    const client = makeClient({
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
    const refused = routerClient(() => {
      throw new ConnectError("the API key is revoked", Code.Unauthenticated);
    }, "FAIL_OPEN");
    await expect(refused.evaluate({})).rejects.toMatchObject({
      code: "Unauthenticated",
      message: "the API key is revoked",
    });
  });
});

describe("configuration mistakes are loud", () => {
  it("refuses a bad failure mode, timeout or phase", async () => {
    expect(() => makeClient({ baseUrl: "x", failureMode: "OPEN" as "FAIL_OPEN" })).toThrow(
      /failureMode/,
    );
    expect(() => makeClient({ baseUrl: "x", timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => makeClient({ baseUrl: "" })).toThrow(/baseUrl/);
    const client = makeClient({ baseUrl: "x", fetch: refusedFetch });
    await expect(client.evaluate({ phase: "LATER" as "PRE_EXECUTION" })).rejects.toThrow(
      /unknown phase/,
    );
  });

  it("requires an API key shaped like a Fulcrum key, and never repeats it", () => {
    const options = { baseUrl: "https://e" };
    for (const apiKey of [undefined, ""]) {
      expect(() => new FulcrumClient({ ...options, apiKey } as FulcrumClientOptions)).toThrow(
        /apiKey is required/,
      );
    }
    for (const apiKey of ["sk-live-secret123", "fk_", "fk_has space", "FK_abc", 42]) {
      let error: unknown;
      try {
        new FulcrumClient({ ...options, apiKey } as FulcrumClientOptions);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(FulcrumError);
      expect(error).toMatchObject({ code: "InvalidArgument" });
      expect((error as Error).message).toMatch(/does not look like a Fulcrum API key.*"fk_"/);
      expect((error as Error).message).not.toContain("secret123");
    }
    expect(() => new FulcrumClient({ ...options, apiKey: "fk_live-Key_0123" })).not.toThrow();
  });

  it("refuses the removed tenantId option (the tenant comes from the API key)", () => {
    const options = { baseUrl: "https://e", apiKey: TEST_API_KEY, tenantId: "demo" };
    expect(() => new FulcrumClient(options as FulcrumClientOptions)).toThrow(
      /tenantId is no longer an option/,
    );
  });

  it("requires the key with a custom transport too (it is sent as a call header)", () => {
    const transport = createRouterTransport(() => {});
    expect(() => new FulcrumClient({ baseUrl: "x", transport } as FulcrumClientOptions)).toThrow(
      /apiKey is required/,
    );
    expect(
      () => new FulcrumClient({ baseUrl: "x", apiKey: TEST_API_KEY, transport }),
    ).not.toThrow();
  });
});
