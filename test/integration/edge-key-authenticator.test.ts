import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { generateApiKey, hashApiKey } from "../../core/auth/api-key.js";
import { FulcrumError } from "../../core/errors/fulcrum-error.js";
import { Metrics } from "../../core/observability/metrics.js";
import {
  KEY_AUTHENTICATIONS_METRIC,
  KeyAuthenticator,
  type KeyAuthenticatorOptions,
} from "../../edge/src/auth/key-authenticator.js";
import { ApiKeyScope } from "../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import { ApiKeyService } from "../../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import {
  startUpstashRestServer,
  type UpstashRestServer,
} from "../../scripts/lib/upstash-rest-server.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { userWithKey } from "../harness/management-helpers.js";
import { type FetchTap, fulcrumFailure, silentLogger, tapFetch } from "../harness/redis-faults.js";

// Edge authentication (edge/src/auth/key-authenticator.ts) against the key records the
// real control plane writes and deletes (core/distribution/key-records.ts). The edge side
// reads through an Upstash REST server of its own, whose requests the tests count.
let stack: FunctionsStack;
let tenant: Awaited<ReturnType<FunctionsStack["createTenant"]>>;
let edgeRest: UpstashRestServer;
let edgeToken: string;
let tap: FetchTap;

beforeAll(async () => {
  stack = await startFunctionsStack();
  tenant = await stack.createTenant();
  edgeToken = randomBytes(16).toString("hex");
  edgeRest = await startUpstashRestServer({
    port: 0,
    redisUrl: inject("redisUrl"),
    token: edgeToken,
  });
  tap = tapFetch(edgeRest.url);
}, 120_000);

afterAll(async () => {
  tap?.restore();
  await edgeRest?.close();
  await stack?.stop();
});

/** An authenticator over the edge's REST server, with a clock the test moves. */
function authenticator(options: Partial<KeyAuthenticatorOptions> = {}) {
  let clock = Date.now();
  const metrics = new Metrics();
  const auth = new KeyAuthenticator({
    redis: new Redis({ url: edgeRest.url, token: edgeToken, retry: false }),
    keys: stack.keys,
    metrics,
    logger: silentLogger,
    now: () => new Date(clock),
    ...options,
  });
  return {
    auth,
    outcomes: (outcome: string) => metrics.value(KEY_AUTHENTICATIONS_METRIC, { outcome }),
    later: (ms: number) => {
      clock += ms;
    },
  };
}

async function requestsOf(fn: () => Promise<unknown>): Promise<number> {
  const before = tap.requests;
  await fn();
  return tap.requests - before;
}

const keysApi = () => stack.client(ApiKeyService, tenant.adminKey);
const UNKNOWN = /^the API key is not valid: it is unknown or revoked/;

