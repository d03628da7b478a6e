/**
 * Keeps sst.config.ts honest offline (`sst deploy` needs Pulumi and cloud
 * credentials, which a development machine or CI does not have):
 * 1. installs SST's platform types (`sst install`, from npm only; cached in .sst/),
 * 2. type-checks sst.config.ts against them,
 * 3. bundles the Worker the way the config deploys it (`wrangler deploy
 *    --dry-run`) and checks the modules the config uploads are there;
 * 4. bundles the management function's dry-run worker (`npm run build:functions`),
 *    which the config copies beside the Lambda handler, and loads it in plain Node.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const root = join(import.meta.dirname, "..");

function run(command: string, args: string[], env: Record<string, string> = {}): void {
  const result = spawnSync(command, args, {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, ...env },
  });
  if (result.status !== 0) {
    console.error(`check:sst: ${command} ${args.join(" ")} failed (exit ${result.status})`);
    process.exit(1);
  }
}

if (!existsSync(join(root, ".sst", "platform", "config.d.ts"))) {
  run("npx", ["sst", "install", "--stage", "check"], {
    // Every sst command first tries to download Pulumi from GitHub; type
    // definitions and providers come from npm, which is all `install` needs.
    SST_SKIP_DEPENDENCY_CHECK: "true",
    SST_TELEMETRY_DISABLED: "1",
    SST_BUN_PATH: join(root, "node_modules", "bun", "bin", "bun.exe"),
    BUN_INSTALL_CACHE_DIR: join(root, ".sst", "bun-cache"),
  });
}

run("npx", ["tsc", "-p", "tsconfig.sst.json"]);

const outDir = join(root, ".tmp", "sst-check-edge");
rmSync(outDir, { recursive: true, force: true });
run("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outDir], {
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
});
const files = readdirSync(outDir);
if (!files.includes("index.js") || !files.some((f) => f.endsWith(".bundle"))) {
  console.error(
    `check:sst: the Worker bundle lacks index.js or the policy evaluator (.bundle): ${files.join(", ")}`,
  );
  process.exit(1);
}
console.log(`sst.config.ts type-checks; the Worker bundle has ${files.join(", ")}`);

run("npm", ["run", "--silent", "build:functions"]);
const workerBundle = join(root, "dist", "functions", "dry-run-worker.mjs");
// Started as the sandbox starts it, in a worker thread of plain Node (no TypeScript
// loader), it must load every module and say so: a bundle that misses a module fails
// here instead of on the first dry run in production.
run(process.execPath, [
  "--input-type=module",
  "-e",
  `import { Worker } from "node:worker_threads";
   const worker = new Worker(new URL(${JSON.stringify(pathToFileURL(workerBundle).href)}), { execArgv: [] });
   worker.on("error", (e) => { console.error(e); process.exit(1); });
   worker.on("message", (m) => { if (m && m.ready) { worker.terminate(); process.exit(0); } });
   setTimeout(() => { console.error("the worker did not start"); process.exit(1); }, 10000);`,
]);
console.log("the dry-run worker bundle starts in plain Node");
