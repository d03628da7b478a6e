import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Redis } from "@upstash/redis";
import IORedis from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { budgetKeysIn } from "../../core/budget/budget-keys.js";
import { BudgetLedger, type UsageEstimate } from "../../core/budget/ledger.js";
import type { BudgetLimits } from "../../core/budget/limits.js";
import {
  startUpstashRestServer,
  type UpstashRestServer,
} from "../../scripts/lib/upstash-rest-server.js";

// Two separate Node processes (test/harness/budget-reserver.ts), each with its own
// Upstash REST server, Redis connection, client and ledger: two edge isolates. Limits must
// hold across them, because the check-and-reserve happens in Redis, not in a process.
const REDIS_URL = inject("redisUrl");
const RESERVER = fileURLToPath(new URL("../harness/budget-reserver.ts", import.meta.url));
const TENANT = "tenant-2p";

let direct: IORedis;
let server: UpstashRestServer;
let namespace: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  direct = new IORedis(REDIS_URL, { enableAutoPipelining: false });
});

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  const left = await direct.keys(`${namespace}:*`);
  if (left.length > 0) await direct.del(...left);
  await server?.close();
});

afterAll(async () => {
  await direct?.quit();
});

interface Outcome {
  admitted: number;
  refused: number;
  errors: string[];
}

/** Starts a reserver; resolves `ready` once it is set up and `done` with its outcome. */
function startReserver(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", RESERVER], {
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
    if (out.includes("ready\n")) onReady();
  });
  const done = new Promise<Outcome>((resolve, reject) => {
    child.once("exit", (code) => {
      const last = out.trim().split("\n").at(-1) ?? "";
      if (code === 0 && last.startsWith("{")) resolve(JSON.parse(last) as Outcome);
      else reject(new Error(`budget-reserver exited with ${code}\n${out}\n${err}`));
    });
  });
  return { child, ready: Promise.race([ready, done.then(() => undefined)]), done };
}

async function race(limits: BudgetLimits, estimate: Partial<UsageEstimate>, callsEach: number) {
  namespace = `fulcrum:it:budget2p:${randomUUID()}`;
  const keys = budgetKeysIn(namespace);
  const counterKey = keys.counter(TENANT, "shared", 0);
  const full: UsageEstimate = { tokens: 0, costMicros: 0, llmCalls: 0, toolCalls: 0, ...estimate };
  const env = {
    BUDGET_REDIS_URL: REDIS_URL,
    BUDGET_NAMESPACE: namespace,
    BUDGET_TENANT: TENANT,
    BUDGET_COUNTER_KEY: counterKey,
    BUDGET_LIMITS: JSON.stringify(limits),
    BUDGET_ESTIMATE: JSON.stringify(full),
    BUDGET_CALLS: String(callsEach),
  };
  const reservers = [startReserver(env), startReserver(env)];
  await Promise.all(reservers.map((r) => r.ready));
  for (const r of reservers) r.child.stdin?.write("go\n");
  const outcomes = await Promise.all(reservers.map((r) => r.done));
  // Read back what Redis holds through a client of this process.
  const token = randomBytes(16).toString("hex");
  server = await startUpstashRestServer({ port: 0, redisUrl: REDIS_URL, token });
  const ledger = new BudgetLedger({
    redis: new Redis({ url: server.url, token, enableTelemetry: false }),
    keys,
  });
  const [state] = await ledger.readCounters([counterKey]);
  return { outcomes, state };
}

describe("two processes against the same Redis", () => {
  it("admit exactly floor(10000 / 73) tokens-wise between them, never more", async () => {
    const { outcomes, state } = await race({ tokens: 10_000 }, { tokens: 73 }, 150);
    for (const o of outcomes) expect(o.errors).toEqual([]);
    const admitted = outcomes.reduce((n, o) => n + o.admitted, 0);
    expect(admitted).toBe(Math.floor(10_000 / 73));
    expect(outcomes.reduce((n, o) => n + o.admitted + o.refused, 0)).toBe(300);
    expect(state?.reserved.tokens).toBe(admitted * 73);
    // Both processes got some: they really raced (each could have taken all 136 alone).
    for (const o of outcomes) expect(o.admitted).toBeGreaterThan(0);
  }, 60_000);

  it("hold a cost limit across processes too", async () => {
    const { outcomes, state } = await race(
      { costMicros: 2_500_000 },
      { costMicros: 12_345, llmCalls: 1 },
      150,
    );
    for (const o of outcomes) expect(o.errors).toEqual([]);
    const admitted = outcomes.reduce((n, o) => n + o.admitted, 0);
    expect(admitted).toBe(Math.floor(2_500_000 / 12_345)); // 202 of 300
    expect(state?.reserved).toEqual({
      tokens: 0,
      costMicros: admitted * 12_345,
      llmCalls: admitted,
      toolCalls: 0,
    });
  }, 60_000);
});
