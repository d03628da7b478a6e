import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { probeRedis } from "./probe.js";
import { isPortFree, readPid, runOrThrow, terminate, waitFor, which } from "./process.js";
import type { Launched, ServiceSpec } from "./service.js";

async function launch(
  bin: string,
  at: { port: number; dir: string; log: (line: string) => void },
): Promise<Launched> {
  await mkdir(at.dir, { recursive: true });
  const pidFile = join(at.dir, "redis.pid");
  const logFile = join(at.dir, "redis.log");
  await rm(pidFile, { force: true });
  // A cache for development: nothing on disk, like the machines' own Redis.
  await runOrThrow(
    bin,
    [
      "--daemonize",
      "yes",
      "--bind",
      "127.0.0.1",
      "--port",
      String(at.port),
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      at.dir,
      "--pidfile",
      pidFile,
      "--logfile",
      logFile,
    ],
    "redis-server",
  );
  return {
    url: `redis://127.0.0.1:${at.port}`,
    logFile,
    stop: async () => {
      const pid = readPid(pidFile);
      if (pid !== undefined) await terminate(pid);
      await waitFor(() => isPortFree(at.port), 10_000);
    },
  };
}

export const redisSpec: ServiceSpec<string> = {
  name: "redis",
  envVar: "FULCRUM_REDIS_URL",
  defaultUrl: "redis://127.0.0.1:6379",
  defaultPort: 6379,
  what: "Redis",
  aptPackage: "redis-server",
  probe: (url) => {
    const password = decodeURIComponent(url.password);
    const user = decodeURIComponent(url.username);
    return probeRedis(
      url.hostname.replace(/^\[|\]$/g, ""),
      url.port ? Number(url.port) : 6379,
      password ? { password, ...(user ? { user } : {}) } : undefined,
    );
  },
  findBinary: () => which("redis-server"),
  launch,
};
