import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/**
 * Four tiers (see README "Tests"):
 * - unit: in-process Node tests beside the code (core/, scripts/), no network;
 * - workerd: the edge Worker's own tests, run inside workerd by the Cloudflare
 *   Vitest plugin with the real wasm bundle;
 * - e2e: the Worker served by `wrangler dev` (started by the harness) and called
 *   over HTTP through the generated Connect client and through `buf curl`;
 * - integration: Node tests against the machine's real PostgreSQL and Redis, reached
 *   through the local Neon and Upstash stand-ins in scripts/lib/.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: [
            "core/**/*.test.ts",
            "scripts/**/*.test.ts",
            "functions/**/*.test.ts",
            "db/**/*.test.ts",
            "sdk/**/*.test.ts",
            "workers/**/*.test.ts",
          ],
          environment: "node",
        },
      },
      {
        plugins: [
          // A real Redis, seeded by the globalSetup (one tenant, its keys and a bundle of
          // the compiled fixtures), behind an Upstash REST server of this tier's own; the
          // setup provides its address, token and key namespace before the Worker starts,
          // and the WebSocket URL of a NATS of the tier's own (audit events).
          cloudflareTest(({ inject }) => {
            const redis = inject("workerdRedis");
            const nats = inject("workerdNats");
            return {
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: {
                  UPSTASH_REDIS_REST_URL: redis.restUrl,
                  UPSTASH_REDIS_REST_TOKEN: redis.restToken,
                  REDIS_KEY_NAMESPACE: redis.namespace,
                  // Generous: the REST server shares the busy Vitest process.
                  REDIS_TIMEOUT_MS: "5000",
                  // The tier's own NATS (JetStream + WebSocket), for the audit buffer.
                  NATS_WS_URL: nats.wsUrl,
                },
              },
            };
          }),
        ],
        test: {
          name: "workerd",
          include: ["edge/test/**/*.test.ts"],
          globalSetup: ["test/harness/workerd-setup.ts"],
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/harness/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // One Worker serves every e2e file; running them one at a time keeps
          // latency-sensitive checks honest on a 2-core machine.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/harness/integration-setup.ts"],
          testTimeout: 30_000,
          // The files share the machine's one PostgreSQL and Redis; one at a time keeps
          // their load (and any failure) easy to attribute.
          fileParallelism: false,
        },
      },
    ],
  },
});
