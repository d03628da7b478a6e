import type { ConnectRouter } from "@connectrpc/connect";
import {
  type UniversalHandler,
  universalServerRequestFromFetch,
  universalServerResponseToFetch,
} from "@connectrpc/connect/protocol";
import { binaryDecodeProblem, invalidArgumentResponse, isBinaryUnary } from "./binary-preflight.js";
import { bodyTooLarge, limitBody, MAX_REQUEST_BYTES } from "./body-limit.js";

const SUPPORTED_CONTENT_TYPES =
  "application/json, application/proto, application/connect+json, application/connect+proto, " +
  "application/grpc-web+proto, application/grpc-web+json";

/**
 * Serves a Connect router from a fetch `Request`: Connect, gRPC-web and
 * Connect-JSON over HTTP/1.1 (Workers cannot speak native gRPC's HTTP/2
 * trailers). Returns undefined when no procedure matches the path.
 */
export function createConnectFetchHandler(router: ConnectRouter) {
  const handlers = new Map<string, UniversalHandler>(
    router.handlers.map((handler) => [handler.requestPath, handler]),
  );

  return async (request: Request): Promise<Response | undefined> => {
    const url = new URL(request.url);
    const handler = handlers.get(url.pathname);
    if (!handler) return undefined;

    const declaredLength = Number(request.headers.get("content-length") ?? "0");
    if (declaredLength > MAX_REQUEST_BYTES) return jsonError(bodyTooLarge().rawMessage, 400);

    const contentType = request.headers.get("content-type") ?? "";
    if (request.method === "POST" && !handler.supportedContentType(contentType)) {
      // Connect answers 415 here; we add a Connect error body so a person with
      // curl learns what to send instead.
      return jsonError(
        `unsupported content-type "${contentType}"; send one of: ${SUPPORTED_CONTENT_TYPES}`,
        415,
      );
    }

    const universal = universalServerRequestFromFetch(request, {});
    let body = universal.body;
    if (typeof body === "object" && body !== null && Symbol.asyncIterator in body) {
      body = limitBody(body as AsyncIterable<Uint8Array>);
      const binary = request.method === "POST" ? isBinaryUnary(contentType) : undefined;
      if (binary && handler.method.methodKind !== "client_streaming") {
        let bytes: Uint8Array;
        try {
          bytes = await readAll(body as AsyncIterable<Uint8Array>);
        } catch (error) {
          return invalidArgumentResponse(binary, (error as Error).message);
        }
        const problem = binaryDecodeProblem(binary, handler.method.input, bytes);
        if (problem) return invalidArgumentResponse(binary, problem);
        body = oneChunk(bytes);
      }
    }
    const response = await handler({ ...universal, body });
    return universalServerResponseToFetch(response);
  };
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    length += chunk.byteLength;
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

async function* oneChunk(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

function jsonError(message: string, status: number): Response {
  return new Response(JSON.stringify({ code: "invalid_argument", message }), {
    status,
    headers: { "content-type": "application/json" },
  });
}
