/**
 * The servers bench:edge compares, each on a free loopback port and registered
 * with `Resources`, so every one is stopped however the run ends.
 *
 *   edge (wrangler dev)   `wrangler dev --local` (wrangler's dev proxy in front
 *                         of the Worker), env from a 0600 dotenv file.
 *   edge (workerd)        the exact `wrangler deploy --dry-run` bundle under a bare
 *                         `workerd serve --experimental` with a generated config.
 *   OPA server (REST)     `opa run --server` with the active version's compiled
 *                         Rego and the wrapper module the compiler adds to it.
 *
 * Both edge targets authenticate the API key, load the tenant's bundle and count
 * the rate limit through the edge's own Upstash-REST server (redis-rest.ts).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ENTRY_FILE, ENTRY_MODULE } from "../../functions/src/policy-compiler/entry-module.js";
import { freePort } from "../../scripts/lib/ports.js";
import { OFFLINE_WRANGLER_ENV, startWranglerDev } from "../../scripts/lib/wrangler-dev.js";
import { repoRoot, resolveOpa } from "../../scripts/opa.js";
import { childPids } from "../cpu-accounting.js";
import type { LoadRequest } from "../load.js";
import type { ControlPlane } from "./control-plane.js";
import type { EdgeRedisRest } from "./redis-rest.js";
import { type Resources, startProcess } from "./resources.js";
import {
  type BenchPolicy,
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
  /** Root of its process tree (CPU accounting); NaN when unknown. */
  pid: number;
  /** Whether its Redis round trips are counted (the edge targets). */
  usesEdgeRedis: boolean;
  loadRequest(scenario: Scenario): LoadRequest;
  verdict(reply: { status: number; body: string }): Verdict;
}

/** The edge's environment: the control plane's namespace behind the edge's own REST server. */
function edgeVars(plane: ControlPlane, rest: EdgeRedisRest): Record<string, string> {
  return {
    UPSTASH_REDIS_REST_URL: rest.url,
    UPSTASH_REDIS_REST_TOKEN: rest.token,
    REDIS_KEY_NAMESPACE: plane.redisKeyNamespace,
    // Decision events flow to the run's NATS as deployed (the audit buffer's cost is
    // part of what is measured).
    NATS_WS_URL: plane.natsWsUrl,
  };
}

function edgeTarget(
  key: "wrangler" | "workerd",
  origin: string,
  pid: number,
  policy: BenchPolicy,
): RunningTarget {
  return {
    key,
    name: TARGETS[key],
    origin,
    pid,
    usesEdgeRedis: true,
    loadRequest: (s: Scenario) => edgeRequest(policy, s),
    verdict: edgeVerdict,
  };
}

export async function startWranglerTarget(
  resources: Resources,
  plane: ControlPlane,
  rest: EdgeRedisRest,
): Promise<RunningTarget> {
  const dir = resources.tempDir("fulcrum-bench-wrangler-");
  const envFile = join(dir, ".dev.vars");
  const lines = Object.entries(edgeVars(plane, rest)).map(([k, v]) => `${k}=${v}`);
  writeFileSync(envFile, `${lines.join("\n")}\n`, { mode: 0o600 });
  const before = childPids();
  const worker = await startWranglerDev(await freePort(), { envFile });
  resources.add(() => worker.stop());
  // startWranglerDev does not expose its process: the child that appeared is wrangler.
  const started = [...childPids()].filter((pid) => !before.has(pid));
  return edgeTarget(
    "wrangler",
    worker.url,
    started.length === 1 ? (started[0] as number) : Number.NaN,
    plane,
  );
}

function compatibilityDate(): string {
  const toml = readFileSync(join(repoRoot, "wrangler.toml"), "utf8");
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1];
  if (!date) throw new Error("wrangler.toml has no compatibility_date");
  return date;
}

/**
 * How workerd must load a module of the deploy bundle, by the wrangler.toml
 * rules that produced it: CompiledWasm (*.wasm), Text (*.bundle and wrangler's
 * default *.txt / *.html / *.sql), Data (*.bin), ES modules.
 */
function moduleKind(file: string): "esModule" | "wasm" | "text" | "data" {
  if (/\.(m?js)$/.test(file)) return "esModule";
  if (file.endsWith(".wasm")) return "wasm";
  if (/\.(bundle|txt|html|sql)$/.test(file)) return "text";
  if (file.endsWith(".bin")) return "data";
  throw new Error(
    `deploy bundle module ${file}: unknown module type (see wrangler.toml [[rules]])`,
  );
}

