import { describe, expect, it } from "vitest";
import { grpcWebStatus, keyedFetch, postJson, postJsonStream, repeated } from "./client.js";

// Every request carries the seeded check key (client.ts): the shape checks come before
// authentication anyway, and what passes them must reach validation and the handler.
const CHECK = "fulcrum.policy.v1.PolicyService/CheckPolicy";
const EVALUATE = "fulcrum.policy.v1.PolicyService/EvaluatePolicy";
const STREAM_EVENTS = "fulcrum.eventstore.v1.EventStoreService/StreamEvents";

// Valid JSON, but not the object a request message must be.
const NOT_OBJECTS: [body: string, got: string][] = [
  ["null", "got null"],
  ["[]", "got an array"],
  ['"x"', "got a string"],
  ["5", "got a number"],
  ["-1.5", "got a number"],
  ["true", "got a boolean"],
  [" \n\tfalse ", "got a boolean"],
];

/** A gRPC-web (or Connect streaming) frame: flags, big-endian length, message. */
function frame(message: string, flags = 0): Uint8Array {
  const bytes = new TextEncoder().encode(message);
  const out = new Uint8Array(5 + bytes.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, bytes.byteLength);
  out.set(bytes, 5);
  return out;
}

function grpcWebJson(procedure: string, body: BodyInit) {
  return keyedFetch(`http://edge.test/${procedure}`, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+json" },
    body,
  });
}

describe("a Connect JSON body that is not an object", () => {
  it.each(NOT_OBJECTS)("%j is InvalidArgument asking for a JSON object", async (body, got) => {
    const response = await postJson(CHECK, body);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      code: "invalid_argument",
      message: `request body must be a JSON object (a fulcrum.policy.v1.CheckPolicyRequest), ${got}`,
    });
  });

  it("with a charset parameter is refused the same way", async () => {
    const response = await postJson(CHECK, "null", {
      "content-type": "application/json; charset=utf-8",
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toContain("JSON object");
  });

  it("split across chunks is still seen", async () => {
    const parts = ["  ", "\n", "[1, 2]"].map((part) => new TextEncoder().encode(part));
    const response = await postJsonStream(CHECK, parts);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toContain("got an array");
  });

  it("an object still reaches validation, which names the missing field", async () => {
    const body = (await (await postJson(EVALUATE, ' \n{"policy_id": "deletes"}')).json()) as {
      code: string;
      message: string;
    };
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("context: value is required");
  });

  it("an object is answered as before", async () => {
    const response = await postJson(CHECK, '{"context": {"tool_names": ["pay"]}}');
    expect(response.status).toBe(200);
    const body = (await response.json()) as { decision: string; allowed?: boolean };
    expect(body.decision).toBe("DECISION_REQUIRE_APPROVAL");
    expect(body.allowed).toBeUndefined(); // false: omitted in proto3 JSON
  });

  it("malformed JSON keeps connect-es' parse error", async () => {
    const body = (await (await postJson(CHECK, "{nope")).json()) as { message: string };
    expect(body.message).toContain("cannot decode");
    expect(body.message).not.toContain("JSON object");
  });

  it("an empty body is passed on to connect-es as before", async () => {
    const response = await postJson(CHECK, "");
    expect(response.status).toBe(400);
    const body = (await response.json()) as { code: string; message: string };
    expect(body.code).toBe("invalid_argument");
    expect(body.message).not.toContain("JSON object");
  });

  it("whitespace over 1 MiB without Content-Length is still refused by the body limit", async () => {
    const chunk = new TextEncoder().encode(" ".repeat(64 * 1024));
    const response = await postJsonStream(CHECK, repeated(chunk, 20));
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toContain("1 MiB");
  });
});

describe("a gRPC-web JSON message that is not an object", () => {
  it.each(NOT_OBJECTS)("%j is InvalidArgument (3) asking for a JSON object", async (body, got) => {
    const response = await grpcWebJson(CHECK, frame(body));
    expect(response.status).toBe(200);
    expect(await grpcWebStatus(response)).toEqual({
      code: "3",
      message: `request message must be a JSON object (a fulcrum.policy.v1.CheckPolicyRequest), ${got}`,
    });
  });

  it("on a server-streaming method too", async () => {
    const response = await grpcWebJson(STREAM_EVENTS, frame("null"));
    expect(await grpcWebStatus(response)).toEqual({
      code: "3",
      message: expect.stringContaining(
        "must be a JSON object (a fulcrum.eventstore.v1.StreamEventsRequest), got null",
      ),
    });
  });

  it("an object is answered as before", async () => {
    const response = await grpcWebJson(CHECK, frame('{"context": {"tool_names": ["pay"]}}'));
    expect(response.status).toBe(200);
    expect(response.headers.get("grpc-status")).toBeNull(); // status in the trailers
    const body = new Uint8Array(await response.arrayBuffer());
    expect(body[0]).toBe(0); // a data frame first
    const length = new DataView(body.buffer, body.byteOffset).getUint32(1);
    const message = JSON.parse(new TextDecoder().decode(body.subarray(5, 5 + length)));
    expect(message.decision).toBe("DECISION_REQUIRE_APPROVAL");
    const trailers = new TextDecoder().decode(body.subarray(5 + length + 5));
    expect(trailers).toMatch(/grpc-status: ?0/);
  });

  it("an end-of-stream frame is left to connect-es", async () => {
    const response = await grpcWebJson(CHECK, frame("null", 0x80));
    expect((await grpcWebStatus(response)).message).not.toContain("JSON object");
  });
});
