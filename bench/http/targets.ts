/**
 * The three servers the HTTP benchmark compares, each started on a free
 * loopback port and registered with `Resources` so that every one is stopped
 * however the run ends.
 *
 *   edge (wrangler dev)   `wrangler dev --local`: the Worker behind wrangler's
 *                         dev proxy (a proxy Worker in a second workerd).
 *   edge (workerd)        the exact `wrangler deploy --dry-run` bundle served by
 *                         `workerd serve` from a generated config: no proxy.
 *   OPA server (REST)     `opa run --server` with the same Rego and the same
 *                         data document the edge's wasm instance gets.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitForHttp } from "../../scripts/lib/ports.js";
import {
  OFFLINE_WRANGLER_ENV,
  startWranglerDev,
  stopProcessGroup,
} from "../../scripts/lib/wrangler-dev.js";
import { repoRoot, resolveOpa } from "../../scripts/opa.js";
import type { HttpReply, LoadRequest } from "../load.js";
import {
  benchTenantData,
  edgeRequest,
  edgeVerdict,
  opaRequest,
  opaVerdict,
  type Scenario,
  type Verdict,
} from "./scenarios.js";

export const TARGETS = {
  wrangler: "edge (wrangler dev)",
  workerd: "edge (workerd)",
  opa: "OPA server (REST)",
} as const;
export type TargetKey = keyof typeof TARGETS;
export type TargetName = (typeof TARGETS)[TargetKey];

export interface RunningTarget {
  key: TargetKey;
  name: TargetName;
  origin: string;
  loadRequest(scenario: Scenario): LoadRequest;
  verdict(reply: HttpReply): Verdict;
}

/** Everything a run started, stopped in reverse order; `exitNow` is the synchronous last resort. */
export class Resources {
  private readonly entries: { stop: () => Promise<void>; exitNow?: () => void }[] = [];

  add(stop: () => Promise<void>, exitNow?: () => void): void {
    this.entries.push({ stop, exitNow });
  }

  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    const remove = () => rmSync(dir, { recursive: true, force: true });
    this.add(async () => remove(), remove);
    return dir;
  }

  async stopAll(): Promise<void> {
    for (const entry of this.entries.splice(0).reverse()) {
      await entry.stop().catch(() => {});
    }
  }

  exitNow(): void {
    for (const entry of this.entries.splice(0).reverse()) {
      try {
        entry.exitNow?.();
      } catch {}
    }
  }
}

/** Starts a server process in its own group; resolves once `healthUrl` answers 200. */
async function startProcess(
  resources: Resources,
  command: string,
  args: string[],
  healthUrl: string,
): Promise<void> {
  const child: ChildProcess = spawn(command, args, {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  resources.add(
    () => stopProcessGroup(child),
    () => {
      if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    },
  );
  const output: string[] = [];
  child.stdout?.on("data", (d: Buffer) => output.push(d.toString()));
  child.stderr?.on("data", (d: Buffer) => output.push(d.toString()));
  try {
    await Promise.race([
      waitForHttp(healthUrl, 30_000),
      new Promise((_, fail) =>
        child.once("exit", (code) => fail(new Error(`${command} exited with ${code}`))),
      ),
    ]);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- output ---\n${output.join("")}`);
  }
}

export async function startWranglerTarget(resources: Resources): Promise<RunningTarget> {
  const worker = await startWranglerDev(await freePort());
  resources.add(() => worker.stop());
  const target = { key: "wrangler", name: TARGETS.wrangler, origin: worker.url } as const;
  return { ...target, loadRequest: edgeRequest, verdict: edgeVerdict };
}

function compatibilityDate(): string {
  const toml = readFileSync(join(repoRoot, "wrangler.toml"), "utf8");
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1];
  if (!date) throw new Error("wrangler.toml has no compatibility_date");
  return date;
}

/**
 * The deployable bundle (`wrangler deploy --dry-run`) under a bare
 * `workerd serve`: index.js plus the governance .wasm as a compiled module,
 * one socket, no dev proxy in front.
 */
export async function startWorkerdTarget(resources: Resources): Promise<RunningTarget> {
  const dir = resources.tempDir("fulcrum-bench-workerd-");
  const build = spawnSync(
    process.execPath,
    [
      join(repoRoot, "node_modules/wrangler/bin/wrangler.js"),
      "deploy",
      "--dry-run",
      "--outdir",
      dir,
    ],
    { cwd: repoRoot, env: { ...process.env, ...OFFLINE_WRANGLER_ENV }, encoding: "utf8" },
  );
  if (build.status !== 0) throw new Error(`wrangler deploy --dry-run failed\n${build.stderr}`);
  const wasm = readdirSync(dir).filter((f) => f.endsWith(".wasm"));
  const port = await freePort();
  const modules = [
    '(name = "index.js", esModule = embed "index.js")',
    ...wasm.map((f) => `(name = "${f}", wasm = embed "${f}")`),
  ];
  writeFileSync(
    join(dir, "edge.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "edge", worker = .edge)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "edge")],
);
const edge :Workerd.Worker = (
  modules = [${modules.join(", ")}],
  compatibilityDate = "${compatibilityDate()}",
  bindings = [(name = "ENVIRONMENT", text = "development")],
);
`,
  );
  const workerd = join(repoRoot, "node_modules/workerd/bin/workerd");
  const origin = `http://127.0.0.1:${port}`;
  await startProcess(resources, workerd, ["serve", join(dir, "edge.capnp")], `${origin}/healthz`);
  const target = { key: "workerd", name: TARGETS.workerd, origin } as const;
  return { ...target, loadRequest: edgeRequest, verdict: edgeVerdict };
}

/** OPA with the Rego library (non-test files) and the tenant's data document at the root. */
export async function startOpaTarget(resources: Resources): Promise<RunningTarget> {
  const dir = resources.tempDir("fulcrum-bench-opa-");
  // The same document the edge hands to setData(); a file named on the command line loads at the root.
  const dataFile = join(dir, "data.json");
  writeFileSync(dataFile, JSON.stringify(benchTenantData()));
  const regoDir = join(repoRoot, "policies/fulcrum/governance");
  const rego = readdirSync(regoDir)
    .filter((f) => f.endsWith(".rego") && !f.endsWith("_test.rego"))
    .map((f) => join(regoDir, f));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const args = ["run", "--server", "--addr", `127.0.0.1:${port}`, "--log-level", "error"];
  args.push("--disable-telemetry", ...rego, dataFile);
  await startProcess(resources, await resolveOpa(), args, `${origin}/health`);
  const target = { key: "opa", name: TARGETS.opa, origin } as const;
  return { ...target, loadRequest: opaRequest, verdict: opaVerdict };
}
