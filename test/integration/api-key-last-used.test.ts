import { describe, expect, it } from "vitest";
import {
  type ApiKeyDatabase,
  type SeededKey,
  useApiKeyDatabase,
} from "../harness/api-key-database.js";
import type { DbConnection } from "../harness/fresh-database.js";

// fulcrum_authenticate_api_key(hash) (migration 0003) records a key's use in last_used_at:
// at most once a minute, never for a key it refuses, never in a read-only transaction and
// never by waiting for a lock. Called as fulcrum_app with no tenant set, in a fresh database
// seeded by test/harness/api-key-database.ts; what the function returns and who may call it
// is in api-key-authentication.test.ts.
let auth: ApiKeyDatabase;
let owner: DbConnection;
let app: DbConnection;
let keys: ApiKeyDatabase["keys"];
const authenticate = (hash: string | null) => auth.authenticate(hash);
const lastUsedAt = (key: SeededKey) => auth.lastUsedAt(key);
const setLastUsedAt = (key: SeededKey, secondsAgo: number | null) =>
  auth.setLastUsedAt(key, secondsAgo);
useApiKeyDatabase((opened) => {
  auth = opened;
  ({ owner, app, keys } = opened);
});

describe("last_used_at", () => {
  it("is set on first use, then at most once a minute", async () => {
    const key = keys.manage as SeededKey;
    await setLastUsedAt(key, null);
    await authenticate(key.hash);
    const first = await lastUsedAt(key);
    expect(first).toBeInstanceOf(Date);
    expect(Math.abs(Date.now() - (first as Date).getTime())).toBeLessThan(60_000);

    // Used again within the minute: unchanged.
    await authenticate(key.hash);
    await authenticate(key.hash);
    expect(await lastUsedAt(key)).toEqual(first);

    // 30 s ago: still unchanged.
    await setLastUsedAt(key, 30);
    const recent = await lastUsedAt(key);
    await authenticate(key.hash);
    expect(await lastUsedAt(key)).toEqual(recent);

    // 61 s ago: refreshed to now.
    await setLastUsedAt(key, 61);
    const stale = (await lastUsedAt(key)) as Date;
    await authenticate(key.hash);
    const refreshed = (await lastUsedAt(key)) as Date;
    expect(refreshed.getTime() - stale.getTime()).toBeGreaterThanOrEqual(60_000);
  });

  it("is not touched for a key the function refuses", async () => {
    for (const label of ["revoked", "expired", "disabledUser", "suspendedTenant"]) {
      await authenticate((keys[label] as SeededKey).hash);
      expect(await lastUsedAt(keys[label] as SeededKey), label).toBeNull();
    }
  });

  it("is left alone, without failing, in a read-only transaction", async () => {
    const key = keys.check as SeededKey;
    await setLastUsedAt(key, null);
    const client = await app.pool.connect();
    try {
      await client.query("BEGIN READ ONLY");
      const { rows } = await client.query("SELECT * FROM fulcrum_authenticate_api_key($1)", [
        key.hash,
      ]);
      expect(rows.map((r) => r.key_id)).toEqual([key.id]);
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    expect(await lastUsedAt(key)).toBeNull();
  });

  it("never waits for a key row another transaction holds locked", async () => {
    const key = keys.check as SeededKey;
    await setLastUsedAt(key, null);
    const locker = await owner.pool.connect();
    try {
      await locker.query("BEGIN");
      await locker.query("SELECT id FROM api_keys WHERE id = $1 FOR UPDATE", [key.id]);
      // Answers (the touch is skipped) instead of blocking until the lock is released; were
      // it to wait, lock_timeout would fail it (55P03) after 2 s instead of hanging the test.
      const client = await app.pool.connect();
      try {
        await client.query("BEGIN");
        await client.query("SET LOCAL lock_timeout = '2s'");
        const { rows } = await client.query("SELECT * FROM fulcrum_authenticate_api_key($1)", [
          key.hash,
        ]);
        expect(rows.map((r) => r.key_id)).toEqual([key.id]);
        await client.query("COMMIT");
      } finally {
        await client.query("ROLLBACK").catch(() => undefined);
        client.release();
        await locker.query("ROLLBACK");
      }
    } finally {
      locker.release();
    }
    expect(await lastUsedAt(key)).toBeNull();
    await authenticate(key.hash);
    expect(await lastUsedAt(key)).toBeInstanceOf(Date);
  });
});
