/**
 * The test command (`npm test`, called by .ci/run): every static check, every
 * test tier, then one summary line `N passed, N failed`.
 *
 * Steps run in order and all of them run even after a failure, so one run
 * reports everything. A failed check counts as one failed test, so a red run
 * can never end with "0 failed".
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

interface StepResult {
  name: string;
  passed: number;
  failed: number;
  ok: boolean;
  seconds: number;
}

const root = join(import.meta.dirname, "..");
const tmp = join(root, ".tmp", "test");
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });

function run(command: string, args: string[], env: Record<string, string> = {}): boolean {
  const status = spawnSync(command, args, {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, ...env },
  }).status;
  return status === 0;
}

function timed<T>(fn: () => T): [T, number] {
  const started = performance.now();
  const value = fn();
  return [value, (performance.now() - started) / 1000];
}

/** A gate: no test count of its own; a failure counts as one failed test. */
function check(name: string, script: string): StepResult {
  console.log(`\n=== ${name}: npm run ${script}`);
  const [ok, seconds] = timed(() => run("npm", ["run", "--silent", script]));
  return { name, passed: 0, failed: ok ? 0 : 1, ok, seconds };
}

function policyTests(): StepResult {
  console.log("\n=== policy unit tests (opa test --coverage)");
  const resultFile = join(tmp, "opa.json");
  const [ok, seconds] = timed(() =>
    run("npm", ["run", "--silent", "test:policies"], { FULCRUM_RESULT_FILE: resultFile }),
  );
  const counts = readCounts(resultFile, (r) => ({ passed: r.passed, failed: r.failed }));
  return result("opa test", ok, counts, seconds);
}

/**
 * One vitest run over `projects`. The workerd tier runs on its own: its plugin's
 * per-run config (bindings injected from its global setup) cannot share a run with
 * the other tiers ("Cannot redefine property: default").
 */
function vitest(label: string, projects: string[]): StepResult {
  console.log(`\n=== vitest (${label})`);
  const resultFile = join(tmp, `vitest-${label.replaceAll(/\W+/g, "-")}.json`);
  const [ok, seconds] = timed(() =>
    run("npx", [
      "vitest",
      "run",
      ...projects.flatMap((p) => ["--project", p]),
      "--reporter=default",
      "--reporter=json",
      `--outputFile.json=${resultFile}`,
    ]),
  );
  const counts = readCounts(resultFile, (r: VitestJson) => ({
    passed: r.numPassedTests,
    failed:
      r.numFailedTests === undefined ? undefined : r.numFailedTests + filesFailedOutsideTests(r),
  }));
  return result(`vitest ${label}`, ok, counts, seconds);
}

interface VitestJson {
  numPassedTests?: number;
  numFailedTests?: number;
  testResults?: { status: string; assertionResults?: { status: string }[] }[];
}

/**
 * A file that failed with no failed test in it (it did not load, a hook threw) counts
 * as one failure; a file whose tests failed is already counted by those tests.
 */
function filesFailedOutsideTests(r: VitestJson): number {
  return (r.testResults ?? []).filter(
    (file) =>
      file.status === "failed" && !file.assertionResults?.some((t) => t.status === "failed"),
  ).length;
}

/** A runner that exited non-zero but reported no failed test still counts one failure. */
function result(
  name: string,
  exitedOk: boolean,
  counts: { passed: number; failed: number },
  seconds: number,
): StepResult {
  const failed = exitedOk ? counts.failed : Math.max(1, counts.failed);
  return { name, passed: counts.passed, failed, ok: exitedOk && failed === 0, seconds };
}

/** Reads a runner's JSON result; a missing or unreadable file is a failure. */
function readCounts(
  file: string,
  // biome-ignore lint/suspicious/noExplicitAny: each runner's JSON has its own shape
  pick: (json: any) => { passed?: number; failed?: number },
): { passed: number; failed: number } {
  try {
    const { passed, failed } = pick(JSON.parse(readFileSync(file, "utf8")));
    if (typeof passed !== "number" || typeof failed !== "number") return { passed: 0, failed: 1 };
    return { passed, failed };
  } catch {
    return { passed: 0, failed: 1 };
  }
}

const steps: StepResult[] = [
  check("lint + typecheck + buf lint + opa fmt/check", "check"),
  check("generated code is up to date", "check:generated"),
  check("the edge's policy evaluator bundle is up to date", "check:evaluator"),
  policyTests(),
  vitest("workerd", ["workerd"]),
  vitest("unit, integration, e2e", ["unit", "integration", "e2e"]),
];

console.log("\n=== summary");
for (const step of steps) {
  const verdict = step.ok ? "ok  " : "FAIL";
  console.log(
    `${verdict} ${step.name.padEnd(48)} ${String(step.passed).padStart(5)} passed ${String(step.failed).padStart(3)} failed ${step.seconds.toFixed(1).padStart(6)} s`,
  );
}
const passed = steps.reduce((n, s) => n + s.passed, 0);
const failed = steps.reduce((n, s) => n + s.failed, 0);
const allOk = steps.every((s) => s.ok);
console.log(`${passed} passed, ${failed} failed`);
process.exit(allOk && passed > 0 ? 0 : 1);
