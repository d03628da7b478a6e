import { Code, ConnectError } from "@connectrpc/connect";

/** Requests larger than this are refused before they are parsed. */
export const MAX_REQUEST_BYTES = 1024 * 1024;

export const bodyTooLarge = () =>
  new ConnectError(
    `request body exceeds the ${MAX_REQUEST_BYTES} byte (1 MiB) limit`,
    Code.InvalidArgument,
  );

/**
 * Counts bytes as the body streams in and fails the read past the limit, so a
 * chunked upload without Content-Length cannot get around it. The error is
 * raised inside Connect's body reader, which writes it back in whichever
 * protocol (Connect, gRPC-web) the caller speaks.
 */
export async function* limitBody(
  body: AsyncIterable<Uint8Array>,
  maxBytes: number = MAX_REQUEST_BYTES,
): AsyncIterable<Uint8Array> {
  let seen = 0;
  for await (const chunk of body) {
    seen += chunk.byteLength;
    if (seen > maxBytes) throw bodyTooLarge();
    yield chunk;
  }
}