describe("KeyAuthenticator", () => {
  it("authenticates a key the control plane created, as its record says", async () => {
    const { auth, outcomes } = authenticator();
    const u = await userWithKey(stack, tenant.adminKey, UserRole.POLICY_AUTHOR, [
      ApiKeyScope.CHECK,
    ]);
    expect(await auth.authenticate(u.key)).toEqual({
      key_id: u.keyId,
      tenant_id: tenant.tenantId,
      user_id: u.userId,
      scopes: ["check"],
      role: "policy_author",
      created_by: tenant.adminUserId,
    });
    expect((await auth.authenticate(tenant.adminKey)).role).toBe("admin");
    expect(outcomes("ok")).toBe(2);
    // The WebCrypto hash the edge looks up is the one the control plane stores under.
    expect(await hashApiKey(u.key)).toBe(createHash("sha256").update(u.key).digest("hex"));
  });

  it("refuses a revoked key once the cached record's TTL has passed", async () => {
    const { auth, later, outcomes } = authenticator({ ttlMs: 1_000 });
    const u = await userWithKey(stack, tenant.adminKey, UserRole.VIEWER, [ApiKeyScope.CHECK]);
    await auth.authenticate(u.key);
    await keysApi().revokeApiKey({ keyId: u.keyId });
    // Within the TTL the cached record still answers, without Redis.
    expect(await requestsOf(() => auth.authenticate(u.key))).toBe(0);
    later(1_000);
    const error = await fulcrumFailure(auth.authenticate(u.key));
    expect(error.kind).toBe("Unauthenticated");
    expect(error.message).toMatch(UNKNOWN);
    expect(error.message).not.toContain(u.key);
    expect(outcomes("unknown")).toBe(1);
  });

  it("with the defaults, a revoked key stops working within 5 seconds", async () => {
    const auth = new KeyAuthenticator({
      redis: new Redis({ url: edgeRest.url, token: edgeToken, retry: false }),
      keys: stack.keys,
      logger: silentLogger,
    });
    const u = await userWithKey(stack, tenant.adminKey, UserRole.VIEWER, [ApiKeyScope.CHECK]);
    await auth.authenticate(u.key);
    await keysApi().revokeApiKey({ keyId: u.keyId });
    const revokedAt = Date.now();
    for (;;) {
      const refused = await auth.authenticate(u.key).then(
        () => false,
        (e: unknown) => e instanceof FulcrumError && e.kind === "Unauthenticated",
      );
      if (refused) break;
      expect(Date.now() - revokedAt).toBeLessThan(5_000);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(Date.now() - revokedAt).toBeLessThan(5_000);
  });

  it("refuses an expired key even while its record is cached", async () => {
    const { auth, later, outcomes } = authenticator({ ttlMs: 120_000 });
    const expires = new Date(Date.now() + 60_000);
    const created = await keysApi().createApiKey({
      name: "expiring",
      scopes: [ApiKeyScope.CHECK],
      expiresAt: timestampFromDate(expires),
    });
    expect((await auth.authenticate(created.secret)).expires_at).toBe(expires.toISOString());
    // The test clock started before `expires` was taken: move it clearly past expiry.
    later(61_000);
    let error: FulcrumError | undefined;
    expect(
      await requestsOf(async () => {
        error = await fulcrumFailure(auth.authenticate(created.secret));
      }),
    ).toBe(0);
    expect(error?.kind).toBe("Unauthenticated");
    expect(error?.message).toBe(
      `the API key expired at ${expires.toISOString()}: ask an admin of your tenant for a new key`,
    );
    expect(outcomes("expired")).toBe(1);
  });

  it("refuses a malformed key without reading Redis", async () => {
    const { auth, outcomes } = authenticator();
    const valid = (await generateApiKey()).secret;
    const malformed = [
      "",
      "fk_short",
      `${valid}x`,
      ` ${valid}`,
      valid.replace(/^fk_/, "sk_"),
      `${valid.slice(0, -1)}B`, // not a canonical 32-byte encoding
      `Bearer ${valid}`,
    ];
    for (const key of malformed) {
      let error: FulcrumError | undefined;
      expect(
        await requestsOf(async () => {
          error = await fulcrumFailure(auth.authenticate(key));
        }),
      ).toBe(0);
      expect(error?.kind).toBe("Unauthenticated");
      expect(error?.message).toMatch(/^the API key is not a Fulcrum API key: expected "fk_"/);
      if (key !== "") expect(error?.message).not.toContain(key);
    }
    expect(outcomes("malformed")).toBe(malformed.length);
  });

  it("remembers an unknown key for negativeTtlMs, then asks again", async () => {
    const { auth, later } = authenticator({ negativeTtlMs: 1_000 });
    const unknown = (await generateApiKey()).secret;
    expect(await requestsOf(() => auth.authenticate(unknown).catch(() => undefined))).toBe(1);
    expect(await requestsOf(() => auth.authenticate(unknown).catch(() => undefined))).toBe(0);
    later(1_000);
    let error: FulcrumError | undefined;
    expect(
      await requestsOf(async () => {
        error = await fulcrumFailure(auth.authenticate(unknown));
      }),
    ).toBe(1);
    expect(error?.message).toMatch(UNKNOWN);
  });

  it("shares one lookup among concurrent calls with one key", async () => {
    const { auth } = authenticator();
    const u = await userWithKey(stack, tenant.adminKey, UserRole.VIEWER, [ApiKeyScope.CHECK]);
    let records: unknown[] = [];
    expect(
      await requestsOf(async () => {
        records = await Promise.all(Array.from({ length: 20 }, () => auth.authenticate(u.key)));
      }),
    ).toBe(1);
    expect(records).toHaveLength(20);
    expect(new Set(records.map((r) => JSON.stringify(r))).size).toBe(1);
  });

  it("refuses a key whose stored record is not a record", async () => {
    const { auth } = authenticator();
    const key = (await generateApiKey()).secret;
    await stack.redis.set(
      stack.keys.apiKey(await hashApiKey(key)),
      JSON.stringify({ key_id: "k", tenant_id: "t", user_id: "u", scopes: ["root"], role: "god" }),
    );
    const error = await fulcrumFailure(auth.authenticate(key));
    expect(error.kind).toBe("Unauthenticated");
    expect(error.message).toMatch(UNKNOWN);
  });
});

describe("KeyAuthenticator when Redis is unreachable", () => {
  const UNAVAILABLE = "the API key could not be verified: the key store is unreachable; retry";

  it("fails closed with Unavailable (a closed port), within the timeout", async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const { auth, outcomes } = authenticator({
      redis: new Redis({ url: `http://127.0.0.1:${port}`, token: edgeToken }),
      timeoutMs: 300,
    });
    const started = Date.now();
    const error = await fulcrumFailure(auth.authenticate(tenant.adminKey));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error.kind).toBe("Unavailable");
    expect(error.retry).toBe(true);
    expect(error.message).toBe(UNAVAILABLE);
    expect(outcomes("unavailable")).toBe(1);
  });

  it("fails closed on a hung endpoint after timeoutMs", async () => {
    const sockets = new Set<Socket>();
    const hung: Server = createServer((socket) => {
      sockets.add(socket);
    });
    await new Promise<void>((resolve) => hung.listen(0, "127.0.0.1", resolve));
    const { port } = hung.address() as { port: number };
    try {
      const { auth } = authenticator({
        redis: new Redis({ url: `http://127.0.0.1:${port}`, token: edgeToken, retry: false }),
        timeoutMs: 200,
      });
      const error = await fulcrumFailure(auth.authenticate(tenant.adminKey));
      expect(error.kind).toBe("Unavailable");
      expect(error.message).toBe(UNAVAILABLE);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => hung.close(() => resolve()));
    }
  });

  it("caches no failure: the next call after Redis returns authenticates", async () => {
    const { auth } = authenticator();
    tap.down = true;
    try {
      expect((await fulcrumFailure(auth.authenticate(tenant.adminKey))).kind).toBe("Unavailable");
    } finally {
      tap.down = false;
    }
    expect((await auth.authenticate(tenant.adminKey)).tenant_id).toBe(tenant.tenantId);
  });
});
