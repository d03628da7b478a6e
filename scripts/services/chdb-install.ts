/**
 * The embedded ClickHouse engine (npm `chdb`, ~550 MB) the local ClickHouse server runs
 * on, installed on first use into scripts/services/chdb/ from that folder's own
 * lockfile. It is not in the root install: chdb declares platform packages the
 * registry does not have for every platform, and `npm ci` refuses a lockfile without
 * them, while `npm install` from a lockfile skips them as the optional packages they
 * are. Only needed where the project runs its own ClickHouse (CLICKHOUSE_URL unset).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Log } from "./process.js";
import { repoRoot } from "./service.js";

export const CHDB_DIR = join(repoRoot, "scripts", "services", "chdb");

/** chdb's package directory, installing it first when missing. */
export function ensureChdbInstalled(log: Log): string {
  const packageDir = join(CHDB_DIR, "node_modules", "chdb");
  if (existsSync(join(packageDir, "package.json"))) return packageDir;
  log(`installing the embedded ClickHouse engine (npm chdb, ~550 MB) into ${CHDB_DIR}`);
  const result = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd: CHDB_DIR,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (result.status !== 0 || !existsSync(join(packageDir, "package.json"))) {
    throw new Error(
      `could not install chdb in ${CHDB_DIR} (npm install exited ${result.status}):\n` +
        `${result.stderr ?? ""}${result.error ? String(result.error) : ""}\n` +
        "Set CLICKHOUSE_URL to a ClickHouse server instead.",
    );
  }
  return packageDir;
}
