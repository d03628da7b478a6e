/**
 * The policy tables as the management API reads and writes them, inside a caller's
 * `inTenant` transaction (row-level security limits every statement to the caller's
 * tenant, so another tenant's policy is simply not found). Archived policies are
 * deleted policies: no lookup here returns them.
 */
import { and, desc, eq, lt, ne, sql } from "drizzle-orm";
import type { PgUpdateSetSource } from "drizzle-orm/pg-core";
import { FulcrumError, notFound } from "../../../core/errors/fulcrum-error.js";
import { policies, policyActivations, policyVersions } from "../../../db/schema/index.js";
import type { Tx } from "../db/tenant-transaction.js";
import { requireUuid } from "../tenancy/ids.js";

export type PolicyRow = typeof policies.$inferSelect;
/** Columns to set on a policy row (values or SQL expressions). */
export type PolicySet = PgUpdateSetSource<typeof policies>;
export type VersionRow = Omit<typeof policyVersions.$inferSelect, "wasm">;
export type VersionWithWasm = typeof policyVersions.$inferSelect;

/**
 * A policy id from a request, lower-cased (tenancy/ids.ts checks every id field).
 *
 * @throws FulcrumError Invalid naming `field` when `id` is not a UUID.
 */
export function requirePolicyId(id: string, field = "policy_id"): string {
  return requireUuid(field, id);
}

export const policyNotFound = (id: string) => notFound(`policy ${id} not found`);

/**
 * A tenant id in a request body may only repeat the caller's: it never selects another
 * tenant (the tenant is the API key's), and naming one is PermissionDenied.
 */
export function requireOwnTenant(callerTenantId: string, requested: string, field: string): void {
  if (requested !== "" && requested.toLowerCase() !== callerTenantId.toLowerCase()) {
    throw new FulcrumError(
      "PermissionDenied",
      `${field} names another tenant; an API key manages only its own tenant (leave ${field} empty)`,
      { field },
    );
  }
}

/** The version columns but the wasm (listings never need the module). */
export const versionColumns = {
  id: policyVersions.id,
  tenantId: policyVersions.tenantId,
  policyId: policyVersions.policyId,
  version: policyVersions.version,
  sha256: policyVersions.sha256,
  sourceKind: policyVersions.sourceKind,
  regoSource: policyVersions.regoSource,
  rules: policyVersions.rules,
  compileStatus: policyVersions.compileStatus,
  compileErrors: policyVersions.compileErrors,
  wasmSha256: policyVersions.wasmSha256,
  createdBy: policyVersions.createdBy,
  createdAt: policyVersions.createdAt,
  definition: policyVersions.definition,
  changeSummary: policyVersions.changeSummary,
  entrypoint: policyVersions.entrypoint,
};

/**
 * The policy (not archived unless `includeArchived`: version history stays readable),
 * optionally locked (`FOR UPDATE`) so that changes to one
 * policy (activations, updates) serialize and its revision only grows.
 */
export async function loadPolicy(
  tx: Tx,
  id: string,
  options: { lock?: boolean; includeArchived?: boolean } = {},
): Promise<PolicyRow> {
  const lock = options.lock === true;
  const query = tx
    .select()
    .from(policies)
    .where(
      options.includeArchived
        ? eq(policies.id, id)
        : and(eq(policies.id, id), ne(policies.status, "ARCHIVED")),
    );
  const [row] = lock ? await query.for("update") : await query;
  if (!row) throw policyNotFound(id);
  return row;
}

export async function latestVersion(tx: Tx, policyId: string): Promise<VersionRow> {
  const [row] = await tx
    .select(versionColumns)
    .from(policyVersions)
    .where(eq(policyVersions.policyId, policyId))
    .orderBy(desc(policyVersions.version))
    .limit(1);
  if (!row) throw new FulcrumError("Internal", `policy ${policyId} has no version`);
  return row;
}

/**
 * What a Policy message shows (policy-rows.ts): the definition of the active version when
 * there is one (what the edge enforces, even while the policy is INACTIVE or archived),
 * else of the newest version; and the newest version's number.
 */
export interface PolicyView {
  definition: Record<string, unknown>;
  latestVersion: number;
}

