/**
 * The workers' `/healthz` (JSON; 200 healthy, 503 otherwise) and `/metrics` (Prometheus
 * text) server. Each worker answers its own health document; only the serving is shared.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { type Metrics, PROMETHEUS_CONTENT_TYPE } from "../../core/observability/metrics.js";

/** What a worker exposes over HTTP. */
export interface HealthSource {
  health(): Promise<{ status: "healthy" | "unhealthy" }>;
  metrics: Metrics;
}

export function healthApp(source: HealthSource): Hono {
  const app = new Hono();
  app.get("/healthz", async (c) => {
    const health = await source.health();
    return c.json(health, health.status === "healthy" ? 200 : 503);
  });
  app.get("/metrics", (c) =>
    c.body(source.metrics.render(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE }),
  );
  return app;
}

/** Resolves once listening (port 0 picks a free one; `url` says which). */
export async function serveHealthHttp(
  source: HealthSource,
  host: string,
  port: number,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = serve({ fetch: healthApp(source).fetch, hostname: host, port });
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
