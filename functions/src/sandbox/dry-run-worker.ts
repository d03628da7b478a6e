/**
 * The evaluation sandbox's worker (functions/src/sandbox/evaluation-sandbox.ts): loads
 * a compiled tenant policy with its wasm memory capped and evaluates it for one
 * context, off the main thread. The main thread terminates this worker when it runs
 * over its deadline; V8's heap is bounded by the Worker's `resourceLimits`.
 *
 * Deployed as its own bundled file (see the sandbox's module comment).
 */
import { parentPort } from "node:worker_threads";
import {
  evaluateCompiledPolicy,
  loadCompiledPolicy,
} from "../../../core/policy-bundle/compiled-policy.js";
import type { EvaluationJob, EvaluationReply } from "./protocol.js";

/** What opa-wasm / V8 say when the capped linear memory cannot grow. */
const OUT_OF_MEMORY = /opa_malloc|out of memory|Maximum memory size|Memory\.grow/i;

const port = parentPort;
if (!port) throw new Error("dry-run-worker must run as a worker thread");

port.on("message", async (job: EvaluationJob) => {
  let reply: EvaluationReply;
  try {
    const instance = await loadCompiledPolicy(job.wasm, { maxMemoryPages: job.maxMemoryPages });
    const result = evaluateCompiledPolicy(instance, job.meta, job.context, new Date(job.nowMs));
    reply = { id: job.id, ok: true, result };
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    reply = { id: job.id, ok: false, outOfMemory: OUT_OF_MEMORY.test(message), message };
  }
  port.postMessage(reply);
});

// Every module is loaded: the sandbox starts its job deadlines from here.
port.postMessage({ ready: true });
