import { describe, expect, it } from "vitest";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import {
  decodePageToken,
  decodeToken,
  encodePageToken,
  encodeToken,
  nextPage,
  pageSize,
  toPage,
} from "./page-token.js";

const ID = "0190f5a2-6b1c-7d3e-8f40-123456789abc";
const AT = "2026-11-24 13:56:24.123456+00";
const token = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

const version = ({ v }: Record<string, unknown>) =>
  typeof v === "number" && Number.isInteger(v) && v >= 1 ? v : undefined;

function refused(
  scope: string,
  t: string,
  decode: (scope: string, t: string) => unknown = decodePageToken,
): void {
  let error: unknown;
  try {
    decode(scope, t);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(FulcrumError);
  expect(error).toMatchObject({ kind: "Invalid", field: "page_token" });
  expect((error as Error).message).toMatch(/^page_token is not valid/);
}

describe("page tokens", () => {
  it("round-trip the position for the same scope; empty is the first page", () => {
    const t = encodePageToken("users?role=", { createdAt: AT, id: ID });
    expect(t).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodePageToken("users?role=", t)).toEqual({ createdAt: AT, id: ID });
    expect(decodePageToken("users?role=", "")).toBeUndefined();
  });

  it("refuse tokens of another list or filter, and malformed ones", () => {
    refused("users?role=admin", encodePageToken("users?role=", { createdAt: AT, id: ID }));
    for (const bad of [
      "%%%",
      "bm9wZQ",
      token([]),
      token(null),
      token({ s: "x", t: AT }),
      token({ s: "x", t: AT, i: "not-a-uuid" }),
      token({ s: "x", t: "yesterday", i: ID }),
      token({ s: "x", t: "2026-02-31 00:00:00+00", i: ID }),
      token({ s: "x", t: "2026-01-01 24:00:00+00", i: ID }),
      token({ s: "x", t: "2026-01-01 00:00:00+00'; drop table users; --", i: ID }),
    ]) {
      refused("x", bad);
    }
  });

  it("sizes pages: 0 is the default, at most 1000", () => {
    expect(pageSize(0)).toBe(50);
    expect(pageSize(7)).toBe(7);
    expect(pageSize(5000)).toBe(1000);
  });

  it("split size + 1 rows into a page and the next token", () => {
    const rows = [1, 2, 3].map((n) => ({ id: ID, cursor: `2026-11-24 13:56:2${n}+00` }));
    expect(toPage("s", rows.slice(0, 2), 2).nextPageToken).toBe("");
    const page = toPage("s", rows, 2);
    expect(page.rows).toHaveLength(2);
    expect(decodePageToken("s", page.nextPageToken)).toEqual({
      createdAt: rows[1]?.cursor,
      id: ID,
    });
  });

  it("carry any position through encodeToken/decodeToken, checked by its shape", () => {
    const decodeVersion = (scope: string, t: string) => decodeToken(scope, t, version);
    const t = encodeToken("versions?policy=a", { v: 7 });
    expect(decodeVersion("versions?policy=a", t)).toBe(7);
    expect(decodeVersion("versions?policy=a", "")).toBeUndefined();
    refused("versions?policy=b", t, decodeVersion);
    for (const bad of [
      token({ s: "x" }),
      token({ s: "x", v: 0 }),
      token({ s: "x", v: 1.5 }),
      token({ s: "x", v: "3" }),
      token({ v: 3 }),
      // A (created_at, id) token is not a version token, and the other way round.
      encodePageToken("x", { createdAt: AT, id: ID }),
    ]) {
      refused("x", bad, decodeVersion);
    }
    refused("x", encodeToken("x", { v: 3 }));
    // The scope cannot be overridden by a position field named like it.
    expect(() => decodeVersion("x", encodeToken("y", { v: 3, s: "x" }))).toThrow(FulcrumError);
  });

  it("split rows into a page and a token for any position", () => {
    const rows = [5, 4, 3].map((v) => ({ version: v }));
    expect(nextPage("s", rows, 3, (r) => ({ v: r.version })).nextPageToken).toBe("");
    const page = nextPage("s", rows, 2, (r) => ({ v: r.version }));
    expect(page.rows).toEqual([{ version: 5 }, { version: 4 }]);
    expect(decodeToken("s", page.nextPageToken, version)).toBe(4);
  });
});
