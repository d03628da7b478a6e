import type { DescMessage, DescMethod } from "@bufbuild/protobuf";
import { replay } from "./replay.js";

/**
 * A request message in JSON must be a JSON object. connect-es reports any other
 * JSON value (`null`, `[]`, `"x"`, `5`, `true`) as "cannot decode message
 * fulcrum.policy.v1.CheckPolicyRequest from JSON: Array(0)", which tells the
 * caller nothing they can act on. The first non-whitespace byte of the message
 * decides it, so this reads only as far as that byte and hands every byte on
 * unchanged: the body is still parsed once, by connect-es.
 *
 * Checked: Connect unary JSON (`application/json`) and gRPC-web JSON
 * (`application/grpc-web+json`, whose single request message is the first
 * frame). Connect streaming JSON is not: a refusal before the router reaches a
 * Connect streaming client only as "HTTP 400", worse than connect-es' own
 * end-of-stream error.
 */
export type JsonFraming = "plain" | "grpc-web";

/** How the request's JSON message is framed, or undefined when it is not checked here. */
export function jsonFraming(
  contentType: string,
  methodKind: DescMethod["methodKind"],
): JsonFraming | undefined {
  const type = contentType.split(";")[0]?.trim().toLowerCase();
  if (type === "application/json" && methodKind === "unary") return "plain";
  if (
    type === "application/grpc-web+json" &&
    (methodKind === "unary" || methodKind === "server_streaming")
  ) {
    return "grpc-web";
  }
  return undefined;
}

export interface JsonPreflight {
  /** Why the request is refused, or undefined to pass it on. */
  problem: string | undefined;
  /** The body as received (the bytes read here first, then the rest). */
  body: AsyncIterable<Uint8Array>;
}

const FRAME_HEADER_BYTES = 5;

/**
 * Reads the body up to the first non-whitespace byte of the JSON message. An
 * empty, whitespace-only, malformed, compressed or end-of-stream message is
 * passed on for connect-es to answer as before. Errors of the body stream (the
 * 1 MiB limit) propagate.
 */
export async function jsonPreflight(
  schema: DescMessage,
  framing: JsonFraming,
  body: AsyncIterable<Uint8Array>,
): Promise<JsonPreflight> {
  const rest = body[Symbol.asyncIterator]();
  const read: Uint8Array[] = [];
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  const start = framing === "grpc-web" ? FRAME_HEADER_BYTES : 0;
  let end = Number.POSITIVE_INFINITY; // where the message ends (the frame's length)
  let position = 0;
  const decide = (problem: string | undefined): JsonPreflight => ({
    problem,
    body: replay(read, rest),
  });

  for (;;) {
    const next = await rest.next();
    if (next.done) return decide(undefined);
    const chunk = next.value;
    read.push(chunk);
    for (let i = 0; i < chunk.byteLength; i++, position++) {
      const byte = chunk[i] as number;
      if (position < start) {
        header[position] = byte;
        // Only an uncompressed data frame holds a JSON message to look at.
        if (position === 0 && byte !== 0) return decide(undefined);
        if (position === start - 1) end = start + new DataView(header.buffer).getUint32(1);
        continue;
      }
      if (position >= end) return decide(undefined);
      if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
      const got = jsonKind(byte);
      if (got === undefined) return decide(undefined);
      const what = framing === "plain" ? "request body" : "request message";
      return decide(`${what} must be a JSON object (a ${schema.typeName}), got ${got}`);
    }
  }
}

/** What a JSON value that is not an object starts with; undefined for `{` and non-JSON. */
function jsonKind(byte: number): string | undefined {
  switch (String.fromCharCode(byte)) {
    case "n":
      return "null";
    case "t":
    case "f":
      return "a boolean";
    case '"':
      return "a string";
    case "[":
      return "an array";
    case "-":
      return "a number";
    default:
      return byte >= 0x30 && byte <= 0x39 ? "a number" : undefined;
  }
}
