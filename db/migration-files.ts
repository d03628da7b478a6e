import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

/** One version on disk: `NNNN_<slug>.up.sql` and its `NNNN_<slug>.down.sql`. */
export interface MigrationFile {
  /** The four digits, e.g. "0001"; ordering is by this string. */
  version: string;
  /** The slug with `_` as spaces, e.g. "app role"; recorded in schema_migrations. */
  description: string;
  up: string;
  down: string;
  /** sha256 (hex) of the up file: an applied migration must never change. */
  checksum: string;
  upPath: string;
  downPath: string;
}

/** A layout or history problem; nothing has been changed in the database when thrown. */
export class MigrationError extends Error {
  override name = "MigrationError";
}

// Transaction control at the start of a line, as a statement of its own (a PL/pgSQL
// block's BEGIN has no semicolon after it).
const TRANSACTION_CONTROL = /^\s*(BEGIN|COMMIT|ROLLBACK|START\s+TRANSACTION)\s*;/im;

const FILE = /^(\d{4})_([a-z0-9]+(?:_[a-z0-9]+)*)\.(up|down)\.sql$/;

/**
 * Reads every migration in `dir`, sorted by version. Refuses (MigrationError) a `.sql` file
 * whose name does not follow the pattern, two slugs for one version, and an up without its
 * down or a down without its up: every version must be reversible before any is applied.
 *
 * @example const files = await loadMigrations("db/migrations");
 */
export async function loadMigrations(dir: string): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith(".sql")).sort();
  const byVersion = new Map<string, { slug: string; up?: string; down?: string }>();
  for (const name of names) {
    const match = FILE.exec(name);
    if (!match) {
      throw new MigrationError(
        `${join(dir, name)}: not a migration name (expected NNNN_slug.up.sql / NNNN_slug.down.sql, slug in lower case)`,
      );
    }
    const [, version = "", slug = "", kind] = match;
    const entry = byVersion.get(version) ?? { slug };
    if (entry.slug !== slug) {
      throw new MigrationError(
        `${dir}: version ${version} has two names: ${entry.slug} and ${slug}`,
      );
    }
    if (kind === "up") entry.up = name;
    else entry.down = name;
    byVersion.set(version, entry);
  }

  const files: MigrationFile[] = [];
  for (const [version, entry] of [...byVersion].sort(([a], [b]) => a.localeCompare(b))) {
    const base = `${version}_${entry.slug}`;
    if (!entry.up) throw new MigrationError(`${join(dir, base)}.down.sql has no .up.sql`);
    if (!entry.down) {
      throw new MigrationError(
        `${join(dir, base)}.up.sql has no .down.sql: every migration must be reversible`,
      );
    }
    const upPath = join(dir, entry.up);
    const downPath = join(dir, entry.down);
    const up = await readFile(upPath, "utf8");
    const down = await readFile(downPath, "utf8");
    for (const [path, sql] of [
      [upPath, up],
      [downPath, down],
    ] as const) {
      if (TRANSACTION_CONTROL.test(sql)) {
        throw new MigrationError(
          `${path}: no BEGIN/COMMIT/ROLLBACK in a migration, the runner wraps each file in one transaction`,
        );
      }
    }
    files.push({
      version,
      description: entry.slug.replaceAll("_", " "),
      up,
      down,
      checksum: createHash("sha256").update(up).digest("hex"),
      upPath,
      downPath,
    });
  }
  return files;
}
