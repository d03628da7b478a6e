import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { freePort } from "../../scripts/lib/ports.js";
import {
  type EnsuredService,
  ensureNats,
  ensurePostgres,
  ensureRedis,
} from "../../scripts/services/ensure-services.js";
import { isPortFree } from "../../scripts/services/process.js";

// Started instances are stopped by each test; this catches the ones a failing test left.
const started: EnsuredService[] = [];
afterAll(async () => {
  await Promise.allSettled(started.map((s) => s.stop()));
});

const quiet = () => {};

/** A second, throwaway instance: a free port and a fresh temp dir, removed on stop. */
async function throwaway(name: string) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `fulcrum-${name}-`));
  return { port, dir, removeDirOnStop: true, log: quiet };
}

async function stopAndCheckGone(service: EnsuredService, port: number, dir: string) {
  await service.stop();
  expect(await isPortFree(port)).toBe(true);
  expect(existsSync(dir)).toBe(false);
  if (service.dir) expect(existsSync(service.dir)).toBe(false);
}

/** Reads one NATS protocol exchange: INFO, then the answers to `commands`. */
function natsExchange(port: number, commands: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let text = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no ${until} from NATS; got: ${text}`));
    }, 5000);
    socket.on("data", (chunk) => {
      text += chunk.toString();
      if (text.includes("\r\n") && !socket.writableEnded && commands) {
        socket.write(commands);
        commands = "";
      }
      if (until.test(text)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
    socket.on("error", reject);
  });
}

describe("reuse: the machine's own servers are detected and left alone", () => {
  it.each([
    ["postgres", ensurePostgres],
    ["redis", ensureRedis],
    ["nats", ensureNats],
  ] as const)("%s is reused, not started", async (name, ensure) => {
    const service = await ensure({ log: quiet, allowInstall: false });
    expect(service.name).toBe(name);
    expect(service.startedByUs).toBe(false);
    expect(service.dir).toBeUndefined();
    await service.stop(); // a no-op: it is not ours
    const again = await ensure({ log: quiet, allowInstall: false });
    expect(again.startedByUs).toBe(false);
  });
});

describe("start: a project-owned second instance on a free port", () => {
  it("PostgreSQL answers real SQL through psql, then stops and leaves nothing", async () => {
    const options = await throwaway("pg");
    const pg = await ensurePostgres(options);
    started.push(pg);
    expect(pg.startedByUs).toBe(true);
    expect(pg.url).toBe(`postgres://postgres@127.0.0.1:${options.port}/postgres`);
    const table = `t_${randomBytes(4).toString("hex")}`;
    const sql = `create table ${table} (v int); insert into ${table} values (41), (1); select sum(v) from ${table}`;
    const out = execFileSync(
      "psql",
      ["-h", "127.0.0.1", "-p", String(options.port), "-U", "postgres", "-tAX", "-c", sql],
      { encoding: "utf8" },
    );
    expect(out.trim().split("\n").at(-1)).toBe("42");
    // The probe must now see the second instance as reusable.
    const reused = await ensurePostgres({ port: options.port, log: quiet });
    expect(reused.startedByUs).toBe(false);
    await stopAndCheckGone(pg, options.port, options.dir);
  });

  it("Redis answers PING/SET/GET, keeps nothing on disk, then stops", async () => {
    const options = await throwaway("redis");
    const redis = await ensureRedis(options);
    started.push(redis);
    expect(redis.startedByUs).toBe(true);
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await client.connect();
      expect(await client.ping()).toBe("PONG");
      await client.set("fulcrum:services:test", "v1");
      expect(await client.get("fulcrum:services:test")).toBe("v1");
      expect(await client.config("GET", "save")).toEqual(["save", ""]);
    } finally {
      client.disconnect();
    }
    await stopAndCheckGone(redis, options.port, options.dir);
  });

  it("NATS has JetStream and a WebSocket listener, then stops", async () => {
    const options = await throwaway("nats");
    const wsPort = await freePort();
    const nats = await ensureNats({ ...options, wsPort });
    started.push(nats);
    expect(nats.startedByUs).toBe(true);
    expect(nats.wsUrl).toBe(`ws://127.0.0.1:${wsPort}`);

    // A JetStream API request answered with account info proves JetStream really runs.
    const reply = await natsExchange(
      options.port,
      'CONNECT {"verbose":false}\r\nSUB _INBOX.t 1\r\nPUB $JS.API.INFO _INBOX.t 0\r\n\r\n',
      /MSG _INBOX\.t 1 \d+\r\n.*\r\n/,
    );
    expect(reply).toMatch(/"jetstream":true/);
    expect(reply).toMatch(/"type":"io\.nats\.jetstream\.api\.v1\.account_info_response"/);

    // Clients inside workerd will come in over WebSocket: the server greets there too.
    const greeting = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(nats.wsUrl ?? "");
      ws.once("message", (data) => {
        ws.close();
        resolve(data.toString());
      });
      ws.once("error", reject);
    });
    expect(greeting).toMatch(/^INFO /);

    await stopAndCheckGone(nats, options.port, options.dir);
    expect(await isPortFree(wsPort)).toBe(true);
  });
});

describe("refusals", () => {
  it("a port held by something that is not the service is an error, not a silent start", async () => {
    // An HTTP-ish server: answers garbage, and reads (resume) so that close() can finish.
    const impostor: Server = createServer((socket) => {
      socket.resume();
      socket.end("HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    await new Promise<void>((r) => impostor.listen(0, "127.0.0.1", r));
    const address = impostor.address();
    const port = typeof address === "object" && address ? address.port : 0;
    try {
      await expect(ensureRedis({ port, log: quiet })).rejects.toThrow(/answers but cannot be used/);
      await expect(ensureNats({ port, log: quiet })).rejects.toThrow(/no NATS INFO banner/);
    } finally {
      await new Promise((r) => impostor.close(r));
    }
  });
});
