/**
 * The edge's copy of envelopes: one JSON EnvelopeRecord per envelope in Redis
 * (core/budget/budget-keys.ts `envelope(t, id)`), written after every committed change
 * and by reconciliation. PostgreSQL stays the source: a record is always rebuilt from
 * the row (and its ancestors' ids), never patched.
 *
 * Writes are guarded in one script so two publishers racing cannot leave an older state
 * in place: a record never replaces one with a later `updatedAtMs` (status changes make
 * updated_at strictly increase, update-status.ts), and a non-terminal record never
 * replaces a terminal one (terminal states are final). Terminal records expire after
 * 7 days; the edge treats an unknown envelope as ungoverned, and a finished one has
 * nothing left to govern.
 */
import { inArray, sql } from "drizzle-orm";
import {
  ENVELOPE_FINAL_STATUSES,
  ENVELOPE_OPEN_STATUSES,
  type EnvelopeRecord,
  TERMINAL_ENVELOPE_TTL_MS,
} from "../../../core/budget/budget-keys.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { envelopes } from "../../../db/schema/index.js";
import { inTenant, type Tx } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { governanceFromJson } from "./envelope-governance.js";
import { type EnvelopeRow, loadEnvelope } from "./envelope-rows.js";
import { isTerminal } from "./envelope-transitions.js";

export type EnvelopeRecordDeps = Pick<FunctionsDeps, "db" | "redis" | "budgetKeys">;

const PUT_SCRIPT = `
local terminal = {${ENVELOPE_FINAL_STATUSES.map((s) => `${s}=true`).join(", ")}}
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, old = pcall(cjson.decode, cur)
  if ok and type(old) == 'table' then
    if terminal[old.status] and ARGV[3] == '0' then return 0 end
    if tonumber(old.updatedAtMs or 0) > tonumber(ARGV[2]) then return 0 end
  end
end
if ARGV[4] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
`;

/** The record of `row`, whose ancestors (parent first) are `ancestors`. */
export function envelopeRecordOf(row: EnvelopeRow, ancestors: string[]): EnvelopeRecord {
  const g = governanceFromJson(row.governance);
  const limits: EnvelopeRecord["limits"] = {};
  if (g.tokenBudget !== undefined) limits.tokens = g.tokenBudget;
  if (g.costLimitMicros !== undefined) limits.costMicros = g.costLimitMicros;
  if (g.maxLlmCalls !== undefined) limits.llmCalls = g.maxLlmCalls;
  if (g.maxToolCalls !== undefined) limits.toolCalls = g.maxToolCalls;
  const budgetId = row.budgetId ?? g.budgetId;
  return {
    id: row.id,
    status: row.status,
    workflowId: row.workflowId,
    ...(row.parentEnvelopeId ? { parentId: row.parentEnvelopeId } : {}),
    ancestors,
    ...(budgetId ? { budgetId } : {}),
    limits,
    allowedModels: g.allowedModels,
    allowedTools: g.allowedTools,
    ...(row.deadlineAt ? { deadlineMs: row.deadlineAt.getTime() } : {}),
    updatedAtMs: row.updatedAt.getTime(),
  };
}

/**
 * The ancestors (parent first, up to the root) of every envelope `startWhere` selects,
 * in one recursive query.
 */
async function ancestorsOf(tx: Tx, startWhere: ReturnType<typeof sql>) {
  const rows = await tx.execute<{ id: string; path: string[] }>(sql`
    WITH RECURSIVE chain(start_id, cur, path) AS (
      SELECT e.id, e.parent_envelope_id, ARRAY[]::uuid[] FROM ${envelopes} e WHERE ${startWhere}
      UNION ALL
      SELECT c.start_id, p.parent_envelope_id, c.path || p.id
        FROM chain c JOIN ${envelopes} p ON p.id = c.cur
    )
    SELECT start_id::text AS id, path::text[] AS path FROM chain WHERE cur IS NULL`);
  return new Map(rows.rows.map((r) => [r.id, r.path]));
}

async function put(deps: EnvelopeRecordDeps, tenantId: string, record: EnvelopeRecord) {
  const terminal = isTerminal(record.status);
  await deps.redis.eval(
    PUT_SCRIPT,
    [deps.budgetKeys.envelope(tenantId, record.id)],
    [
      JSON.stringify(record),
      String(record.updatedAtMs),
      terminal ? "1" : "0",
      terminal ? String(TERMINAL_ENVELOPE_TTL_MS) : "0",
    ],
  );
}

