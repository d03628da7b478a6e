/**
 * Where the Rego policies and their build outputs live, and which .rego files belong to
 * the library (built to wasm) versus the reference specification (never built).
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { repoRoot } from "../opa.js";

export const ENTRYPOINT = "fulcrum/governance/decision";
export const POLICIES_DIR = join(repoRoot, "policies");
export const CAPABILITIES_FILE = join(POLICIES_DIR, "capabilities.json");
export const BUILD_DIR = join(POLICIES_DIR, "build");
// The reference specification: `opa fmt`/`opa check --strict`/`opa test` only, never built.
export const REFERENCE_DIR = join(POLICIES_DIR, "reference");
export const WASM_FILE = join(BUILD_DIR, "governance.wasm");
export const MANIFEST_FILE = join(BUILD_DIR, "manifest.json");

/** A failure the CLI reports as `BuildFailure: <message>` (exit code 1). */
export class BuildFailure extends Error {
  override name = "BuildFailure";
}

export const sha256 = (bytes: Uint8Array): string =>
  createHash("sha256").update(bytes).digest("hex");

/** The file's bytes, or none when it does not exist (a missing output counts as stale). */
export function readOrEmpty(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    return Buffer.alloc(0);
  }
}

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

/** Paths relative to the repository, as opa is run from there. */
export const rel = (paths: string[]): string[] => paths.map((p) => relative(repoRoot, p));

/** The optimised library (what is built to wasm): everything but the reference. */
export const libraryRego = (includeTests: boolean): string[] =>
  listRego(POLICIES_DIR, includeTests, REFERENCE_DIR);
export const referenceRego = (includeTests: boolean): string[] =>
  listRego(REFERENCE_DIR, includeTests);
/** Whether a path reported by opa (relative to the repository, or absolute) is the reference's. */
export const isReference = (file: string): boolean =>
  !relative(REFERENCE_DIR, resolve(repoRoot, file)).startsWith("..");
