/** Shared by the compiler's tests: one compiler over the repository's OPA, and wasm evaluation. */
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import type { VerdictSets } from "../../../core/policy-bundle/published-policy.js";
import { resolveOpa } from "../../../scripts/opa.js";
import type { CompiledPolicy, PolicyCompiler } from "./index.js";
import { createOpaPolicyCompiler } from "./opa-compiler.js";

let compiler: PolicyCompiler | undefined;

export async function testCompiler(): Promise<PolicyCompiler> {
  compiler ??= createOpaPolicyCompiler({ opaBin: await resolveOpa() });
  return compiler;
}

/** Evaluates a compiled policy for each input: the entrypoint's value. */
export async function evaluator(compiled: CompiledPolicy) {
  const policy = await loadPolicy(compiled.wasm);
  return (input: Record<string, unknown>): VerdictSets => {
    const [first] = policy.evaluate(input, compiled.entrypoint) as [{ result: VerdictSets }];
    return first.result;
  };
}

/** The rule ids in every set of the answer, sorted. */
export const firedIds = (sets: VerdictSets): string[] =>
  [...sets.deny, ...sets.require_approval, ...sets.warn, ...sets.audit]
    .map((i) => i.rule_id ?? i.message)
    .sort();
