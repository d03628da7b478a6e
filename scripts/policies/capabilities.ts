/**
 * Generates policies/capabilities.json: the builtins the opa-wasm runtime implements plus
 * the language features of the OPA in use, so `opa check`/`opa build` reject any builtin
 * the Worker could not evaluate.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot, runOpa } from "../opa.js";

const SDK_CAPABILITIES = join(
  repoRoot,
  "node_modules/@open-policy-agent/opa-wasm/capabilities.json",
);
// Listed by the opa-wasm SDK but implemented neither in the wasm runtime nor in its JS builtins.
const UNIMPLEMENTED_BUILTINS = new Set(["time.diff", "rand.intn"]);
// Builtins whose declaration is taken from the running OPA instead of the SDK's older file.
// glob.match: the SDK declares `delimiters` as array[string] only, but the wasm runtime
// accepts null (= no delimiters; verified against `opa eval`), and null is what the
// policies need: with [] OPA defaults to ["."], so "gpt-*" would not match "gpt-4.1".
const DECLARATION_FROM_OPA = new Set(["glob.match"]);

/** Builtins the wasm runtime implements + the language features of the OPA in use. */
export async function generateCapabilities(): Promise<string> {
  const sdk = JSON.parse(readFileSync(SDK_CAPABILITIES, "utf8")) as {
    builtins: { name: string }[];
  };
  const current = JSON.parse((await runOpa(["capabilities", "--current"])).stdout) as {
    builtins: { name: string }[];
    features?: string[];
    wasm_abi_versions?: unknown[];
  };
  const fromOpa = new Map(
    current.builtins.filter((b) => DECLARATION_FROM_OPA.has(b.name)).map((b) => [b.name, b]),
  );
  const builtins = sdk.builtins
    .filter((b) => !UNIMPLEMENTED_BUILTINS.has(b.name))
    .map((b) => fromOpa.get(b.name) ?? b)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const caps = {
    builtins,
    features: [...(current.features ?? [])].sort(),
    wasm_abi_versions: current.wasm_abi_versions ?? [],
  };
  return `${JSON.stringify(caps, null, 2)}\n`;
}
