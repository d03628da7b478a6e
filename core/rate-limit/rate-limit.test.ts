import { describe, expect, it } from "vitest";
import type { TenantConfig } from "../policy/tenant-config.js";
import { validateTenantConfig } from "../policy/validate-tenant-config.js";
import { combineOutcome } from "./rate-limit-outcome.js";
import { specsFromTenantConfig } from "./rate-limit-rules.js";
import {
  assertValidRateLimitSpecs,
  type RateLimitSpec,
  validateRateLimitSpec,
  windowMs,
} from "./rate-limit-spec.js";
import { identifierFor, rateLimitChecks } from "./rate-limit-subject.js";

const spec = (over: Partial<RateLimitSpec> = {}): RateLimitSpec => ({
  id: "rpm",
  scope: "api_key",
  unit: "requests",
  limit: 10,
  window: "1m",
  ...over,
});
const subject = { tenantId: "t1", apiKeyId: "k1", toolNames: [] as string[] };

describe("validateRateLimitSpec", () => {
  it("accepts valid specs and parses windows", () => {
    expect(validateRateLimitSpec(spec())).toEqual([]);
    expect(
      validateRateLimitSpec(
        spec({ algorithm: "token_bucket", refill: 5, failure_mode: "FAIL_OPEN", window: "30s" }),
      ),
    ).toEqual([]);
    expect(validateRateLimitSpec(spec({ scope: "tool", tools: ["search_*"] }))).toEqual([]);
    expect([windowMs("1m"), windowMs("1h"), windowMs("30s"), windowMs("24h")]).toEqual([
      60_000, 3_600_000, 30_000, 86_400_000,
    ]);
    expect([windowMs("25h"), windowMs("0s"), windowMs("1 m"), windowMs("1d")]).toEqual([
      null,
      null,
      null,
      null,
    ]);
  });

  it("names every problem by field path", () => {
    expect(
      validateRateLimitSpec(
        {
          id: "",
          scope: "user",
          unit: "calls",
          limit: 0,
          window: "1d",
          algorithm: "leaky",
          refill: 2,
          failure_mode: "open",
          tools: ["x"],
          extra: 1,
        },
        "[0]",
      ).map((p) => p.path),
    ).toEqual([
      "[0].extra",
      "[0].id",
      "[0].scope",
      "[0].unit",
      "[0].algorithm",
      "[0].failure_mode",
      "[0].limit",
      "[0].window",
      "[0].refill",
      "[0].tools",
    ]);
    expect(validateRateLimitSpec({}).map((p) => `${p.path}: ${p.message}`)).toEqual([
      "id: is required",
      "scope: is required",
      "unit: is required",
      "limit: is required",
      "window: is required",
    ]);
    expect(validateRateLimitSpec(spec({ limit: 1.5 }))[0]?.message).toBe(
      "must be an integer, not 1.5",
    );
    expect(validateRateLimitSpec(null)).toEqual([
      { path: "", message: "a rate limit spec must be an object" },
    ]);
    expect(() => assertValidRateLimitSpecs([spec(), spec()])).toThrow(/\[1\]\.id: duplicate id/);
  });
});

describe("specsFromTenantConfig", () => {
  it("maps each limit of enabled RATE_LIMIT rules of ACTIVE policies to a valid spec", () => {
    const config: TenantConfig = {
      policies: {
        p2: {
          name: "limits",
          version: "1",
          status: "ACTIVE",
          enforcement: "BLOCK",
          rules: [
            { type: "RATE_LIMIT", requests_per_minute: 60, tokens_per_minute: 1000 },
            {
              id: "tools",
              type: "RATE_LIMIT",
              requests_per_hour: 100,
              per: "tool",
              tools: ["search_*"],
              algorithm: "token_bucket",
              burst: 20,
              failure_mode: "FAIL_OPEN",
              phases: ["PRE_TOOL_CALL"],
            },
            { id: "off", type: "RATE_LIMIT", enabled: false, requests_per_minute: 1 },
            { type: "COST_CONTROL", max_cost_per_call_usd: 1 },
          ],
        },
        p1: {
          name: "draft",
          version: "1",
          status: "DRAFT",
          enforcement: "BLOCK",
          rules: [{ type: "RATE_LIMIT", requests_per_minute: 1 }],
        },
      },
    };
    expect(validateTenantConfig(config)).toEqual([]);
    const specs = specsFromTenantConfig(config);
    expect(specs).toEqual([
      {
        id: "p2/rules[0]/requests_per_minute",
        scope: "tenant",
        unit: "requests",
        limit: 60,
        window: "1m",
        algorithm: "sliding_window",
        failure_mode: "FAIL_CLOSED",
      },
      {
        id: "p2/rules[0]/tokens_per_minute",
        scope: "tenant",
        unit: "tokens",
        limit: 1000,
        window: "1m",
        algorithm: "sliding_window",
        failure_mode: "FAIL_CLOSED",
      },
      {
        id: "p2/tools/requests_per_hour",
        scope: "tool",
        unit: "requests",
        limit: 20,
        window: "1h",
        algorithm: "token_bucket",
        refill: 100,
        failure_mode: "FAIL_OPEN",
        tools: ["search_*"],
        phases: ["PRE_TOOL_CALL"],
      },
    ]);
    expect(() => assertValidRateLimitSpecs(specs)).not.toThrow();
  });
});

