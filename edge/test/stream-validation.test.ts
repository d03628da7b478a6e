import { create, type DescMethodStreaming } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type StreamRequest } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { describe, expect, it } from "vitest";
import { validationInterceptor } from "../../core/connect/validation-interceptor.js";
import {
  EventStoreService,
  StreamEventsRequestSchema,
} from "../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { workerClient, workerFetch } from "./client.js";

async function streamError(stream: AsyncIterable<unknown>): Promise<ConnectError> {
  try {
    for await (const _ of stream) {
      // StreamEvents sends nothing yet.
    }
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("the stream ended without an error");
}

const clients = {
  "Connect JSON": () => workerClient(EventStoreService),
  "Connect binary": () => workerClient(EventStoreService, true),
  "gRPC-web": () =>
    createClient(
      EventStoreService,
      createGrpcWebTransport({ baseUrl: "http://edge.test", fetch: workerFetch }),
    ),
};

describe.each(Object.entries(clients))("server-streaming StreamEvents over %s", (_, client) => {
  it("an invalid request is InvalidArgument naming the field", async () => {
    const error = await streamError(client().streamEvents({ tenantId: "no spaces allowed" }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toContain("tenant_id");
  });

  it("every violation is named", async () => {
    const error = await streamError(
      client().streamEvents({ executionId: "x".repeat(129), labels: { "": "v" } }),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toContain("execution_id");
    expect(error.rawMessage).toContain("labels");
  });

  it("a valid request reaches the method, which is Unimplemented", async () => {
    const error = await streamError(client().streamEvents({ tenantId: "demo", afterSequence: 7n }));
    expect(error.code).toBe(Code.Unimplemented);
  });
});

describe("client and bidi streams", () => {
  // No contract method streams requests yet: drive the interceptor directly.
  const method = {
    ...EventStoreService.method.streamEvents,
    methodKind: "bidi_streaming",
  } as unknown as DescMethodStreaming;

  it("are validated message by message as the handler reads them", async () => {
    const seen: string[] = [];
    async function* messages() {
      yield create(StreamEventsRequestSchema, { tenantId: "demo" });
      yield create(StreamEventsRequestSchema, { tenantId: "no spaces allowed" });
      yield create(StreamEventsRequestSchema, { tenantId: "never-read" });
    }
    const handler = validationInterceptor(async (req) => {
      for await (const message of (req as StreamRequest).message) {
        seen.push((message as unknown as { tenantId: string }).tenantId);
      }
      throw new Error("unreachable: the second message is invalid");
    });
    const error = await handler({
      stream: true,
      message: messages(),
      method,
    } as unknown as StreamRequest).catch((e) => ConnectError.from(e));
    expect(seen).toEqual(["demo"]);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toContain("tenant_id");
  });
});
