import { describe, expect, it } from "vitest";
import { workerFetch } from "./client.js";

const CHECK = "http://edge.test/fulcrum.policy.v1.PolicyService/CheckPolicy";

/** A gRPC-web frame: flags, big-endian length, message. */
function frame(flags: number, message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, message.byteLength);
  out.set(message, 5);
  return out;
}

// CheckPolicyRequest { tenant_id: "test" } in binary protobuf.
const CHECK_TEST = new Uint8Array([0x0a, 0x04, 0x74, 0x65, 0x73, 0x74]);

function grpcWeb(body: BodyInit, headers: Record<string, string> = {}) {
  return workerFetch(CHECK, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", ...headers },
    body,
  });
}

/** gRPC-web callers read the status from grpc-status / grpc-message. */
function grpcStatus(response: Response) {
  return {
    code: response.headers.get("grpc-status"),
    message: decodeURIComponent(response.headers.get("grpc-message") ?? ""),
  };
}

describe("gRPC-web bad input gets InvalidArgument (3) in the gRPC-web form", () => {
  it("a valid frame is answered", async () => {
    const response = await grpcWeb(frame(0, CHECK_TEST));
    expect(response.status).toBe(200);
    expect(response.headers.get("grpc-status") ?? "0").toBe("0");
  });

  it("a body over 1 MiB", async () => {
    const response = await grpcWeb(frame(0, new Uint8Array(1_100_000)));
    expect(grpcStatus(response)).toEqual({ code: "3", message: expect.stringContaining("1 MiB") });
  });

  it("a compressed frame, which this server cannot decompress", async () => {
    const response = await grpcWeb(frame(1, CHECK_TEST));
    expect(grpcStatus(response)).toEqual({
      code: "3",
      message: expect.stringContaining("compressed"),
    });
  });

  it("an end-of-stream frame without a message", async () => {
    const response = await grpcWeb(frame(0x80, new Uint8Array(0)));
    expect(grpcStatus(response).code).toBe("3");
  });

  it("a frame whose length lies", async () => {
    const bad = frame(0, CHECK_TEST).subarray(0, 8);
    expect(grpcStatus(await grpcWeb(bad)).code).toBe("3");
  });

  it("a message that is not protobuf", async () => {
    const response = await grpcWeb(frame(0, new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f])));
    expect(grpcStatus(response)).toEqual({ code: "3", message: expect.stringContaining("decode") });
  });

  it("the base64 text variant, which is not served", async () => {
    const response = await grpcWeb("AAAAAAA=", { "content-type": "application/grpc-web-text" });
    expect(grpcStatus(response).code).toBe("3");
  });
});

describe("HTTP-level refusals carry a Connect error body", () => {
  it("native gRPC, which a Worker cannot serve, is 415", async () => {
    const response = await workerFetch(CHECK, {
      method: "POST",
      headers: { "content-type": "application/grpc" },
      body: frame(0, CHECK_TEST),
    });
    expect(response.status).toBe(415);
    expect(((await response.json()) as { code: string }).code).toBe("invalid_argument");
  });

  it("GET on a procedure is 405 with Allow", async () => {
    const response = await workerFetch(CHECK);
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("POST");
    const body = (await response.json()) as { code: string; message: string };
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("use POST");
  });

  it("a compressed body is refused with what to do instead", async () => {
    const response = await workerFetch(CHECK, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      body: "{}",
    });
    expect(response.status).toBe(415);
    expect(((await response.json()) as { message: string }).message).toContain("uncompressed");
  });

  it("a streaming content type on a unary method lists the unary types", async () => {
    const response = await workerFetch(CHECK, {
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

  it("CheckPolicy without any tenant names tenant_id", async () => {
    const response = await workerFetch(CHECK, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"policy_id": "test"}',
    });
    const body = (await response.json()) as { code: string; message: string };
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toMatch(/^tenant_id: value is required/);
  });
});
