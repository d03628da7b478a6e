import { createHash, randomBytes, randomUUID } from "node:crypto";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { PolicyPointer } from "../../core/distribution/policy-keys.js";
import { Metrics } from "../../core/observability/metrics.js";
import type { PublishedPolicy } from "../../core/policy-bundle/published-policy.js";
import type { RateLimitSpec } from "../../core/rate-limit/rate-limit-spec.js";
import {
  BUNDLE_LOADS_METRIC,
  RedisBundleSource,
  type RedisBundleSourceOptions,
} from "../../edge/src/distribution/redis-bundle-source.js";
import { PolicyStatus } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import {
  startUpstashRestServer,
  type UpstashRestServer,
} from "../../scripts/lib/upstash-rest-server.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { must, uniqueName } from "../harness/policy-fixtures.js";
import {
  closedPortUrl,
  type FetchTap,
  fulcrumFailure,
  type HungServer,
  silentLogger,
  startHungServer,
  tapFetch,
} from "../harness/redis-faults.js";

// The edge's tenant bundles (edge/src/distribution/redis-bundle-source.ts) read from what
// the real control plane publishes: the management API activates, rolls back and
// deactivates; the edge side reads through an Upstash REST server of its own (in front of
// the same Redis), whose requests the tests count and can cut off.
let stack: FunctionsStack;
let edgeRest: UpstashRestServer;
let edgeToken: string;
let tap: FetchTap;
let hung: HungServer;

beforeAll(async () => {
  stack = await startFunctionsStack();
  edgeToken = randomBytes(16).toString("hex");
  edgeRest = await startUpstashRestServer({
    port: 0,
    redisUrl: inject("redisUrl"),
    token: edgeToken,
  });
  tap = tapFetch(edgeRest.url);
  hung = await startHungServer();
}, 120_000);

afterAll(async () => {
  tap?.restore();
  await hung?.close();
  await edgeRest?.close();
  await stack?.stop();
});

/** A source over the edge's REST server, with a clock the test moves. */
function source(options: Partial<RedisBundleSourceOptions> & { redis?: Redis } = {}) {
  let clock = Date.parse("2030-01-01T00:00:00Z");
  const metrics = new Metrics();
  const bundles = new RedisBundleSource({
    redis: new Redis({ url: edgeRest.url, token: edgeToken, retry: false }),
    keys: stack.keys,
    metrics,
    logger: silentLogger,
    now: () => new Date(clock),
    ...options,
  });
  return {
    bundles,
    metrics,
    loads: (outcome: string) => metrics.value(BUNDLE_LOADS_METRIC, { outcome }),
    /** Moves the clock past the refresh interval. */
    later: (ms = 600) => {
      clock += ms;
    },
  };
}

/** Requests `fn` sends to the edge's REST server. */
async function requestsOf(fn: () => Promise<unknown>): Promise<number> {
  const before = tap.requests;
  await fn();
  return tap.requests - before;
}

const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

/** A policy whose compiled wasm is its own (no other test shares the module). */
const uniqueRego = () =>
  `package fulcrum.policy\n\nwarn contains "marker ${randomBytes(6).toString("hex")}"\n`;

async function tenantWithActivePolicy() {
  const t = await stack.createTenant();
  const policies = stack.client(PolicyService, t.adminKey);
  const name = uniqueName("edge");
  const created = await policies.createPolicy({ policy: { name, regoSource: uniqueRego() } });
  const id = must(created.policy).policyId;
  const v1 = must(created.version);
  await policies.activatePolicyVersion({ policyId: id, version: 1 });
  const newVersion = async () =>
    must(
      (
        await policies.updatePolicy({
          policy: { policyId: id, name, regoSource: uniqueRego() },
          updateMask: { paths: ["rego_source"] },
        })
      ).version,
    );
  return { ...t, policies, name, id, v1, newVersion };
}

const pointerOf = (tenantId: string, policyId: string) =>
  stack.redis.get<PolicyPointer>(stack.keys.pointer(tenantId, policyId));