function unavailable(envelopeId: string, status: string, cause: unknown): FulcrumError {
  return new FulcrumError(
    "Unavailable",
    `envelope ${envelopeId} is ${status}, but the edge's copy (Redis) could not be updated; retry the call (it is idempotent)`,
    { cause, retry: true },
  );
}

/**
 * Rewrites one envelope's record from PostgreSQL. Used after every committed change
 * and by reconciliation.
 *
 * @throws FulcrumError NotFound for an unknown envelope; Unavailable when Redis fails.
 */
export async function publishEnvelopeRecord(
  deps: EnvelopeRecordDeps,
  tenantId: string,
  envelopeId: string,
): Promise<EnvelopeRecord> {
  const { row, ancestors } = await inTenant(deps.db, tenantId, async (tx) => {
    const row = await loadEnvelope(tx, envelopeId);
    const paths = await ancestorsOf(tx, sql`e.id = ${row.id}`);
    return { row, ancestors: paths.get(row.id) ?? [] };
  });
  const record = envelopeRecordOf(row, ancestors);
  try {
    await put(deps, tenantId, record);
  } catch (error) {
    throw unavailable(row.id, row.status, error);
  }
  return record;
}

/** The ids of `rootId` and all its descendants, as a subquery. */
function treeOf(rootId: string) {
  return sql`
    WITH RECURSIVE down(id) AS (
      SELECT ${rootId}::uuid
      UNION ALL
      SELECT c.id FROM ${envelopes} c JOIN down ON c.parent_envelope_id = down.id
    )
    SELECT id FROM down`;
}

/**
 * Rewrites the records of an envelope and of every descendant, the envelope first.
 * Used when it ended: its open descendants ended with it (envelope-cascade.ts), and
 * reconciliation rewrites only open envelopes, so a retry of the call is what repairs
 * a descendant's copy that Redis failed to take.
 *
 * @throws FulcrumError NotFound for an unknown envelope; Unavailable when Redis fails.
 */
export async function publishEnvelopeTree(
  deps: EnvelopeRecordDeps,
  tenantId: string,
  rootId: string,
): Promise<number> {
  const { root, rows, paths } = await inTenant(deps.db, tenantId, async (tx) => {
    const root = await loadEnvelope(tx, rootId);
    const tree = sql`e.id IN (${treeOf(root.id)})`;
    const rows = await tx
      .select()
      .from(envelopes)
      .where(sql`${envelopes.id} IN (${treeOf(root.id)})`);
    return { root, rows, paths: await ancestorsOf(tx, tree) };
  });
  const ordered = [root, ...rows.filter((r) => r.id !== root.id)];
  try {
    for (const row of ordered)
      await put(deps, tenantId, envelopeRecordOf(row, paths.get(row.id) ?? []));
  } catch (error) {
    throw unavailable(root.id, root.status, error);
  }
  return ordered.length;
}

/**
 * Reconciliation: rewrites the records of every non-terminal envelope of the tenant
 * (terminal ones expire by themselves). Returns how many were written.
 *
 * @throws FulcrumError Unavailable when Redis fails.
 */
export async function publishEnvelopeRecords(
  deps: EnvelopeRecordDeps,
  tenantId: string,
): Promise<number> {
  const open = `{${ENVELOPE_OPEN_STATUSES.join(",")}}`;
  const active = sql`e.status = any(${open}::text[])`;
  const { rows, paths } = await inTenant(deps.db, tenantId, async (tx) => ({
    rows: await tx
      .select()
      .from(envelopes)
      .where(inArray(envelopes.status, ENVELOPE_OPEN_STATUSES)),
    paths: await ancestorsOf(tx, active),
  }));
  try {
    for (const row of rows)
      await put(deps, tenantId, envelopeRecordOf(row, paths.get(row.id) ?? []));
  } catch (error) {
    throw new FulcrumError(
      "Unavailable",
      `the envelope records of tenant ${tenantId} could not be written to Redis: ${String(error)}`,
      { cause: error, retry: true },
    );
  }
  return rows.length;
}
