import { create, equals } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newEvent } from "../../core/audit/event-codec.js";
import { eventToRow, rowToEvent } from "../../core/audit/event-row.js";
import { uuidv7 } from "../../core/ids/uuidv7.js";
import {
  EventSchema,
  EventType,
  PolicyResultSchema,
} from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { Decision } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { type TestClickHouse, testClickHouse } from "../harness/clickhouse.js";

const DAY = 24 * 60 * 60 * 1000;

function event(at: Date, tenantId = "tenant_a") {
  return newEvent({
    eventId: uuidv7(),
    tenantId,
    executionId: "exec_1",
    envelopeId: "env_1",
    eventType: EventType.POLICY_VIOLATION,
    timestamp: timestampFromDate(at),
    labels: { team: "risk", "it's": "quoted\ttab" },
    source: "edge",
    policyResult: create(PolicyResultSchema, {
      policyId: "pol_1",
      ruleId: "rule_1",
      decision: Decision.DENY,
      decisionId: "dec_1",
    }),
  });
}

describe("events table", () => {
  let ch: TestClickHouse;
  beforeAll(async () => {
    ch = await testClickHouse();
  });
  afterAll(() => ch?.drop());

  const count = async (sql: string, id: string) => {
    const result = await ch.client.query({
      query: sql,
      query_params: { id },
      format: "JSONEachRow",
    });
    const [row] = await result.json<{ n: string }>();
    return Number(row?.n);
  };

  it("keeps one copy of a redelivered event (FINAL) and round-trips it", async () => {
    const original = event(new Date(Date.now() - 60_000));
    const storedAt = new Date();
    const row = eventToRow(original, { sequence: 7, storedAt });
    // Two inserts, as when the processor crashed after inserting and before acking.
    await ch.client.insert({ table: "events", values: [row], format: "JSONEachRow" });
    await ch.client.insert({ table: "events", values: [row], format: "JSONEachRow" });

    const raw = await count(
      "SELECT count() AS n FROM events WHERE event_id = {id:UUID}",
      row.event_id,
    );
    expect(raw).toBeGreaterThanOrEqual(1);
    expect(raw).toBeLessThanOrEqual(2); // 2 until a background merge collapses them
    expect(
      await count("SELECT count() AS n FROM events FINAL WHERE event_id = {id:UUID}", row.event_id),
    ).toBe(1);

    const result = await ch.client.query({
      query: `SELECT event_json, stream_sequence, toString(stored_at) AS stored_at, decision, labels
        FROM events FINAL WHERE event_id = {id:UUID}`,
      query_params: { id: row.event_id },
      format: "JSONEachRow",
    });
    const [back] = await result.json<{
      event_json: string;
      stream_sequence: string;
      stored_at: string;
      decision: string;
      labels: Record<string, string>;
    }>();
    expect(back).toMatchObject({ stream_sequence: "7", decision: "DENY", labels: original.labels });
    const restored = rowToEvent(back as NonNullable<typeof back>);
    expect(restored.sequence).toBe(7n);
    expect(restored.storedAt?.seconds).toBe(BigInt(Math.floor(storedAt.getTime() / 1000)));
    restored.sequence = 0n;
    restored.storedAt = undefined;
    expect(equals(EventSchema, restored, original)).toBe(true);
  });

  it("drops an event older than the 90-day TTL on insert", async () => {
    // The table's TTL removes such rows silently (here on insert, else at the next
    // merge): the API must reject timestamps older than the retention instead of
    // acknowledging an event that will never be stored.
    const old = eventToRow(event(new Date(Date.now() - 91 * DAY)), {
      sequence: 8,
      storedAt: new Date(),
    });
    const recent = eventToRow(event(new Date(Date.now() - 89 * DAY)), {
      sequence: 9,
      storedAt: new Date(),
    });
    await ch.client.insert({ table: "events", values: [old, recent], format: "JSONEachRow" });
    await ch.client.command({ query: "OPTIMIZE TABLE events FINAL" });
    expect(
      await count("SELECT count() AS n FROM events FINAL WHERE event_id = {id:UUID}", old.event_id),
    ).toBe(0);
    expect(
      await count(
        "SELECT count() AS n FROM events FINAL WHERE event_id = {id:UUID}",
        recent.event_id,
      ),
    ).toBe(1);
  });
});
