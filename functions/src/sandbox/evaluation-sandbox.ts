/**
 * Evaluates compiled tenant policies (wasm) off the main thread, for DryRunPolicy: a
 * tenant's inline Rego can be made to loop or allocate for minutes, and the wasm runs
 * synchronously, so on the main thread it would stall every request of every tenant.
 *
 * Each evaluation runs in a `node:worker_threads` Worker from a small pool (default 2
 * workers, started on demand, kept while idle and `unref`ed so they never hold the
 * process open) with:
 * - a wall-clock deadline (default 2 s) counted from when the worker takes the job: at
 *   the deadline the worker is terminated (and replaced on the next call);
 * - V8 heap limits (`resourceLimits`, default 128 MB old generation);
 * - a cap on the wasm linear memory (default 2048 pages = 128 MiB), which the heap
 *   limits do not cover (opa-wasm's WebAssembly.Memory is allocated outside the heap).
 * Calls beyond the pool wait in a bounded queue (default 16); a full queue is
 * RateLimited.
 *
 * The worker is `dry-run-worker.ts` beside this file. From TypeScript sources (vitest,
 * `tsx functions/src/server.ts`) it is started through tsx's loader; from a bundle the
 * worker must be its own bundled file, `dry-run-worker.mjs` beside the bundle that
 * contains this module (or pass `workerUrl`), e.g.
 * `esbuild functions/src/sandbox/dry-run-worker.ts --bundle --platform=node --format=esm --target=node22 --outfile=…/dry-run-worker.mjs`.
 *
 * @example
 * const sandbox = createEvaluationSandbox();
 * const result = await sandbox.evaluate({ wasm, meta, context, now: new Date() });
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { PolicyContext } from "../../../core/policy/tenant-config.js";
import type { PublishedPolicy } from "../../../core/policy-bundle/published-policy.js";
import type { EvaluationResult } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { EvaluationJob, EvaluationReply } from "./protocol.js";

export const DEFAULT_EVALUATION_TIMEOUT_MS = 2_000;
export const DEFAULT_MAX_OLD_GENERATION_MB = 128;
/** 64 KiB pages: 128 MiB. */
export const DEFAULT_MAX_MEMORY_PAGES = 2_048;
const DEFAULT_MAX_WORKERS = 2;
const DEFAULT_MAX_QUEUED = 16;
/** A worker that has not loaded its modules by then is broken (not the tenant's fault). */
const STARTUP_TIMEOUT_MS = 30_000;

export interface EvaluationSandboxOptions {
  /** Wall-clock limit of one evaluation (load + evaluate), in ms. Default 2000. */
  timeoutMs?: number;
  /** The worker's V8 old-generation limit, in MB. Default 128. */
  maxOldGenerationSizeMb?: number;
  /** Cap of the policy's wasm memory, in 64 KiB pages. Default 2048 (128 MiB). */
  maxMemoryPages?: number;
  /** Workers at most (each runs one evaluation at a time). Default 2. */
  maxWorkers?: number;
  /** Evaluations waiting for a worker at most; more are RateLimited. Default 16. */
  maxQueued?: number;
  /** The worker script; default: see the module comment. */
  workerUrl?: URL;
}

export interface SandboxJob {
  wasm: Uint8Array;
  meta: PublishedPolicy;
  context: PolicyContext;
  now: Date;
}

/** The policy ran over its time or its memory; the worker was stopped. */
export class SandboxLimitError extends Error {
  override name = "SandboxLimitError";
  constructor(
    readonly limit: "time" | "memory",
    /** The limit in words: "2 s", "128 MiB". */
    readonly amount: string,
    message: string,
  ) {
    super(message);
  }
}

/** The policy's evaluation threw (an OPA runtime error, a malformed answer). */
export class SandboxEvaluationError extends Error {
  override name = "SandboxEvaluationError";
}

export interface EvaluationSandbox {
  /** Throws SandboxLimitError, SandboxEvaluationError, or FulcrumError (RateLimited, Internal). */
  evaluate(job: SandboxJob): Promise<EvaluationResult>;
  /** Terminates every worker; pending evaluations fail. */
  close(): Promise<void>;
  /** Workers alive now (for tests). */
  readonly size: number;
}

interface Pending {
  resolve(result: EvaluationResult): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  pending: Pending | undefined;
  dead: boolean;
}

/** The worker script and how to start it (tsx's loader for TypeScript sources). */
export function defaultWorker(): { url: URL; execArgv: string[] | undefined } {
  const here = import.meta.url;
  if (here.endsWith(".ts")) {
    const url = new URL("./dry-run-worker.ts", here);
    // Under tsx (the local stack) the worker inherits its loader; elsewhere (vitest) add it.
    const hasTsx = process.execArgv.some((a) => a.includes("tsx"));
    const loader = pathToFileURL(createRequire(here).resolve("tsx")).href;
    return { url, execArgv: hasTsx ? undefined : [...process.execArgv, "--import", loader] };
  }
  for (const name of ["./dry-run-worker.mjs", "./dry-run-worker.js"]) {
    const url = new URL(name, here);
    if (existsSync(fileURLToPath(url))) return { url, execArgv: undefined };
  }
  return { url: new URL("./dry-run-worker.mjs", here), execArgv: undefined };
}

