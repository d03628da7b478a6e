import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newEvent } from "../../core/audit/event-codec.js";
import { type EventRow, eventToRow } from "../../core/audit/event-row.js";
import { uuidv7 } from "../../core/ids/uuidv7.js";
import { type Event, EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import {
  EventStoreService,
  SortOrder,
} from "../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { Decision } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { ApiKeyScope } from "../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import { type TestClickHouse, testClickHouse } from "../harness/clickhouse.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { expectCode, userWithKey } from "../harness/management-helpers.js";
import { startTestNats, type TestNats } from "../harness/nats-server.js";

type EventInit = NonNullable<Parameters<typeof newEvent>[0]>;

// EventStoreService's read side through the functions HTTP server, against a real
// ClickHouse (rows seeded with eventToRow, as the processor writes them) and a NATS of
// the test's own.
let ch: TestClickHouse;
let nats: TestNats;
let stack: FunctionsStack;
let a: Awaited<ReturnType<FunctionsStack["createTenant"]>>;
let b: Awaited<ReturnType<FunctionsStack["createTenant"]>>;
const seededA: Event[] = [];
const seededB: Event[] = [];
const T0 = Date.now() - 3600_000;
const TYPES = [EventType.LLM_CALL_COMPLETED, EventType.POLICY_VIOLATION, EventType.TOOL_INVOKED];
const HOSTILE = "') OR 1=1 -- \\' \" \\";

function event(tenantId: string, i: number, extra: EventInit = {}): Event {
  // Three events per millisecond: pages must break ties on event_id.
  const ms = T0 + Math.floor(i / 3);
  return newEvent({
    eventId: uuidv7(ms),
    tenantId,
    executionId: `exec-${i % 4}`,
    envelopeId: `env-${i % 5}`,
    workflowId: `wf-${i % 2}`,
    eventType: TYPES[i % 3] ?? EventType.CUSTOM,
    timestamp: timestampFromMs(ms),
    labels: { team: i % 2 ? "red" : "blue", idx: String(i) },
    source: "test",
    ...(TYPES[i % 3] === EventType.POLICY_VIOLATION
      ? { policyResult: { decision: i % 2 ? Decision.DENY : Decision.REQUIRE_APPROVAL } }
      : {}),
    ...extra,
  } as EventInit);
}

async function insert(events: Event[], firstSequence: number): Promise<void> {
  const rows: EventRow[] = events.map((e, n) =>
    eventToRow(e, { sequence: firstSequence + n, storedAt: new Date() }),
  );
  await ch.client.insert({ table: "events", values: rows, format: "JSONEachRow" });
}

beforeAll(async () => {
  [ch, nats] = await Promise.all([testClickHouse(), startTestNats()]);
  stack = await startFunctionsStack(undefined, { natsUrl: nats.url, clickhouse: ch.config });
  a = await stack.createTenant();
  b = await stack.createTenant();
  for (let i = 0; i < 60; i++) seededA.push(event(a.tenantId, i));
  seededA.push(
    event(a.tenantId, 60, {
      executionId: "exec-hostile",
      labels: { note: HOSTILE, [HOSTILE]: "k" },
    }),
  );
  for (let i = 0; i < 10; i++) seededB.push(event(b.tenantId, i));
  await insert(seededA, 1);
  await insert(seededB, 1000);
  // A redelivered batch: the same events again. FINAL must show them once.
  await insert(seededA.slice(0, 5), 1);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await ch?.drop();
  await nats?.stop();
});

const events = (key: string) => stack.client(EventStoreService, key);
const ids = (list: Event[]) => list.map((e) => e.eventId);

/** Every page of a query, concatenated. */
async function allPages(
  key: string,
  req: Parameters<ReturnType<typeof events>["queryEvents"]>[0],
): Promise<{ events: Event[]; pages: number }> {
  const out: Event[] = [];
  let pageToken = "";
  let pages = 0;
  do {
    const res = await events(key).queryEvents({ ...req, pageToken });
    out.push(...res.events);
    pageToken = res.nextPageToken;
    pages++;
  } while (pageToken && pages < 100);
  return { events: out, pages };
}

describe("QueryEvents", () => {
  it("returns the caller's tenant's events only, newest first, each once", async () => {
    const all = await allPages(a.adminKey, { limit: 1000 });
    expect(all.pages).toBe(1);
    expect(new Set(ids(all.events))).toEqual(new Set(ids(seededA)));
    expect(all.events).toHaveLength(seededA.length);
    const times = all.events.map((e) => timestampDate(e.timestamp ?? timestampFromMs(0)).getTime());
    expect(times).toEqual([...times].sort((x, y) => y - x));
    const first = all.events.find((e) => e.eventId === seededA[0]?.eventId);
    expect(first?.sequence).toBe(1n);
    expect(first?.storedAt).toBeDefined();

    const fromB = await allPages(b.adminKey, {});
    expect(new Set(ids(fromB.events))).toEqual(new Set(ids(seededB)));
  });

  it("refuses a tenant_id other than the key's with PermissionDenied", async () => {
    await expectCode(
      events(b.adminKey).queryEvents({ tenantId: a.tenantId }),
      Code.PermissionDenied,
      /own tenant/,
    );
    await expectCode(
      events(b.adminKey).getEventStoreStats({ tenantId: a.tenantId }),
      Code.PermissionDenied,
    );
    const own = await events(a.adminKey).queryEvents({ tenantId: a.tenantId, limit: 1 });
    expect(own.events).toHaveLength(1);
  });

  it("applies every filter", async () => {
    const expectIds = async (
      req: Parameters<ReturnType<typeof events>["queryEvents"]>[0],
      keep: (e: Event) => boolean,
    ) => {
      const got = await allPages(a.adminKey, { limit: 1000, ...req });
      const want = seededA.filter(keep);
      expect(want.length).toBeGreaterThan(0);
      expect(new Set(ids(got.events)), Object.keys(req).join(",")).toEqual(new Set(ids(want)));
    };
    await expectIds({ executionId: "exec-1" }, (e) => e.executionId === "exec-1");
    await expectIds({ envelopeId: "env-2" }, (e) => e.envelopeId === "env-2");
    await expectIds({ workflowId: "wf-0" }, (e) => e.workflowId === "wf-0");
    await expectIds(
      { eventTypes: [EventType.POLICY_VIOLATION, EventType.TOOL_INVOKED] },
      (e) => e.eventType === EventType.POLICY_VIOLATION || e.eventType === EventType.TOOL_INVOKED,
    );
    await expectIds(
      { decisions: [Decision.DENY] },
      (e) => e.policyResult?.decision === Decision.DENY,
    );
    await expectIds(
      { decisions: [Decision.DENY, Decision.REQUIRE_APPROVAL] },
      (e) => e.eventType === EventType.POLICY_VIOLATION,
    );
    await expectIds({ labels: { team: "red" } }, (e) => e.labels.team === "red");
    await expectIds(
      { labels: { team: "red", idx: "7" } },
      (e) => e.labels.team === "red" && e.labels.idx === "7",
    );
    const start = T0 + 5;
    const end = T0 + 10;
    await expectIds({ startTime: timestampFromMs(start), endTime: timestampFromMs(end) }, (e) => {
      const t = timestampDate(e.timestamp ?? timestampFromMs(0)).getTime();
      return t >= start && t < end;
    });
    await expectIds(
      { workflowId: "wf-1", eventTypes: [EventType.LLM_CALL_COMPLETED], executionId: "exec-3" },
      (e) =>
        e.workflowId === "wf-1" &&
        e.eventType === EventType.LLM_CALL_COMPLETED &&
        e.executionId === "exec-3",
    );
    const none = await events(a.adminKey).queryEvents({ executionId: "exec-none" });
    expect(none.events).toEqual([]);
  });

  it("binds hostile strings as values: they match literally, never widen the query", async () => {
    const hit = await events(a.adminKey).queryEvents({ labels: { note: HOSTILE } });
    expect(ids(hit.events)).toEqual([seededA[60]?.eventId]);
    const byKey = await events(a.adminKey).queryEvents({ labels: { [HOSTILE]: "k" } });
    expect(ids(byKey.events)).toEqual([seededA[60]?.eventId]);
    for (const value of ["' OR 1=1 --", "') OR 1=1 --", "x\\' OR '1'='1", "\\", "'"]) {
      const miss = await events(a.adminKey).queryEvents({
        labels: { note: value, [value]: value },
      });
      expect(miss.events, value).toEqual([]);
    }
    // Ids are checked by protovalidate before any SQL: a quote is InvalidArgument.
    await expectCode(
      events(a.adminKey).queryEvents({ executionId: "x') OR 1=1 --" }),
      Code.InvalidArgument,
    );
  });

  it("pages without gaps or repeats, in both orders", async () => {
    const desc = await allPages(a.adminKey, { limit: 7 });
    const asc = await allPages(a.adminKey, { limit: 7, order: SortOrder.ASCENDING });
    expect(desc.pages).toBe(Math.ceil(seededA.length / 7));
    for (const run of [desc, asc]) {
      expect(run.events).toHaveLength(seededA.length);
      expect(new Set(ids(run.events)).size).toBe(seededA.length);
    }
    expect(ids(asc.events)).toEqual(ids(desc.events).reverse());
    // Filters with pages: the token belongs to its filters.
    const red = await allPages(a.adminKey, { limit: 4, labels: { team: "red" } });
    expect(new Set(ids(red.events))).toEqual(
      new Set(ids(seededA.filter((e) => e.labels.team === "red"))),
    );
    const first = await events(a.adminKey).queryEvents({ limit: 4, labels: { team: "red" } });
    await expectCode(
      events(a.adminKey).queryEvents({ pageToken: first.nextPageToken, labels: { team: "blue" } }),
      Code.InvalidArgument,
      /page_token/,
    );
    // Another tenant's token is not valid for this key.
    await expectCode(
      events(b.adminKey).queryEvents({ pageToken: first.nextPageToken, labels: { team: "red" } }),
      Code.InvalidArgument,
    );
  });

  it("validates limits", async () => {
    await expectCode(events(a.adminKey).queryEvents({ limit: 1001 }), Code.InvalidArgument);
    await expectCode(events(a.adminKey).queryEvents({ limit: -1 }), Code.InvalidArgument);
    const dflt = await events(a.adminKey).queryEvents({});
    expect(dflt.events).toHaveLength(Math.min(seededA.length, 100));
    await expectCode(
      events(a.adminKey).getExecutionEvents({ executionId: "exec-1", limit: 10_001 }),
      Code.InvalidArgument,
    );
  });
});

describe("GetExecutionEvents", () => {
  it("returns one execution's events oldest first, across pages", async () => {
    const want = seededA.filter((e) => e.executionId === "exec-2");
    const got: Event[] = [];
    let pageToken = "";
    do {
      const res = await events(a.adminKey).getExecutionEvents({
        executionId: "exec-2",
        limit: 4,
        pageToken,
      });
      got.push(...res.events);
      pageToken = res.nextPageToken;
    } while (pageToken);
    expect(got).toHaveLength(want.length);
    expect(new Set(ids(got))).toEqual(new Set(ids(want)));
    const times = got.map((e) => timestampDate(e.timestamp ?? timestampFromMs(0)).getTime());
    expect(times).toEqual([...times].sort((x, y) => x - y));
    const fromB = await events(b.adminKey).getExecutionEvents({ executionId: "exec-2" });
    expect(new Set(ids(fromB.events))).toEqual(
      new Set(ids(seededB.filter((e) => e.executionId === "exec-2"))),
    );
  });
});

describe("GetEventStoreStats", () => {
  it("counts the tenant's events by type, with the stream's state", async () => {
    const stats = await events(a.adminKey).getEventStoreStats({});
    expect(stats.totalEvents).toBe(BigInt(seededA.length));
    const byType: Record<string, bigint> = {};
    for (const e of seededA) {
      const name = `EVENT_TYPE_${EventType[e.eventType]}`;
      byType[name] = (byType[name] ?? 0n) + 1n;
    }
    expect(stats.eventsByType).toEqual(byType);
    expect(stats.firstEventAt && timestampDate(stats.firstEventAt).getTime()).toBe(T0);
    expect(stats.lastEventAt && timestampDate(stats.lastEventAt).getTime()).toBe(T0 + 20);
    expect(stats.streamName).toBe("FULCRUM_EXECUTION_EVENTS");
    expect(stats.duplicateWindowSeconds).toBe(120n);
    // The tenants' creation already published management changes to the stream.
    expect(stats.lastSequence).toBeGreaterThan(0n);
    expect(stats.streamBytes).toBeGreaterThan(0n);
    const statsB = await events(b.adminKey).getEventStoreStats({});
    expect(statsB.totalEvents).toBe(BigInt(seededB.length));
  });
});

describe("who may read events", () => {
  it("any manage key's role (viewer included); not check keys, not the platform key", async () => {
    const viewer = await userWithKey(stack, a.adminKey, UserRole.VIEWER);
    const res = await events(viewer.key).queryEvents({ limit: 1 });
    expect(res.events).toHaveLength(1);
    const checker = await userWithKey(stack, a.adminKey, UserRole.ADMIN, [ApiKeyScope.CHECK]);
    await expectCode(events(checker.key).queryEvents({}), Code.PermissionDenied, /check scope/);
    await expectCode(events(stack.platformKey).queryEvents({}), Code.PermissionDenied);
    await expectCode(events(undefined as unknown as string).queryEvents({}), Code.Unauthenticated);
  });

  it("answers PublishEvent with Unimplemented pointing at the edge", async () => {
    await expectCode(
      events(a.adminKey).publishEvent({
        event: { executionId: "e", eventType: EventType.CUSTOM, customType: "x" },
      }),
      Code.Unimplemented,
      /edge/,
    );
  });
});