/** Every module `index.js` imports (transitively), by relative specifier. */
function bundleModules(dir: string): string[] {
  const present = new Set(readdirSync(dir));
  const seen = new Set<string>(["index.js"]);
  const queue = ["index.js"];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    if (moduleKind(file) !== "esModule") continue;
    const source = readFileSync(join(dir, file), "utf8");
    for (const match of source.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["']\.\/([^"']+)["']/g)) {
      const name = match[1] as string;
      // Library code may mention other relative paths in strings: only the bundle's count.
      if (present.has(name) && !seen.has(name)) {
        seen.add(name);
        queue.push(name);
      }
    }
  }
  const unused = [...present].filter(
    (f) => !seen.has(f) && !f.endsWith(".map") && f !== "README.md",
  );
  if (unused.length > 0) {
    throw new Error(`the deploy bundle has modules index.js does not import: ${unused.join(", ")}`);
  }
  return [...seen];
}

const capnpText = (value: string) => JSON.stringify(value);

/**
 * The deployable bundle (`wrangler deploy --dry-run`) under a bare `workerd serve`:
 * every module of the bundle with its kind, the edge's bindings (text), the Worker
 * Loader (`--experimental`), outbound fetch limited to loopback (the REST server).
 */
export async function startWorkerdTarget(
  resources: Resources,
  plane: ControlPlane,
  rest: EdgeRedisRest,
): Promise<RunningTarget> {
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
  if (build.status !== 0) {
    throw new Error(`wrangler deploy --dry-run failed\n${build.stdout}\n${build.stderr}`);
  }
  const modules = bundleModules(dir).map(
    (f) => `(name = ${capnpText(f)}, ${moduleKind(f)} = embed ${capnpText(f)})`,
  );
  const bindings = [
    `(name = "ENVIRONMENT", text = "development")`,
    ...Object.entries(edgeVars(plane, rest)).map(
      ([name, value]) => `(name = ${capnpText(name)}, text = ${capnpText(value)})`,
    ),
    `(name = "LOADER", workerLoader = ())`,
    `(name = "AUDIT_BUFFER", durableObjectNamespace = "AuditBuffer")`,
  ];
  const port = await freePort();
  // The audit buffer's Durable Object storage (SQLite), as wrangler dev keeps it.
  mkdirSync(join(dir, "audit-storage"));
  writeFileSync(
    join(dir, "edge.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "edge", worker = .edge),
    (name = "internet", network = (allow = ["local"])),
    (name = "audit-storage", disk = (path = ${capnpText(join(dir, "audit-storage"))}, writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "edge")],
);
const edge :Workerd.Worker = (
  modules = [
    ${modules.join(",\n    ")},
  ],
  compatibilityDate = "${compatibilityDate()}",
  bindings = [
    ${bindings.join(",\n    ")},
  ],
  durableObjectNamespaces = [
    (className = "AuditBuffer", uniqueKey = "fulcrum-audit-buffer", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "audit-storage"),
);
`,
    { mode: 0o600 },
  );
  const workerd = join(repoRoot, "node_modules/workerd/bin/workerd");
  const origin = `http://127.0.0.1:${port}`;
  const { pid } = await startProcess(
    resources,
    workerd,
    ["serve", join(dir, "edge.capnp"), "--experimental"],
    `${origin}/healthz`,
  );
  return edgeTarget("workerd", origin, pid, plane);
}

/** OPA with the active version's compiled Rego and the compiler's wrapper module. */
export async function startOpaTarget(
  resources: Resources,
  plane: ControlPlane,
): Promise<RunningTarget> {
  const dir = resources.tempDir("fulcrum-bench-opa-");
  const policyFile = join(dir, "policy.rego");
  const entryFile = join(dir, ENTRY_FILE);
  writeFileSync(policyFile, plane.compiledRego);
  writeFileSync(entryFile, ENTRY_MODULE);
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const args = ["run", "--server", "--addr", `127.0.0.1:${port}`, "--log-level", "error"];
  args.push("--disable-telemetry", policyFile, entryFile);
  const { pid } = await startProcess(resources, await resolveOpa(), args, `${origin}/health`);
  return {
    key: "opa",
    name: TARGETS.opa,
    origin,
    pid,
    usesEdgeRedis: false,
    loadRequest: (s) => opaRequest(plane, s),
    verdict: opaVerdict,
  };
}
