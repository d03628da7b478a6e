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
 *
 * The commands live in scripts/policies/ (build.ts, check.ts, test.ts).
 */
import { commandBuild } from "./policies/build.js";
import { commandCheck } from "./policies/check.js";
import { commandTest } from "./policies/test.js";

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