export function createEvaluationSandbox(options: EvaluationSandboxOptions = {}): EvaluationSandbox {
  const timeoutMs = options.timeoutMs ?? DEFAULT_EVALUATION_TIMEOUT_MS;
  const maxMemoryPages = options.maxMemoryPages ?? DEFAULT_MAX_MEMORY_PAGES;
  const maxWorkers = options.maxWorkers ?? DEFAULT_MAX_WORKERS;
  const maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  const script = options.workerUrl
    ? { url: options.workerUrl, execArgv: undefined }
    : defaultWorker();
  const seconds = `${timeoutMs / 1000} s`;
  const mib = `${Math.round((maxMemoryPages * 64) / 1024)} MiB`;
  const resourceLimits = {
    maxOldGenerationSizeMb: options.maxOldGenerationSizeMb ?? DEFAULT_MAX_OLD_GENERATION_MB,
    maxYoungGenerationSizeMb: 16,
  };

  const slots = new Set<Slot>();
  const idle: Slot[] = [];
  const waiting: Array<{ take(slot: Slot): void; fail(error: Error): void }> = [];
  let nextId = 1;
  let closed = false;

  function kill(slot: Slot, error: Error): void {
    if (slot.dead) return;
    slot.dead = true;
    slots.delete(slot);
    const at = idle.indexOf(slot);
    if (at >= 0) idle.splice(at, 1);
    const pending = slot.pending;
    slot.pending = undefined;
    pending?.reject(error);
    void slot.worker.terminate();
    // A waiter may now have room for a fresh worker.
    const next = waiting.shift();
    if (next) next.take(spawn());
  }

  function spawn(): Slot {
    const worker = new Worker(script.url, {
      resourceLimits,
      ...(script.execArgv ? { execArgv: script.execArgv } : {}),
      stdout: false,
      stderr: false,
    });
    worker.unref();
    let started: () => void = () => {};
    let failedToStart: (error: Error) => void = () => {};
    const slot: Slot = {
      worker,
      ready: new Promise<void>((resolve, reject) => {
        started = resolve;
        failedToStart = reject;
      }),
      pending: undefined,
      dead: false,
    };
    // Observed by whoever takes the slot; never an unhandled rejection.
    slot.ready.catch(() => {});
    const startup = setTimeout(() => {
      const error = new FulcrumError("Internal", "the policy evaluation worker did not start");
      failedToStart(error);
      kill(slot, error);
    }, STARTUP_TIMEOUT_MS);
    startup.unref();
    worker.on("message", (reply: EvaluationReply) => {
      if ("ready" in reply) {
        clearTimeout(startup);
        started();
        return;
      }
      const pending = slot.pending;
      slot.pending = undefined;
      if (!pending) return;
      if (reply.ok) pending.resolve(reply.result);
      else if (reply.outOfMemory)
        pending.reject(new SandboxLimitError("memory", mib, reply.message));
      else pending.reject(new SandboxEvaluationError(reply.message));
    });
    worker.on("error", (error: Error & { code?: string }) => {
      clearTimeout(startup);
      const outOfMemory = error.code === "ERR_WORKER_OUT_OF_MEMORY";
      const failure = outOfMemory
        ? new SandboxLimitError(
            "memory",
            `${resourceLimits.maxOldGenerationSizeMb} MB`,
            error.message,
          )
        : new FulcrumError("Internal", `policy evaluation worker failed: ${error.message}`, {
            cause: error,
          });
      failedToStart(failure);
      kill(slot, failure);
    });
    worker.on("exit", (code) => {
      clearTimeout(startup);
      const failure = new FulcrumError("Internal", `policy evaluation worker exited (${code})`);
      failedToStart(failure);
      kill(slot, failure);
    });
    slots.add(slot);
    return slot;
  }

  function acquire(): Promise<Slot> {
    if (closed) return Promise.reject(new FulcrumError("Unavailable", "shutting down"));
    const free = idle.pop();
    if (free) return Promise.resolve(free);
    if (slots.size < maxWorkers) return Promise.resolve(spawn());
    if (waiting.length >= maxQueued) {
      return Promise.reject(
        new FulcrumError("RateLimited", "too many policy dry runs in progress; retry shortly"),
      );
    }
    return new Promise((take, fail) => waiting.push({ take, fail }));
  }

  function release(slot: Slot): void {
    if (slot.dead) return;
    const next = waiting.shift();
    if (next) next.take(slot);
    else idle.push(slot);
  }

  async function run(slot: Slot, job: SandboxJob): Promise<EvaluationResult> {
    await slot.ready;
    if (slot.dead) throw new FulcrumError("Internal", "policy evaluation worker exited");
    const message: EvaluationJob = {
      id: nextId++,
      wasm: job.wasm,
      meta: job.meta,
      context: job.context,
      nowMs: job.now.getTime(),
      maxMemoryPages,
    };
    return await new Promise<EvaluationResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        kill(
          slot,
          new SandboxLimitError("time", seconds, `the policy ran for more than ${timeoutMs} ms`),
        );
      }, timeoutMs);
      slot.pending = {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      slot.worker.ref();
      slot.worker.postMessage(message);
    }).finally(() => slot.worker.unref());
  }

  return {
    async evaluate(job) {
      const slot = await acquire();
      try {
        return await run(slot, job);
      } finally {
        release(slot);
      }
    },
    async close() {
      closed = true;
      for (const w of waiting.splice(0)) w.fail(new FulcrumError("Unavailable", "shutting down"));
      const all = [...slots];
      for (const slot of all) kill(slot, new FulcrumError("Unavailable", "shutting down"));
      await Promise.all(all.map((s) => s.worker.terminate()));
    },
    get size() {
      return slots.size;
    },
  };
}
