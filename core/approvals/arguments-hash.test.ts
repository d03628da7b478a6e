import { describe, expect, it } from "vitest";
import { approvalSubjectJson, argumentsHash, canonicalJson } from "./arguments-hash.js";

describe("canonicalJson", () => {
  it("sorts object keys at every depth and keeps array order", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });
});

describe("argumentsHash", () => {
  const base = {
    action: "pay",
    toolNames: ["stripe", "audit"],
    arguments: '{"amount": 10, "to": "acct_1"}',
    inputText: "pay the invoice",
    workflowId: "billing",
  };

  it("is the SHA-256 hex of the canonical document", async () => {
    const json = approvalSubjectJson(base);
    expect(json).toBe(
      '{"action":"pay","arguments":{"amount":10,"to":"acct_1"},"input_text":"pay the invoice","tool_names":["audit","stripe"],"workflow_id":"billing"}',
    );
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(json));
    const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    expect(await argumentsHash(base)).toBe(hex);
  });

  it("ignores JSON formatting, key order and tool order", async () => {
    const same = await argumentsHash({
      ...base,
      toolNames: ["audit", "stripe"],
      arguments: '{ "to": "acct_1",\n "amount": 10 }',
    });
    expect(same).toBe(await argumentsHash(base));
  });

  it("changes with any field", async () => {
    const hash = await argumentsHash(base);
    for (const change of [
      { action: "refund" },
      { toolNames: ["stripe"] },
      { arguments: '{"amount": 11, "to": "acct_1"}' },
      { inputText: "pay twice" },
      { workflowId: "other" },
    ]) {
      expect(await argumentsHash({ ...base, ...change })).not.toBe(hash);
    }
  });

  it("hashes arguments that are not JSON as their raw text, and absent fields as empty", async () => {
    expect(approvalSubjectJson({ arguments: "not json {" })).toBe(
      '{"action":"","arguments":"not json {","input_text":"","tool_names":[],"workflow_id":""}',
    );
    expect(await argumentsHash({})).toMatch(/^[0-9a-f]{64}$/);
  });
});
