import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { reconcileBudgets } from "../functions/src/budgets/reconcile.js";
import { BadEnvironmentError, parseFunctionsConfig } from "../functions/src/config.js";
import { createFunctionsDeps } from "../functions/src/deps.js";
import { loadLocalCredentials } from "./lib/local-credentials.js";
import { type PgWsProxy, startPgWsProxy } from "./lib/pg-ws-proxy.js";

/**
 * `npm run budgets:reconcile`: one budget reconciliation (functions/src/budgets/reconcile.ts)
 * — every tenant's BudgetSet, envelope records, approval keys and ledger counters rebuilt
 * in Redis from PostgreSQL, expired approvals marked EXPIRED. For operators after a Redis
 * flush or failover; the functions server also runs it every minute.
 *
 * Reads the functions' configuration (functions/src/config.ts: DATABASE_URL,
 * DATABASE_PLATFORM_URL, UPSTASH_REDIS_REST_URL / _TOKEN, REDIS_KEY_NAMESPACE, NATS_URL, …).
 * Without DATABASE_URL it targets the local stack (`npm run stack`): its database on
 * 127.0.0.1:5432 (through a WebSocket proxy of this run's own, as `npm run keys:sync`),
 * its Upstash-REST server and token. Exits 1 when a step failed for some tenant.
 */
function localStackEnv(env: NodeJS.ProcessEnv, proxyPort: number): NodeJS.ProcessEnv {
  const pg = "127.0.0.1:5432";
  return {
    ...env,
    DATABASE_URL: `postgres://fulcrum_app@${pg}/fulcrum`,
    DATABASE_PLATFORM_URL: `postgres://fulcrum_platform@${pg}/fulcrum`,
    PG_WS_PROXY_PORT: String(proxyPort),
    UPSTASH_REDIS_REST_URL:
      env.UPSTASH_REDIS_REST_URL ?? `http://127.0.0.1:${env.FULCRUM_REDIS_REST_PORT ?? "8079"}`,
    UPSTASH_REDIS_REST_TOKEN: env.UPSTASH_REDIS_REST_TOKEN ?? loadLocalCredentials().redisRestToken,
    // Not used by reconciliation, required by the shared configuration.
    OPA_BIN: env.OPA_BIN ?? "opa",
  };
}

async function main(): Promise<void> {
  let proxy: PgWsProxy | undefined;
  let env = process.env;
  if (!env.DATABASE_URL) {
    proxy = await startPgWsProxy({ allowedTargets: ["127.0.0.1:5432"] });
    env = localStackEnv(env, proxy.port);
  }
  let config: ReturnType<typeof parseFunctionsConfig>;
  try {
    config = parseFunctionsConfig(env);
  } catch (error) {
    await proxy?.close();
    if (!(error instanceof BadEnvironmentError)) throw error;
    console.error(`budgets:reconcile: ${error.message}`);
    process.exitCode = 2;
    return;
  }
  const deps = createFunctionsDeps(config);
  try {
    const report = await reconcileBudgets(deps);
    console.log(
      `reconciled ${report.tenants} tenants: ${report.countersRestored} counters restored, ` +
        `${report.envelopeRecords} envelope records, ${report.approvalKeys} approvals' keys, ` +
        `${report.approvalsExpired} approvals expired, ${report.envelopesTimedOut} envelopes timed out`,
    );
    for (const f of report.failures) {
      console.error(`  tenant ${f.tenantId}: ${f.step} failed: ${f.error}`);
    }
    if (report.failures.length > 0) process.exitCode = 1;
  } catch (error) {
    // Listing the tenants failed: the database is unreachable or not migrated.
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    console.error(`budgets:reconcile: ${cause instanceof Error ? cause.message : String(cause)}`);
    process.exitCode = 1;
  } finally {
    await deps.close();
    await proxy?.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
