/**
 * Compiles the Rego fixtures of the Worker Loader evaluator's workerd test
 * (edge/test/fixtures/evaluator/*.rego) with the policy compiler the management API
 * uses, writing each policy's wasm next to its source as `<name>.wasm.bin` (imported as
 * bytes: wrangler's default Data rule; `*.wasm` would arrive pre-compiled) and
 * `wasm-sha256.json` (name → hex SHA-256 of the wasm).
 *
 *   tsx scripts/build-evaluator-fixtures.ts
 *
 * Rerun after changing a fixture or the compiler (its wrapper module, OPA version).
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createOpaPolicyCompiler } from "../functions/src/policy-compiler/opa-compiler.js";
import { resolveOpa } from "./opa.js";

const dir = resolve(fileURLToPath(new URL("../edge/test/fixtures/evaluator", import.meta.url)));

async function main(): Promise<void> {
  const compiler = createOpaPolicyCompiler({ opaBin: await resolveOpa() });
  const shas: Record<string, string> = {};
  for (const file of (await readdir(dir)).filter((f) => f.endsWith(".rego")).sort()) {
    const name = basename(file, ".rego");
    const regoSource = await readFile(join(dir, file), "utf8");
    const { wasm, wasmSha256 } = await compiler.compile({ kind: "rego", regoSource });
    await writeFile(join(dir, `${name}.wasm.bin`), wasm);
    shas[name] = wasmSha256;
    console.log(`${name}: ${wasm.length} bytes, sha256 ${wasmSha256}`);
  }
  await writeFile(join(dir, "wasm-sha256.json"), `${JSON.stringify(shas, null, 2)}\n`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
