/**
 * The control plane of a bench:edge run: PostgreSQL and Redis (reused or
 * started), the real management API in process (test/harness/functions-stack.ts:
 * a fresh database, its own Redis key namespace), and through it, the way a
 * customer does it: a tenant, the runbook policy from structured rules (with a
 * rate limit), version 1 activated (published to Redis), and a `check` key.
 */
import type { DescService } from "@bufbuild/protobuf";
import { type Client, ConnectError } from "@connectrpc/connect";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { ApiKeyScope } from "../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import { ApiKeyService } from "../../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";
import { ensurePostgres, ensureRedis } from "../../scripts/services/ensure-services.js";
import { type FunctionsStack, startFunctionsStack } from "../../test/harness/functions-stack.js";
import { startTestNats } from "../../test/harness/nats-server.js";
import type { Resources } from "./resources.js";
import { type BenchPolicy, benchRules } from "./scenarios.js";

export interface ControlPlane extends BenchPolicy {
  /** Redis itself (redis://…), for the edge's own REST server. */
  redisUrl: string;
  /** The key namespace the control plane publishes to (the edge's REDIS_KEY_NAMESPACE). */
  redisKeyNamespace: string;
  /** The Rego module compiled for the active version (`PolicyVersion.compiled_rego`). */
  compiledRego: string;
  policyVersion: number;
  /** The run's own NATS (TCP for the event processor, WebSocket for the edge). */
  natsUrl: string;
  natsWsUrl: string;
  /** The control plane's database as fulcrum_app, and the Neon proxy reaching it. */
  databaseUrl: string;
  pgWsProxyPort: number;
  /** The owner connection (bypasses RLS): for counting what the event processor wrote. */
  owner: FunctionsStack["owner"];
  /** A management API client acting as the tenant's admin (bench:budget creates budgets). */
  manage: <S extends DescService>(service: S) => Client<S>;
}

async function step<T>(what: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    const e = ConnectError.from(error);
    throw new Error(`${what} failed: [${e.code}] ${e.rawMessage}`);
  }
}

export async function startControlPlane(resources: Resources): Promise<ControlPlane> {
  const postgres = await ensurePostgres();
  resources.add(() => postgres.stop());
  const redis = await ensureRedis();
  resources.add(() => redis.stop());
  // The audit streams have fixed names: a NATS of the run's own, never the machine's.
  const nats = await startTestNats();
  resources.add(() => nats.stop());
  const pg = new URL(postgres.url);
  const stack = await startFunctionsStack(
    { pgAddress: `${pg.hostname}:${pg.port || "5432"}`, redisUrl: redis.url },
    { natsUrl: nats.url },
  );
  // Drops the database and deletes the namespace (policies, keys and rate-limit counters).
  resources.add(() => stack.stop());

  const tenant = await step("CreateTenant", stack.createTenant());
  const policies = stack.client(PolicyService, tenant.adminKey);
  const created = await step(
    "CreatePolicy (structured rules with a RATE_LIMIT rule)",
    policies.createPolicy({
      policy: { name: "Runbook load-test policy", priority: 100, rules: benchRules() },
      changeSummary: "bench:edge",
    }),
  );
  const policyId = created.policy?.policyId;
  if (!policyId) throw new Error("CreatePolicy returned no policy id");
  await step("ActivatePolicyVersion", policies.activatePolicyVersion({ policyId, version: 1 }));
  const version = await step(
    "GetPolicyVersion",
    policies.getPolicyVersion({ policyId, version: 1 }),
  );
  const compiledRego = version.version?.compiledRego;
  if (!compiledRego) throw new Error("GetPolicyVersion returned no compiled_rego");
  const key = await step(
    "CreateApiKey (check scope)",
    stack
      .client(ApiKeyService, tenant.adminKey)
      .createApiKey({ name: "bench:edge", scopes: [ApiKeyScope.CHECK] }),
  );
  if (!key.secret) throw new Error("CreateApiKey returned no secret");

  return {
    tenantId: tenant.tenantId,
    policyId,
    checkKey: key.secret,
    redisUrl: redis.url,
    redisKeyNamespace: stack.config.redisKeyNamespace,
    compiledRego,
    policyVersion: 1,
    natsUrl: nats.url,
    natsWsUrl: nats.wsUrl,
    databaseUrl: stack.config.databaseUrl,
    pgWsProxyPort: stack.proxy.port,
    owner: stack.owner,
    manage: (service) => stack.client(service, tenant.adminKey),
  };
}
