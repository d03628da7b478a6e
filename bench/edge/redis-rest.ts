/**
 * The Upstash-REST server the edge targets talk to, separate from the control
 * plane's, so that every HTTP request it receives is an edge → Redis round trip:
 * the request count before and after a measured run, divided by the decisions,
 * is "Redis round trips per decision".
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { OutputTail, type Resources } from "./resources.js";

export interface EdgeRedisRest {
  url: string;
  token: string;
  /** Its process (for CPU accounting). */
  pid: number;
  /** HTTP requests the server has received so far. */
  requests(): Promise<number>;
}

export async function startEdgeRedisRest(
  resources: Resources,
  redisUrl: string,
): Promise<EdgeRedisRest> {
  const token = randomBytes(24).toString("hex");
  const child: ChildProcess = fork(join(import.meta.dirname, "redis-rest-child.ts"), [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, BENCH_REDIS_URL: redisUrl, BENCH_REDIS_TOKEN: token },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  const output = new OutputTail();
  child.stdout?.on("data", (d: Buffer) => output.push(d));
  child.stderr?.on("data", (d: Buffer) => output.push(d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  resources.add(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.send({ type: "close" });
      else child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
    () => {
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  );

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no answer within 30 s")), 30_000);
    child.on("message", (m: { type: string; url?: string }) => {
      if (m.type === "ready" && m.url) {
        clearTimeout(timer);
        resolve(m.url);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}`));
    });
  }).catch((error: unknown) => {
    throw new Error(`edge Upstash-REST server: ${(error as Error).message}\n${output}`);
  });

  return {
    url,
    token,
    pid: child.pid ?? Number.NaN,
    requests: () =>
      new Promise<number>((resolve, reject) => {
        const onMessage = (m: { type: string; requests?: number }) => {
          if (m.type !== "count") return;
          child.off("message", onMessage);
          resolve(m.requests ?? Number.NaN);
        };
        child.on("message", onMessage);
        child.send({ type: "count" }, (error) => {
          if (error) reject(new Error(`edge Upstash-REST server is gone: ${error.message}`));
        });
      }),
  };
}