export async function policyView(
  tx: Tx,
  policy: Pick<PolicyRow, "id" | "activeVersion">,
): Promise<PolicyView> {
  const latest = await latestVersion(tx, policy.id);
  if (policy.activeVersion === null || policy.activeVersion === latest.version) {
    return { definition: latest.definition, latestVersion: latest.version };
  }
  const [active] = await tx
    .select({ definition: policyVersions.definition })
    .from(policyVersions)
    .where(
      and(eq(policyVersions.policyId, policy.id), eq(policyVersions.version, policy.activeVersion)),
    );
  if (!active) {
    throw new FulcrumError(
      "Internal",
      `policy ${policy.id} has no version ${policy.activeVersion} (its active version)`,
    );
  }
  return { definition: active.definition, latestVersion: latest.version };
}

/** What audit rows say about a version: its number and hashes (all null for none). */
export async function versionHashes(
  tx: Tx,
  policyId: string,
  version: number | null,
): Promise<{ version: number | null; sha256: string | null; wasm_sha256: string | null }> {
  const none = { version: null, sha256: null, wasm_sha256: null };
  if (version === null) return none;
  const [row] = await tx
    .select({ sha256: policyVersions.sha256, wasmSha256: policyVersions.wasmSha256 })
    .from(policyVersions)
    .where(and(eq(policyVersions.policyId, policyId), eq(policyVersions.version, version)));
  return row ? { version, sha256: row.sha256, wasm_sha256: row.wasmSha256 } : none;
}

/** One version, with its wasm; NotFound naming the version when there is none. */
export async function loadVersion(
  tx: Tx,
  policyId: string,
  version: number,
): Promise<VersionWithWasm> {
  const [row] = await tx
    .select()
    .from(policyVersions)
    .where(and(eq(policyVersions.policyId, policyId), eq(policyVersions.version, version)));
  if (!row) throw notFound(`policy ${policyId} has no version ${version}`);
  return row;
}

/** Versions newest first, below `before` when given. */
export async function listVersions(
  tx: Tx,
  policyId: string,
  limit: number,
  before: number | undefined,
): Promise<VersionRow[]> {
  const where =
    before === undefined
      ? eq(policyVersions.policyId, policyId)
      : and(eq(policyVersions.policyId, policyId), lt(policyVersions.version, before));
  return tx
    .select(versionColumns)
    .from(policyVersions)
    .where(where)
    .orderBy(desc(policyVersions.version))
    .limit(limit);
}

export interface ActivationInfo {
  activatedBy: string | null;
  activatedAt: Date;
}

/** Each version's latest activation (or rollback) of a policy: who and when. */
export async function activationsByVersion(
  tx: Tx,
  policyId: string,
): Promise<Map<number, ActivationInfo>> {
  const rows = await tx
    .selectDistinctOn([policyActivations.version], {
      version: policyActivations.version,
      activatedBy: policyActivations.activatedBy,
      occurredAt: policyActivations.occurredAt,
    })
    .from(policyActivations)
    .where(eq(policyActivations.policyId, policyId))
    .orderBy(policyActivations.version, desc(policyActivations.occurredAt));
  return new Map(
    rows.map((r) => [r.version, { activatedBy: r.activatedBy, activatedAt: r.occurredAt }]),
  );
}

/**
 * The version that was active before `current`: the most recent activation of any other
 * version (so rolling back twice returns to where one started).
 */
export async function previousActiveVersion(
  tx: Tx,
  policyId: string,
  current: number | null,
): Promise<number | undefined> {
  const others =
    current === null
      ? eq(policyActivations.policyId, policyId)
      : and(eq(policyActivations.policyId, policyId), ne(policyActivations.version, current));
  const [row] = await tx
    .select({ version: policyActivations.version })
    .from(policyActivations)
    .where(others)
    .orderBy(desc(policyActivations.occurredAt))
    .limit(1);
  return row?.version;
}

/** Sets the columns and bumps revision and updated_at, in one statement; the new row. */
export async function updatePolicyRow(tx: Tx, id: string, set: PolicySet): Promise<PolicyRow> {
  const [row] = await tx
    .update(policies)
    .set({ ...set, revision: sql`${policies.revision} + 1`, updatedAt: sql`now()` })
    .where(eq(policies.id, id))
    .returning();
  if (!row) throw policyNotFound(id);
  return row;
}

/** Statement time, not transaction start: activations order by it, and they serialize on the row lock. */
export const clockTimestamp = sql`clock_timestamp()`;
