/// <reference path="./.sst/platform/config.d.ts" />

/**
 * Deploys Fulcrum per stage (`sst deploy --stage <name>`). This issue declares
 * the edge Worker; the management functions, the audit workers and the data
 * stores join it as their issues land. Local runs do not use SST: they use
 * `npm run stack` (wrangler dev and the project's own service scripts).
 *
 * The Worker imports the governance bundle (policies/build/governance.wasm) as
 * a compiled module, the same way wrangler.toml's CompiledWasm rule does.
 */
export default $config({
  app(input) {
    return {
      name: "fulcrum",
      home: "cloudflare",
      removal: input?.stage === "production" ? "retain" : "remove",
      protect: input?.stage === "production",
      providers: { cloudflare: "6.10.0" },
    };
  },
  async run() {
    const edge = new sst.cloudflare.Worker("Edge", {
      handler: "edge/src/index.ts",
      url: true,
      build: {
        esbuild: { loader: { ".wasm": "copy" } },
      },
      environment: {
        ENVIRONMENT: $app.stage,
      },
      transform: {
        worker: (args) => {
          args.compatibilityDate = "2026-11-01";
          args.observability = { enabled: true };
        },
      },
    });
    return { edgeUrl: edge.url };
  },
});
