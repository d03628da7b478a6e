import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFunctionsServer } from "../../scripts/lib/functions-server.js";
import { freePort } from "../../scripts/lib/ports.js";
import { repoRoot } from "../../scripts/services/service.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";

// The deployable entry point as `npm run stack` runs it: functions/src/server.ts in its
// own process, configured by environment variables only, against the real stack.
let stack: FunctionsStack;

beforeAll(async () => {
  stack = await startFunctionsStack();
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

function environment(): Record<string, string> {
  const c = stack.config;
  return {
    FULCRUM_ENV: "test",
    DATABASE_URL: c.databaseUrl,
    PG_WS_PROXY_PORT: String(c.pgWsProxyPort),
    UPSTASH_REDIS_REST_URL: c.redisRestUrl,
    UPSTASH_REDIS_REST_TOKEN: c.redisRestToken,
    REDIS_KEY_NAMESPACE: c.redisKeyNamespace,
    OPA_BIN: c.opaBin,
  };
}

describe("functions/src/server.ts", () => {
  it("serves the management API on the given port once the database answers", async () => {
    const { adminKey } = await stack.createTenant();
    const server = await startFunctionsServer(await freePort(), environment());
    try {
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      const res = await fetch(`${server.url}/fulcrum.tenant.v1.UserService/ListUsers`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": adminKey },
        body: "{}",
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { users: { role: string }[] };
      expect(body.users.map((u) => u.role)).toEqual(["USER_ROLE_ADMIN"]);
    } finally {
      await server.stop();
    }
  }, 60_000);

  it("refuses to start on a bad environment, naming the variable and no secret", () => {
    const { DATABASE_URL: _, ...withoutDatabase } = environment();
    const tsx = join(repoRoot, "node_modules", "tsx", "dist", "cli.mjs");
    const result = spawnSync(process.execPath, [tsx, join(repoRoot, "functions/src/server.ts")], {
      env: { PATH: process.env.PATH ?? "", ...withoutDatabase },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("BAD_ENVIRONMENT");
    expect(result.stderr).toContain("DATABASE_URL is required");
    expect(result.stderr).not.toContain(stack.config.redisRestToken);
  }, 60_000);
});
