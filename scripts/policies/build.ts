/**
 * Compiles the policy library to wasm (`opa build -t wasm`) and writes the committed
 * outputs: policies/capabilities.json, policies/build/governance.wasm and its manifest.
 * The build is deterministic, so `--check` can rebuild and compare.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { gunzipSync } from "node:zlib";
import { extractFromTar } from "../../functions/src/policy-compiler/bundle-tar.js";
import { repoRoot, runOpa } from "../opa.js";
import { generateCapabilities } from "./capabilities.js";
import {
  BUILD_DIR,
  BuildFailure,
  CAPABILITIES_FILE,
  ENTRYPOINT,
  libraryRego,
  MANIFEST_FILE,
  rel,
  sha256,
  WASM_FILE,
} from "./paths.js";

async function opaVersion(): Promise<string> {
  const { stdout } = await runOpa(["version"]);
  const match = /^Version:\s*(\S+)/m.exec(stdout);
  if (!match?.[1]) throw new BuildFailure(`cannot parse \`opa version\` output:\n${stdout}`);
  return match[1];
}

export interface BuildOutput {
  wasm: Uint8Array;
  manifest: string;
}

/** Compiles the non-test modules to wasm with the given capabilities file. */
export async function build(capabilitiesPath: string): Promise<BuildOutput> {
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

/** `build-policies.ts` (no flag): regenerate capabilities.json and policies/build/. */
export async function commandBuild(): Promise<void> {
  writeFileSync(CAPABILITIES_FILE, await generateCapabilities());
  const out = await build(CAPABILITIES_FILE);
  mkdirSync(BUILD_DIR, { recursive: true });
  writeFileSync(WASM_FILE, out.wasm);
  writeFileSync(MANIFEST_FILE, out.manifest);
  console.log(
    `built ${relative(repoRoot, WASM_FILE)} (${out.wasm.length} bytes, sha256 ${sha256(out.wasm)})`,
  );
}
