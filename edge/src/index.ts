import { Code, ConnectError } from "@connectrpc/connect";
import type { Hono } from "hono";
import { wireError } from "../../core/connect/wire-errors.js";
import evaluatorSource from "../build/policy-evaluator.bundle";
import { createEdgeApp } from "./app.js";
import { BadEnvironmentError, type Env, parseEdgeConfig } from "./config.js";
import { createEdgeDeps } from "./deps.js";
import { LoaderEvaluator } from "./evaluation/loader-evaluator.js";

/**
 * Worker entry. The environment is parsed and the app built once per isolate.
 * Tenants' compiled policies run in isolates started by the Worker Loader from
 * the bundled evaluator source (a Worker cannot compile wasm from bytes itself).
 */
export { AuditBuffer } from "./audit/audit-buffer.js";

let app: Hono | undefined;
let badEnvironment: string | undefined;

function appFor(env: Env): Hono | undefined {
  if (app || badEnvironment) return app;
  try {
    const config = parseEdgeConfig(env);
    const evaluator = new LoaderEvaluator(config.loader, evaluatorSource, {
      cpuMs: config.evaluationCpuMs,
    });
    app = createEdgeApp(config, createEdgeDeps(config, evaluator));
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
