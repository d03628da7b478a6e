/**
 * `/healthz` (JSON; 200 healthy, 503 otherwise) and `/metrics` (Prometheus text) on
 * NOTIFIER_HOST:NOTIFIER_PORT (127.0.0.1:8082), like the event processor's.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { PROMETHEUS_CONTENT_TYPE } from "../../../core/observability/metrics.js";
import type { Notifier } from "./notifier.js";

export function notifierApp(notifier: Pick<Notifier, "health" | "metrics">): Hono {
  const app = new Hono();
  app.get("/healthz", async (c) => {
    const health = await notifier.health();
    return c.json(health, health.status === "healthy" ? 200 : 503);
  });
  app.get("/metrics", (c) =>
    c.body(notifier.metrics.render(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE }),
  );
  return app;
}

export async function serveNotifierHttp(
  notifier: Pick<Notifier, "health" | "metrics">,
  host: string,
  port: number,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = serve({ fetch: notifierApp(notifier).fetch, hostname: host, port });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", () => resolve());
    server.once("error", reject);
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
