import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorToJson } from "@connectrpc/connect/protocol-connect";

/** The protocol a request speaks, so a refusal reaches the caller in a form its client reads. */
export type WireProtocol = "connect" | "grpc-web";

export function wireProtocolOf(contentType: string): WireProtocol {
  return contentType.toLowerCase().startsWith("application/grpc-web") ? "grpc-web" : "connect";
}

/**
 * Writes an error for a request refused before it reaches the Connect router
 * (wrong method or content type, oversized or undecodable body). Everything
 * the router itself answers goes through the error interceptor instead; both
 * use Connect's codes. `status` overrides the HTTP status for Connect (415,
 * 405), where the HTTP layer has a more precise word than the code.
 */
export function wireError(
  protocol: WireProtocol,
  error: ConnectError,
  options: { status?: number; headers?: Record<string, string> } = {},
): Response {
  if (protocol === "grpc-web") {
    // A gRPC-web "trailers-only" response: the status travels in the headers.
    return new Response(null, {
      status: 200,
      headers: {
        ...options.headers,
        "content-type": "application/grpc-web+proto",
        "grpc-status": String(error.code),
        "grpc-message": encodeURIComponent(error.rawMessage),
      },
    });
  }
  return new Response(JSON.stringify(errorToJson(error, undefined)), {
    status: options.status ?? codeToHttpStatus(error.code),
    headers: { ...options.headers, "content-type": "application/json" },
  });
}

export const invalidArgument = (message: string) => new ConnectError(message, Code.InvalidArgument);
