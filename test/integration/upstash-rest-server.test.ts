import { createHash, randomBytes, randomUUID } from "node:crypto";
import { Redis } from "@upstash/redis";
import IORedis from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import {
  startUpstashRestServer,
  type UpstashRestServer,
} from "../../scripts/lib/upstash-rest-server.js";

// The machine's Redis, reached by @upstash/redis only through the REST server; a direct
// ioredis connection checks what really landed in Redis and cleans up.
const REDIS_URL = inject("redisUrl");
const token = randomBytes(16).toString("hex");

let server: UpstashRestServer;
let direct: IORedis;
let redis: Redis;
/** Raw strings, no JSON parsing of values, to compare bytes exactly. */
let rawRedis: Redis;
let prefix: string;

beforeAll(async () => {
  server = await startUpstashRestServer({ port: 0, redisUrl: REDIS_URL, token });
  direct = new IORedis(REDIS_URL, { enableAutoPipelining: false });
  const common = { url: server.url, token, enableTelemetry: false, retry: false } as const;
  redis = new Redis(common);
  rawRedis = new Redis({ ...common, automaticDeserialization: false });
});

afterAll(async () => {
  await server?.close();
  await direct?.quit();
});

beforeEach(() => {
  prefix = `fulcrum:it:${randomUUID()}:`;
});

afterEach(async () => {
  const keys = await direct.keys(`${prefix}*`);
  if (keys.length > 0) await direct.del(...keys);
});

/** A raw REST call, for what the client hides (status codes, exact bytes). */
async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as unknown };
}

describe("@upstash/redis through upstash-rest-server", () => {
  it("sets and gets unicode and control-character strings unchanged", async () => {
    const values = ["héllo 日本 🚀", "line\nbreak\ttab\u0000nul\u0001\u007f", "  spaces  ", ""];
    for (const [i, value] of values.entries()) {
      await rawRedis.set(`${prefix}s${i}`, value);
      expect(await rawRedis.get(`${prefix}s${i}`)).toBe(value);
      // What Redis holds is the UTF-8 of the value, not some re-encoding of it.
      expect(await direct.getBuffer(`${prefix}s${i}`)).toEqual(Buffer.from(value, "utf8"));
    }
    // The default client JSON-parses values, as Upstash's does.
    await redis.set(`${prefix}json`, { a: 1, b: ["x"] });
    expect(await redis.get(`${prefix}json`)).toEqual({ a: 1, b: ["x"] });
  });

  it("returns non-UTF-8 bytes exactly under Upstash-Encoding: base64", async () => {
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x41, 0xc3]);
    await direct.set(`${prefix}bin`, bytes);
    await direct.rpush(`${prefix}list`, bytes, "plain");
    const one = await post("/", ["GET", `${prefix}bin`], { "upstash-encoding": "base64" });
    expect(one).toEqual({ status: 200, body: { result: bytes.toString("base64") } });
    // Nested: every string inside an array reply is encoded too.
    const nested = await post("/", ["LRANGE", `${prefix}list`, "0", "-1"], {
      "upstash-encoding": "base64",
    });
    expect(nested.body).toEqual({
      result: [bytes.toString("base64"), Buffer.from("plain").toString("base64")],
    });
    // Without the header: plain text, integers as JSON numbers.
    expect((await post("/", ["LLEN", `${prefix}list`])).body).toEqual({ result: 2 });
  });

  it("runs a pipeline with per-command results, errors included", async () => {
    const p = redis.pipeline();
    p.set(`${prefix}a`, "1");
    p.incr(`${prefix}a`);
    p.get(`${prefix}a`);
    expect(await p.exec()).toEqual(["OK", 2, 2]);

    const raw = await post("/pipeline", [
      ["SET", `${prefix}b`, "x"],
      ["INCR", `${prefix}b`],
      ["GET", `${prefix}b`],
    ]);
    expect(raw.status).toBe(200);
    expect(raw.body).toEqual([
      { result: "OK" },
      { error: "ERR value is not an integer or out of range" },
      { result: "x" },
    ]);
  });

  it("runs multi-exec as one MULTI/EXEC transaction", async () => {
    const tx = redis.multi();
    tx.set(`${prefix}t`, "v");
    tx.incr(`${prefix}n`);
    tx.get(`${prefix}t`);
    expect(await tx.exec()).toEqual(["OK", 1, "v"]);

    // Concurrent transactions never interleave: each sees its two INCRs back to back.
    const replies = await Promise.all(
      Array.from({ length: 20 }, () => {
        const t = redis.multi();
        t.incr(`${prefix}c`);
        t.incr(`${prefix}c`);
        return t.exec<[number, number]>();
      }),
    );
    for (const [first, second] of replies) expect(second).toBe(first + 1);

    // A command that cannot be queued aborts the whole transaction: nothing is applied.
    const aborted = await post("/multi-exec", [["SET", `${prefix}never`, "x"], ["NOSUCHCMD"]]);
    expect(aborted.status).toBe(400);
    expect(String((aborted.body as { error: string }).error)).toMatch(/EXECABORT/);
    expect(await direct.exists(`${prefix}never`)).toBe(0);
  });

  it("handles hashes", async () => {
    const key = `${prefix}h`;
    expect(await redis.hset(key, { name: "Zoë", plan: "pro", count: 1 })).toBe(3);
    expect(await redis.hget(key, "name")).toBe("Zoë");
    expect(await redis.hincrby(key, "count", 4)).toBe(5);
    expect(await redis.hgetall(key)).toEqual({ name: "Zoë", plan: "pro", count: 5 });
    expect(await redis.hdel(key, "plan")).toBe(1);
    expect(await redis.hkeys(key)).toEqual(["name", "count"]);
  });

  it("handles expire and ttl", async () => {
    const key = `${prefix}e`;
    await redis.set(key, "v", { ex: 100 });
    const ttl = await redis.ttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(100);
    expect(await redis.expire(key, 5)).toBe(1);
    expect(await redis.ttl(key)).toBeLessThanOrEqual(5);
    expect(await redis.persist(key)).toBe(1);
    expect(await redis.ttl(key)).toBe(-1);
    expect(await redis.ttl(`${prefix}missing`)).toBe(-2);
  });

  it("surfaces a Redis error reply as an error (HTTP 400)", async () => {
    await redis.set(`${prefix}str`, "v");
    await expect(redis.lpush(`${prefix}str`, "x")).rejects.toThrow(/WRONGTYPE/);
    const raw = await post("/", ["LPUSH", `${prefix}str`, "x"]);
    expect(raw.status).toBe(400);
  });

  it("rejects a wrong or missing token on every path", async () => {
    const intruder = new Redis({ url: server.url, token: "wrong", enableTelemetry: false });
    await expect(intruder.get(`${prefix}a`)).rejects.toThrow(/Unauthorized/);
    for (const path of ["/", "/pipeline", "/multi-exec"]) {
      const response = await fetch(`${server.url}${path}`, {
        method: "POST",
        body: JSON.stringify(path === "/" ? ["PING"] : [["PING"]]),
      });
      expect(response.status).toBe(401);
      const wrong = await post(path, [["PING"]], { authorization: "Bearer wrong" });
      expect(wrong.status).toBe(401);
    }
  });
});

