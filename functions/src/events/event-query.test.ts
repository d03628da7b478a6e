import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import {
  GetExecutionEventsRequestSchema,
  QueryEventsRequestSchema,
  SortOrder,
} from "../../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { executionEventsQuery, queryEventsQuery, statsQuery } from "./event-query.js";

const TENANT = "0193a5a0-0000-7000-8000-000000000001";
const HOSTILE = [
  "x' OR 1=1 --",
  "') OR 1=1 --",
  "a\\'b",
  "{tenant:String}",
  "\\",
  "x\ty\nz",
  "'; DROP TABLE events; --",
];

const query = (init: Parameters<typeof create<typeof QueryEventsRequestSchema>>[1]) =>
  queryEventsQuery(TENANT, create(QueryEventsRequestSchema, init));

describe("queryEventsQuery", () => {
  it("reads FINAL, the key's tenant first, newest first by default, one row more than the page", () => {
    const q = query({});
    expect(q.query).toMatch(/FROM events FINAL\nWHERE tenant_id = \{tenant:String\}\n/);
    expect(q.query).toMatch(
      /ORDER BY event_time DESC, toString\(event_id\) DESC\nLIMIT \{limit:UInt32\}$/,
    );
    expect(q.query_params).toEqual({ tenant: TENANT, limit: 101 });
    expect(q.limit).toBe(100);
  });

  it("orders oldest first when asked", () => {
    expect(query({ order: SortOrder.ASCENDING }).query).toMatch(
      /ORDER BY event_time ASC, toString\(event_id\) ASC/,
    );
  });

  it("binds every filter value as a parameter, whatever it contains", () => {
    const benign = query({
      executionId: "e",
      envelopeId: "e",
      workflowId: "e",
      labels: { a: "a", plain: "v" },
    });
    for (const hostile of HOSTILE) {
      const q = query({
        executionId: hostile,
        envelopeId: hostile,
        workflowId: hostile,
        labels: { [hostile]: hostile, plain: "v" },
      });
      // The SQL text is the benign request's, to the byte: values change only parameters.
      expect(q.query).toBe(benign.query);
      expect(q.query).not.toMatch(/OR 1=1|DROP/);
      expect(q.query_params).toMatchObject({
        execution_id: hostile,
        envelope_id: hostile,
        workflow_id: hostile,
      });
      const values = Object.values(q.query_params);
      expect(values.filter((v) => v === hostile)).toHaveLength(5); // 3 ids + label key + value
    }
  });

  it("filters by time range (start inclusive, end exclusive), types and labels", () => {
    const q = query({
      startTime: timestampFromMs(Date.UTC(2026, 10, 24, 10)),
      endTime: timestampFromMs(Date.UTC(2026, 10, 24, 11)),
      eventTypes: [EventType.POLICY_VIOLATION, EventType.MANAGEMENT_CHANGE],
      labels: { team: "a", env: "prod" },
    });
    expect(q.query).toContain("event_time >= {start:DateTime64(3, 'UTC')}");
    expect(q.query).toContain("event_time < {end:DateTime64(3, 'UTC')}");
    expect(q.query).toContain("event_type IN {types:Array(String)}");
    expect(q.query_params).toMatchObject({
      start: "2026-11-24 10:00:00.000",
      end: "2026-11-24 11:00:00.000",
      types: ["POLICY_VIOLATION", "MANAGEMENT_CHANGE"],
      label_key_0: "env",
      label_value_0: "prod",
      label_key_1: "team",
      label_value_1: "a",
    });
    expect(q.query.match(/mapContains/g)).toHaveLength(2);
  });

  it("pages after the last row with a token bound to the same filters", () => {
    const first = query({ workflowId: "wf", limit: 10 });
    const token = first.token({
      time: "2026-11-24 10:00:00.123",
      id: "0193a5a0-0000-7000-8000-0000000000aa",
    });
    const second = query({ workflowId: "wf", limit: 10, pageToken: token });
    expect(second.query).toContain(
      "(event_time, toString(event_id)) < ({after_time:DateTime64(3, 'UTC')}, {after_id:String})",
    );
    expect(second.query_params).toMatchObject({
      after_time: "2026-11-24 10:00:00.123",
      after_id: "0193a5a0-0000-7000-8000-0000000000aa",
    });
    // Another filter, another order, another tenant: the token is refused.
    for (const other of [
      () => query({ workflowId: "other", limit: 10, pageToken: token }),
      () => query({ workflowId: "wf", order: SortOrder.ASCENDING, pageToken: token }),
      () =>
        queryEventsQuery(
          "0193a5a0-0000-7000-8000-000000000002",
          create(QueryEventsRequestSchema, { workflowId: "wf", pageToken: token }),
        ),
    ]) {
      expect(other).toThrow(/page_token is not valid/);
    }
    // The limit is not part of the scope: a client may change its page size.
    expect(() => query({ workflowId: "wf", limit: 50, pageToken: token })).not.toThrow();
  });

  it("refuses forged tokens as InvalidArgument", () => {
    const forge = (position: unknown) =>
      Buffer.from(JSON.stringify(position), "utf8").toString("base64url");
    const scope = JSON.parse(
      Buffer.from(
        query({}).token({ time: "2026-11-24 10:00:00.000", id: TENANT }),
        "base64url",
      ).toString(),
    ).s;
    for (const token of [
      "not a token",
      forge({ s: scope, t: "2026-11-24 10:00:00.000' OR 1=1", i: TENANT }),
      forge({ s: scope, t: "2026-11-24 10:00:00.000", i: "') OR 1=1 --" }),
      forge({ s: scope, t: "2026-13-45 10:00:00.000", i: TENANT }),
    ]) {
      const error = (() => {
        try {
          query({ pageToken: token });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(FulcrumError);
      expect((error as FulcrumError).kind).toBe("Invalid");
    }
  });

  it("validates the limit: 0 → 100, at most 1000", () => {
    expect(query({ limit: 1000 }).limit).toBe(1000);
    expect(() => query({ limit: 1001 })).toThrow(/limit must be between/);
    expect(() => query({ limit: -1 })).toThrow(/limit must be between/);
  });
});

describe("executionEventsQuery", () => {
  it("reads one execution oldest first, 1000 by default, at most 10000", () => {
    const req = (init: Parameters<typeof create<typeof GetExecutionEventsRequestSchema>>[1]) =>
      executionEventsQuery(TENANT, create(GetExecutionEventsRequestSchema, init));
    const q = req({ executionId: "exec-1" });
    expect(q.query).toMatch(/FROM events FINAL\nWHERE tenant_id = \{tenant:String\}/);
    expect(q.query).toContain("execution_id = {execution_id:String}");
    expect(q.query).toMatch(/ORDER BY event_time ASC, toString\(event_id\) ASC/);
    expect(q.query_params).toEqual({ tenant: TENANT, execution_id: "exec-1", limit: 1001 });
    expect(req({ executionId: "e", limit: 10_000 }).limit).toBe(10_000);
    expect(() => req({ executionId: "e", limit: 10_001 })).toThrow(/limit/);
    expect(() => req({})).toThrow(/execution_id is required/);
  });
});

describe("statsQuery", () => {
  it("counts the tenant's events per type, FINAL", () => {
    const q = statsQuery(TENANT);
    expect(q.query).toMatch(
      /FROM events FINAL\nWHERE tenant_id = \{tenant:String\}\nGROUP BY event_type/,
    );
    expect(q.query_params).toEqual({ tenant: TENANT });
  });
});