describe("RedisBundleSource over the control plane's publications", () => {
  for (const automaticDeserialization of [true, false]) {
    it(`loads an active policy, its name and its verified wasm (automaticDeserialization ${automaticDeserialization})`, async () => {
      const t = await tenantWithActivePolicy();
      const { bundles, loads } = source({
        redis: new Redis({
          url: edgeRest.url,
          token: edgeToken,
          retry: false,
          automaticDeserialization,
        }),
      });
      const bundle = await bundles.get(t.tenantId);
      const pointer = must(await pointerOf(t.tenantId, t.id));
      expect(bundle.tenantId).toBe(t.tenantId);
      expect(bundle.generation).toBe(
        Number(await stack.redis.get(stack.keys.generation(t.tenantId))),
      );
      expect(bundle.policies).toHaveLength(1);
      expect(bundle.policies[0]).toMatchObject({
        tenant_id: t.tenantId,
        policy_id: t.id,
        version: 1,
        sha256: t.v1.sha256,
        wasm_sha256: t.v1.wasmSha256,
        name: pointer.name ?? "",
      });
      const wasm = must(bundle.wasm.get(t.v1.wasmSha256));
      expect(sha256(wasm)).toBe(t.v1.wasmSha256);
      expect([...wasm.subarray(0, 4)]).toEqual([0, 0x61, 0x73, 0x6d]); // "\0asm"
      expect(bundle.digest).toMatch(/^[0-9a-f]{64}$/);
      expect(bundle.rateLimits).toEqual([]);
      expect(loads("loaded")).toBe(1);
    });
  }

  it("sees an activation once refreshMs has passed, and not before", async () => {
    const t = await tenantWithActivePolicy();
    const { bundles, later, loads } = source();
    const first = await bundles.get(t.tenantId);
    const v2 = await t.newVersion();
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 2 });

    let cached: unknown;
    expect(await requestsOf(async () => (cached = await bundles.get(t.tenantId)))).toBe(0);
    expect(cached).toBe(first);

    later();
    const second = await bundles.get(t.tenantId);
    expect(second.policies[0]).toMatchObject({ version: 2, wasm_sha256: v2.wasmSha256 });
    expect(second.generation).toBeGreaterThan(first.generation);
    expect(second.digest).not.toBe(first.digest);
    expect(sha256(must(second.wasm.get(v2.wasmSha256)))).toBe(v2.wasmSha256);
    expect(loads("loaded")).toBe(2);
  });

  it("revalidates an unchanged tenant with one request and keeps the same bundle", async () => {
    const t = await tenantWithActivePolicy();
    const { bundles, later, loads } = source();
    const first = await bundles.get(t.tenantId);
    later();
    let again: unknown;
    expect(await requestsOf(async () => (again = await bundles.get(t.tenantId)))).toBe(1);
    expect(again).toBe(first);
    expect(loads("loaded")).toBe(1);
  });

  it("follows a rollback and a deactivation (an empty bundle, not an error)", async () => {
    const t = await tenantWithActivePolicy();
    await t.newVersion();
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 2 });
    const { bundles, later } = source();
    expect((await bundles.get(t.tenantId)).policies[0]?.version).toBe(2);

    await t.policies.rollbackPolicy({ policyId: t.id, reason: "edge test" });
    later();
    const rolledBack = await bundles.get(t.tenantId);
    expect(rolledBack.policies[0]).toMatchObject({ version: 1, wasm_sha256: t.v1.wasmSha256 });

    await t.policies.updatePolicy({
      policy: { policyId: t.id, name: t.name, status: PolicyStatus.INACTIVE },
      updateMask: { paths: ["status"] },
    });
    later();
    const empty = await bundles.get(t.tenantId);
    expect(empty.policies).toEqual([]);
    expect(empty.wasm.size).toBe(0);
    expect(empty.rateLimits).toEqual([]);
    expect(empty.generation).toBeGreaterThan(rolledBack.generation);
    expect(empty.digest).not.toBe(rolledBack.digest);
  });

  it("answers concurrent first gets of a tenant with one load (single flight)", async () => {
    const t = await tenantWithActivePolicy();
    const { bundles, loads } = source();
    let results: unknown[] = [];
    const requests = await requestsOf(async () => {
      results = await Promise.all(Array.from({ length: 25 }, () => bundles.get(t.tenantId)));
    });
    // MULTI [generation, active set], MULTI [generation, pointers, metadata], MGET wasm.
    expect(requests).toBe(3);
    expect(new Set(results).size).toBe(1);
    expect(loads("loaded")).toBe(1);
  });

  it("reads again when the pointers change between its two snapshots", async () => {
    const t = await tenantWithActivePolicy();
    const base = new Redis({ url: edgeRest.url, token: edgeToken, retry: false });
    let transactions = 0;
    // The second MULTI of the first attempt runs after a pointer change (a generation bump).
    const racing = new Proxy(base, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (prop !== "multi") return typeof value === "function" ? value.bind(target) : value;
        return () => {
          const tx = target.multi();
          transactions += 1;
          if (transactions !== 2) return tx;
          const exec = tx.exec.bind(tx);
          return Object.assign(tx, {
            exec: async () => {
              await stack.redis.incr(stack.keys.generation(t.tenantId));
              return exec();
            },
          });
        };
      },
    });
    const before = Number(await stack.redis.get(stack.keys.generation(t.tenantId)));
    const bundle = await source({ redis: racing }).bundles.get(t.tenantId);
    expect(transactions).toBe(4);
    expect(bundle.generation).toBe(before + 1);
    expect(bundle.policies[0]?.version).toBe(1);
  });

  it("refuses a tenant with nothing published, until it publishes", async () => {
    const t = await stack.createTenant();
    const { bundles, later, loads } = source();
    const error = await fulcrumFailure(bundles.get(t.tenantId));
    expect(error.kind).toBe("FailedPrecondition");
    expect(error.message).toBe("no policy is published for this tenant: activate a policy");
    expect(loads("failed")).toBe(1);
    // The refusal is remembered until the next refresh.
    expect(await requestsOf(() => bundles.get(t.tenantId).catch(() => undefined))).toBe(0);

    const policies = stack.client(PolicyService, t.adminKey);
    const created = await policies.createPolicy({
      policy: { name: uniqueName("late"), regoSource: uniqueRego() },
    });
    await policies.activatePolicyVersion({ policyId: must(created.policy).policyId, version: 1 });
    later();
    expect((await bundles.get(t.tenantId)).policies).toHaveLength(1);
  });
});

