/**
 * The edge Worker for bench:audit's decision-latency phase: `wrangler dev --local`
 * (scripts/lib/wrangler-dev.ts, as `npm run stack` and bench:edge's wrangler target
 * run it), with wrangler.toml's AUDIT_BUFFER Durable Object and NATS_WS_URL pointing at
 * this run's NATS, so every decision's audit event flows into the pipeline under test.
 * Requests and reply checks are bench:edge's (bench/edge/scenarios.ts).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../scripts/lib/ports.js";
import { startWranglerDev } from "../../scripts/lib/wrangler-dev.js";
import { childPids } from "../cpu-accounting.js";
import type { ControlPlane } from "../edge/control-plane.js";
import type { EdgeRedisRest } from "../edge/redis-rest.js";
import type { Resources } from "../edge/resources.js";
import { edgeRequest, SCENARIOS } from "../edge/scenarios.js";
import type { LoadRequest } from "../load.js";

export interface AuditEdge {
  name: string;
  origin: string;
  /** Root of wrangler's process tree (CPU accounting); NaN when unknown. */
  pid: number;
  /** bench:edge's round-robin decisions (ALLOW, DENY shell tool, DENY credentials). */
  requests: LoadRequest[];
}

export async function startAuditEdge(
  resources: Resources,
  plane: ControlPlane,
  rest: EdgeRedisRest,
  natsWsUrl: string,
): Promise<AuditEdge> {
  const dir = resources.tempDir("fulcrum-bench-audit-wrangler-");
  const envFile = join(dir, ".dev.vars");
  const vars: Record<string, string> = {
    UPSTASH_REDIS_REST_URL: rest.url,
    UPSTASH_REDIS_REST_TOKEN: rest.token,
    REDIS_KEY_NAMESPACE: plane.redisKeyNamespace,
    NATS_WS_URL: natsWsUrl,
  };
  const lines = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
  writeFileSync(envFile, `${lines.join("\n")}\n`, { mode: 0o600 });
  const before = childPids();
  const worker = await startWranglerDev(await freePort(), { envFile });
  resources.add(() => worker.stop());
  const started = [...childPids()].filter((pid) => !before.has(pid));
  return {
    name: "edge (wrangler dev)",
    origin: worker.url,
    pid: started.length === 1 ? (started[0] as number) : Number.NaN,
    requests: SCENARIOS.map((s) => edgeRequest(plane, s)),
  };
}
