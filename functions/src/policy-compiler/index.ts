/**
 * The policy compiler of the management API: a tenant's policy version, as Rego
 * or as structured rules, compiled with OPA to the wasm the edge evaluates
 * (contract: docs/policy-authoring.md).
 *
 * @example
 * const compiler = createOpaPolicyCompiler({ opaBin: await resolveOpa() });
 * const { wasm, wasmSha256 } = await compiler.compile({ kind: "rego", regoSource });
 */
import type { Rule } from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";

export type PolicySource = { kind: "rego"; regoSource: string } | { kind: "rules"; rules: Rule[] };

export interface CompiledPolicy {
  /** The tenant module as stored: as written, or generated from the rules. */
  regoSource: string;
  wasm: Uint8Array;
  /** Hex SHA-256 of `wasm`. */
  wasmSha256: string;
  /** The wasm's one entrypoint (`fulcrum/entry/result`). */
  entrypoint: string;
}

export interface PolicyCompiler {
  /**
   * Throws FulcrumError "Invalid" (a PolicyCompileError when OPA rejects the module, or
   * when OPA runs over the deadline), or "RateLimited" when too many compilations are
   * already running or waiting.
   */
  compile(source: PolicySource): Promise<CompiledPolicy>;
}

export { type CompileIssue, PolicyCompileError } from "./compile-errors.js";
export { ENTRY_MODULE, POLICY_ENTRYPOINT, TENANT_PACKAGE } from "./entry-module.js";
export {
  createOpaPolicyCompiler,
  MAX_POLICY_BYTES,
  type OpaPolicyCompilerOptions,
} from "./opa-compiler.js";
export { rulesToRego } from "./rules-to-rego.js";