describe("RedisBundleSource when the published data is broken", () => {
  /** A tenant whose bundle `loaded` holds, and v2 activated (not yet loaded). */
  async function loadedThenV2() {
    const t = await tenantWithActivePolicy();
    const s = source();
    const good = await s.bundles.get(t.tenantId);
    const v2 = await t.newVersion();
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 2 });
    return { t, s, good, v2 };
  }

  async function expectKeptAndRefused(
    t: { tenantId: string },
    s: ReturnType<typeof source>,
    good: unknown,
    message: RegExp,
  ) {
    s.later();
    expect(await s.bundles.get(t.tenantId)).toBe(good);
    expect(s.loads("kept_last_good")).toBe(1);
    const fresh = source();
    const error = await fulcrumFailure(fresh.bundles.get(t.tenantId));
    expect(error.kind).toBe("FailedPrecondition");
    expect(error.message).toMatch(/published policies are incomplete or corrupt/);
    expect(error.message).toMatch(message);
    expect(fresh.loads("failed")).toBe(1);
  }

  it("corrupt metadata: keeps the last good bundle; without one, FailedPrecondition", async () => {
    const { t, s, good } = await loadedThenV2();
    await stack.redis.set(stack.keys.version(t.tenantId, t.id, 2), "{not json");
    await expectKeptAndRefused(t, s, good, /version 2: its metadata is not valid/);
  });

  it("metadata that disagrees with its pointer is refused", async () => {
    const { t, s, good } = await loadedThenV2();
    const key = stack.keys.version(t.tenantId, t.id, 2);
    const meta = must(await stack.redis.get<PublishedPolicy>(key));
    await stack.redis.set(key, JSON.stringify({ ...meta, wasm_sha256: "0".repeat(64) }));
    await expectKeptAndRefused(t, s, good, /does not match the pointer/);
  });

  it("missing wasm: keeps the last good bundle; without one, FailedPrecondition", async () => {
    const { t, s, good, v2 } = await loadedThenV2();
    await stack.redis.del(stack.keys.wasm(v2.wasmSha256));
    await expectKeptAndRefused(t, s, good, /module \(wasm\) [0-9a-f]{64} is missing/);
  });

  it("wasm whose hash does not match its key: keeps the last good bundle", async () => {
    const { t, s, good, v2 } = await loadedThenV2();
    await stack.redis.set(
      stack.keys.wasm(v2.wasmSha256),
      Buffer.from("\0asm not the module").toString("base64"),
    );
    await expectKeptAndRefused(t, s, good, /does not match its SHA-256/);
  });

  it("a missing pointer of an active policy is refused", async () => {
    const { t, s, good } = await loadedThenV2();
    await stack.redis.del(stack.keys.pointer(t.tenantId, t.id));
    await expectKeptAndRefused(t, s, good, /its pointer is missing/);
  });

  it("retries at the next refresh and recovers once the data is repaired", async () => {
    const { t, s, good, v2 } = await loadedThenV2();
    const key = stack.keys.version(t.tenantId, t.id, 2);
    const meta = await stack.redis.get<PublishedPolicy>(key);
    await stack.redis.set(key, "{not json");
    s.later();
    expect(await s.bundles.get(t.tenantId)).toBe(good);
    await stack.redis.set(key, JSON.stringify(meta));
    s.later();
    const repaired = await s.bundles.get(t.tenantId);
    expect(repaired.policies[0]).toMatchObject({ version: 2, wasm_sha256: v2.wasmSha256 });
    expect(s.loads("kept_last_good")).toBe(1);
    expect(s.loads("loaded")).toBe(2);
  });
});

