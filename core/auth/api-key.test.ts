import { describe, expect, it } from "vitest";
import { FulcrumError } from "../errors/fulcrum-error.js";
import {
  API_KEY_DISPLAY_PREFIX_LENGTH,
  API_KEY_LENGTH,
  generateApiKey,
  hashApiKey,
  looksLikeApiKey,
  parseApiKeyHeader,
} from "./api-key.js";

const KEY = "fk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"; // bytes 0..31
const OTHER = "fk_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8"; // bytes 32..63

/** The FulcrumError `fn` throws (fails the test when it throws nothing or something else). */
function thrown(fn: () => unknown): FulcrumError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(FulcrumError);
    return error as FulcrumError;
  }
  throw new Error("expected a FulcrumError, but nothing was thrown");
}

const headers = (init: Record<string, string>) => new Headers(init);

describe("generateApiKey", () => {
  it("makes fk_ + 43 base64url characters, its 11-character prefix and its SHA-256", async () => {
    const { secret, prefix, hash } = await generateApiKey();
    expect(secret).toMatch(/^fk_[A-Za-z0-9_-]{43}$/);
    expect(secret).toHaveLength(API_KEY_LENGTH);
    expect(prefix).toBe(secret.slice(0, API_KEY_DISPLAY_PREFIX_LENGTH));
    expect(prefix).toMatch(/^fk_[A-Za-z0-9_-]{8}$/);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).toBe(await hashApiKey(secret));
    expect(looksLikeApiKey(secret)).toBe(true);
  });

  it("does not repeat", async () => {
    const keys = await Promise.all(Array.from({ length: 200 }, () => generateApiKey()));
    expect(new Set(keys.map((k) => k.secret)).size).toBe(200);
    expect(new Set(keys.map((k) => k.hash)).size).toBe(200);
    // Every generated key is in canonical form (the last character carries 4 bits).
    expect(keys.every((k) => looksLikeApiKey(k.secret))).toBe(true);
  });
});

describe("hashApiKey", () => {
  it("is the lower-case hex SHA-256 of the whole key", async () => {
    // FIPS 180-2 test vector.
    expect(await hashApiKey("abc")).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    expect(await hashApiKey(KEY)).not.toBe(await hashApiKey(OTHER));
  });
});

describe("looksLikeApiKey", () => {
  it("accepts exactly the shape generateApiKey makes", () => {
    expect(looksLikeApiKey(KEY)).toBe(true);
    for (const bad of [
      "",
      "fk_",
      KEY.slice(0, -1),
      `${KEY}A`,
      `FK_${KEY.slice(3)}`,
      `sk_${KEY.slice(3)}`,
      `${KEY.slice(0, -1)}B`, // not a canonical encoding of 32 bytes
      `${KEY.slice(0, 10)}+${KEY.slice(11)}`, // base64, not base64url
      `${KEY.slice(0, 10)}=${KEY.slice(11)}`,
      ` ${KEY}`,
      undefined,
      42,
    ]) {
      expect(looksLikeApiKey(bad), String(bad)).toBe(false);
    }
  });
});

describe("parseApiKeyHeader", () => {
  it("reads x-api-key, or Authorization: Bearer with any case of the scheme", () => {
    expect(parseApiKeyHeader(headers({ "x-api-key": KEY }))).toBe(KEY);
    expect(parseApiKeyHeader(headers({ "X-Api-Key": ` ${KEY} ` }))).toBe(KEY);
    for (const scheme of ["Bearer", "bearer", "BEARER", "bEaReR"]) {
      expect(parseApiKeyHeader(headers({ authorization: `${scheme} ${KEY}` }))).toBe(KEY);
    }
    expect(parseApiKeyHeader(headers({ Authorization: `  Bearer   ${KEY}  ` }))).toBe(KEY);
  });

  it("is undefined when the request carries no key", () => {
    expect(parseApiKeyHeader(new Headers())).toBeUndefined();
    expect(parseApiKeyHeader(headers({ "content-type": "application/json" }))).toBeUndefined();
  });

  it("accepts both headers when they carry the same key, refuses them when they differ", () => {
    expect(parseApiKeyHeader(headers({ "x-api-key": KEY, authorization: `Bearer ${KEY}` }))).toBe(
      KEY,
    );
    const error = thrown(() =>
      parseApiKeyHeader(headers({ "x-api-key": KEY, authorization: `Bearer ${OTHER}` })),
    );
    expect(error.kind).toBe("Unauthenticated");
    expect(error.message).toMatch(/different keys/);
  });

  it("ignores a non-Bearer Authorization next to x-api-key, refuses it alone", () => {
    expect(parseApiKeyHeader(headers({ "x-api-key": KEY, authorization: "Basic dTpw" }))).toBe(KEY);
    const error = thrown(() => parseApiKeyHeader(headers({ authorization: "Basic dTpw" })));
    expect(error.kind).toBe("Unauthenticated");
    expect(error.message).toMatch(/Bearer scheme/);
  });

  it("refuses malformed headers with an actionable message that never contains the key", () => {
    const secretish = `${KEY.slice(0, 20)}!${KEY.slice(21)}`;
    const cases: [Record<string, string>, RegExp][] = [
      [{ authorization: "Bearer" }, /has no key/],
      [{ authorization: "Bearer   " }, /has no key/],
      [{ "x-api-key": "" }, /x-api-key header is empty/],
      [{ "x-api-key": "   " }, /x-api-key header is empty/],
      [
        { "x-api-key": secretish },
        /x-api-key header does not hold a Fulcrum API key: expected "fk_"/,
      ],
      [{ authorization: `Bearer ${secretish}` }, /Authorization header does not hold/],
      [{ authorization: `Bearer ${KEY} extra` }, /Authorization header does not hold/],
      [{ authorization: KEY }, /Bearer scheme/],
      [{ authorization: `Token ${KEY}` }, /Bearer scheme/],
    ];
    for (const [init, message] of cases) {
      const error = thrown(() => parseApiKeyHeader(headers(init)));
      expect(error.kind, JSON.stringify(init)).toBe("Unauthenticated");
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain(KEY.slice(3, 20));
    }
  });

  it("refuses two x-api-key headers", () => {
    const h = new Headers();
    h.append("x-api-key", KEY);
    h.append("x-api-key", OTHER);
    expect(thrown(() => parseApiKeyHeader(h)).kind).toBe("Unauthenticated");
  });
});
