import { randomBytes, randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Redis } from "@upstash/redis";
import IORedis from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import type { RateLimitSpec } from "../../core/rate-limit/rate-limit-spec.js";
import { checkRateLimits, RateLimiters } from "../../core/rate-limit/rate-limiter.js";
import { freePort } from "../../scripts/lib/ports.js";
import {
  startUpstashRestServer,
  type UpstashRestServer,
} from "../../scripts/lib/upstash-rest-server.js";
import { type EnsuredService, ensureRedis } from "../../scripts/services/ensure-services.js";

// @upstash/ratelimit → @upstash/redis → the local Upstash REST server → the machine's Redis.
const REDIS_URL = inject("redisUrl");
const token = randomBytes(16).toString("hex");

let server: UpstashRestServer;
let direct: IORedis;
let prefix: string;
/** HTTP requests @upstash/redis sent to the REST servers (fetch is wrapped). */
let requests = 0;
const realFetch = globalThis.fetch;

const client = (url = server.url) =>
  new Redis({ url, token, enableTelemetry: false, retry: false, enableAutoPipelining: true });

beforeAll(async () => {
  server = await startUpstashRestServer({ port: 0, redisUrl: REDIS_URL, token });
  direct = new IORedis(REDIS_URL, { enableAutoPipelining: false });
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
    requests++;
    return realFetch(input, init);
  }) as typeof fetch;
});

afterAll(async () => {
  globalThis.fetch = realFetch;
  await server?.close();
  await direct?.quit();
});

beforeEach(() => {
  prefix = `fulcrum:it:rl:${randomUUID()}`;
});

afterEach(async () => {
  const keys = await direct.keys(`${prefix}*`);
  if (keys.length > 0) await direct.del(...keys);
});

const spec = (over: Partial<RateLimitSpec> = {}): RateLimitSpec => ({
  id: "rpm",
  scope: "api_key",
  unit: "requests",
  limit: 5,
  window: "1m",
  ...over,
});
const subject = { tenantId: "t1", apiKeyId: "k1", toolNames: [] as string[] };

describe.each(["sliding_window", "token_bucket"] as const)("%s", (algorithm) => {
  it("admits exactly `limit` of limit + k concurrent callers over several clients", async () => {
    const specs = [spec({ limit: 20, algorithm })];
    // Four isolates' worth of limiters, each with its own HTTP client.
    const pool = Array.from({ length: 4 }, () => new RateLimiters({ redis: client(), prefix }));
    const outcomes = await Promise.all(
      Array.from({ length: 35 }, (_, i) =>
        checkRateLimits(pool[i % pool.length] as RateLimiters, specs, subject),
      ),
    );
    expect(outcomes.filter((o) => o.allowed)).toHaveLength(20);
    expect(outcomes.every((o) => o.failure === undefined)).toBe(true);
    const remaining = outcomes.filter((o) => o.allowed).map((o) => o.results[0]?.remaining);
    expect(new Set(remaining)).toEqual(new Set(Array.from({ length: 20 }, (_, i) => i)));
    for (const o of outcomes.filter((o) => !o.allowed)) {
      const r = o.results[0];
      expect(r).toMatchObject({ exceeded: true, remaining: 0, limit: 20 });
      expect(r?.retry_after_ms).toBeGreaterThan(0);
      expect(r?.retry_after_ms).toBeLessThanOrEqual(60_000);
      expect(r?.reset_ms).toBeGreaterThan(Date.now());
    }
  });

  it("keeps API keys and tenants apart", async () => {
    const limiters = new RateLimiters({ redis: client(), prefix });
    const specs = [spec({ limit: 2, algorithm })];
    const run = async (s: typeof subject) =>
      (await Promise.all([1, 2, 3].map(() => checkRateLimits(limiters, specs, s)))).filter(
        (o) => o.allowed,
      ).length;
    expect(await run(subject)).toBe(2);
    expect(await run({ ...subject, apiKeyId: "k2" })).toBe(2);
    expect(await run({ ...subject, tenantId: "t2" })).toBe(2);
    expect(await run(subject)).toBe(0);
  });

  it("counts tokens: 500-token calls against 1000 per minute", async () => {
    const limiters = new RateLimiters({ redis: client(), prefix });
    const specs = [spec({ id: "tpm", unit: "tokens", limit: 1000, algorithm })];
    const call = () => checkRateLimits(limiters, specs, { ...subject, tokens: 500 });
    const first = await call();
    expect(first).toMatchObject({ allowed: true, results: [{ remaining: 500 }] });
    expect(await call()).toMatchObject({ allowed: true, results: [{ remaining: 0 }] });
    expect(await call()).toMatchObject({ allowed: false, results: [{ exceeded: true }] });
  });
});

