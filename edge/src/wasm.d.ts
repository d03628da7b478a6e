// Wrangler (and the workerd test pool) import `.wasm` files as compiled modules.
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}

// Wrangler (wrangler.toml `[[rules]]` Text) imports `.bundle` files as strings: the
// policy-bundle evaluator the Worker Loader runs (edge/build/policy-evaluator.bundle).
declare module "*.bundle" {
  const source: string;
  export default source;
}

// Wrangler's default Data rule imports `.bin` files as bytes (the evaluator's test
// fixtures: compiled policies as the edge reads them from Redis).
declare module "*.wasm.bin" {
  const bytes: ArrayBuffer;
  export default bytes;
}
