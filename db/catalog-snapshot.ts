import type { SqlConnection } from "./migrate.js";

/** One list of rows per kind of catalog object; see catalogSnapshot. */
export type CatalogSnapshot = Record<keyof typeof QUERIES, Record<string, unknown>[]>;

/** The namespaces a migration can touch: not the system ones. */
const userNs = (column: string) =>
  `${column} NOT IN ('pg_catalog', 'information_schema') AND ${column} NOT LIKE 'pg_toast%' AND ${column} NOT LIKE 'pg_temp%'`;

const QUERIES = {
  schemas: `SELECT nspname, nspowner::regrole::text AS owner FROM pg_namespace
    WHERE ${userNs("nspname")} ORDER BY 1`,
  relations: `SELECT n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
      c.relowner::regrole::text AS owner
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE ${userNs("n.nspname")} ORDER BY 1, 2`,
  columns: `SELECT table_schema, table_name, column_name, ordinal_position, data_type, udt_name,
      character_maximum_length, numeric_precision, is_nullable, column_default, is_identity,
      is_generated, generation_expression
    FROM information_schema.columns WHERE ${userNs("table_schema")} ORDER BY 1, 2, 4`,
  indexes: `SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes
    WHERE ${userNs("schemaname")} ORDER BY 1, 2, 3`,
  constraints: `SELECT n.nspname, c.conrelid::regclass::text AS relation, c.conname, c.contype,
      pg_get_constraintdef(c.oid) AS definition
    FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
    WHERE ${userNs("n.nspname")} ORDER BY 1, 2, 3`,
  policies: `SELECT schemaname, tablename, policyname, permissive, roles::text[] AS roles, cmd,
      qual, with_check
    FROM pg_policies WHERE ${userNs("schemaname")} ORDER BY 1, 2, 3`,
  triggers: `SELECT t.tgrelid::regclass::text AS relation, t.tgname, pg_get_triggerdef(t.oid) AS def
    FROM pg_trigger t WHERE NOT t.tgisinternal ORDER BY 1, 2`,
  functions: `SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid) AS args,
      md5(pg_get_functiondef(p.oid)) AS body
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE ${userNs("n.nspname")} AND p.prokind IN ('f', 'p') ORDER BY 1, 2, 3`,
  enums: `SELECT t.typnamespace::regnamespace::text AS nspname, t.typname,
      array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
    FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY 1, 2 ORDER BY 1, 2`,
  extensions: `SELECT extname, extversion FROM pg_extension ORDER BY 1`,
  relationAcl: `SELECT c.oid::regclass::text AS object, a.grantee::regrole::text AS grantee,
      a.privilege_type AS privilege, a.is_grantable
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
      aclexplode(coalesce(c.relacl,
        acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))) a
    WHERE ${userNs("n.nspname")} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') ORDER BY 1, 2, 3`,
  schemaAcl: `SELECT n.nspname AS object, a.grantee::regrole::text AS grantee,
      a.privilege_type AS privilege, a.is_grantable
    FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
    WHERE ${userNs("n.nspname")} ORDER BY 1, 2, 3`,
  databaseAcl: `SELECT 'database' AS object, a.grantee::regrole::text AS grantee,
      a.privilege_type AS privilege, a.is_grantable
    FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
    WHERE d.datname = current_database() ORDER BY 2, 3`,
  defaultAcl: `SELECT d.defaclrole::regrole::text AS role,
      coalesce(d.defaclnamespace::regnamespace::text, '') AS schema,
      d.defaclobjtype::text AS object, a.grantee::regrole::text AS grantee,
      a.privilege_type AS privilege
    FROM pg_default_acl d, aclexplode(d.defaclacl) a ORDER BY 1, 2, 3, 4, 5`,
  // Cluster-wide, but what the application's security rests on.
  roles: `SELECT rolname, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolreplication,
      rolcanlogin
    FROM pg_roles WHERE rolname LIKE 'fulcrum%' ORDER BY 1`,
} as const;

/**
 * A comparable picture of one database's schema, read from pg_catalog: what a migration
 * can create or change. Two snapshots are equal when the schemas are, whatever order the
 * objects were created in. ACLs are exploded with their defaults filled in, so "never
 * granted" and "granted, then revoked" compare equal.
 *
 * @example expect(await catalogSnapshot(conn)).toEqual(before);
 */
export async function catalogSnapshot(conn: SqlConnection): Promise<CatalogSnapshot> {
  const snapshot: Partial<CatalogSnapshot> = {};
  for (const [name, sql] of Object.entries(QUERIES)) {
    snapshot[name as keyof typeof QUERIES] = (await conn.query(sql)).rows;
  }
  return snapshot as CatalogSnapshot;
}

/** The snapshot without the runner's own bookkeeping table, its index and constraint. */
export function withoutMigrationsTable(snapshot: CatalogSnapshot): CatalogSnapshot {
  const entries = Object.entries(snapshot).map(([name, rows]) => [
    name,
    rows.filter((row) => !JSON.stringify(row).includes("schema_migrations")),
  ]);
  return Object.fromEntries(entries) as CatalogSnapshot;
}