describe("RedisBundleSource when Redis is unreachable", () => {
  it("a closed port: Unavailable within the timeout (retries included)", async () => {
    const url = await closedPortUrl();
    const { bundles, loads } = source({
      // The client's default retries (5, with backoff) would take seconds: the timeout cuts them.
      redis: new Redis({ url, token: edgeToken }),
      timeoutMs: 300,
    });
    const started = Date.now();
    const error = await fulcrumFailure(bundles.get(randomUUID()));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error.kind).toBe("Unavailable");
    expect(error.retry).toBe(true);
    expect(error.message).toMatch(/policy store \(Redis\).*retry/);
    expect(loads("failed")).toBe(1);
  });

  it("a hung endpoint: Unavailable after timeoutMs, not a hang", async () => {
    const { bundles } = source({
      redis: new Redis({ url: hung.url, token: edgeToken, retry: false }),
      timeoutMs: 200,
    });
    const started = Date.now();
    const error = await fulcrumFailure(bundles.get(randomUUID()));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(error.kind).toBe("Unavailable");
    expect(error.message).toMatch(/did not answer within 200 ms/);
  });

  it("keeps serving the last good bundle while Redis is down, and catches up after", async () => {
    const t = await tenantWithActivePolicy();
    const s = source();
    const good = await s.bundles.get(t.tenantId);
    const v2 = await t.newVersion();
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 2 });
    tap.down = true;
    try {
      s.later();
      expect(await s.bundles.get(t.tenantId)).toBe(good);
      // Retried at the next refresh, not on every call.
      expect(await requestsOf(() => s.bundles.get(t.tenantId))).toBe(0);
      s.later();
      expect(await s.bundles.get(t.tenantId)).toBe(good);
      expect(s.loads("kept_last_good")).toBe(2);
    } finally {
      tap.down = false;
    }
    s.later();
    expect((await s.bundles.get(t.tenantId)).policies[0]?.wasm_sha256).toBe(v2.wasmSha256);
  });
});

