import type { Pool } from "@neondatabase/serverless";

/**
 * Drops a test database once its clients are gone. `pool.end()` can resolve
 * before PostgreSQL has seen every Terminate; dropping WITH (FORCE) right
 * away would kill a session whose client still listens, and that client's
 * 57P01 error would surface as an unhandled error in an unrelated test.
 * Waiting also checks that closes pass through the proxy.
 */
export async function dropTempDatabase(admin: Pool, db: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const { rows } = await admin.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1",
      [db],
    );
    if (rows[0]?.n === 0) break;
    if (Date.now() > deadline) throw new Error(`sessions on ${db} still open 5 s after closing`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
}
