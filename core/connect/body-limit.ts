import { Code, ConnectError } from "@connectrpc/connect";

/** Requests larger than this are refused before they are parsed. */
export const MAX_REQUEST_BYTES = 1024 * 1024;

export const bodyTooLargeMessage = `request body exceeds the ${MAX_REQUEST_BYTES} byte (1 MiB) limit`;

/**
 * Counts bytes as the body streams in and fails the read past the limit, so a
 * chunked upload without Content-Length cannot get around it. Inside Connect's
 * body reader the error is written back in the caller's protocol.
 */
export async function* limitBody(
  body: AsyncIterable<Uint8Array>,
  maxBytes: number = MAX_REQUEST_BYTES,
): AsyncIterable<Uint8Array> {
  let seen = 0;
  for await (const chunk of body) {
    seen += chunk.byteLength;
    if (seen > maxBytes) throw new ConnectError(bodyTooLargeMessage, Code.InvalidArgument);
    yield chunk;
  }
}
