import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CheckPolicyRequestSchema } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { grpcWebStatus, keyedFetch } from "./client.js";
import { seed } from "./seed.js";

const CHECK = "http://edge.test/fulcrum.policy.v1.PolicyService/CheckPolicy";

/** A gRPC-web frame: flags, big-endian length, message. */
function frame(flags: number, message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, message.byteLength);
  out.set(message, 5);
  return out;
}

// CheckPolicyRequest { policy_id: "payments", context: { tool_names: ["pay"] } }: the
// seeded tenant's payments policy asks for approval.
const CHECK_PAY = toBinary(
  CheckPolicyRequestSchema,
  create(CheckPolicyRequestSchema, { policyId: "payments", context: { toolNames: ["pay"] } }),
);

/** A gRPC-web call with the seeded check key (`{ "x-api-key": null }`: none). */
function grpcWeb(body: BodyInit, headers: Record<string, string | null> = {}) {
  return keyedFetch(CHECK, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", ...headers },
    body,
  });
}

describe("gRPC-web bad input gets InvalidArgument (3) in the gRPC-web form", () => {
  it("a valid frame is answered", async () => {
    const response = await grpcWeb(frame(0, CHECK_PAY));
    expect(response.status).toBe(200);
    expect(response.headers.get("grpc-status")).toBeNull(); // status in the trailers
    const body = new Uint8Array(await response.arrayBuffer());
    expect(body[0]).toBe(0); // a data frame, then the trailers frame
    const length = new DataView(body.buffer, body.byteOffset).getUint32(1);
    expect(body[5 + length]).toBe(0x80);
    expect(new TextDecoder().decode(body.subarray(5 + length + 5))).toMatch(/grpc-status: ?0/);
  });

  it("a body over 1 MiB", async () => {
    const response = await grpcWeb(frame(0, new Uint8Array(1_100_000)));
    expect(await grpcWebStatus(response)).toEqual({
      code: "3",
      message: expect.stringContaining("1 MiB"),
    });
  });

  it("a compressed frame, which this server cannot decompress", async () => {
    const response = await grpcWeb(frame(1, CHECK_PAY));
    expect(await grpcWebStatus(response)).toEqual({
      code: "3",
      message: expect.stringContaining("compressed"),
    });
  });

  it("an end-of-stream frame without a message", async () => {
    const response = await grpcWeb(frame(0x80, new Uint8Array(0)));
    expect((await grpcWebStatus(response)).code).toBe("3");
  });

  it("a frame whose length lies", async () => {
    const bad = frame(0, CHECK_PAY).subarray(0, 8);
    expect((await grpcWebStatus(await grpcWeb(bad))).code).toBe("3");
  });

  it("a message that is not protobuf", async () => {
    const response = await grpcWeb(frame(0, new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f])));
    expect(await grpcWebStatus(response)).toEqual({
      code: "3",
      message: expect.stringContaining("decode"),
    });
  });

  it("the base64 text variant, which is not served", async () => {
    const response = await grpcWeb("AAAAAAA=", { "content-type": "application/grpc-web-text" });
    expect((await grpcWebStatus(response)).code).toBe("3");
  });
});

describe("authentication errors in the gRPC-web form", () => {
  it("no key is Unauthenticated (16), naming x-api-key", async () => {
    const response = await grpcWeb(frame(0, CHECK_PAY), { "x-api-key": null });
    expect(response.status).toBe(200);
    expect(await grpcWebStatus(response)).toEqual({
      code: "16",
      message: expect.stringContaining("x-api-key"),
    });
  });

  it("a manage-only key is PermissionDenied (7)", async () => {
    const response = await grpcWeb(frame(0, CHECK_PAY), { "x-api-key": seed().manageKey });
    expect((await grpcWebStatus(response)).code).toBe("7");
  });

  it("a bad frame without a key is still InvalidArgument (3): framing is checked first", async () => {
    const response = await grpcWeb(frame(1, CHECK_PAY), { "x-api-key": null });
    expect((await grpcWebStatus(response)).code).toBe("3");
  });
});

describe("HTTP-level refusals carry a Connect error body", () => {
  it("native gRPC, which a Worker cannot serve, is 415", async () => {
    const response = await keyedFetch(CHECK, {
      method: "POST",
      headers: { "content-type": "application/grpc" },
      body: frame(0, CHECK_PAY),
    });
    expect(response.status).toBe(415);
    expect(((await response.json()) as { code: string }).code).toBe("invalid_argument");
  });

  it("GET on a procedure is 405 with Allow", async () => {
    const response = await keyedFetch(CHECK);
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("POST");
    const body = (await response.json()) as { code: string; message: string };
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("use POST");
  });

  it("a compressed body is refused with what to do instead", async () => {
    const response = await keyedFetch(CHECK, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      body: "{}",
    });
    expect(response.status).toBe(415);
    expect(((await response.json()) as { message: string }).message).toContain("uncompressed");
  });

  it("a streaming content type on a unary method lists the unary types", async () => {
    const response = await keyedFetch(CHECK, {
      method: "POST",
      headers: { "content-type": "application/connect+proto" },
      body: "",
    });
    expect(response.status).toBe(415);
    const message = ((await response.json()) as { message: string }).message;
    expect(message).toContain("application/json");
    expect(message).not.toContain("connect+proto;");
    expect(message).not.toMatch(/send one of:.*connect\+/);
  });

  it("CheckPolicy with an invalid policy_id names it (after authentication)", async () => {
    const response = await keyedFetch(CHECK, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"policy_id": "no spaces"}',
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { code: string; message: string };
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("policy_id: does not match regex pattern");
  });

  it("CheckPolicy without a key is 401 Unauthenticated", async () => {
    const response = await keyedFetch(CHECK, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": null },
      body: "{}",
    });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { code: string }).code).toBe("unauthenticated");
  });
});
