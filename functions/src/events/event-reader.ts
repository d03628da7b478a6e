/**
 * Runs the query API's statements (event-query.ts) on ClickHouse and turns rows into
 * Events (core/audit/event-row.ts). Failures become one FulcrumError each: the server
 * unreachable or timing out → Unavailable; the events table missing → Unavailable
 * naming the migration to run; anything else ClickHouse refuses → Internal (logged by
 * the error interceptor, never detailed to the caller: it is our SQL).
 */

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type ClickHouseClient, ClickHouseError } from "@clickhouse/client";
import { dateFromClickHouse, rowToEvent } from "../../../core/audit/event-row.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { Event } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { ClickHouseQuery, EventPosition, PageQuery } from "./event-query.js";

interface PageRow {
  event_json: string;
  stream_sequence: string | number;
  stored_at: string;
  position_time: string;
  position_id: string;
}

interface StatsRow {
  event_type: string;
  events: string | number;
  first_at: string;
  last_at: string;
}

export interface EventStats {
  total: bigint;
  byType: Record<string, bigint>;
  firstAt: Date | undefined;
  lastAt: Date | undefined;
}

/** ClickHouse's codes for "no such database / table": the store is not migrated. */
const NOT_MIGRATED = new Set(["60", "81"]);

export function clickHouseFailure(error: unknown): FulcrumError {
  if (error instanceof FulcrumError) return error;
  if (error instanceof ClickHouseError) {
    if (NOT_MIGRATED.has(error.code)) {
      return new FulcrumError(
        "Unavailable",
        "the event store (ClickHouse) has no events table yet: run `npm run clickhouse:migrate`",
        { cause: error, retry: true },
      );
    }
    return new FulcrumError("Internal", "event store query failed", { cause: error });
  }
  return new FulcrumError(
    "Unavailable",
    "the event store (ClickHouse) is unavailable; retry later",
    { cause: error, retry: true },
  );
}

async function rows<R>(clickhouse: ClickHouseClient, q: ClickHouseQuery): Promise<R[]> {
  try {
    const result = await clickhouse.query({
      query: q.query,
      query_params: q.query_params,
      format: "JSONEachRow",
    });
    return await result.json<R>();
  } catch (error) {
    throw clickHouseFailure(error);
  }
}

/** One page of events and the next page's token ("" on the last page). */
export async function readPage(
  clickhouse: ClickHouseClient,
  q: PageQuery,
): Promise<{ events: Event[]; nextPageToken: string }> {
  const found = await rows<PageRow>(clickhouse, q);
  const page = found.slice(0, q.limit);
  const last = page[page.length - 1];
  const position: EventPosition | undefined =
    found.length > q.limit && last ? { time: last.position_time, id: last.position_id } : undefined;
  return {
    events: page.map((row) => rowToEvent(row)),
    nextPageToken: position ? q.token(position) : "",
  };
}

export async function readStats(
  clickhouse: ClickHouseClient,
  q: ClickHouseQuery,
): Promise<EventStats> {
  const found = await rows<StatsRow>(clickhouse, q);
  const stats: EventStats = { total: 0n, byType: {}, firstAt: undefined, lastAt: undefined };
  for (const row of found) {
    const count = BigInt(row.events);
    stats.total += count;
    stats.byType[`EVENT_TYPE_${row.event_type}`] = count;
    const first = dateFromClickHouse(row.first_at);
    const last = dateFromClickHouse(row.last_at);
    if (!stats.firstAt || first < stats.firstAt) stats.firstAt = first;
    if (!stats.lastAt || last > stats.lastAt) stats.lastAt = last;
  }
  return stats;
}

export const timestampOf = (date: Date | undefined) => (date ? timestampFromDate(date) : undefined);