describe("scripts with an Upstash-only shebang flag (as @upstash/ratelimit sends)", () => {
  // Unique per test so Redis has never seen it: the first EVALSHA must miss.
  const scriptFor = (tag: string) =>
    `#!lua flags=allow-key-locking\n-- ${tag}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])`;
  const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");

  it("passes NOSCRIPT through, then EVAL and EVALSHA with the client's SHA work", async () => {
    const script = scriptFor(prefix);
    const key = `${prefix}counter`;
    await expect(redis.evalsha(sha1(script), [key], ["1"])).rejects.toThrow(/NOSCRIPT/);
    expect(await redis.eval(script, [key], ["5"])).toBe(5);
    expect(await redis.evalsha(sha1(script), [key], ["2"])).toBe(7);
  });

  it("falls back from EVALSHA to EVAL the way the client's Script does", async () => {
    const script = redis.createScript<number>(scriptFor(prefix));
    const key = `${prefix}counter`;
    expect(await script.exec([key], ["3"])).toBe(3); // NOSCRIPT → EVAL
    expect(await script.exec([key], ["3"])).toBe(6); // EVALSHA hit
  });

  it("answers SCRIPT LOAD and SCRIPT EXISTS with the client's SHA", async () => {
    const script = scriptFor(prefix);
    expect(await redis.scriptLoad(script)).toBe(sha1(script));
    expect(await redis.scriptExists(sha1(script))).toEqual([1]);
    expect(await redis.evalsha(sha1(script), [`${prefix}counter`], ["9"])).toBe(9);
  });

  it("still rejects a script Redis itself refuses, with Redis' message", async () => {
    await expect(redis.eval("return nosuchfunction()", [], [])).rejects.toThrow(/ERR/);
  });
});
