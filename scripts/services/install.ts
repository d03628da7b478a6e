import { isRoot, type Log, run, which } from "./process.js";

/**
 * Finds a server's binaries, installing the Debian package when we may (root with
 * apt-get), and otherwise tells the user exactly what to install.
 */
export async function ensureBinary<T>(
  find: () => T | undefined,
  service: { what: string; aptPackage: string; allowInstall: boolean },
  log: Log,
): Promise<{ found: T; installed: boolean }> {
  const existing = find();
  if (existing !== undefined) return { found: existing, installed: false };

  const apt = which("apt-get");
  const advice = `Install it with: sudo apt-get install -y --no-install-recommends ${service.aptPackage}`;
  if (!service.allowInstall) throw new Error(`${service.what} is not installed. ${advice}`);
  if (!isRoot() || !apt) {
    throw new Error(
      `${service.what} is not installed and this script can only install it as root with apt-get ` +
        `(${isRoot() ? "no apt-get here" : "not running as root"}). ${advice} ` +
        "(or your platform's package of the same name), then run this again.",
    );
  }
  await aptInstall(apt, service.aptPackage, log);
  const found = find();
  if (found === undefined) {
    throw new Error(
      `apt-get installed ${service.aptPackage} but ${service.what} is still not found.`,
    );
  }
  return { found, installed: true };
}

// One `apt-get update` per process: several services may be installed in a row.
let listsUpdated = false;

async function aptInstall(apt: string, pkg: string, log: Log): Promise<void> {
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () => {
    log(`apt-get install -y --no-install-recommends ${pkg} ...`);
    return run(apt, ["install", "-y", "--no-install-recommends", pkg], { env, onLine: log });
  };
  let result = await install();
  if (result.code !== 0 && !listsUpdated) {
    // A fresh image often ships without package lists ("Unable to locate package").
    log("install failed; running apt-get update once and retrying");
    listsUpdated = true;
    const update = await run(apt, ["update"], { env, onLine: log });
    if (update.code !== 0) throw new Error(`apt-get update failed:\n${update.output.trim()}`);
    result = await install();
  }
  if (result.code !== 0) {
    throw new Error(
      `apt-get install ${pkg} failed (exit ${result.code}):\n${result.output.trim()}`,
    );
  }
  log(`installed ${pkg}`);
}
