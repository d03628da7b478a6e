import { describe, expect, it } from "vitest";
import { approvalSubjectJson, argumentsHash } from "./arguments-hash.js";
import { canonicalJsonText, canonicalNumber } from "./canonical-json.js";

describe("canonicalJsonText", () => {
  it("sorts keys at every depth, drops whitespace and writes plain numbers as JSON does", () => {
    expect(canonicalJsonText(' { "b" : [1.0, 1e2, -0, {"z":1,"y":"\\u00e9"}], "a": null } ')).toBe(
      '{"a":null,"b":[1,100,0,{"y":"é","z":1}]}',
    );
    expect(canonicalJsonText("not json")).toBeUndefined();
  });

  it("never merges numbers a double cannot tell apart", () => {
    expect(canonicalNumber("9007199254740993")).not.toBe(canonicalNumber("9007199254740992"));
    expect(canonicalNumber("12345678901234567891")).toBe("12345678901234567891e0");
    expect(canonicalNumber("0.1000000000000000001")).not.toBe(canonicalNumber("0.1"));
    expect(canonicalNumber("1e400")).toBe("1e400");
    expect(canonicalJsonText("[1e400]")).not.toBe(canonicalJsonText("[null]"));
    // Same value, different spelling: one form.
    expect(canonicalNumber("12345678901234567891.000")).toBe(
      canonicalNumber("1234567890123456789.1e1"),
    );
    expect(canonicalNumber("0.10")).toBe("0.1");
  });

  it("keeps duplicate keys in their order", () => {
    expect(canonicalJsonText('{"a":1,"a":2}')).toBe('{"a":1,"a":2}');
    expect(canonicalJsonText('{"a":1,"a":2}')).not.toBe(canonicalJsonText('{"a":2}'));
  });

  it("handles nesting deeper than the call stack", () => {
    const depth = 100_000;
    const text = `${"[".repeat(depth)}1${"]".repeat(depth)}`;
    expect(canonicalJsonText(text)).toBe(text);
  });

  it("binds an approval to the exact numbers of its arguments", async () => {
    const call = (to: string) => ({ action: "pay", arguments: `{"to": ${to}, "amount": 10}` });
    expect(await argumentsHash(call("9007199254740993"))).not.toBe(
      await argumentsHash(call("9007199254740992")),
    );
    expect(approvalSubjectJson(call("9007199254740993"))).toContain(
      '"arguments":{"amount":10,"to":9007199254740993e0}',
    );
  });
});
