import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Redis from "ioredis";
import type { TestProject } from "vitest/node";
import { generateApiKey } from "../../core/auth/api-key.js";
import type { ApiKeyRecord } from "../../core/distribution/key-records.js";
import { type PolicyPointer, policyKeysIn } from "../../core/distribution/policy-keys.js";
import {
  POLICY_ENTRYPOINT,
  type PublishedPolicy,
} from "../../core/policy-bundle/published-policy.js";
import type { WorkerdNats, WorkerdRedis, WorkerdSeed } from "../../edge/test/seed.js";
import { startUpstashRestServer } from "../../scripts/lib/upstash-rest-server.js";
import { ensureRedis } from "../../scripts/services/ensure-services.js";
import { repoRoot } from "../../scripts/services/service.js";
import { startNatsControlServer } from "./nats-control-server.js";
import { startTestNats } from "./nats-server.js";

const FIXTURES = join(repoRoot, "edge", "test", "fixtures", "evaluator");

/**
 * The workerd tier's Redis: the machine's (or one the project starts), reached by the
 * Worker under test through an Upstash REST server of this tier's own (random token),
 * under a random key namespace. Seeds one tenant: a `check` key, a `manage`-only key,
 * an expired key, and a published bundle of the committed compiled fixtures
 * (edge/test/fixtures/evaluator/), exactly in the control plane's layout
 * (core/distribution/policy-keys.ts). vitest.config.ts passes `workerdRedis` to the
 * Worker's bindings; the tests read `workerdSeed` (edge/test/seed.ts). Teardown deletes
 * the namespace and stops what it started.
 *
 * Also a NATS of the tier's own (JetStream + WebSocket listener, free ports): the
 * Worker's audit buffer publishes to its `wsUrl` (`workerdNats`), and a control server
 * (test/harness/nats-control-server.ts) lets tests pause it and read the stream back.
 */
export default async function setup(project: TestProject) {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };
  try {
    const redisService = await ensureRedis();
    stops.push(redisService.stop);
    const redis = new Redis(redisService.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    stops.push(async () => {
      redis.disconnect();
    });

    const namespace = `fulcrum:test:workerd:${randomBytes(6).toString("hex")}`;
    stops.push(() => deleteNamespace(redis, namespace));
    const restToken = randomBytes(24).toString("base64url");
    const rest = await startUpstashRestServer({
      port: 0,
      redisUrl: redisService.url,
      token: restToken,
    });
    stops.push(() => rest.close());

    const nats = await startTestNats();
    stops.push(() => nats.stop());
    const control = await startNatsControlServer(nats);
    stops.push(() => control.close());
    const workerdNats: WorkerdNats = { wsUrl: nats.wsUrl, controlUrl: control.url };
    project.provide("workerdNats", workerdNats);

    const seed = await seedTenant(redis, namespace);
    const workerdRedis: WorkerdRedis = { restUrl: rest.url, restToken, namespace };
    project.provide("workerdRedis", workerdRedis);
    project.provide("workerdSeed", seed);
  } catch (error) {
    await stopAll();
    throw error;
  }
  return stopAll;
}

async function seedTenant(redis: Redis, namespace: string): Promise<WorkerdSeed> {
  const keys = policyKeysIn(namespace);
  const suffix = randomBytes(4).toString("hex");
  const tenantId = `workerd-${suffix}`;
  const check = await generateApiKey();
  const manage = await generateApiKey();
  const expired = await generateApiKey();
  const unknown = await generateApiKey();
  const record = (keyId: string, overrides: Partial<ApiKeyRecord>): ApiKeyRecord => ({
    key_id: keyId,
    tenant_id: tenantId,
    user_id: `user-${suffix}`,
    scopes: ["check"],
    role: "admin",
    ...overrides,
  });

  const shas = JSON.parse(readFileSync(join(FIXTURES, "wasm-sha256.json"), "utf8")) as {
    deletes: string;
    payments: string;
  };
  const policies = {
    deletes: { id: "deletes", version: 2, name: "Deletes" },
    payments: { id: "payments", version: 1, name: "Payments" },
  } as const;
  const write = redis
    .multi()
    .set(keys.apiKey(check.hash), JSON.stringify(record(`key-check-${suffix}`, {})))
    .set(
      keys.apiKey(manage.hash),
      JSON.stringify(record(`key-manage-${suffix}`, { scopes: ["manage"] })),
    )
    .set(
      keys.apiKey(expired.hash),
      JSON.stringify(record(`key-expired-${suffix}`, { expires_at: "2020-01-01T00:00:00Z" })),
    );
  for (const [file, policy, priority] of [
    ["deletes", policies.deletes, 10],
    ["payments", policies.payments, 0],
  ] as const) {
    const wasm = readFileSync(join(FIXTURES, `${file}.wasm.bin`));
    const wasmSha256 = createHash("sha256").update(wasm).digest("hex");
    if (wasmSha256 !== shas[file]) {
      throw new Error(
        `${file}.wasm.bin does not match wasm-sha256.json: rebuild the fixtures (scripts/build-evaluator-fixtures.ts)`,
      );
    }
    const sha256 = createHash("sha256").update(`${file} v${policy.version}`).digest("hex");
    const meta: PublishedPolicy = {
      tenant_id: tenantId,
      policy_id: policy.id,
      version: policy.version,
      sha256,
      wasm_sha256: wasmSha256,
      entrypoint: POLICY_ENTRYPOINT,
      source_kind: "rego",
      enforcement: "BLOCK",
      dry_run: false,
      priority,
      scope: {},
    };
    const pointer: PolicyPointer = {
      version: policy.version,
      revision: 1,
      sha256,
      wasm_sha256: wasmSha256,
      updated_at: new Date().toISOString(),
      name: policy.name,
    };
    write
      .set(keys.wasm(wasmSha256), wasm.toString("base64"))
      .set(keys.version(tenantId, policy.id, policy.version), JSON.stringify(meta))
      .set(keys.pointer(tenantId, policy.id), JSON.stringify(pointer))
      .hset(keys.activeSet(tenantId), policy.id, policy.version);
  }
  write.incr(keys.generation(tenantId));
  const results = await write.exec();
  const failed = results?.find(([error]) => error !== null)?.[0];
  if (!results || failed) throw new Error(`seeding the workerd tier's Redis failed: ${failed}`);
  return {
    tenantId,
    otherTenantId: `workerd-other-${suffix}`,
    checkKey: check.secret,
    manageKey: manage.secret,
    expiredKey: expired.secret,
    unknownKey: unknown.secret,
    policies,
  };
}

/** Deletes every key of the test namespace (SCAN, so a large Redis is not blocked). */
async function deleteNamespace(redis: Redis, namespace: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, found] = await redis.scan(cursor, "MATCH", `${namespace}:*`, "COUNT", 500);
    cursor = next;
    if (found.length > 0) await redis.del(...found);
  } while (cursor !== "0");
}
