/**
 * A small closed-loop HTTP load generator for the benchmarks in bench/.
 *
 * `c` workers share one request counter: each takes the next index, sends
 * that request, waits for the whole response body, and only then takes the
 * next one. So at most `c` requests are in flight, and the offered load is
 * whatever the server sustains (closed loop: no coordinated-omission
 * correction, latencies are service times as a client with `c` outstanding
 * calls sees them).
 *
 * Transport: undici's `Pool` (keep-alive, one connection per worker, no
 * pipelining): the least client overhead Node offers.
 */
import { performance } from "node:perf_hooks";
import { Pool } from "undici";

export interface HttpReply {
  status: number;
  body: string;
}

export interface HttpClient {
  /** "undici Pool" or "node fetch": printed in benchmark headers. */
  readonly kind: string;
  post(path: string, body: string, headers: Record<string, string>): Promise<HttpReply>;
  close(): Promise<void>;
}

/** A keep-alive client for `origin` with up to `connections` sockets, no pipelining. */
export async function createHttpClient(origin: string, connections: number): Promise<HttpClient> {
  const pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
  return {
    kind: "undici Pool",
    async post(path, body, headers) {
      const response = await pool.request({ path, method: "POST", headers, body });
      return { status: response.statusCode, body: await response.body.text() };
    },
    close: () => pool.close(),
  };
}

/** One request of a load run; `check` returns an error description or undefined. */
export interface LoadRequest {
  path: string;
  body: string;
  headers: Record<string, string>;
  check(reply: HttpReply): string | undefined;
}

export interface LoadResult {
  requests: number;
  concurrency: number;
  /** Per-request latency in ms (request start → whole body read), in completion order. */
  latenciesMs: Float64Array;
  wallMs: number;
  errors: number;
  /** The first few error descriptions, for the report. */
  errorSamples: string[];
}

/**
 * Sends `total` requests with `concurrency` closed-loop workers, cycling
 * through `requests` round-robin (request i is `requests[i % length]`).
 */
export async function closedLoop(
  client: HttpClient,
  requests: readonly LoadRequest[],
  total: number,
  concurrency: number,
): Promise<LoadResult> {
  if (requests.length === 0) throw new Error("closedLoop: no requests to send");
  const latenciesMs = new Float64Array(total);
  const errorSamples: string[] = [];
  let next = 0;
  let done = 0;
  let errors = 0;
  const fail = (reason: string) => {
    errors++;
    if (errorSamples.length < 5) errorSamples.push(reason);
  };

  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      const request = requests[i % requests.length] as LoadRequest;
      const started = performance.now();
      let reply: HttpReply | undefined;
      try {
        reply = await client.post(request.path, request.body, request.headers);
      } catch (error) {
        fail(`transport: ${(error as Error).message}`);
      }
      latenciesMs[done++] = performance.now() - started;
      if (reply) {
        const problem = check(request, reply);
        if (problem) fail(problem);
      }
    }
  };

  const started = performance.now();
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, total)) }, worker));
  const wallMs = performance.now() - started;
  return { requests: total, concurrency, latenciesMs, wallMs, errors, errorSamples };
}

function check(request: LoadRequest, reply: HttpReply): string | undefined {
  if (reply.status < 200 || reply.status > 299) {
    return `HTTP ${reply.status}: ${reply.body.slice(0, 200)}`;
  }
  try {
    return request.check(reply);
  } catch (error) {
    return `check failed: ${(error as Error).message}`;
  }
}

export interface LatencySummary {
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  reqPerSec: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function summarize(result: LoadResult): LatencySummary {
  const sorted = Float64Array.from(result.latenciesMs).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    meanMs: sorted.length ? sum / sorted.length : Number.NaN,
    maxMs: sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN,
    reqPerSec: result.wallMs > 0 ? (result.requests / result.wallMs) * 1000 : Number.NaN,
  };
}
