import { exports } from "cloudflare:workers";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { seed } from "./seed.js";

// `exports` is typed per project by `wrangler types`; we only need the default handler.
const worker = (exports as unknown as { default: Fetcher }).default;

/** The seeded tenant's `check` key: what every helper below sends unless told otherwise. */
export const CHECK_KEY = seed().checkKey;

/** Calls the Worker under test in-process (no network) through its default export, as is. */
// connect-web asks for `redirect: "error"`, which workerd refuses; nothing here redirects.
export const workerFetch: typeof fetch = (input, init) =>
  worker.fetch(new Request(input, { ...init, redirect: "manual" }));

/**
 * Which API key a helper sends as `x-api-key`: the seeded check key by default, another
 * secret, or `null` for none.
 */
export type ApiKeyOption = string | null;

function withApiKey(apiKey: ApiKeyOption): Interceptor[] {
  if (apiKey === null) return [];
  return [
    (next) => (req) => {
      req.header.set("x-api-key", apiKey);
      return next(req);
    },
  ];
}

export function workerTransport(
  options: { binary?: boolean; apiKey?: ApiKeyOption } = {},
): Transport {
  return createConnectTransport({
    baseUrl: "http://edge.test",
    fetch: workerFetch,
    useBinaryFormat: options.binary ?? false,
    interceptors: withApiKey(options.apiKey === undefined ? CHECK_KEY : options.apiKey),
  });
}

/** A Connect client of the Worker sending the check key (or `apiKey`; null: none). */
export function workerClient<S extends DescService>(
  service: S,
  options: { binary?: boolean; apiKey?: ApiKeyOption } = {},
): Client<S> {
  return createClient(service, workerTransport(options));
}

/** A gRPC-web client of the Worker sending the check key (or `apiKey`; null: none). */
export function grpcWebClient<S extends DescService>(
  service: S,
  options: { apiKey?: ApiKeyOption } = {},
): Client<S> {
  return createClient(
    service,
    createGrpcWebTransport({
      baseUrl: "http://edge.test",
      fetch: workerFetch,
      interceptors: withApiKey(options.apiKey === undefined ? CHECK_KEY : options.apiKey),
    }),
  );
}

/**
 * Request headers with the check key as `x-api-key`, then `overrides` applied (a null
 * value removes the header: `{ "x-api-key": null }` sends no key).
 */
export function keyedHeaders(overrides: Record<string, string | null> = {}): Headers {
  const headers = new Headers({ "x-api-key": CHECK_KEY });
  for (const [name, value] of Object.entries(overrides)) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  return headers;
}

/** `workerFetch` with the check key added (see {@link keyedHeaders} for `init.headers`). */
export function keyedFetch(
  input: string,
  init: Omit<RequestInit, "headers"> & { headers?: Record<string, string | null> } = {},
) {
  const { headers, ...rest } = init;
  return workerFetch(input, { ...rest, headers: keyedHeaders(headers) });
}

/** A raw Connect unary call with the check key, for requests no generated client would send. */
export function postJson(
  procedure: string,
  body: string,
  headers: Record<string, string | null> = {},
) {
  return keyedFetch(`http://edge.test/${procedure}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

/** POSTs JSON (with the check key) as a chunked stream without Content-Length, one chunk per element. */
export function postJsonStream(procedure: string, chunks: Iterable<Uint8Array>) {
  const iterator = chunks[Symbol.iterator]();
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = iterator.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
  });
  return workerFetch(`http://edge.test/${procedure}`, {
    method: "POST",
    headers: keyedHeaders({ "content-type": "application/json" }),
    body,
    // @ts-expect-error: `duplex` is required for streaming bodies but missing from the types.
    duplex: "half",
  });
}

/** `count` copies of `chunk`. */
export function* repeated(chunk: Uint8Array, count: number): Iterable<Uint8Array> {
  for (let i = 0; i < count; i++) yield chunk;
}

/**
 * The gRPC status of a gRPC-web response: from the headers (a trailers-only answer, as
 * the fetch-level refusals send) or else from the trailers frame that ends the body.
 * `code` is null when neither carries one.
 */
export async function grpcWebStatus(
  response: Response,
): Promise<{ code: string | null; message: string }> {
  const fromHeaders = response.headers.get("grpc-status");
  if (fromHeaders !== null) {
    return {
      code: fromHeaders,
      message: decodeURIComponent(response.headers.get("grpc-message") ?? ""),
    };
  }
  const body = new Uint8Array(await response.arrayBuffer());
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let at = 0; at + 5 <= body.byteLength; ) {
    const length = view.getUint32(at + 1);
    if ((body[at] ?? 0) & 0x80) {
      const trailers = new TextDecoder().decode(body.subarray(at + 5, at + 5 + length));
      const fields = new Map(
        trailers
          .split("\r\n")
          .filter((line) => line.includes(":"))
          .map((line) => {
            const colon = line.indexOf(":");
            return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
          }),
      );
      return {
        code: fields.get("grpc-status") ?? null,
        message: decodeURIComponent(fields.get("grpc-message") ?? ""),
      };
    }
    at += 5 + length;
  }
  return { code: null, message: "" };
}
