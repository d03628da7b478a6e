/**
 * Builds, checks and tests the Rego governance library in policies/, and checks and
 * tests the reference specification in policies/reference/ (never built to wasm).
 *
 *   tsx scripts/build-policies.ts           regenerate capabilities.json, build policies/build/
 *   tsx scripts/build-policies.ts --check   opa fmt + opa check --strict (library and
 *                                           reference) + drift check (no writes)
 *   tsx scripts/build-policies.ts --test    opa test (library and reference) with coverage
 *                                           (>= 90 % of the library's non-test lines; the
 *                                           reference's coverage is reported, not gated)
 *
 * With --test, `FULCRUM_RESULT_FILE` (if set) receives
 * {"passed","failed","coverage","reference_coverage"} (counts over both).
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { gunzipSync } from "node:zlib";
import { repoRoot, runOpa } from "./opa.js";

const ENTRYPOINT = "fulcrum/governance/decision";
const POLICIES_DIR = join(repoRoot, "policies");
const CAPABILITIES_FILE = join(POLICIES_DIR, "capabilities.json");
const BUILD_DIR = join(POLICIES_DIR, "build");
// The reference specification: `opa fmt`/`opa check --strict`/`opa test` only, never built.
const REFERENCE_DIR = join(POLICIES_DIR, "reference");
const WASM_FILE = join(BUILD_DIR, "governance.wasm");
const MANIFEST_FILE = join(BUILD_DIR, "manifest.json");
const SDK_CAPABILITIES = join(
  repoRoot,
  "node_modules/@open-policy-agent/opa-wasm/capabilities.json",
);
const MIN_COVERAGE = 90;
// Listed by the opa-wasm SDK but implemented neither in the wasm runtime nor in its JS builtins.
const UNIMPLEMENTED_BUILTINS = new Set(["time.diff", "rand.intn"]);
// Builtins whose declaration is taken from the running OPA instead of the SDK's older file.
// glob.match: the SDK declares `delimiters` as array[string] only, but the wasm runtime
// accepts null (= no delimiters; verified against `opa eval`), and null is what the
// policies need: with [] OPA defaults to ["."], so "gpt-*" would not match "gpt-4.1".
const DECLARATION_FROM_OPA = new Set(["glob.match"]);

class BuildFailure extends Error {
  override name = "BuildFailure";
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** The .rego files under `dir`, minus policies/build/ and `skip` (a directory). */
function listRego(dir: string, includeTests: boolean, skip?: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== BUILD_DIR && path !== skip) out.push(...listRego(path, includeTests, skip));
    } else if (
      entry.name.endsWith(".rego") &&
      (includeTests || !entry.name.endsWith("_test.rego"))
    ) {
      out.push(path);
    }
  }
  // Sorted so the build's module order (and so its output) never depends on readdir order.
  return out.sort();
}

const rel = (paths: string[]): string[] => paths.map((p) => relative(repoRoot, p));

/** The optimised library (what is built to wasm): everything but the reference. */
const libraryRego = (includeTests: boolean): string[] =>
  listRego(POLICIES_DIR, includeTests, REFERENCE_DIR);
const referenceRego = (includeTests: boolean): string[] => listRego(REFERENCE_DIR, includeTests);
/** Whether a path reported by opa (relative to the repository, or absolute) is the reference's. */
const isReference = (file: string): boolean =>
  !relative(REFERENCE_DIR, resolve(repoRoot, file)).startsWith("..");

/** Builtins the wasm runtime implements + the language features of the OPA in use. */
async function generateCapabilities(): Promise<string> {
  const sdk = JSON.parse(readFileSync(SDK_CAPABILITIES, "utf8")) as {
    builtins: { name: string }[];
  };
  const current = JSON.parse((await runOpa(["capabilities", "--current"])).stdout) as {
    builtins: { name: string }[];
    features?: string[];
    wasm_abi_versions?: unknown[];
  };
  const fromOpa = new Map(
    current.builtins.filter((b) => DECLARATION_FROM_OPA.has(b.name)).map((b) => [b.name, b]),
  );
  const builtins = sdk.builtins
    .filter((b) => !UNIMPLEMENTED_BUILTINS.has(b.name))
    .map((b) => fromOpa.get(b.name) ?? b)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const caps = {
    builtins,
    features: [...(current.features ?? [])].sort(),
    wasm_abi_versions: current.wasm_abi_versions ?? [],
  };
  return `${JSON.stringify(caps, null, 2)}\n`;
}

