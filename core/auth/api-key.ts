import { FulcrumError } from "../errors/fulcrum-error.js";

/**
 * API keys: `fk_` followed by 43 base64url characters (32 random bytes, unpadded). Only the
 * key's SHA-256 (lower-case hex) is stored, plus its first 11 characters (`fk_` + 8) as the
 * prefix shown in listings; `fulcrum_authenticate_api_key(hash)` (migration 0003) finds the
 * key by that hash. Web-standard APIs only (crypto.getRandomValues, crypto.subtle): core is
 * compiled for Workers too.
 */

/** What a key may be used for: `check` (evaluation calls), `manage` (the management API). */
export type ApiKeyScope = "check" | "manage";
/** A user's role; a key acts as its user, so the role bounds what the key may do. */
export type UserRole = "admin" | "policy_author" | "viewer";

export const API_KEY_SCOPES: readonly ApiKeyScope[] = ["check", "manage"];
export const USER_ROLES: readonly UserRole[] = ["admin", "policy_author", "viewer"];

/** Every key starts with this. */
export const API_KEY_PREFIX = "fk_";
/** Length of the visible prefix stored and listed with a key: `fk_` + 8 characters. */
export const API_KEY_DISPLAY_PREFIX_LENGTH = 11;
/** Length of a whole key: `fk_` + 43 base64url characters (32 bytes). */
export const API_KEY_LENGTH = 46;

// 32 bytes are 256 bits; 43 base64url characters carry 258, so the last character encodes
// 4 bits and 2 zero bits: only these 16 characters can end a canonical encoding.
const API_KEY = /^fk_[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** What a malformed key is told; it never repeats the key. */
const FORMAT_HINT = `expected "${API_KEY_PREFIX}" followed by 43 base64url characters, exactly as shown when the key was created`;

export interface GeneratedApiKey {
  /** The key itself: shown to its owner once, never stored. */
  secret: string;
  /** Its first 11 characters (`fk_` + 8), stored and shown in listings. */
  prefix: string;
  /** Lower-case hex SHA-256 of `secret`: what is stored and looked up. */
  hash: string;
}

/**
 * A new random key, its visible prefix and its hash.
 *
 * @example const { secret, prefix, hash } = await generateApiKey(); // store prefix + hash
 */
export async function generateApiKey(): Promise<GeneratedApiKey> {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const secret = `${API_KEY_PREFIX}${base64url(bytes)}`;
  return {
    secret,
    prefix: secret.slice(0, API_KEY_DISPLAY_PREFIX_LENGTH),
    hash: await hashApiKey(secret),
  };
}

/**
 * Lower-case hex SHA-256 of the key, as stored in `api_keys.key_hash`. Hashes any string;
 * check the format with `looksLikeApiKey` first so garbage never reaches the database.
 */
export async function hashApiKey(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether `secret` has the exact shape of a key `generateApiKey` makes. */
export function looksLikeApiKey(secret: unknown): secret is string {
  return typeof secret === "string" && API_KEY.test(secret);
}

/**
 * The API key a request carries, from `x-api-key` or `Authorization: Bearer <key>` (scheme
 * case-insensitive); `undefined` when it carries none. A non-Bearer `Authorization` is
 * ignored when `x-api-key` is present (it may be meant for a proxy).
 *
 * @throws FulcrumError("Unauthenticated") when a header is malformed, when the key does not
 * look like a Fulcrum key, or when both headers carry different keys. Messages say what to
 * fix and never contain the key.
 */
export function parseApiKeyHeader(headers: Headers): string | undefined {
  const fromApiKeyHeader = headers.get("x-api-key");
  const authorization = headers.get("authorization");

  let fromBearer: string | undefined;
  if (authorization !== null) {
    const [, scheme = "", token = ""] = /^\s*(\S*)\s*(.*?)\s*$/.exec(authorization) ?? [];
    if (scheme.toLowerCase() === "bearer") {
      if (token === "") {
        throw unauthenticated(
          "the Authorization header has no key: send `Authorization: Bearer <key>`",
        );
      }
      fromBearer = token;
    } else if (fromApiKeyHeader === null) {
      throw unauthenticated(
        "the Authorization header must use the Bearer scheme: send `Authorization: Bearer <key>` or `x-api-key: <key>`",
      );
    }
  }

  let fromHeader: string | undefined;
  if (fromApiKeyHeader !== null) {
    fromHeader = fromApiKeyHeader.trim();
    if (fromHeader === "") {
      throw unauthenticated("the x-api-key header is empty: send `x-api-key: <key>`");
    }
  }

  if (fromHeader !== undefined && fromBearer !== undefined && fromHeader !== fromBearer) {
    throw unauthenticated(
      "the x-api-key and Authorization headers carry different keys: send one of them",
    );
  }
  const key = fromHeader ?? fromBearer;
  if (key === undefined) return undefined;
  if (!looksLikeApiKey(key)) {
    const where = fromHeader !== undefined ? "x-api-key header" : "Authorization header";
    throw unauthenticated(`the ${where} does not hold a Fulcrum API key: ${FORMAT_HINT}`);
  }
  return key;
}

function unauthenticated(message: string): FulcrumError {
  return new FulcrumError("Unauthenticated", message);
}

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
