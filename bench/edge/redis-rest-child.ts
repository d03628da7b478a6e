/**
 * The edge's own Upstash-REST server (scripts/lib/upstash-rest-server.ts) in a
 * process of its own, so it neither shares the load generator's event loop nor
 * hides in its CPU figures. Started by redis-rest.ts with an IPC channel:
 *
 *   env   BENCH_REDIS_URL, BENCH_REDIS_TOKEN
 *   → parent  {type: "ready", url}                once listening
 *   ← parent  {type: "count"}  → {type: "count", requests}
 *   ← parent  {type: "close"}  (or the parent going away): close and exit
 */
import { startUpstashRestServer } from "../../scripts/lib/upstash-rest-server.js";

type Message = { type: "count" } | { type: "close" };

async function main(): Promise<void> {
  const redisUrl = process.env.BENCH_REDIS_URL;
  const token = process.env.BENCH_REDIS_TOKEN;
  if (!redisUrl || !token || !process.send) {
    throw new Error("start this through bench/edge/redis-rest.ts (IPC, BENCH_REDIS_URL/TOKEN)");
  }
  const server = await startUpstashRestServer({ port: 0, redisUrl, token });
  let closing = false;
  const close = () => {
    if (closing) return;
    closing = true;
    void server.close().finally(() => process.exit(0));
  };
  process.on("message", (message: Message) => {
    if (message.type === "count") process.send?.({ type: "count", requests: server.requests });
    else if (message.type === "close") close();
  });
  process.on("disconnect", close);
  process.on("SIGTERM", close);
  process.on("SIGINT", close);
  process.send({ type: "ready", url: server.url });
}

main().catch((error: unknown) => {
  process.stderr.write(`redis-rest-child: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
