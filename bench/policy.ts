/**
 * `npm run bench:policy`: both policy benchmarks of the foundation issue, in
 * one run, each printing its own table.
 *
 * 1. bench/wasm-eval.ts — the `decision` entrypoint evaluated in process
 *    through @open-policy-agent/opa-wasm, exactly as the edge does it.
 * 2. bench/http-e2e.ts — EvaluatePolicy end to end over HTTP: the edge under
 *    wrangler dev and under a bare workerd, against `opa run --server` with
 *    the same Rego and data, at concurrency 1 and 32.
 *
 * Environment knobs of each are documented at the top of its file.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const benches = ["wasm-eval.ts", "http-e2e.ts"];
let failed = false;
for (const bench of benches) {
  console.log(`\n### ${bench}\n`);
  const result = spawnSync(
    process.execPath,
    ["--import", "tsx", join(import.meta.dirname, bench)],
    {
      stdio: "inherit",
    },
  );
  if (result.status !== 0) {
    console.error(`${bench} failed (exit ${result.status})`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