describe("identifiers", () => {
  it("namespaces every counter by tenant and spec, and escapes components", () => {
    expect(identifierFor(spec({ scope: "tenant" }), subject)).toBe("t:t1:s:rpm");
    expect(identifierFor(spec(), subject)).toBe("t:t1:k:k1:s:rpm");
    expect(identifierFor(spec({ scope: "workflow" }), { ...subject, workflowId: "w:1" })).toBe(
      "t:t1:w:w%3A1:s:rpm",
    );
    expect(identifierFor(spec({ scope: "workflow" }), subject)).toBeNull();
    // A key id with ":" cannot name another tenant's counter.
    expect(identifierFor(spec(), { ...subject, tenantId: "a", apiKeyId: "b:k:c" })).toBe(
      "t:a:k:b%3Ak%3Ac:s:rpm",
    );
  });

  it("lists the counters a call updates, with their cost", () => {
    const specs = [
      spec(),
      spec({ id: "tpm", unit: "tokens", limit: 1000 }),
      spec({ id: "tool", scope: "tool", tools: ["search_*"] }),
      spec({ id: "wf", scope: "workflow" }),
      spec({ id: "llm", scope: "tenant", phases: ["PRE_LLM_CALL"] }),
    ];
    const call = {
      ...subject,
      toolNames: ["search_web", "search_web", "delete_db", "search_news"],
      tokens: 499.2,
      phase: "PRE_TOOL_CALL",
    };
    expect(rateLimitChecks(specs, call).map((c) => [c.identifier, c.cost])).toEqual([
      ["t:t1:k:k1:s:rpm", 1],
      ["t:t1:k:k1:s:tpm", 500],
      ["t:t1:tool:search_web:s:tool", 1],
      ["t:t1:tool:search_news:s:tool", 1],
    ]);
    // No tokens: the tokens spec does not apply; no phase: every phased spec does.
    expect(rateLimitChecks(specs, { ...subject, tokens: 0 }).map((c) => c.spec.id)).toEqual([
      "rpm",
      "llm",
    ]);
  });
});

describe("combineOutcome", () => {
  const checks = rateLimitChecks(
    [spec(), spec({ id: "open", scope: "tenant", failure_mode: "FAIL_OPEN" })],
    subject,
  );
  const ok = (success: boolean, remaining: number) =>
    ({ ok: true, success, limit: 10, remaining, reset: 61_000 }) as const;

  it("allows when every counter has room, denies with retry-after when one is exceeded", () => {
    expect(combineOutcome(checks, [ok(true, 9), ok(true, 3)], 1_000)).toEqual({
      allowed: true,
      results: [
        {
          spec_id: "rpm",
          scope: "api_key",
          identifier: "t:t1:k:k1:s:rpm",
          limit: 10,
          remaining: 9,
          reset_ms: 61_000,
          exceeded: false,
        },
        {
          spec_id: "open",
          scope: "tenant",
          identifier: "t:t1:s:open",
          limit: 10,
          remaining: 3,
          reset_ms: 61_000,
          exceeded: false,
        },
      ],
    });
    const denied = combineOutcome(checks, [ok(true, 9), ok(false, 0)], 1_000);
    expect(denied.allowed).toBe(false);
    expect(denied.failure).toBeUndefined();
    expect(denied.results[1]).toMatchObject({ exceeded: true, retry_after_ms: 60_000 });
  });

  it("applies the failure modes: one FAIL_CLOSED failure denies, FAIL_OPEN ones allow", () => {
    const down = { ok: false, error: "connect ECONNREFUSED" } as const;
    expect(combineOutcome(checks, [ok(true, 9), down], 0)).toMatchObject({
      allowed: true,
      failure: { mode: "FAIL_OPEN", error: "connect ECONNREFUSED" },
    });
    expect(combineOutcome(checks, [down, down], 0)).toMatchObject({
      allowed: false,
      failure: { mode: "FAIL_CLOSED" },
      results: [{ failed: true }, { failed: true }],
    });
    // FAIL_OPEN does not hide a counter that answered "exceeded".
    expect(combineOutcome(checks, [ok(false, 0), down], 0).allowed).toBe(false);
  });
});
