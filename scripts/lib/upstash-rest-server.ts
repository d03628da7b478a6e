import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { parseArgs } from "node:util";
import Redis, { ReplyError } from "ioredis";
import { closeOnSignal, runIfMain } from "./cli.js";
import { type Encoding, toResult, type UpstashResult } from "./upstash-reply.js";
import { type PreparedCommand, ScriptRegistry } from "./upstash-scripts.js";

/**
 * An Upstash-REST-compatible HTTP server in front of a real Redis, so `@upstash/redis`
 * (which only speaks Upstash's REST protocol) can run against local Redis in development
 * and tests. The one npm server for this ignores base64 encoding, lacks `/multi-exec` and
 * skips auth on `/pipeline` (platform notes), hence this file.
 *
 * What @upstash/redis sends, all as POST with a JSON body:
 * - `/`            `["SET","k","v"]`           → `{result}` | `{error}` (HTTP 400)
 * - `/pipeline`    `[["SET",..],["GET",..]]`   → `[{result}|{error}, ...]`, not atomic
 * - `/multi-exec`  same body                   → same reply, run as one MULTI/EXEC
 * It only uses paths for these (and for SUBSCRIBE streams, which are not supported here).
 */
export interface UpstashRestServerOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** e.g. `redis://127.0.0.1:6379` */
  redisUrl: string;
  /** The bearer token clients must send. */
  token: string;
}

export interface UpstashRestServer {
  /** `http://127.0.0.1:<port>`: pass as `url` to `new Redis({ url, token })`. */
  url: string;
  port: number;
  /** HTTP requests received so far (one per client round trip; benchmarks read it). */
  readonly requests: number;
  close(): Promise<void>;
}

// Commands that would change or block the one Redis connection every request shares.
// Upstash refuses connection-state commands too; transactions go through /multi-exec.
const REFUSED = new Set(
  "SELECT MULTI EXEC DISCARD WATCH UNWATCH SUBSCRIBE PSUBSCRIBE SSUBSCRIBE UNSUBSCRIBE PUNSUBSCRIBE SUNSUBSCRIBE MONITOR QUIT RESET HELLO AUTH BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP WAIT".split(
    " ",
  ),
);
const MAX_BODY_BYTES = 16 * 1024 * 1024;

class BadRequest extends Error {
  override name = "BadRequest";
}

/**
 * Starts the server on 127.0.0.1.
 *
 * @example
 * const server = await startUpstashRestServer({ port: 0, redisUrl: "redis://127.0.0.1:6379", token: "t" });
 * const redis = new Redis({ url: server.url, token: "t" });
 */
