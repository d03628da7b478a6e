/**
 * Line coverage from `opa test --coverage --format json`, per file and in total, for a
 * chosen subset of the files (the library, or the reference). Test modules are excluded:
 * they are trivially covered.
 */
import { relative } from "node:path";

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

export interface CoverageReport {
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
export function coverageOf(
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
