import { randomBytes } from "node:crypto";
import { Client, neonConfig, Pool } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { WebSocket } from "ws";
import { configureNeonForLocalProxy } from "../../db/neon-local-proxy.js";
import { CloseCode, type PgWsProxy, startPgWsProxy } from "../../scripts/lib/pg-ws-proxy.js";
import { dropTempDatabase } from "../harness/temp-database.js";

// The machine's PostgreSQL (trust auth), reached only through the proxy, as the Neon
// driver reaches Neon in the cloud.
const PG = inject("pgAddress");
const database = `fulcrum_it_${randomBytes(6).toString("hex")}`;

let proxy: PgWsProxy;
let admin: Pool;
let pool: Pool;

beforeAll(async () => {
  proxy = await startPgWsProxy({ port: 0, host: "127.0.0.1", allowedTargets: [PG] });
  configureNeonForLocalProxy(neonConfig, proxy.port);
  admin = new Pool({ connectionString: `postgres://postgres@${PG}/postgres` });
  await admin.query(`CREATE DATABASE ${database}`);
  pool = new Pool({ connectionString: `postgres://postgres@${PG}/${database}`, max: 4 });
  await pool.query("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)");
});

afterAll(async () => {
  await pool?.end();
  if (admin) {
    await dropTempDatabase(admin, database);
    await admin.end();
  }
  await proxy?.close();
});

describe("Neon driver through pg-ws-proxy", () => {
  it("runs queries on the real PostgreSQL", async () => {
    const { rows } = await pool.query("SELECT current_database() AS db, 1 + 1 AS two");
    expect(rows).toEqual([{ db: database, two: 2 }]);
  });

  it("round-trips parameters with quotes, backslashes and unicode", async () => {
    const value = `O'Brien "quoted" \\ back\\slash; DROP TABLE note; -- ü 日本 🚀 \t tab`;
    await pool.query("INSERT INTO note (id, body) VALUES ($1, $2)", [100, value]);
    const { rows } = await pool.query("SELECT body FROM note WHERE id = $1", [100]);
    expect(rows[0]?.body).toBe(value);
  });

  it("commits a transaction", async () => {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("INSERT INTO note VALUES (1, 'kept')");
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    // Read on a fresh connection so the check does not see its own uncommitted write.
    const other = new Client(`postgres://postgres@${PG}/${database}`);
    await other.connect();
    const { rows } = await other.query("SELECT body FROM note WHERE id = 1");
    await other.end();
    expect(rows).toEqual([{ body: "kept" }]);
  });

  it("rolls a transaction back", async () => {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("INSERT INTO note VALUES (2, 'discarded')");
      const inside = await client.query("SELECT count(*)::int AS n FROM note WHERE id = 2");
      expect(inside.rows[0]?.n).toBe(1);
      await client.query("ROLLBACK");
    } finally {
      client.release();
    }
    const { rows } = await pool.query("SELECT count(*)::int AS n FROM note WHERE id = 2");
    expect(rows[0]?.n).toBe(0);
  });

  it("keeps set_config(..., true) inside its transaction", async () => {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT set_config('fulcrum.tenant', $1, true)", ["tenant_a"]);
      const inside = await client.query("SELECT current_setting('fulcrum.tenant', true) AS t");
      expect(inside.rows[0]?.t).toBe("tenant_a");
      await client.query("COMMIT");
      // Same connection, after COMMIT: the transaction-local value is gone.
      const after = await client.query("SELECT current_setting('fulcrum.tenant', true) AS t");
      expect(after.rows[0]?.t ?? "").toBe("");
    } finally {
      client.release();
    }
  });

  it("returns a SQL error with its SQLSTATE, and the pool keeps working", async () => {
    await expect(pool.query("SELEC 1")).rejects.toMatchObject({ code: "42601" });
    await expect(pool.query("SELECT * FROM no_such_table")).rejects.toMatchObject({
      code: "42P01",
    });
    const { rows } = await pool.query("SELECT 'still here' AS s");
    expect(rows[0]?.s).toBe("still here");
  });

  it("streams a result larger than its buffers (backpressure path)", async () => {
    // ~16 MB of rows: more than the proxy's 1 MB high-water mark many times over.
    const { rows } = await pool.query(
      "SELECT i, repeat('x', 2000) AS pad FROM generate_series(1, 8000) AS i",
    );
    expect(rows).toHaveLength(8000);
    expect(rows[7999]).toEqual({ i: 8000, pad: "x".repeat(2000) });
  });

  it("serves concurrent connections independently", async () => {
    const results = await Promise.all(
      [1, 2, 3, 4].map((n) => pool.query("SELECT $1::int * 10 AS v, pg_sleep(0.05)", [n])),
    );
    expect(results.map((r) => r.rows[0]?.v)).toEqual([10, 20, 30, 40]);
  });

  it("refuses a target outside its allow-list, with a close reason", async () => {
    const ws = new WebSocket(`${proxy.url}/v2?address=127.0.0.1:6379`);
    const closed = await new Promise<{ code: number; reason: string }>((resolve) => {
      ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    expect(closed).toEqual({
      code: CloseCode.refused,
      reason: "target not allowed: 127.0.0.1:6379",
    });

    // And the driver's connect fails rather than hanging.
    const client = new Client("postgres://postgres@127.0.0.1:6379/postgres");
    client.on("error", () => {}); // the socket error is also emitted; the promise carries it
    await expect(client.connect()).rejects.toThrow();
  });

  it("refuses a request without a target", async () => {
    const ws = new WebSocket(`${proxy.url}/v2`);
    const code = await new Promise<number>((resolve) => ws.on("close", (c) => resolve(c)));
    expect(code).toBe(CloseCode.refused);
  });
});
