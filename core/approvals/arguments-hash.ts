/**
 * The hash an approval is bound to: a reviewer approves one concrete call, and only a
 * retry of exactly that call (same action, tools, arguments, input text, workflow) may
 * use the approval. The edge computes it for a REQUIRE_APPROVAL decision; functions
 * and SDKs can compute the same value from the same fields.
 *
 * Canonical form: SHA-256 (lower-case hex) of the JSON text of
 * `{action, arguments, input_text, tool_names, workflow_id}` with every object's keys
 * sorted by code unit, tool names sorted, and `arguments` in canonical form when it is
 * JSON (canonical-json.ts: `{"b":1,"a":2}` and `{ "a": 2, "b": 1 }` hash alike, numbers
 * are compared as written, never rounded to a double) or kept as the raw string when it
 * is not. Web-standard only (crypto.subtle).
 */
import { canonicalJsonText } from "./canonical-json.js";

export interface ApprovalSubject {
  action?: string;
  toolNames?: readonly string[];
  /** The call's arguments as sent (JSON text, or any text). */
  arguments?: string;
  inputText?: string;
  workflowId?: string;
}

/** `value` as JSON with object keys sorted at every depth. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value)
      .sort(byCodeUnit)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  // undefined (absent) is written as null so the text stays JSON.
  return JSON.stringify(value) ?? "null";
}

/** The canonical document hashed (exported for tests and other producers). */
export function approvalSubjectJson(subject: ApprovalSubject): string {
  // Keys in code-unit order, as canonicalJson would write them; arguments are already canonical.
  const field = (name: string, json: string) => `${JSON.stringify(name)}:${json}`;
  return `{${[
    field("action", JSON.stringify(subject.action ?? "")),
    field("arguments", argumentsJson(subject.arguments ?? "")),
    field("input_text", JSON.stringify(subject.inputText ?? "")),
    field("tool_names", canonicalJson([...(subject.toolNames ?? [])].sort(byCodeUnit))),
    field("workflow_id", JSON.stringify(subject.workflowId ?? "")),
  ].join(",")}}`;
}

/** SHA-256 hex of {@link approvalSubjectJson}. */
export async function argumentsHash(subject: ApprovalSubject): Promise<string> {
  const bytes = new TextEncoder().encode(approvalSubjectJson(subject));
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** JSON arguments in canonical form (canonical-json.ts), else the raw text as a string. */
function argumentsJson(raw: string): string {
  return (raw.trim() === "" ? undefined : canonicalJsonText(raw)) ?? JSON.stringify(raw);
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