describe("decisions over several specs", () => {
  it("costs one round trip when allowed, two when denied (refunds), and refunds", async () => {
    const limiters = new RateLimiters({ redis: client(), prefix });
    const specs = [
      spec({ id: "key", limit: 10 }),
      spec({ id: "tenant", scope: "tenant", limit: 2, algorithm: "token_bucket" }),
      spec({ id: "tpm", scope: "tenant", unit: "tokens", limit: 10_000 }),
    ];
    const call = { ...subject, tokens: 100 };
    await checkRateLimits(limiters, specs, call); // loads the scripts (NOSCRIPT → EVAL)
    requests = 0;
    const t0 = performance.now();
    const allowed = await checkRateLimits(limiters, specs, call);
    const allowedMs = performance.now() - t0;
    expect(allowed.allowed).toBe(true);
    expect(requests).toBe(1);
    requests = 0;
    const t1 = performance.now();
    const denied = await checkRateLimits(limiters, specs, call);
    const deniedMs = performance.now() - t1;
    expect(denied.allowed).toBe(false);
    expect(denied.results.map((r) => r.exceeded)).toEqual([false, true, false]);
    expect(requests).toBe(2);
    console.log(
      `3 specs: allowed ${allowedMs.toFixed(1)} ms / 1 request, denied ${deniedMs.toFixed(1)} ms / 2 requests`,
    );
    // The denied call took nothing from the key's and the token counters.
    const key = await limiters
      .limiterFor(specs[0] as RateLimitSpec)
      .getRemaining("t:t1:k:k1:s:key");
    expect(key.remaining).toBe(8);
    const tpm = await limiters.limiterFor(specs[2] as RateLimitSpec).getRemaining("t:t1:s:tpm");
    expect(tpm.remaining).toBe(9_800);
  });
});

describe("Redis unreachable", () => {
  let redis: EnsuredService;
  let port: number;
  let own: UpstashRestServer;
  // A Redis of this test's own (never the machine's), stopped and started again below.
  const start = () =>
    ensureRedis({
      port,
      dir: fileURLToPath(new URL(`../../.tmp/services/redis-rate-limit-${port}`, import.meta.url)),
      removeDirOnStop: true,
    });

  beforeAll(async () => {
    port = await freePort();
    redis = await start();
    own = await startUpstashRestServer({ port: 0, redisUrl: redis.url, token });
  }, 60_000);

  afterAll(async () => {
    await own?.close();
    await redis?.stop();
  });

  it("applies each spec's failure mode, counts it, and recovers when Redis returns", async () => {
    const failures: string[] = [];
    const limiters = new RateLimiters({
      redis: client(own.url),
      prefix,
      timeoutMs: 500,
      onFailure: (mode) => failures.push(mode),
    });
    const closed = [spec({ id: "closed" })];
    const open = [spec({ id: "open", failure_mode: "FAIL_OPEN" })];
    expect((await checkRateLimits(limiters, closed, subject)).allowed).toBe(true);

    await redis.stop();
    const down = await checkRateLimits(limiters, closed, subject);
    expect(down).toMatchObject({ allowed: false, failure: { mode: "FAIL_CLOSED" } });
    expect(down.results[0]).toMatchObject({ failed: true, exceeded: false });
    const openDown = await checkRateLimits(limiters, open, subject);
    expect(openDown).toMatchObject({ allowed: true, failure: { mode: "FAIL_OPEN" } });
    // Both together: FAIL_CLOSED wins.
    expect(await checkRateLimits(limiters, [...open, ...closed], subject)).toMatchObject({
      allowed: false,
      failure: { mode: "FAIL_CLOSED" },
    });
    expect(failures).toEqual(["FAIL_CLOSED", "FAIL_OPEN", "FAIL_CLOSED"]);

    redis = await start();
    const deadline = Date.now() + 15_000;
    let back = await checkRateLimits(limiters, closed, subject);
    while (back.failure && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      back = await checkRateLimits(limiters, closed, subject);
    }
    expect(back).toMatchObject({ allowed: true, results: [{ exceeded: false }] });
    expect(back.failure).toBeUndefined();
  }, 30_000);
});
