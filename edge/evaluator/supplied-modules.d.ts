// The modules the host supplies to the evaluator's Worker Loader isolate at run time
// (edge/src/evaluation/loader-evaluator.ts builds them; the esbuild bundle keeps them
// external).

declare module "bundle.json" {
  const bundle: import("./main.js").EvaluatorBundle;
  export default bundle;
}

declare module "wasm.js" {
  /** The pre-compiled policy modules by `wasm_sha256`. */
  const modules: Readonly<Record<string, WebAssembly.Module>>;
  export default modules;
}