/** Minimal ustar reader: returns the named regular file from an uncompressed tar. */
function extractFromTar(tar: Uint8Array, wanted: string): Uint8Array | undefined {
  const text = (from: number, len: number): string => {
    const slice = tar.subarray(from, from + len);
    const nul = slice.indexOf(0);
    return Buffer.from(nul === -1 ? slice : slice.subarray(0, nul)).toString("utf8");
  };
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= tar.length) {
    const name = text(offset, 100);
    if (name === "") break; // end-of-archive blocks
    const size = Number.parseInt(text(offset + 124, 12).trim() || "0", 8);
    const type = text(offset + 156, 1);
    const prefix = text(offset + 345, 155);
    const bodyStart = offset + 512;
    let path = longName ?? (prefix ? `${prefix}/${name}` : name);
    longName = undefined;
    if (type === "L") {
      longName = text(bodyStart, size); // GNU long name for the next entry
    } else if (type === "0" || type === "") {
      path = path.replace(/^\.?\//, "");
      if (path === wanted) return tar.subarray(bodyStart, bodyStart + size);
    }
    // 'x'/'g' (PAX) headers and directories are skipped.
    offset = bodyStart + Math.ceil(size / 512) * 512;
  }
  return undefined;
}

async function opaVersion(): Promise<string> {
  const { stdout } = await runOpa(["version"]);
  const match = /^Version:\s*(\S+)/m.exec(stdout);
  if (!match?.[1]) throw new BuildFailure(`cannot parse \`opa version\` output:\n${stdout}`);
  return match[1];
}

interface BuildOutput {
  wasm: Uint8Array;
  manifest: string;
}

