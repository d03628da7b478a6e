/**
 * Compiles a tenant policy (Rego, or structured rules turned into Rego) to
 * wasm with OPA: size and package checks, `opa check --strict` against the
 * wasm runtime's capabilities (diagnostics positioned in the tenant's source),
 * then `opa build -t wasm -e fulcrum/entry/result`, in a fresh temporary
 * directory, with one deadline for both OPA runs. Builds are deterministic:
 * the same source gives the same wasm bytes.
 *
 * At most `maxConcurrent` compilations (default 2, each one OPA process at a time) run
 * at once per compiler; up to `maxQueued` (default 16) more wait (their deadline starts
 * when they run), and beyond that a compile is RateLimited. A compilation that runs
 * over its deadline is Invalid and not retryable: the same source would run over again.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { extractFromTar } from "./bundle-tar.js";
import {
  type CompileIssue,
  PolicyCompileError,
  parseOpaCheckErrors,
  parseOpaTextErrors,
} from "./compile-errors.js";
import { createConcurrencyLimit } from "./concurrency-limit.js";
import {
  ENTRY_FILE,
  ENTRY_MODULE,
  POLICY_ENTRYPOINT,
  TENANT_FILE,
  TENANT_PACKAGE,
} from "./entry-module.js";
import type { CompiledPolicy, PolicyCompiler, PolicySource } from "./index.js";
import { rulesToRego } from "./rules-to-rego.js";
import { ProcessTimeoutError, runProcess } from "./run-process.js";

/** Largest tenant module (as written or generated), in UTF-8 bytes. */
export const MAX_POLICY_BYTES = 262_144;
export const DEFAULT_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_CONCURRENT = 2;
export const DEFAULT_MAX_QUEUED = 16;
/** OPA stops after this many errors (and adds "error limit reached", which is dropped). */
const MAX_REPORTED_ISSUES = 100;
export const DEFAULT_CAPABILITIES_PATH = fileURLToPath(
  new URL("../../../policies/capabilities.json", import.meta.url),
);

export interface OpaPolicyCompilerOptions {
  /** The OPA binary (scripts/opa.ts `resolveOpa()` in development). */
  opaBin: string;
  /** Default: policies/capabilities.json (the wasm runtime's builtins). */
  capabilitiesPath?: string;
  /** For the whole compilation (check + build). Default 15 s. */
  timeoutMs?: number;
  /** Compilations running at once (OPA processes). Default 2. */
  maxConcurrent?: number;
  /** Compilations waiting for a turn; more are refused (RateLimited). Default 16. */
  maxQueued?: number;
}

/** "15 s", "1 ms": the deadline as the caller reads it. */
const formatDuration = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

export const sha256Hex = (bytes: Uint8Array): string =>
  createHash("sha256").update(bytes).digest("hex");

/** Where the package clause is and what it names (comments and blank lines may precede it). */
function packageClause(source: string): { name: string; line: number } | undefined {
  const lines = source.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const text = (lines[i] as string).trim();
    if (text === "" || text.startsWith("#")) continue;
    const m = /^package\s+([^\s#]+)\s*(#.*)?$/.exec(text);
    return m ? { name: m[1] as string, line: i + 1 } : undefined;
  }
  return undefined;
}

export function checkPackage(source: string, field: string): void {
  const clause = packageClause(source);
  if (clause?.name === TENANT_PACKAGE) return;
  const issue: CompileIssue = clause
    ? {
        line: clause.line,
        column: 1,
        code: "fulcrum_package_error",
        message: `the module must declare package ${TENANT_PACKAGE}, not ${clause.name}`,
      }
    : {
        line: 0,
        column: 0,
        code: "fulcrum_package_error",
        message: `the module must start with \`package ${TENANT_PACKAGE}\``,
      };
  throw new PolicyCompileError(field, [issue]);
}

export function checkSize(source: string, field: string): void {
  const bytes = new TextEncoder().encode(source).length;
  if (bytes > MAX_POLICY_BYTES) {
    throw new FulcrumError(
      "Invalid",
      `${field}: policy is larger than 256 KiB (${bytes} bytes${field === "rules" ? " of generated Rego" : ""})`,
      { field },
    );
  }
}

export function createOpaPolicyCompiler(options: OpaPolicyCompilerOptions): PolicyCompiler {
  const capabilities = options.capabilitiesPath ?? DEFAULT_CAPABILITIES_PATH;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const limit = createConcurrencyLimit({
    maxConcurrent: options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT,
    maxQueued: options.maxQueued ?? DEFAULT_MAX_QUEUED,
    onFull: () =>
      new FulcrumError("RateLimited", "too many policy compilations in progress; retry shortly", {
        retry: true,
      }),
  });

  async function compileModule(regoSource: string, field: string): Promise<CompiledPolicy> {
    const deadline = Date.now() + timeoutMs;
    const dir = await mkdtemp(join(tmpdir(), "fulcrum-policy-"));
    const opa = (args: string[]) =>
      runProcess(options.opaBin, args, { cwd: dir, timeoutMs: deadline - Date.now() });
    try {
      await writeFile(join(dir, TENANT_FILE), regoSource);
      await writeFile(join(dir, ENTRY_FILE), ENTRY_MODULE);
      const caps = ["--capabilities", capabilities];
      const check = await opa([
        "check",
        "--strict",
        "--format",
        "json",
        "--max-errors",
        String(MAX_REPORTED_ISSUES),
        ...caps,
        TENANT_FILE,
        ENTRY_FILE,
      ]);
      if (check.code !== 0) {
        const issues = parseOpaCheckErrors(check.stderr) ?? parseOpaCheckErrors(check.stdout);
        if (!issues || issues.length === 0) {
          throw new FulcrumError("Internal", `opa check failed: ${check.stderr}${check.stdout}`);
        }
        throw new PolicyCompileError(field, issues);
      }
      const build = await opa([
        "build",
        "-t",
        "wasm",
        "-e",
        POLICY_ENTRYPOINT,
        ...caps,
        "-o",
        "bundle.tar.gz",
        TENANT_FILE,
        ENTRY_FILE,
      ]);
      if (build.code !== 0) {
        const issues = parseOpaTextErrors(`${build.stderr}\n${build.stdout}`);
        if (issues.length === 0) {
          throw new FulcrumError("Internal", `opa build failed: ${build.stderr}${build.stdout}`);
        }
        throw new PolicyCompileError(field, issues);
      }
      const bundle = gunzipSync(await readFile(join(dir, "bundle.tar.gz")));
      const wasm = extractFromTar(bundle, "policy.wasm");
      if (!wasm) throw new FulcrumError("Internal", "opa build produced no policy.wasm");
      const bytes = new Uint8Array(wasm);
      return {
        regoSource,
        wasm: bytes,
        wasmSha256: sha256Hex(bytes),
        entrypoint: POLICY_ENTRYPOINT,
      };
    } catch (error) {
      if (error instanceof ProcessTimeoutError) {
        throw new FulcrumError(
          "Invalid",
          `${field}: OPA did not finish compiling the policy within ${formatDuration(timeoutMs)}: simplify it`,
          { field, retry: false, cause: error },
        );
      }
      throw error;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  return {
    async compile(source: PolicySource): Promise<CompiledPolicy> {
      const [regoSource, field] =
        source.kind === "rego"
          ? [source.regoSource, "rego_source"]
          : [rulesToRego(source.rules), "rules"];
      // The cheap checks first: a module OPA would not get does not wait for a turn.
      checkSize(regoSource, field);
      checkPackage(regoSource, field);
      return limit.run(() => compileModule(regoSource, field));
    },
  };
}
