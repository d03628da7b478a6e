import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { natsSpec } from "./nats.js";
import { postgresSpec } from "./postgres.js";
import { redisSpec } from "./redis.js";
import { type EnsuredService, type EnsureOptions, ensureService } from "./service.js";

export { DEFAULT_NATS_WS_PORT } from "./nats.js";
export type { EnsuredService, EnsureOptions, ServiceName } from "./service.js";

/**
 * PostgreSQL at FULCRUM_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres):
 * reused when it answers, else a project-owned instance (trust auth) is started.
 *
 * @example
 * const pg = await ensurePostgres();
 * // ... use pg.url ...
 * await pg.stop(); // no-op when pg.startedByUs is false
 */
export function ensurePostgres(options?: EnsureOptions): Promise<EnsuredService> {
  return ensureService(postgresSpec, options);
}

/** Redis at FULCRUM_REDIS_URL (default redis://127.0.0.1:6379); nothing persisted. */
export function ensureRedis(options?: EnsureOptions): Promise<EnsuredService> {
  return ensureService(redisSpec, options);
}

/**
 * NATS with JetStream at FULCRUM_NATS_URL (default nats://127.0.0.1:4222). A started
 * instance also listens for WebSocket clients: `wsUrl` (port `wsPort`, else 4280 when
 * free, else any free port).
 */
export function ensureNats(
  options?: EnsureOptions & { wsPort?: number; monitorPort?: number },
): Promise<EnsuredService> {
  return ensureService(natsSpec.withWsPort(options?.wsPort, options?.monitorPort), options);
}

/** All three, one after the other (apt-get holds a lock, so installs cannot overlap). */
export async function ensureAll(
  options: {
    postgres?: EnsureOptions;
    redis?: EnsureOptions;
    nats?: EnsureOptions & { wsPort?: number };
  } = {},
): Promise<{ postgres: EnsuredService; redis: EnsuredService; nats: EnsuredService }> {
  const started: EnsuredService[] = [];
  try {
    const postgres = await ensurePostgres(options.postgres);
    started.push(postgres);
    const redis = await ensureRedis(options.redis);
    started.push(redis);
    const nats = await ensureNats(options.nats);
    return { postgres, redis, nats };
  } catch (error) {
    // Do not leave half a stack behind.
    await Promise.allSettled(started.map((s) => s.stop()));
    throw error;
  }
}

const ENSURE = { postgres: ensurePostgres, redis: ensureRedis, nats: ensureNats } as const;

function table(services: EnsuredService[]): string {
  const rows = [
    ["service", "status", "url", "where"],
    ...services.map((s) => [
      s.name,
      s.startedByUs ? "started" : "reused",
      s.wsUrl ? `${s.url} (ws ${s.wsUrl})` : s.url,
      s.dir ?? s.detail,
    ]),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ")).join("\n");
}

async function main(argv: string[]): Promise<void> {
  const which = argv[0] ?? "all";
  const names = which === "all" ? (["postgres", "redis", "nats"] as const) : [which];
  const services: EnsuredService[] = [];
  for (const name of names) {
    if (!(name in ENSURE)) {
      throw new Error(`usage: tsx scripts/services/ensure-services.ts [postgres|redis|nats|all]`);
    }
    services.push(await ENSURE[name as keyof typeof ENSURE]());
  }
  // Started servers keep running after this process: that is the point of the CLI.
  process.stdout.write(`${table(services)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
