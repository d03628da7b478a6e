import { Code, ConnectError } from "@connectrpc/connect";
import type { Hono } from "hono";
import { wireError } from "../../core/connect/wire-errors.js";
import policyModule from "../../policies/build/governance.wasm";
import policyManifest from "../../policies/build/manifest.json";
import { createEdgeApp } from "./app.js";
import { BadEnvironmentError, type Env, parseEdgeConfig } from "./config.js";

/**
 * Worker entry. The environment is parsed and the app built once per isolate;
 * the wasm module is imported pre-compiled (Workers cannot compile wasm from
 * bytes at run time) and instantiated per tenant by the policy engine.
 */
let app: Hono | undefined;
let badEnvironment: string | undefined;

function appFor(env: Env): Hono | undefined {
  if (app || badEnvironment) return app;
  try {
    app = createEdgeApp({
      config: parseEdgeConfig(env),
      policyModule,
      policyBundleSha256: policyManifest.sha256,
    });
  } catch (error) {
    if (!(error instanceof BadEnvironmentError)) throw error;
    badEnvironment = error.message;
    console.log(
      JSON.stringify({ level: "error", message: "BAD_ENVIRONMENT", reason: error.message }),
    );
  }
  return app;
}

export default {
  fetch(request, env, ctx) {
    const edge = appFor(env);
    if (!edge) {
      const message = `BAD_ENVIRONMENT: ${badEnvironment}`;
      return wireError("connect", new ConnectError(message, Code.Unavailable));
    }
    return edge.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
