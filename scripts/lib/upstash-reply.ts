/**
 * Turns ioredis Buffer replies into Upstash REST JSON.
 *
 * The server always asks Redis for Buffer replies so binary values survive; with
 * `Upstash-Encoding: base64` (the @upstash/redis default) every string, at any depth, goes
 * out base64-encoded, otherwise as UTF-8 text. Integers stay JSON numbers, nil stays null.
 */
export type Encoding = "base64" | "utf8";

export type UpstashResult = { result: unknown } | { error: string };

export function encodeReply(reply: unknown, encoding: Encoding): unknown {
  if (reply === null || reply === undefined) return null;
  if (Buffer.isBuffer(reply)) return reply.toString(encoding);
  if (typeof reply === "string") return Buffer.from(reply, "utf8").toString(encoding);
  if (Array.isArray(reply)) return reply.map((item) => encodeReply(item, encoding));
  // An error nested inside an array reply (e.g. a Lua table holding {err=...}).
  if (reply instanceof Error) return encodeReply(reply.message, encoding);
  return reply; // number (also bigint-free: ioredis parses integers as numbers)
}

/** `[err, reply]` from an ioredis pipeline / transaction → one Upstash result entry. */
export function toResult(
  error: Error | null,
  reply: unknown,
  encoding: Encoding,
  mapReply?: (reply: unknown) => unknown,
): UpstashResult {
  if (error) return { error: error.message };
  const mapped = mapReply ? mapReply(decodeForMapping(reply)) : reply;
  return { result: encodeReply(mapped, encoding) };
}

// mapReply hooks work on text (a SHA), so hand them a string rather than a Buffer.
function decodeForMapping(reply: unknown): unknown {
  return Buffer.isBuffer(reply) ? reply.toString("utf8") : reply;
}
