import { env } from "cloudflare:workers";
import { inject } from "vitest";
import type { AuditBufferStats } from "../src/audit/audit-buffer.js";
import type { Env } from "../src/config.js";

/**
 * The workerd tier's NATS as tests see it: through the globalSetup's control server
 * (test/harness/nats-control-server.ts), since code in workerd cannot reach Node.
 */
const { controlUrl } = inject("workerdNats");

export interface StoredEvent {
  seq: number;
  subject: string;
  msgId?: string;
  schema?: string;
  event: {
    eventId?: string;
    tenantId?: string;
    eventType?: string;
    executionId?: string;
    timestamp?: string;
    source?: string;
    labels?: Record<string, string>;
    policyResult?: { decisionId?: string; decision?: string; policyId?: string };
    invalid?: string;
  };
}

async function control(path: string, init?: RequestInit): Promise<unknown> {
  const response = await fetch(`${controlUrl}${path}`, init);
  const body = (await response.json()) as { error?: string };
  if (!response.ok) throw new Error(`control ${path}: ${body.error}`);
  return body;
}

/** Every message stored on `subject` (a filter such as `fulcrum.events.<tenant>.>`). */
export async function storedEvents(subject: string): Promise<StoredEvent[]> {
  const body = (await control(`/messages?subject=${encodeURIComponent(subject)}`)) as {
    messages: StoredEvent[];
  };
  return body.messages;
}

export const pauseNats = () => control("/pause", { method: "POST" });
export const resumeNats = () => control("/resume", { method: "POST" });
export const deleteEventsStream = () => control("/streams/delete", { method: "POST" });

/** Polls `probe` every 50 ms until it returns a value that is not undefined. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > until) {
      throw new Error(`timed out waiting for ${what}${lastError ? `: ${lastError}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The stats of every audit buffer instance the Worker uses (AUDIT_SHARDS default 4). */
export async function bufferStats(shards = 4): Promise<AuditBufferStats[]> {
  const ns = (env as Env).AUDIT_BUFFER;
  if (!ns) throw new Error("AUDIT_BUFFER is not bound");
  return Promise.all(
    Array.from({ length: shards }, (_, n) => ns.get(ns.idFromName(`audit-${n}`)).stats()),
  );
}
