import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { freePort } from "../lib/ports.js";
import { probeNats } from "./probe.js";
import { isPortFree, readPid, terminate, waitFor, which } from "./process.js";
import type { Launched, ServiceSpec } from "./service.js";

/** The WebSocket port used when free: Workers reach NATS only over WebSocket. */
export const DEFAULT_NATS_WS_PORT = 4280;

async function launch(
  bin: string,
  at: {
    port: number;
    dir: string;
    log: (line: string) => void;
    wsPort?: number;
    /** HTTP monitoring (/healthz, /jsz: what the runbook curls on 8222). */
    monitorPort?: number;
  },
): Promise<Launched> {
  await mkdir(at.dir, { recursive: true });
  const storeDir = join(at.dir, "jetstream");
  const logFile = join(at.dir, "nats.log");
  const pidFile = join(at.dir, "nats.pid");
  const configFile = join(at.dir, "nats.conf");
  await rm(pidFile, { force: true });
  const logFd = openSync(logFile, "a");
  const wsPort =
    at.wsPort ??
    (at.port !== DEFAULT_NATS_WS_PORT && (await isPortFree(DEFAULT_NATS_WS_PORT))
      ? DEFAULT_NATS_WS_PORT
      : await freePort());
  // The websocket block has no command-line flag, hence a generated config file.
  await writeFile(
    configFile,
    [
      `pid_file: ${JSON.stringify(pidFile)}`,
      // One entry per line: the config parser wants "," between entries on one line.
      "websocket {",
      `  listen: "127.0.0.1:${wsPort}"`,
      "  no_tls: true",
      "}",
      "",
    ].join("\n"),
  );
  const child = spawn(
    bin,
    [
      ...["-c", configFile, "-js", "-sd", storeDir, "-a", "127.0.0.1", "-p", String(at.port)],
      ...(at.monitorPort !== undefined ? ["-m", String(at.monitorPort)] : []),
    ],
    // Its log (and any config error) goes to stderr, kept in the file for error messages.
    { detached: true, stdio: ["ignore", logFd, logFd] },
  );
  closeSync(logFd);
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  // It must outlive `npm run stack`'s own process; stop() finds it again by pid.
  child.unref();
  const pid = child.pid;
  return {
    url: `nats://127.0.0.1:${at.port}`,
    wsUrl: `ws://127.0.0.1:${wsPort}`,
    logFile,
    alive: () => !exited,
    stop: async () => {
      const known = readPid(pidFile) ?? pid;
      if (known !== undefined) await terminate(known);
      await waitFor(() => isPortFree(at.port), 10_000);
    },
  };
}

export const natsSpec: ServiceSpec<string> & {
  withWsPort(wsPort: number | undefined, monitorPort?: number): ServiceSpec<string>;
} = {
  name: "nats",
  envVar: "FULCRUM_NATS_URL",
  defaultUrl: "nats://127.0.0.1:4222",
  defaultPort: 4222,
  what: "NATS with JetStream",
  aptPackage: "nats-server",
  probe: (url) =>
    probeNats(url.hostname.replace(/^\[|\]$/g, ""), url.port ? Number(url.port) : 4222),
  findBinary: () => which("nats-server"),
  launch,
  withWsPort(wsPort, monitorPort) {
    return {
      ...this,
      launch: (bin, at) =>
        launch(bin, {
          ...at,
          ...(wsPort !== undefined ? { wsPort } : {}),
          ...(monitorPort !== undefined ? { monitorPort } : {}),
        }),
    };
  },
};