/** Compiles the non-test modules to wasm with the given capabilities file. */
async function build(capabilitiesPath: string): Promise<BuildOutput> {
  const work = mkdtempSync(join(tmpdir(), "fulcrum-policies-"));
  try {
    const bundle = join(work, "bundle.tar.gz");
    const modules = rel(libraryRego(false));
    await runOpa([
      "build",
      "-t",
      "wasm",
      "-e",
      ENTRYPOINT,
      "--capabilities",
      capabilitiesPath,
      "-o",
      bundle,
      ...modules,
    ]);
    const wasm = extractFromTar(gunzipSync(readFileSync(bundle)), "policy.wasm");
    if (!wasm) throw new BuildFailure("opa build produced no policy.wasm in its bundle");
    const manifest = {
      entrypoint: ENTRYPOINT,
      sha256: sha256(wasm),
      bytes: wasm.length,
      opa_version: await opaVersion(),
      modules: modules.map((m) => relative("policies", m)),
    };
    return { wasm: new Uint8Array(wasm), manifest: `${JSON.stringify(manifest, null, 2)}\n` };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function commandBuild(): Promise<void> {
  writeFileSync(CAPABILITIES_FILE, await generateCapabilities());
  const out = await build(CAPABILITIES_FILE);
  mkdirSync(BUILD_DIR, { recursive: true });
  writeFileSync(WASM_FILE, out.wasm);
  writeFileSync(MANIFEST_FILE, out.manifest);
  console.log(
    `built ${relative(repoRoot, WASM_FILE)} (${out.wasm.length} bytes, sha256 ${sha256(out.wasm)})`,
  );
}

function readOrEmpty(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    return Buffer.alloc(0);
  }
}

async function commandCheck(): Promise<void> {
  const problems: string[] = [];
  const fmt = await runOpa(["fmt", "--list", "--fail", "policies"], { allowFailure: true });
  if (fmt.code !== 0 || fmt.stdout.trim() !== "") {
    problems.push(
      `opa fmt: not formatted (run \`opa fmt -w policies\`):\n${fmt.stdout}${fmt.stderr}`,
    );
  }

  const freshCaps = await generateCapabilities();
  if (readOrEmpty(CAPABILITIES_FILE).toString("utf8") !== freshCaps) {
    problems.push(
      "policies/capabilities.json differs from a fresh generation: run `npm run build:policies`",
    );
  }
  const work = mkdtempSync(join(tmpdir(), "fulcrum-caps-"));
  try {
    const capsPath = join(work, "capabilities.json");
    writeFileSync(capsPath, freshCaps);
    // Library modules must only use builtins the wasm runtime implements; tests run in
    // `opa test` only, so they are checked strictly but without the wasm capabilities.
    const lib = await runOpa(
      ["check", "--strict", "--capabilities", capsPath, ...rel(libraryRego(false))],
      {
        allowFailure: true,
      },
    );
    if (lib.code !== 0)
      problems.push(`opa check (library, wasm capabilities):\n${lib.stderr}${lib.stdout}`);
    const all = await runOpa(["check", "--strict", ...rel(libraryRego(true))], {
      allowFailure: true,
    });
    if (all.code !== 0)
      problems.push(`opa check (library with tests):\n${all.stderr}${all.stdout}`);
    // The reference is never built to wasm: strict, but without the wasm capabilities.
    const ref = await runOpa(["check", "--strict", ...rel(referenceRego(true))], {
      allowFailure: true,
    });
    if (ref.code !== 0)
      problems.push(`opa check (reference with tests):\n${ref.stderr}${ref.stdout}`);

    if (lib.code === 0) {
      const fresh = await build(capsPath);
      const committed = readOrEmpty(WASM_FILE);
      if (sha256(committed) !== sha256(fresh.wasm)) {
        problems.push(
          `policies/build/governance.wasm is stale (committed sha256 ${sha256(committed)}, fresh build ${sha256(fresh.wasm)}): run \`npm run build:policies\``,
        );
      }
      if (readOrEmpty(MANIFEST_FILE).toString("utf8") !== fresh.manifest) {
        problems.push("policies/build/manifest.json is stale: run `npm run build:policies`");
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (problems.length > 0) throw new BuildFailure(problems.join("\n\n"));
  console.log("policies: fmt ok, check --strict ok (library and reference), build is up to date");
}

interface OpaTestResult {
  location?: { file?: string };
  package?: string;
  name?: string;
  fail?: boolean;
  error?: unknown;
  skip?: boolean;
  duration?: number;
}

interface Range {
  start: { row: number };
  end: { row: number };
}

interface FileCoverage {
  covered?: Range[];
  not_covered?: Range[];
  covered_lines?: number;
  not_covered_lines?: number;
}

interface CoverageReport {
  files?: Record<string, FileCoverage>;
  coverage?: number;
}

/** Distinct rows of possibly overlapping ranges (OPA reports nested expression ranges). */
const rows = (ranges: Range[] | undefined): Set<number> => {
  const out = new Set<number>();
  for (const r of ranges ?? []) for (let row = r.start.row; row <= r.end.row; row++) out.add(row);
  return out;
};

function fileLines(f: FileCoverage): { covered: number; notCovered: number } {
  if (typeof f.covered_lines === "number" && typeof f.not_covered_lines === "number") {
    return { covered: f.covered_lines, notCovered: f.not_covered_lines };
  }
  const notCovered = rows(f.not_covered);
  const covered = [...rows(f.covered)].filter((row) => !notCovered.has(row));
  return { covered: covered.length, notCovered: notCovered.size };
}

/** Line coverage over the non-test files of `report` selected by `include`, with a table. */
function coverageOf(
  report: CoverageReport,
  include: (file: string) => boolean,
): { coverage: number; table: string[] } {
  let covered = 0;
  let notCovered = 0;
  const table: string[] = [];
  for (const [file, f] of Object.entries(report.files ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (file.endsWith("_test.rego") || !include(file)) continue;
    const { covered: c, notCovered: n } = fileLines(f);
    covered += c;
    notCovered += n;
    const pct = c + n === 0 ? 100 : (100 * c) / (c + n);
    table.push(
      `  ${relative("policies", file).padEnd(44)} ${String(c).padStart(4)} / ${String(c + n).padEnd(4)} ${pct.toFixed(1).padStart(6)} %`,
    );
  }
  const coverage =
    covered + notCovered === 0 ? 0 : Math.round((1000 * covered) / (covered + notCovered)) / 10;
  return { coverage, table };
}

async function commandTest(): Promise<void> {
  // One run over policies/: the library's tests and the reference's (policies/reference/).
  const run = await runOpa(["test", "--format", "json", "policies"], { allowFailure: true });
  const resultFile = process.env.FULCRUM_RESULT_FILE;
  let results: OpaTestResult[];
  try {
    results = JSON.parse(run.stdout) as OpaTestResult[];
  } catch {
    // Typically a compile error: no test case ran. Still leave a machine-readable result.
    const error = `opa test did not produce JSON (exit ${run.code}):\n${run.stderr}${run.stdout}`;
    if (resultFile)
      writeFileSync(
        resultFile,
        `${JSON.stringify({ passed: 0, failed: 0, coverage: 0, error })}\n`,
      );
    throw new BuildFailure(error);
  }
  const failedTests = results.filter((r) => r.fail || r.error);
  const passed = results.filter((r) => !r.fail && !r.error && !r.skip).length;
  const failed = failedTests.length;

  // With failing tests `opa test --coverage` prints its text report instead of JSON, so
  // coverage is only measured on a green run (and reported as 0 otherwise).
  let report: CoverageReport = {};
  if (failed === 0) {
    const cov = await runOpa(["test", "--coverage", "--format", "json", "policies"], {
      allowFailure: true,
    });
    try {
      report = JSON.parse(cov.stdout) as CoverageReport;
    } catch {
      throw new BuildFailure(
        `opa test --coverage did not produce JSON (exit ${cov.code}):\n${cov.stderr}${cov.stdout}`,
      );
    }
  }

  // Coverage of the library itself and, separately, of the reference (test modules
  // excluded: they are trivially covered). Only the library's is gated.
  const library = coverageOf(report, (file) => !isReference(file));
  const reference = coverageOf(report, isReference);
  const coverage = library.coverage;

  console.log("library coverage (lines covered / relevant):");
  for (const row of library.table) console.log(row);
  console.log("reference coverage (lines covered / relevant; reported, not gated):");
  for (const row of reference.table) console.log(row);
  for (const t of failedTests) {
    console.log(
      `FAIL ${t.location?.file ?? ""} ${t.package ?? ""}.${t.name ?? ""}${t.error ? ` error: ${JSON.stringify(t.error)}` : ""}`,
    );
  }
  const referenceRun = results.filter((r) => isReference(r.location?.file ?? "")).length;
  console.log(
    `opa test: ${passed} passed, ${failed} failed (${results.length - referenceRun} library, ${referenceRun} reference test cases); coverage ${coverage} % (library), ${reference.coverage} % (reference), ${report.coverage?.toFixed(1) ?? "?"} % (opa, incl. tests); minimum ${MIN_COVERAGE} % (library)`,
  );

  if (resultFile)
    writeFileSync(
      resultFile,
      `${JSON.stringify({ passed, failed, coverage, reference_coverage: reference.coverage })}\n`,
    );

  if (run.code !== 0 && failed === 0)
    throw new BuildFailure(`opa test exited ${run.code}:\n${run.stderr}`);
  if (failed > 0) throw new BuildFailure(`${failed} opa test case(s) failed`);
  if (coverage < MIN_COVERAGE)
    throw new BuildFailure(`coverage ${coverage} % is below ${MIN_COVERAGE} %`);
}

async function main(): Promise<void> {
  const args = new Set(process.argv.slice(2));
  if (args.has("--check")) await commandCheck();
  else if (args.has("--test")) await commandTest();
  else await commandBuild();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.exitCode = 1;
});
