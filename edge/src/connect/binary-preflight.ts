import { type DescMessage, fromBinary } from "@bufbuild/protobuf";

/**
 * connect-es reports an undecodable binary request message as Internal (its
 * serializer is shared with the client side, where a bad message is the
 * server's fault). On a server it is the caller's fault, so binary request
 * bodies are decoded once here first and refused as InvalidArgument.
 */
export function isBinaryUnary(contentType: string): "connect" | "grpc-web" | undefined {
  const type = contentType.split(";")[0]?.trim().toLowerCase();
  if (type === "application/proto") return "connect";
  if (type === "application/grpc-web" || type === "application/grpc-web+proto") return "grpc-web";
  return undefined;
}

/** The problem with a binary request body, or undefined when it decodes. */
export function binaryDecodeProblem(
  protocol: "connect" | "grpc-web",
  schema: DescMessage,
  body: Uint8Array,
): string | undefined {
  let message = body;
  if (protocol === "grpc-web") {
    // One length-prefixed envelope: flags (1 byte), length (4 bytes, big endian), message.
    if (body.byteLength < 5) return "request is not a gRPC-web envelope";
    const length = new DataView(body.buffer, body.byteOffset).getUint32(1);
    if ((body[0] ?? 0) & 0x01) return undefined; // compressed: left to Connect to decode
    if (5 + length !== body.byteLength) return "gRPC-web envelope length does not match the body";
    message = body.subarray(5);
  }
  try {
    fromBinary(schema, message);
    return undefined;
  } catch (error) {
    return `cannot decode ${schema.typeName} from binary protobuf: ${(error as Error).message}`;
  }
}

export function invalidArgumentResponse(
  protocol: "connect" | "grpc-web",
  message: string,
): Response {
  if (protocol === "connect") {
    return Response.json({ code: "invalid_argument", message }, { status: 400 });
  }
  // gRPC-web "trailers-only" error: the status travels in the headers.
  return new Response(null, {
    status: 200,
    headers: {
      "content-type": "application/grpc-web+proto",
      "grpc-status": "3",
      "grpc-message": encodeURIComponent(message),
    },
  });
}
