import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DEFAULT_EVENT_STREAM_SETTINGS,
  ensureEventStreams,
} from "../../core/audit/event-stream.js";
import { DEAD_LETTER_STREAM, EVENTS_STREAM } from "../../core/audit/event-subject.js";
import { startTestNats, type TestNats } from "../harness/nats-server.js";

let nats: TestNats;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startTestNats();
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

describe("ensureEventStreams", () => {
  it("creates both streams as configured, file-backed", async () => {
    const jsm = await jetstreamManager(nc);
    await ensureEventStreams(jsm, DEFAULT_EVENT_STREAM_SETTINGS);
    const info = await jsm.streams.info(EVENTS_STREAM);
    expect(info.config.subjects).toEqual(["fulcrum.events.>"]);
    expect(info.config.storage).toBe("file");
    expect(info.config.duplicate_window).toBe(120_000_000_000);
    expect(info.config.max_age).toBe(7 * 24 * 3600 * 1e9);
    expect((await jsm.streams.info(DEAD_LETTER_STREAM)).config.subjects).toEqual([
      "fulcrum.deadletter.>",
    ]);
  });

  it("is idempotent, updates changed settings and keeps the messages", async () => {
    const jsm = await jetstreamManager(nc);
    await ensureEventStreams(jsm, DEFAULT_EVENT_STREAM_SETTINGS);
    await nc.request("fulcrum.events.t1.custom", new Uint8Array([1]));
    await ensureEventStreams(jsm, DEFAULT_EVENT_STREAM_SETTINGS);
    await ensureEventStreams(jsm, { ...DEFAULT_EVENT_STREAM_SETTINGS, duplicateWindowMs: 30_000 });
    const info = await jsm.streams.info(EVENTS_STREAM);
    expect(info.config.duplicate_window).toBe(30_000_000_000);
    expect(info.state.messages).toBe(1);
  });

  it("brings a deleted stream back", async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(EVENTS_STREAM);
    await ensureEventStreams(jsm, DEFAULT_EVENT_STREAM_SETTINGS);
    expect((await jsm.streams.info(EVENTS_STREAM)).state.messages).toBe(0);
  });
});
