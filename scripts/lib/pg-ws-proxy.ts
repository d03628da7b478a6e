import { connect, type Socket } from "node:net";
import { parseArgs } from "node:util";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { closeOnSignal, runIfMain } from "./cli.js";

/**
 * A WebSocket-to-TCP proxy that lets `@neondatabase/serverless` (Pool / Client) reach a
 * plain PostgreSQL, as Neon's own proxy does in the cloud. It speaks the same URL shape
 * as Neon's `wsproxy`: `ws://host:port/v2?address=<pg host>:<pg port>`, one WebSocket per
 * PostgreSQL connection, binary frames carrying the raw wire protocol both ways.
 *
 * No npm package provides a working one and Neon's is a Docker image (platform notes),
 * hence this file. It is a development/test tool: it listens on loopback and only opens
 * TCP connections to the `allowedTargets` it was given, so it cannot be used to reach
 * arbitrary hosts.
 */
export interface PgWsProxyOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: "127.0.0.1";
  /** `host:port` pairs the proxy may connect to, e.g. `["127.0.0.1:5432"]`. */
  allowedTargets: readonly string[];
}

export interface PgWsProxy {
  port: number;
  /** `ws://127.0.0.1:<port>` */
  url: string;
  /** Stops listening and closes every open connection, both sides. */
  close(): Promise<void>;
}

/** WebSocket close codes used when the proxy ends a connection itself. */
export const CloseCode = {
  /** 1008 policy violation: target missing or not allowed. */
  refused: 1008,
  /** 1011 internal error: the TCP side failed. */
  upstreamError: 1011,
} as const;

// Pause reading from PostgreSQL while this many bytes wait to go out on the WebSocket,
// so a large result set sent to a slow client does not pile up in the proxy's memory.
const HIGH_WATER_BYTES = 1024 * 1024;

/**
 * Starts the proxy.
 *
 * @example
 * const proxy = await startPgWsProxy({ port: 0, allowedTargets: ["127.0.0.1:5432"] });
 * configureNeonForLocalProxy(neonConfig, proxy.port);
 */
export async function startPgWsProxy(options: PgWsProxyOptions): Promise<PgWsProxy> {
  const allowed = new Set(options.allowedTargets);
  const host = options.host ?? "127.0.0.1";
  const server = new WebSocketServer({ host, port: options.port ?? 0 });
  const sockets = new Set<Socket>();

  server.on("connection", (ws, request) => {
    const target = targetOf(request.url);
    if (!target || !allowed.has(target)) {
      // Close reasons are limited to 123 bytes by the WebSocket protocol.
      ws.close(CloseCode.refused, `target not allowed: ${String(target)}`.slice(0, 120));
      return;
    }
    const [targetHost, targetPort] = splitHostPort(target);
    const tcp = connect({ host: targetHost, port: targetPort });
    sockets.add(tcp);
    pipe(ws, tcp, () => sockets.delete(tcp));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("pg-ws-proxy: no address");

  return {
    port: address.port,
    url: `ws://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Wires one WebSocket to one TCP socket with backpressure in both directions. */
function pipe(ws: WebSocket, tcp: Socket, onDone: () => void): void {
  let pendingToWs = 0;

  ws.on("message", (data: RawData) => {
    // Writes made before the TCP connect completes are buffered by net.Socket.
    if (!tcp.write(toBuffer(data))) ws.pause();
  });
  tcp.on("drain", () => ws.resume());

  tcp.on("data", (chunk) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    pendingToWs += chunk.length;
    if (pendingToWs > HIGH_WATER_BYTES) tcp.pause();
    ws.send(chunk, { binary: true }, () => {
      pendingToWs -= chunk.length;
      if (pendingToWs <= HIGH_WATER_BYTES && tcp.isPaused()) tcp.resume();
    });
  });

  // Either side ending ends the other: the client sees a normal close when PostgreSQL
  // hangs up (e.g. after Terminate), and PostgreSQL sees EOF when the client goes away.
  tcp.on("end", () => ws.close(1000, "upstream closed"));
  tcp.on("error", (error) => {
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
      ws.close(CloseCode.upstreamError, `upstream error: ${error.message}`.slice(0, 120));
    }
  });
  tcp.on("close", () => {
    onDone();
    if (ws.readyState === WebSocket.OPEN) ws.close(1000, "upstream closed");
  });
  ws.on("close", () => tcp.end());
  ws.on("error", () => tcp.destroy());
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** `/v2?address=127.0.0.1:5432` → `127.0.0.1:5432`; undefined when absent. */
function targetOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  return new URL(url, "ws://proxy").searchParams.get("address") ?? undefined;
}

function splitHostPort(target: string): [string, number] {
  const colon = target.lastIndexOf(":");
  return [target.slice(0, colon), Number(target.slice(colon + 1))];
}

/** The settings of the Neon driver this proxy needs; the global `neonConfig` has them all. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "5488" },
      target: { type: "string", multiple: true, default: ["127.0.0.1:5432"] },
    },
  });
  const proxy = await startPgWsProxy({
    port: Number(values.port),
    allowedTargets: values.target,
  });
  console.log(`pg-ws-proxy listening on ${proxy.url} → ${values.target.join(", ")}`);
  closeOnSignal(() => proxy.close());
}

runIfMain(import.meta.url, main);
