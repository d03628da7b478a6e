/**
 * `build-policies.ts --test`: runs `opa test` over policies/ (library and reference),
 * reports coverage of each and gates the library's at MIN_COVERAGE. `FULCRUM_RESULT_FILE`
 * (if set) receives {"passed","failed","coverage","reference_coverage"}, or an `error`
 * when no test could run.
 */
import { writeFileSync } from "node:fs";
import { runOpa } from "../opa.js";
import { type CoverageReport, coverageOf } from "./coverage.js";
import { BuildFailure, isReference } from "./paths.js";

const MIN_COVERAGE = 90;

interface OpaTestResult {
  location?: { file?: string };
  package?: string;
  name?: string;
  fail?: boolean;
  error?: unknown;
  skip?: boolean;
  duration?: number;
}

export async function commandTest(): Promise<void> {
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