describe("RedisBundleSource as the edge evaluates it", () => {
  interface RawPolicy {
    priority: number;
    dryRun?: boolean;
    rateLimits?: RateLimitSpec[];
    name?: string;
    wasm?: Uint8Array;
  }

  /**
   * Publishes `policies` for a new tenant straight into Redis, in the control plane's
   * layout (POINT_SCRIPT's effect), to shape what the management API cannot (yet).
   */
  async function publishRaw(policies: RawPolicy[]) {
    const tenantId = randomUUID();
    const ids: string[] = [];
    for (const p of policies) {
      const policyId = randomUUID();
      ids.push(policyId);
      const wasm = p.wasm ?? new Uint8Array([0, 0x61, 0x73, 0x6d, ...randomBytes(8)]);
      const wasmSha256 = sha256(wasm);
      const definitionSha256 = sha256(randomBytes(8));
      const meta: PublishedPolicy = {
        tenant_id: tenantId,
        policy_id: policyId,
        version: 1,
        sha256: definitionSha256,
        wasm_sha256: wasmSha256,
        entrypoint: "fulcrum/entry/result",
        source_kind: "rules",
        rules: [],
        ...(p.rateLimits ? { rate_limits: p.rateLimits } : {}),
        enforcement: "BLOCK",
        dry_run: p.dryRun ?? false,
        priority: p.priority,
        scope: { apply_to_all: true },
      };
      const pointer: PolicyPointer = {
        version: 1,
        revision: 1,
        sha256: definitionSha256,
        wasm_sha256: wasmSha256,
        updated_at: new Date().toISOString(),
        ...(p.name === undefined ? {} : { name: p.name }),
      };
      await stack.redis
        .multi()
        .set(stack.keys.wasm(wasmSha256), Buffer.from(wasm).toString("base64"))
        .set(stack.keys.version(tenantId, policyId, 1), JSON.stringify(meta))
        .set(stack.keys.pointer(tenantId, policyId), JSON.stringify(pointer))
        .hset(stack.keys.activeSet(tenantId), { [policyId]: 1 })
        .incr(stack.keys.generation(tenantId))
        .exec();
    }
    return { tenantId, ids };
  }

  const limit = (id: string): RateLimitSpec => ({
    id,
    scope: "tenant",
    unit: "requests",
    limit: 10,
    window: "1m",
  });

  it("orders policies by priority (desc) then id, and collects non-dry-run rate limits", async () => {
    const { tenantId, ids } = await publishRaw([
      { priority: 1, rateLimits: [limit("low")], name: "low" },
      { priority: 9, rateLimits: [limit("high-a"), limit("high-b")], name: "high" },
      { priority: 5, rateLimits: [limit("dry")], dryRun: true },
      { priority: 5, rateLimits: [limit("mid")] },
    ]);
    const { bundles } = source();
    const bundle = await bundles.get(tenantId);
    const [low, high, dry, mid] = ids as [string, string, string, string];
    const tied = [dry, mid].sort();
    expect(bundle.policies.map((p) => p.policy_id)).toEqual([high, ...tied, low]);
    expect(bundle.policies.map((p) => p.name)).toEqual(
      [high, ...tied, low].map((id) => (id === high ? "high" : id === low ? "low" : "")),
    );
    const expected = [high, ...tied, low].flatMap((id) =>
      id === high ? ["high-a", "high-b"] : id === mid ? ["mid"] : id === low ? ["low"] : [],
    );
    expect(bundle.rateLimits.map((r) => r.id)).toEqual(expected);
    expect(bundle.wasm.size).toBe(4);
  });

  it("gives identical bundles the same digest and any change a new one", async () => {
    const wasm = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 2, 3]);
    const a = await publishRaw([{ priority: 1, wasm, name: "same" }]);
    const { bundles, later } = source();
    const first = await bundles.get(a.tenantId);
    // The same tuples again (a new generation): the same digest.
    await stack.redis.incr(stack.keys.generation(a.tenantId));
    later();
    const again = await bundles.get(a.tenantId);
    expect(again).not.toBe(first);
    expect(again.digest).toBe(first.digest);
    // A rename changes it.
    const key = stack.keys.pointer(a.tenantId, a.ids[0] as string);
    const pointer = must(await stack.redis.get<PolicyPointer>(key));
    await stack.redis.set(key, JSON.stringify({ ...pointer, name: "renamed" }));
    await stack.redis.incr(stack.keys.generation(a.tenantId));
    later();
    const renamed = await bundles.get(a.tenantId);
    expect(renamed.policies[0]?.name).toBe("renamed");
    expect(renamed.digest).not.toBe(first.digest);
  });

  it("refuses metadata whose rate limits are invalid", async () => {
    const { tenantId } = await publishRaw([
      { priority: 1, rateLimits: [{ ...limit("bad"), window: "2d" as "1m" }] },
    ]);
    const error = await fulcrumFailure(source().bundles.get(tenantId));
    expect(error.kind).toBe("FailedPrecondition");
    expect(error.message).toMatch(/rate_limits\[0\]\.window/);
  });

  it("bounds the tenants it caches (LRU) and the wasm bytes it shares", async () => {
    const sizes = [40, 50, 60];
    const tenants = await Promise.all(
      sizes.map((n) => publishRaw([{ priority: 1, wasm: new Uint8Array(randomBytes(n)) }])),
    );
    const { bundles } = source({ maxTenants: 2, maxWasmBytes: 115 });
    for (const t of tenants) await bundles.get(t.tenantId);
    // 40 + 50 + 60 > 115: the oldest module went; the bundles still hold theirs.
    expect(bundles.stats()).toEqual({ tenants: 2, wasmModules: 2, wasmBytes: 110 });
    const [first, , last] = tenants as [(typeof tenants)[0], unknown, (typeof tenants)[0]];
    // The most recent tenant is answered from the cache; the evicted one is loaded again.
    expect(await requestsOf(() => bundles.get(last.tenantId))).toBe(0);
    expect(await requestsOf(() => bundles.get(first.tenantId))).toBe(3);
    expect(bundles.stats().tenants).toBe(2);
  });

  it("shares one module between tenants by hash", async () => {
    const wasm = new Uint8Array([0, 0x61, 0x73, 0x6d, ...randomBytes(16)]);
    const a = await publishRaw([{ priority: 1, wasm }]);
    const b = await publishRaw([{ priority: 1, wasm }]);
    const { bundles } = source();
    const first = await bundles.get(a.tenantId);
    // b's load skips the wasm MGET: two requests instead of three.
    let second: Awaited<ReturnType<typeof bundles.get>> | undefined;
    expect(await requestsOf(async () => (second = await bundles.get(b.tenantId)))).toBe(2);
    const sha = sha256(wasm);
    expect(second?.wasm.get(sha)).toBe(first.wasm.get(sha));
  });
});
