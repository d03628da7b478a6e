import { createServer, type Server, type Socket } from "node:net";
import { expect } from "vitest";
import { FulcrumError } from "../../core/errors/fulcrum-error.js";
import type { Logger } from "../../core/logging/logger.js";

/**
 * Faults for the tests of the edge's Redis readers (bundle source, key authenticator):
 * counting and cutting the requests @upstash/redis sends, a server that never
 * answers, a port where nothing listens.
 */

/** Counts (and on demand fails) the HTTP requests @upstash/redis sends to `prefix`. */
export interface FetchTap {
  requests: number;
  down: boolean;
  restore(): void;
}

export function tapFetch(prefix: string): FetchTap {
  const original = globalThis.fetch;
  const state: FetchTap = {
    requests: 0,
    down: false,
    restore: () => {
      globalThis.fetch = original;
    },
  };
  globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (url.startsWith(prefix)) {
      state.requests += 1;
      if (state.down) throw new TypeError("fetch failed (the test cut Redis off)");
    }
    return original(input, init);
  }) as typeof fetch;
  return state;
}

/** A TCP server that accepts connections and never answers: a hung Redis endpoint. */
export interface HungServer {
  url: string;
  close(): Promise<void>;
}

export async function startHungServer(): Promise<HungServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A URL on which nothing listens. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

export const silentLogger: Logger = { info: () => {}, error: () => {} };

/** The FulcrumError `call` fails with (fails the test when it succeeds or throws something else). */
export async function fulcrumFailure(call: Promise<unknown>): Promise<FulcrumError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, "expected the call to fail").toBeInstanceOf(FulcrumError);
  return error as FulcrumError;
}
