/**
 * `npm run bench:management`: the management API's calls end to end over loopback HTTP,
 * through the real stack (the functions app → Neon driver → WebSocket proxy →
 * PostgreSQL; @upstash/redis → Upstash-REST server → Redis; OPA for compiles), one
 * call at a time. Prints p50 / p99 / mean milliseconds per call.
 *
 * Every call's answer is checked; a failing call stops the run with exit 1.
 * Knob: BENCH_ITERATIONS (default 100; compiles and activations run a quarter of that).
 */
import { cpus } from "node:os";
import { PolicyService } from "../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { ApiKeyScope } from "../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import { ApiKeyService } from "../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";
import { UserService } from "../proto/gen/fulcrum/tenant/v1/user_service_pb.js";
import { ensurePostgres, ensureRedis } from "../scripts/services/ensure-services.js";
import { startFunctionsStack } from "../test/harness/functions-stack.js";

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 100);
const REGO = (n: number) => `package fulcrum.policy

deny contains "tool ${n} is blocked" if {
	some tool in input.tool_names
	tool == "tool_${n}"
}
`;

interface Row {
  call: string;
  n: number;
  p50: string;
  p99: string;
  mean: string;
}

async function measure(call: string, n: number, fn: (i: number) => Promise<unknown>): Promise<Row> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await fn(i);
    ms.push(performance.now() - start);
  }
  ms.sort((a, b) => a - b);
  const at = (q: number) =>
    (ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? 0).toFixed(1);
  const mean = (ms.reduce((a, b) => a + b, 0) / ms.length).toFixed(1);
  return { call, n, p50: at(0.5), p99: at(0.99), mean };
}

async function main() {
  const postgres = await ensurePostgres();
  const redis = await ensureRedis();
  const pg = new URL(postgres.url);
  const stack = await startFunctionsStack({
    pgAddress: `${pg.hostname}:${pg.port || "5432"}`,
    redisUrl: redis.url,
  });
  try {
    const tenant = await stack.createTenant();
    const policies = stack.client(PolicyService, tenant.adminKey);
    const users = stack.client(UserService, tenant.adminKey);
    const keys = stack.client(ApiKeyService, tenant.adminKey);
    const few = Math.max(4, Math.floor(ITERATIONS / 4));
    const ids: string[] = [];
    const rows: Row[] = [];

    rows.push(
      await measure("CreatePolicy (Rego, OPA compile)", few, async (i) => {
        const res = await policies.createPolicy({ policy: { name: `p${i}`, regoSource: REGO(i) } });
        if (!res.policy?.policyId) throw new Error("CreatePolicy returned no policy");
        ids.push(res.policy.policyId);
      }),
    );
    rows.push(
      await measure("ActivatePolicyVersion (Redis publish)", few, async (i) => {
        const res = await policies.activatePolicyVersion({ policyId: ids[i] ?? "", version: 1 });
        if (res.policy?.activeVersion !== 1) throw new Error("activation did not take");
      }),
    );
    rows.push(
      await measure("UpdatePolicy (new version, compile)", few, async (i) => {
        const id = ids[i] ?? "";
        const res = await policies.updatePolicy({
          policy: { policyId: id, regoSource: REGO(i + 1000) },
          updateMask: { paths: ["rego_source"] },
        });
        if (res.version?.version !== 2) throw new Error("no version 2");
      }),
    );
    rows.push(
      await measure("ActivatePolicyVersion v2 + RollbackPolicy", few, async (i) => {
        const id = ids[i] ?? "";
        await policies.activatePolicyVersion({ policyId: id, version: 2 });
        const res = await policies.rollbackPolicy({ policyId: id });
        if (res.policy?.activeVersion !== 1) throw new Error("rollback did not take");
      }),
    );
    rows.push(
      await measure("GetPolicy", ITERATIONS, async (i) => {
        const res = await policies.getPolicy({ policyId: ids[i % ids.length] ?? "" });
        if (!res.policy) throw new Error("no policy");
      }),
    );
    rows.push(
      await measure(`ListPolicies (${ids.length} policies)`, ITERATIONS, async () => {
        const res = await policies.listPolicies({});
        if (res.totalCount !== ids.length) throw new Error(`total ${res.totalCount}`);
      }),
    );
    rows.push(
      await measure("DryRunPolicy (stored version, sandbox)", ITERATIONS, async (i) => {
        const res = await policies.dryRunPolicy({
          policyId: ids[i % ids.length] ?? "",
          version: 2,
          context: { toolNames: [`tool_${(i % ids.length) + 1000}`] },
        });
        if (res.result?.decision !== 2) throw new Error("expected DENY");
      }),
    );
    rows.push(
      await measure("CreateApiKey", few, async (i) => {
        const res = await keys.createApiKey({ name: `k${i}`, scopes: [ApiKeyScope.CHECK] });
        if (!res.secret) throw new Error("no secret");
      }),
    );
    rows.push(
      await measure("ListUsers (auth + one query)", ITERATIONS, async () => {
        const res = await users.listUsers({});
        if (res.users.length !== 1) throw new Error("expected one user");
      }),
    );

    console.log(
      `\nmanagement API over loopback HTTP, one call at a time — ${cpus().length} cores, ` +
        `Node ${process.version}, ${ITERATIONS} iterations (compiles: ${few})\n`,
    );
    console.table(rows);
  } finally {
    await stack.stop();
    await redis.stop();
    await postgres.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
