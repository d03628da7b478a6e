import type { NeonConfig, WebSocketConstructor } from "@neondatabase/serverless";
import { WebSocket } from "ws";

/**
 * Client-side settings for reaching a local PostgreSQL through the project's
 * WebSocket proxy (scripts/lib/pg-ws-proxy.ts) instead of Neon's endpoint.
 * Lives with the database client because it configures the driver, not the
 * proxy; production connections never call it.
 */
export type NeonProxySettings = Pick<
  NeonConfig,
  "webSocketConstructor" | "wsProxy" | "useSecureWebSocket" | "pipelineTLS" | "pipelineConnect"
>;

/**
 * Points the Neon driver at this proxy: `ws` as the WebSocket (Node has no usable global
 * one for this), plain `ws://`, and no pipelining — pipelineTLS needs TLS, and
 * pipelineConnect only works with cleartext passwords while local PostgreSQL uses SCRAM.
 *
 * @example configureNeonForLocalProxy(neonConfig, proxy.port);
 */
export function configureNeonForLocalProxy(config: NeonProxySettings, proxyPort: number): void {
  config.webSocketConstructor = WebSocket as unknown as WebSocketConstructor;
  config.wsProxy = (host: string, port: number | string) =>
    `127.0.0.1:${proxyPort}/v2?address=${host}:${port}`;
  config.useSecureWebSocket = false;
  config.pipelineTLS = false;
  config.pipelineConnect = false;
}
