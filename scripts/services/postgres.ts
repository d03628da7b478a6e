import { createHash } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { probePostgres } from "./probe.js";
import { isPortFree, isRoot, type RunResult, run, waitFor, which } from "./process.js";
import type { Launched, ServiceSpec } from "./service.js";

const TOOLS = ["initdb", "pg_ctl", "postgres"];

/** The bin folder holding initdb, pg_ctl and postgres: Debian's newest, else PATH. */
function findPgBin(): string | undefined {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const version of versions) {
    const bin = join(root, version, "bin");
    if (TOOLS.every((tool) => existsSync(join(bin, tool)))) return bin;
  }
  const initdb = which("initdb");
  if (initdb && TOOLS.every((tool) => existsSync(join(dirname(initdb), tool)))) {
    return dirname(initdb);
  }
  return undefined;
}

const shellQuote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

/**
 * PostgreSQL refuses to run as root, so as root every server command runs as the
 * `postgres` user (created by Debian's package); otherwise as ourselves.
 */
function runAsPg(command: string, args: string[], cwd: string): Promise<RunResult> {
  if (!isRoot()) return run(command, args, { cwd });
  if (which("runuser")) return run("runuser", ["-u", "postgres", "--", command, ...args], { cwd });
  const line = [command, ...args].map(shellQuote).join(" ");
  return run("su", ["postgres", "-s", "/bin/sh", "-c", line], { cwd });
}

async function pgOrThrow(command: string, args: string[], cwd: string, what: string) {
  const result = await runAsPg(command, args, cwd);
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${result.output}`);
}

/**
 * As root, the data must be reachable by `postgres`: a project under /root (mode 700)
 * is not, so the instance then lives under /var/tmp, keyed by the requested dir.
 */
async function prepareHome(dir: string, log: (line: string) => void): Promise<string> {
  await mkdir(dir, { recursive: true });
  if (!isRoot()) return dir;
  if ((await run("id", ["-u", "postgres"])).code !== 0) {
    throw new Error(
      'Running as root, PostgreSQL needs a "postgres" user to run as; none exists. ' +
        "Install Debian's postgresql package (it creates one) or: useradd --system postgres",
    );
  }
  await run("chown", ["-R", "postgres:", dir]);
  if ((await runAsPg("test", ["-w", dir], "/")).code === 0) return dir;
  const key = createHash("sha256").update(dir).digest("hex").slice(0, 12);
  const home = join("/var/tmp/fulcrum-services", key);
  log(`user postgres cannot reach ${dir}; keeping this instance in ${home}`);
  await mkdir(home, { recursive: true });
  await run("chown", ["-R", "postgres:", home]);
  return home;
}

async function launch(
  bin: string,
  at: { port: number; dir: string; log: (line: string) => void },
): Promise<Launched> {
  const home = await prepareHome(at.dir, at.log);
  const data = join(home, "data");
  const logFile = join(home, "postgres.log");
  if (!existsSync(join(data, "PG_VERSION"))) {
    // A half-made data dir from an interrupted initdb would make initdb refuse.
    await rm(data, { recursive: true, force: true });
    at.log("initdb (first start of this instance)");
    await pgOrThrow(
      join(bin, "initdb"),
      [
        "-D",
        data,
        "-U",
        "postgres",
        "--auth=trust",
        "--no-locale",
        "-E",
        "UTF8",
        "--no-instructions",
      ],
      home,
      "initdb",
    );
  }
  // Unix socket paths are limited to ~107 bytes; a deep project path gets TCP only.
  const socketDir = join(home, `.s.PGSQL.${at.port}`).length < 100 ? home : "";
  const serverOptions = `-p ${at.port} -k ${shellQuote(socketDir)} -c listen_addresses=127.0.0.1`;
  // -W: do not wait here; the caller polls with the protocol probe and shows the log.
  await pgOrThrow(
    join(bin, "pg_ctl"),
    ["-D", data, "-l", logFile, "-W", "-o", serverOptions, "start"],
    home,
    "pg_ctl start",
  );
  return {
    url: `postgres://postgres@127.0.0.1:${at.port}/postgres`,
    logFile,
    ...(home !== at.dir ? { dir: home } : {}),
    stop: async () => {
      // Exit 1 ("no server running") is fine: stopping twice must not fail.
      await runAsPg(
        join(bin, "pg_ctl"),
        ["-D", data, "stop", "-m", "fast", "-w", "-t", "30"],
        home,
      );
      await waitFor(() => isPortFree(at.port), 10_000);
    },
  };
}

export const postgresSpec: ServiceSpec<string> = {
  name: "postgres",
  envVar: "FULCRUM_PG_URL",
  defaultUrl: "postgres://postgres@127.0.0.1:5432/postgres",
  defaultPort: 5432,
  what: "PostgreSQL",
  aptPackage: "postgresql",
  probe: (url) =>
    probePostgres({
      host: url.hostname.replace(/^\[|\]$/g, ""),
      port: url.port ? Number(url.port) : 5432,
      user: decodeURIComponent(url.username) || "postgres",
      database:
        decodeURIComponent(url.pathname.slice(1)) || decodeURIComponent(url.username) || "postgres",
      hasPassword: url.password !== "",
    }),
  findBinary: findPgBin,
  launch,
};
