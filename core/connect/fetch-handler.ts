import {
  ConnectError,
  type ConnectRouter,
  type ContextValues,
  createContextValues,
} from "@connectrpc/connect";
import {
  type UniversalHandler,
  universalServerRequestFromFetch,
  universalServerResponseToFetch,
} from "@connectrpc/connect/protocol";
import { binaryDecodeProblem, isBinary } from "./binary-preflight.js";
import { bodyTooLargeMessage, limitBody, MAX_REQUEST_BYTES } from "./body-limit.js";
import { type JsonPreflight, jsonFraming, jsonPreflight } from "./json-preflight.js";
import { invalidArgument, type WireProtocol, wireError, wireProtocolOf } from "./wire-errors.js";

const UNARY_CONTENT_TYPES =
  "application/json, application/proto, application/grpc-web+proto, application/grpc-web+json";
const STREAM_CONTENT_TYPES =
  "application/connect+json, application/connect+proto, application/grpc-web+proto, application/grpc-web+json";

/**
 * Serves a Connect router from a fetch `Request`: Connect, gRPC-web and
 * Connect-JSON over HTTP/1.1 (Workers cannot speak native gRPC's HTTP/2
 * trailers). Requests the router would refuse without a usable answer are
 * refused here first, in the caller's protocol. Returns undefined when no
 * procedure matches the path.
 */
export function createConnectFetchHandler(router: ConnectRouter) {
  const handlers = new Map<string, UniversalHandler>(
    router.handlers.map((handler) => [handler.requestPath, handler]),
  );

  /** `contextValues`: what the handlers read besides the request (e.g. the Worker's waitUntil). */
  return async (
    request: Request,
    contextValues: ContextValues = createContextValues(),
  ): Promise<Response | undefined> => {
    const handler = handlers.get(new URL(request.url).pathname);
    if (!handler) return undefined;
    const contentType = request.headers.get("content-type") ?? "";
    const protocol = wireProtocolOf(contentType);
    const refusal = refuse(handler, request, contentType, protocol);
    if (refusal) return refusal;

    const universal = universalServerRequestFromFetch(request, {});
    let body = universal.body;
    if (typeof body === "object" && body !== null && Symbol.asyncIterator in body) {
      body = limitBody(body as AsyncIterable<Uint8Array>);
      if (isBinary(contentType) && handler.method.methodKind !== "client_streaming") {
        let bytes: Uint8Array;
        try {
          bytes = await readAll(body as AsyncIterable<Uint8Array>);
        } catch {
          return wireError(protocol, invalidArgument(bodyTooLargeMessage));
        }
        const problem = binaryDecodeProblem(protocol, handler.method.input, bytes);
        if (problem) return wireError(protocol, invalidArgument(problem));
        body = oneChunk(bytes);
      }
      const framing = jsonFraming(contentType, handler.method.methodKind);
      if (framing) {
        let checked: JsonPreflight;
        try {
          checked = await jsonPreflight(
            handler.method.input,
            framing,
            body as AsyncIterable<Uint8Array>,
          );
        } catch (error) {
          if (error instanceof ConnectError) return wireError(protocol, error);
          throw error;
        }
        if (checked.problem) return wireError(protocol, invalidArgument(checked.problem));
        body = checked.body;
      }
    }
    const response = await handler({ ...universal, body, contextValues });
    return universalServerResponseToFetch(response);
  };
}

/** Method, content type, compression and declared size: checked before reading the body. */
function refuse(
  handler: UniversalHandler,
  request: Request,
  contentType: string,
  protocol: WireProtocol,
): Response | undefined {
  if (!handler.allowedMethods.includes(request.method)) {
    const allow = handler.allowedMethods.join(", ");
    return wireError(
      protocol,
      invalidArgument(`${request.method} is not allowed here; use ${allow}`),
      {
        status: 405,
        headers: { allow },
      },
    );
  }
  const textEncoded = contentType.toLowerCase().startsWith("application/grpc-web-text");
  if (textEncoded || !handler.supportedContentType(contentType)) {
    const accepted =
      handler.method.methodKind === "unary" ? UNARY_CONTENT_TYPES : STREAM_CONTENT_TYPES;
    const message = `unsupported content-type "${contentType}"; send one of: ${accepted}`;
    return wireError(protocol, invalidArgument(message), { status: 415 });
  }
  const encoding =
    request.headers.get("content-encoding") ??
    request.headers.get("connect-content-encoding") ??
    request.headers.get("grpc-encoding");
  if (encoding && encoding.toLowerCase() !== "identity") {
    const message = `request compression "${encoding}" is not supported: send the body uncompressed`;
    return wireError(protocol, invalidArgument(message), { status: 415 });
  }
  if (Number(request.headers.get("content-length") ?? "0") > MAX_REQUEST_BYTES) {
    return wireError(protocol, invalidArgument(bodyTooLargeMessage));
  }
  return undefined;
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