export async function startUpstashRestServer(
  options: UpstashRestServerOptions,
): Promise<UpstashRestServer> {
  // No auto-pipelining: it breaks callBuffer in ioredis 6 (platform notes).
  const redis = new Redis(options.redisUrl, {
    enableAutoPipelining: false,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  await redis.connect();
  // While Redis is down, ioredis reconnects and emits "error" on every attempt; the
  // requests that fail meanwhile are answered as errors. Report a lost connection once,
  // not once per attempt (and never as an "Unhandled error event").
  let reported = false;
  redis.on("error", (error: Error) => {
    if (reported) return;
    reported = true;
    process.stderr.write(`[upstash-rest-server] Redis connection failed: ${error.message}\n`);
  });
  redis.on("ready", () => {
    reported = false;
  });
  const scripts = new ScriptRegistry();
  const expectedToken = digest(options.token);
  let requests = 0;

  const server = createServer((request, response) => {
    requests += 1;
    handle(request, response).catch((error: unknown) => {
      const status = error instanceof BadRequest ? 400 : 500;
      send(response, status, { error: error instanceof Error ? error.message : String(error) });
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!authorized(request.headers.authorization, expectedToken)) {
      send(response, 401, { error: "Unauthorized" });
      return;
    }
    const path = new URL(request.url ?? "/", "http://local").pathname.replace(/\/+$/, "");
    if (request.method !== "POST") throw new BadRequest(`${request.method} is not supported`);
    const encoding: Encoding =
      String(request.headers["upstash-encoding"]).toLowerCase() === "base64" ? "base64" : "utf8";
    const body = await readJson(request);

    if (path === "") {
      const result = await runOne(scripts.prepare(toCommand(body)), encoding);
      send(response, "error" in result ? 400 : 200, result);
    } else if (path === "/pipeline" || path === "/multi-exec") {
      if (!Array.isArray(body) || body.length === 0) {
        throw new BadRequest("expected a non-empty array of commands");
      }
      const commands = body.map((command) => scripts.prepare(toCommand(command)));
      send(response, 200, await runBatch(commands, encoding, path === "/multi-exec"));
    } else {
      send(response, 404, { error: `unknown path ${path}` });
    }
  }

  async function runOne(command: PreparedCommand, encoding: Encoding): Promise<UpstashResult> {
    const [name = "", ...args] = command.args;
    try {
      return toResult(null, await redis.callBuffer(name, ...args), encoding, command.mapReply);
    } catch (error) {
      // Redis' own error replies go to the client; anything else (connection lost) is a 500.
      if (error instanceof ReplyError) return toResult(error as Error, null, encoding);
      throw error;
    }
  }

  async function runBatch(
    commands: PreparedCommand[],
    encoding: Encoding,
    atomic: boolean,
  ): Promise<UpstashResult[]> {
    // ioredis writes a pipeline or a MULTI block to the socket in one go, so commands of
    // concurrent requests cannot end up inside this transaction.
    const batch = atomic ? redis.multi() : redis.pipeline();
    for (const { args } of commands) batch.callBuffer(args[0] ?? "", ...args.slice(1));
    // An error while queueing (e.g. an unknown command) aborts the whole MULTI:
    // exec() rejects with EXECABORT, which becomes the request's error.
    const replies = await batch.exec().catch((error: unknown) => {
      throw error instanceof ReplyError ? new BadRequest((error as Error).message) : error;
    });
    if (!replies) throw new BadRequest("transaction aborted");
    return replies.map(([error, reply], i) =>
      toResult(error, reply, encoding, commands[i]?.mapReply),
    );
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", resolve);
  });
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("upstash-rest-server: no address");

  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    get requests() {
      return requests;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await redis.quit();
    },
  };
}

/** Validates one command: a non-empty array whose first element names the command. */
function toCommand(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || typeof value[0] !== "string") {
    throw new BadRequest("a command is a non-empty JSON array starting with its name");
  }
  // Upper case also keeps ioredis' reply transformers (HGETALL → object) out of the way.
  const name = value[0].toUpperCase();
  if (REFUSED.has(name)) throw new BadRequest(`ERR command ${name} is not supported here`);
  const args = value
    .slice(1)
    .map((arg: unknown) => (typeof arg === "string" ? arg : JSON.stringify(arg)));
  return [name, ...args];
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

// Compares digests so the check takes the same time whatever the token's length.
function authorized(header: string | undefined, expected: Buffer): boolean {
  const match = /^Bearer (.+)$/.exec(header ?? "");
  return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), expected);
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BadRequest("request body too large");
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new BadRequest("request body is not JSON");
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) return;
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8079" },
      redis: { type: "string", default: "redis://127.0.0.1:6379" },
      token: { type: "string" },
    },
  });
  const token = values.token ?? process.env.UPSTASH_REDIS_REST_TOKEN;
  if (!token) throw new Error("pass --token T (or set UPSTASH_REDIS_REST_TOKEN)");
  const server = await startUpstashRestServer({
    port: Number(values.port),
    redisUrl: values.redis,
    token,
  });
  console.log(`upstash-rest-server listening on ${server.url} → ${values.redis}`);
  closeOnSignal(() => server.close());
}

runIfMain(import.meta.url, main);
