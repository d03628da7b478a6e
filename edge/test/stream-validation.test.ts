import { create, type DescMethodStreaming } from "@bufbuild/protobuf";
import { Code, ConnectError, type StreamRequest } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { validationInterceptor } from "../../core/connect/validation-interceptor.js";
import {
  EventStoreService,
  StreamEventsRequestSchema,
} from "../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { type ApiKeyOption, grpcWebClient, workerClient } from "./client.js";
import { seed } from "./seed.js";

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

// Clients sending the seeded check key unless given another (null: none).
const clients = {
  "Connect JSON": (apiKey?: ApiKeyOption) => workerClient(EventStoreService, { apiKey }),
  "Connect binary": (apiKey?: ApiKeyOption) =>
    workerClient(EventStoreService, { binary: true, apiKey }),
  "gRPC-web": (apiKey?: ApiKeyOption) => grpcWebClient(EventStoreService, { apiKey }),
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
    const error = await streamError(
      client().streamEvents({ tenantId: seed().tenantId, afterSequence: 7n }),
    );
    expect(error.code).toBe(Code.Unimplemented);
  });

  it("without a key, even an invalid request is only Unauthenticated", async () => {
    const error = await streamError(client(null).streamEvents({ tenantId: "no spaces allowed" }));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.rawMessage).toContain("x-api-key");
    expect(error.rawMessage).not.toContain("tenant_id");
  });

  it("a manage-only key is PermissionDenied", async () => {
    const error = await streamError(client(seed().manageKey).streamEvents({}));
    expect(error.code).toBe(Code.PermissionDenied);
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
