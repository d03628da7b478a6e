import { type DescMessage, fromBinary } from "@bufbuild/protobuf";
import type { WireProtocol } from "./wire-errors.js";

/**
 * connect-es reports an undecodable binary request message as Internal (its
 * serializer is shared with the client side, where a bad message is the
 * server's fault), and a compressed or empty gRPC-web frame with its own
 * codes. On a server all of these are the caller's fault, so binary unary
 * bodies are checked once here first and refused as InvalidArgument.
 */
export function isBinary(contentType: string): boolean {
  const type = contentType.split(";")[0]?.trim().toLowerCase();
  return (
    type === "application/proto" ||
    type === "application/grpc-web" ||
    type === "application/grpc-web+proto"
  );
}

/** The problem with a binary request body, or undefined when it decodes. */
export function binaryDecodeProblem(
  protocol: WireProtocol,
  schema: DescMessage,
  body: Uint8Array,
): string | undefined {
  let message = body;
  if (protocol === "grpc-web") {
    // One length-prefixed frame: flags (1 byte), length (4 bytes, big endian), message.
    const flags = body[0];
    if (flags === undefined || body.byteLength < 5) return "the request has no gRPC-web message";
    if (flags & 0x80) return "the request has no message, only an end-of-stream frame";
    if (flags & 0x01) {
      return "compressed gRPC-web messages are not supported: send the message uncompressed";
    }
    const length = new DataView(body.buffer, body.byteOffset).getUint32(1);
    if (5 + length !== body.byteLength) {
      return "the gRPC-web frame length does not match the request body";
    }
    message = body.subarray(5);
  }
  try {
    fromBinary(schema, message);
    return undefined;
  } catch (error) {
    return `cannot decode ${schema.typeName} from binary protobuf: ${(error as Error).message}`;
  }
}
