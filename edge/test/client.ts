import { exports } from "cloudflare:workers";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

// `exports` is typed per project by `wrangler types`; we only need the default handler.
const worker = (exports as unknown as { default: Fetcher }).default;

/** Calls the Worker under test in-process (no network) through its default export. */
// connect-web asks for `redirect: "error"`, which workerd refuses; nothing here redirects.
export const workerFetch: typeof fetch = (input, init) =>
  worker.fetch(new Request(input, { ...init, redirect: "manual" }));

export function workerTransport(options: { binary?: boolean } = {}): Transport {
  return createConnectTransport({
    baseUrl: "http://edge.test",
    fetch: workerFetch,
    useBinaryFormat: options.binary ?? false,
  });
}

export function workerClient<S extends DescService>(service: S, binary = false): Client<S> {
  return createClient(service, workerTransport({ binary }));
}

/** A raw Connect unary call, for requests no generated client would send. */
export function postJson(procedure: string, body: string, headers: Record<string, string> = {}) {
  return workerFetch(`http://edge.test/${procedure}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

/** POSTs JSON as a chunked stream without Content-Length, one chunk per element. */
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
    headers: { "content-type": "application/json" },
    body,
    // @ts-expect-error: `duplex` is required for streaming bodies but missing from the types.
    duplex: "half",
  });
}

/** `count` copies of `chunk`. */
export function* repeated(chunk: Uint8Array, count: number): Iterable<Uint8Array> {
  for (let i = 0; i < count; i++) yield chunk;
}
