/**
 * ListPolicies: the tenant's policies in creation order (keyset paging on created_at, id),
 * filtered by status (UNSPECIFIED: all but ARCHIVED), by rule type (the definition the
 * Policy message shows, policy-store.ts `policyView`: the active version's, else the
 * newest's, has a rule of that type) and by tags (all of them), with the number of
 * matches over all pages. The page and that number come from one statement (the count is
 * a scalar subquery of the page query), so they are read from one snapshot and agree; a
 * page that comes back empty past a cursor counts separately (nothing to disagree with).
 * ListPolicyVersions: a policy's versions, newest first (keyset paging on the version).
 * Page tokens (functions/src/pagination/page-token.ts) are bound to the list and filters.
 */
import { and, arrayContains, asc, count, eq, ne, type SQL, sql } from "drizzle-orm";
import { policies } from "../../../db/schema/index.js";
import { RuleType } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { Policy } from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import type { ListPoliciesRequest } from "../../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import type { PolicyVersion } from "../../../proto/gen/fulcrum/policy/v1/policy_version_pb.js";
import type { Tx } from "../db/tenant-transaction.js";
import {
  afterCursor,
  cursorColumn,
  decodePageToken,
  decodeToken,
  nextPage,
  pageSize,
  toPage,
} from "../pagination/page-token.js";
import { statusFromProto } from "./policy-lifecycle.js";
import { toPolicyProto, toVersionProto } from "./policy-rows.js";
import { activationsByVersion, listVersions, loadPolicy, type PolicyView } from "./policy-store.js";

/**
 * The outer row's columns, always qualified: drizzle writes columns of a single-table select
 * unqualified, and inside these subqueries a bare "id" would be policy_versions.id.
 */
const outerId = sql`${sql.identifier("policies")}.${sql.identifier("id")}`;
const outerActive = sql`${sql.identifier("policies")}.${sql.identifier("active_version")}`;

const newestNumber = sql`(select max(v.version) from policy_versions v where v.policy_id = ${outerId})`;

/** The version a Policy message shows (policy-store.ts `policyView`): active, else newest. */
const shownNumber = sql`coalesce(${outerActive}, ${newestNumber})`;

/** The shown definition and the newest version's number, per policy row. */
const view = sql<PolicyView>`(
  select json_build_object('definition', s.definition, 'latestVersion', ${newestNumber})
  from policy_versions s where s.policy_id = ${outerId} and s.version = ${shownNumber})`;

function filters(req: ListPoliciesRequest): SQL[] {
  const out: SQL[] = [];
  const status = statusFromProto(req.status);
  out.push(status ? eq(policies.status, status) : ne(policies.status, "ARCHIVED"));
  if (req.tags.length > 0) out.push(arrayContains(policies.tags, [...req.tags]));
  if (req.ruleType !== RuleType.UNSPECIFIED) {
    // Definitions are stored as proto JSON: enum values by their full names.
    const needle = JSON.stringify([{ rule_type: `RULE_TYPE_${RuleType[req.ruleType]}` }]);
    out.push(sql`(select s.definition -> 'rules' from policy_versions s
      where s.policy_id = ${outerId} and s.version = ${shownNumber}) @> ${needle}::jsonb`);
  }
  return out;
}

export interface PolicyPage {
  policies: Policy[];
  nextPageToken: string;
  totalCount: number;
}

/** What a ListPolicies token is bound to: the filters (tags as a set: they all must match). */
function policiesScope(req: ListPoliciesRequest): string {
  const filter = {
    status: statusFromProto(req.status) ?? "",
    rule_type: req.ruleType,
    tags: [...new Set(req.tags)].sort(),
  };
  return `policies?${JSON.stringify(filter)}`;
}

export async function listPolicies(tx: Tx, req: ListPoliciesRequest): Promise<PolicyPage> {
  const size = pageSize(req.pageSize);
  const scope = policiesScope(req);
  const cursor = decodePageToken(scope, req.pageToken);
  const where = filters(req);
  const matches = () =>
    tx
      .select({ n: count() })
      .from(policies)
      .where(and(...where));
  const rows = await tx
    .select({
      policy: policies,
      view,
      total: sql`(${matches()})`.mapWith(Number),
      cursor: cursorColumn(policies.createdAt),
      id: policies.id,
    })
    .from(policies)
    .where(and(...where, afterCursor(policies.createdAt, policies.id, cursor, "asc")))
    .orderBy(asc(policies.createdAt), asc(policies.id))
    .limit(size + 1);
  let total = rows[0]?.total ?? 0;
  if (rows.length === 0 && cursor) total = Number((await matches())[0]?.n ?? 0);
  const page = toPage(scope, rows, size);
  return {
    policies: page.rows.map((r) => toPolicyProto(r.policy, r.view)),
    nextPageToken: page.nextPageToken,
    totalCount: total,
  };
}

/** A ListPolicyVersions position: the last version listed. */
function versionShape({ v }: Record<string, unknown>): number | undefined {
  return typeof v === "number" && Number.isInteger(v) && v >= 1 ? v : undefined;
}

export interface VersionPage {
  versions: PolicyVersion[];
  nextPageToken: string;
}

/** One page of a policy's versions (archived policies' included), newest first. */
export async function listPolicyVersions(
  tx: Tx,
  policyId: string,
  req: { pageSize: number; pageToken: string },
): Promise<VersionPage> {
  const size = pageSize(req.pageSize);
  const scope = `policy-versions?policy=${policyId}`;
  const before = decodeToken(scope, req.pageToken, versionShape);
  const policy = await loadPolicy(tx, policyId, { includeArchived: true });
  const rows = await listVersions(tx, policyId, size + 1, before);
  const activations = await activationsByVersion(tx, policyId);
  const page = nextPage(scope, rows, size, (last) => ({ v: last.version }));
  return {
    versions: page.rows.map((v) => toVersionProto(policy, v, activations.get(v.version))),
    nextPageToken: page.nextPageToken,
  };
}
