/**
 * The ClickHouse reads of the EventStore query API, as SQL text plus query parameters.
 *
 * Three rules every statement here keeps, and the unit tests check:
 * - `FROM events FINAL`: the table is a ReplacingMergeTree and a redelivered event may
 *   sit unmerged beside its first copy; FINAL shows one;
 * - `WHERE tenant_id = {tenant:String}` first, the tenant from the caller's key;
 * - every value a caller supplies is a typed `{name:Type}` parameter sent in
 *   `query_params` (ClickHouse parses it as a value, never as SQL). The SQL text is
 *   built only from fixed fragments chosen by which filters are present.
 *
 * Pages are keyset pages on the sorting key's (event_time, event_id), so a page never
 * repeats or skips an event when events arrive between calls.
 */
import { createHash } from "node:crypto";
import { timestampDate, timestampMs } from "@bufbuild/protobuf/wkt";
import { clickHouseTime, dateFromClickHouse } from "../../../core/audit/event-row.js";
import { eventTypeName } from "../../../core/audit/event-subject.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { isUuid } from "../../../core/ids/uuid.js";
import type { EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import {
  type GetExecutionEventsRequest,
  type QueryEventsRequest,
  SortOrder,
} from "../../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { Decision } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { decodeToken, encodeToken } from "../pagination/page-token.js";

export interface ClickHouseQuery {
  query: string;
  query_params: Record<string, unknown>;
}

export interface EventPosition {
  /** event_time as ClickHouse prints DateTime64(3): `2026-11-24 16:07:37.775`. */
  time: string;
  id: string;
}

export const QUERY_DEFAULT_LIMIT = 100;
export const QUERY_MAX_LIMIT = 1000;
export const EXECUTION_DEFAULT_LIMIT = 1000;
export const EXECUTION_MAX_LIMIT = 10_000;

/**
 * What every page query selects: enough for rowToEvent plus the keyset position. The
 * position's aliases must not be column names: ClickHouse resolves aliases in WHERE too.
 */
const COLUMNS =
  "event_json, stream_sequence, toString(stored_at) AS stored_at, toString(event_time) AS position_time, toString(event_id) AS position_id";

const CH_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/;

/** `limit` of a request: 0 → default; outside 0..max → InvalidArgument (field limit). */
export function pageLimit(requested: number, fallback: number, max: number): number {
  if (!Number.isInteger(requested) || requested < 0 || requested > max) {
    throw new FulcrumError("Invalid", `limit must be between 0 (default ${fallback}) and ${max}`, {
      field: "limit",
    });
  }
  return requested === 0 ? fallback : requested;
}

/**
 * A short digest of the method and its filters: a token is refused when replayed with
 * other filters. Hashed because filters (labels) can be longer than a token may be.
 */
function tokenScope(method: string, filters: unknown): string {
  return `${method}:${createHash("sha256").update(JSON.stringify(filters)).digest("base64url").slice(0, 16)}`;
}

function positionShape({ t, i }: Record<string, unknown>): EventPosition | undefined {
  if (typeof t !== "string" || typeof i !== "string") return undefined;
  if (!CH_TIME.test(t) || Number.isNaN(dateFromClickHouse(t).getTime()) || !isUuid(i)) {
    return undefined;
  }
  return { time: t, id: i.toLowerCase() };
}

function typeNames(types: readonly EventType[]): string[] {
  return types.map((type) => eventTypeName(type));
}

/** Builds the WHERE clause from fragments; values only ever go to `params`. */
class Conditions {
  readonly parts: string[] = ["tenant_id = {tenant:String}"];
  readonly params: Record<string, unknown>;

  constructor(tenantId: string) {
    this.params = { tenant: tenantId };
  }

  add(fragment: string, params: Record<string, unknown>): void {
    this.parts.push(fragment);
    Object.assign(this.params, params);
  }

  equals(column: string, value: string): void {
    if (value) this.add(`${column} = {${column}:String}`, { [column]: value });
  }

  types(types: readonly EventType[]): void {
    if (types.length > 0)
      this.add("event_type IN {types:Array(String)}", { types: typeNames(types) });
  }

  decisions(decisions: readonly Decision[]): void {
    if (decisions.length > 0) {
      this.add("decision IN {decisions:Array(String)}", {
        decisions: decisions.map((d) => Decision[d]),
      });
    }
  }

  labels(labels: Readonly<Record<string, string>>): void {
    Object.entries(labels)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .forEach(([key, value], n) => {
        this.add(
          `mapContains(labels, {label_key_${n}:String}) AND labels[{label_key_${n}:String}] = {label_value_${n}:String}`,
          {
            [`label_key_${n}`]: key,
            [`label_value_${n}`]: value,
          },
        );
      });
  }

  /**
   * Strictly after `cursor` in the page order; the plain time bound lets the index prune.
   * Ids compare as text: ClickHouse orders the UUID type by its second half first, which
   * would shuffle UUIDv7s minted in one millisecond (an execution's events).
   */
  after(cursor: EventPosition | undefined, ascending: boolean): void {
    if (!cursor) return;
    const cmp = ascending ? ">" : "<";
    this.add(
      `event_time ${cmp}= {after_time:DateTime64(3, 'UTC')} AND (event_time, toString(event_id)) ${cmp} ({after_time:DateTime64(3, 'UTC')}, {after_id:String})`,
      { after_time: cursor.time, after_id: cursor.id },
    );
  }

  sql(): string {
    return this.parts.join("\n  AND ");
  }
}

export interface PageQuery extends ClickHouseQuery {
  /** The page size; the query asks for one more row, to know whether a page follows. */
  limit: number;
  /** Encodes the next page's token from the page's last row. */
  token(last: EventPosition): string;
}

function pageQuery(
  conditions: Conditions,
  ascending: boolean,
  limit: number,
  scope: string,
): PageQuery {
  const dir = ascending ? "ASC" : "DESC";
  return {
    query: `SELECT ${COLUMNS}\nFROM events FINAL\nWHERE ${conditions.sql()}\nORDER BY event_time ${dir}, toString(event_id) ${dir}\nLIMIT {limit:UInt32}`,
    query_params: { ...conditions.params, limit: limit + 1 },
    limit,
    token: (last) => encodeToken(scope, { t: last.time, i: last.id }),
  };
}

/** QueryEvents: filters, keyset page, newest first unless ASCENDING is asked for. */
export function queryEventsQuery(tenantId: string, req: QueryEventsRequest): PageQuery {
  const limit = pageLimit(req.limit, QUERY_DEFAULT_LIMIT, QUERY_MAX_LIMIT);
  const ascending = req.order === SortOrder.ASCENDING;
  const start = req.startTime ? timestampDate(req.startTime) : undefined;
  // End is exclusive; a sub-millisecond end still includes the millisecond it falls in.
  const end = req.endTime ? new Date(Math.ceil(timestampMs(req.endTime))) : undefined;
  const filters = {
    tenant: tenantId,
    execution: req.executionId,
    envelope: req.envelopeId,
    workflow: req.workflowId,
    types: [...req.eventTypes].sort(),
    decisions: [...req.decisions].sort(),
    start: start?.toISOString(),
    end: end?.toISOString(),
    labels: Object.entries(req.labels).sort(),
    ascending,
  };
  const scope = tokenScope("QueryEvents", filters);
  const cursor = decodeToken(scope, req.pageToken, positionShape);
  const where = new Conditions(tenantId);
  if (start)
    where.add("event_time >= {start:DateTime64(3, 'UTC')}", { start: clickHouseTime(start) });
  if (end) where.add("event_time < {end:DateTime64(3, 'UTC')}", { end: clickHouseTime(end) });
  where.equals("execution_id", req.executionId);
  where.equals("envelope_id", req.envelopeId);
  where.equals("workflow_id", req.workflowId);
  where.types(req.eventTypes);
  where.decisions(req.decisions);
  where.labels(req.labels);
  where.after(cursor, ascending);
  return pageQuery(where, ascending, limit, scope);
}

/** GetExecutionEvents: one execution, oldest first. */
export function executionEventsQuery(tenantId: string, req: GetExecutionEventsRequest): PageQuery {
  if (!req.executionId) {
    throw new FulcrumError("Invalid", "execution_id is required", { field: "execution_id" });
  }
  const limit = pageLimit(req.limit, EXECUTION_DEFAULT_LIMIT, EXECUTION_MAX_LIMIT);
  const scope = tokenScope("GetExecutionEvents", {
    tenant: tenantId,
    execution: req.executionId,
    types: [...req.eventTypes].sort(),
  });
  const cursor = decodeToken(scope, req.pageToken, positionShape);
  const where = new Conditions(tenantId);
  where.equals("execution_id", req.executionId);
  where.types(req.eventTypes);
  where.after(cursor, true);
  return pageQuery(where, true, limit, scope);
}

/** GetEventStoreStats: per type, the count and the first and last event time. */
export function statsQuery(tenantId: string): ClickHouseQuery {
  return {
    query:
      "SELECT event_type, count() AS events, toString(min(event_time)) AS first_at, toString(max(event_time)) AS last_at\nFROM events FINAL\nWHERE tenant_id = {tenant:String}\nGROUP BY event_type",
    query_params: { tenant: tenantId },
  };
}
