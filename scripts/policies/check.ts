/**
 * `build-policies.ts --check`: opa fmt, opa check --strict (library against the wasm
 * capabilities, library and reference with their tests) and drift of the committed
 * capabilities.json and build outputs. Never writes the work tree.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runOpa } from "../opa.js";
import { build } from "./build.js";
import { generateCapabilities } from "./capabilities.js";
import {
  BuildFailure,
  CAPABILITIES_FILE,
  libraryRego,
  MANIFEST_FILE,
  readOrEmpty,
  referenceRego,
  rel,
  sha256,
  WASM_FILE,
} from "./paths.js";

export async function commandCheck(): Promise<void> {
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
