import { sql } from "drizzle-orm";
import {
  check,
  customType,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  unique,
  uuid,
} from "drizzle-orm/pg-core";
import { policies } from "./policies.js";
import { sameTenantReference, tenantIsolation, tenantReference } from "./tenant-rls.js";
import { users } from "./users.js";

/** `bytea`, read and written as bytes (the driver's Buffer is a Uint8Array). */
export const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => "bytea",
  toDriver: (value) =>
    Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength),
  fromDriver: (value) => new Uint8Array(value.buffer, value.byteOffset, value.byteLength),
});

/**
 * Immutable: `fulcrum_app` has SELECT and INSERT only (no UPDATE, no DELETE).
 * `regoSource` is the module as written or as generated from `rules`; at most 256 KiB.
 * `definition` holds the versioned fields of the Policy message as JSON (an object); `wasm`
 * the compiled module (present exactly when COMPILED; `wasmSha256` is its SHA-256) and
 * `entrypoint` the rule to evaluate in it.
 */
export const policyVersions = pgTable(
  "policy_versions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    policyId: uuid("policy_id").notNull(),
    version: integer("version").notNull(),
    sha256: text("sha256").notNull(),
    sourceKind: text("source_kind", { enum: ["rego", "rules"] }).notNull(),
    regoSource: text("rego_source").notNull(),
    rules: jsonb("rules"),
    compileStatus: text("compile_status", { enum: ["COMPILED", "FAILED"] }).notNull(),
    compileErrors: jsonb("compile_errors").notNull().default([]),
    wasmSha256: text("wasm_sha256"),
    createdBy: uuid("created_by"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    definition: jsonb("definition").$type<Record<string, unknown>>().notNull(),
    changeSummary: text("change_summary").notNull().default(""),
    wasm: bytea("wasm"),
    entrypoint: text("entrypoint"),
  },
  (t) => [
    unique("policy_versions_tenant_id_policy_id_version_key").on(t.tenantId, t.policyId, t.version),
    sameTenantReference("policy_versions_policy_id_fkey", t.tenantId, t.policyId, policies),
    sameTenantReference("policy_versions_created_by_fkey", t.tenantId, t.createdBy, users),
    check("policy_versions_version_check", sql`${t.version} >= 1`),
    check("policy_versions_sha256_check", sql`${t.sha256} ~ '^[0-9a-f]{64}$'`),
    check("policy_versions_source_kind_check", sql`${t.sourceKind} IN ('rego', 'rules')`),
    check("policy_versions_rego_source_check", sql`octet_length(${t.regoSource}) <= 262144`),
    check(
      "policy_versions_rules_check",
      sql`${t.rules} IS NULL OR jsonb_typeof(${t.rules}) = 'array'`,
    ),
    check(
      "policy_versions_compile_status_check",
      sql`${t.compileStatus} IN ('COMPILED', 'FAILED')`,
    ),
    check("policy_versions_compile_errors_check", sql`jsonb_typeof(${t.compileErrors}) = 'array'`),
    check("policy_versions_wasm_sha256_check", sql`${t.wasmSha256} ~ '^[0-9a-f]{64}$'`),
    check(
      "policy_versions_source_kind_rules_check",
      sql`(${t.sourceKind} = 'rules') = (${t.rules} IS NOT NULL)`,
    ),
    check(
      "policy_versions_compiled_wasm_check",
      sql`(${t.compileStatus} = 'COMPILED') = (${t.wasmSha256} IS NOT NULL)`,
    ),
    check("policy_versions_definition_check", sql`jsonb_typeof(${t.definition}) = 'object'`),
    check("policy_versions_change_summary_check", sql`length(${t.changeSummary}) <= 4096`),
    check(
      "policy_versions_compiled_wasm_bytes_check",
      sql`(${t.compileStatus} = 'COMPILED') = (${t.wasm} IS NOT NULL)`,
    ),
    check(
      "policy_versions_wasm_sha256_matches_check",
      sql`${t.wasm} IS NULL OR ${t.wasmSha256} = encode(sha256(${t.wasm}), 'hex')`,
    ),
    check("policy_versions_entrypoint_check", sql`length(${t.entrypoint}) BETWEEN 1 AND 512`),
    tenantReference("policy_versions", t.tenantId),
    tenantIsolation(),
  ],
).enableRLS();
