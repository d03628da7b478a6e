import { type SQL, sql } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { isUuid } from "../../../core/ids/uuid.js";

/**
 * Opaque page tokens for the management API's List methods: keyset pagination, so a page
 * never repeats or skips a row when rows are added between calls (an offset would). The
 * token is base64url JSON of the last row's position plus the query it belongs to
 * (`scope`: the method and its filters), so a token is refused when replayed against
 * another list or other filters rather than silently paging through the wrong set. Not a
 * secret and not signed: a forged token can only move the caller's own position in a list
 * row-level security has already scoped.
 *
 * `encodeToken`/`decodeToken` carry any position (ListPolicyVersions: a version number);
 * most lists page on (created_at, id) with `encodePageToken`/`decodePageToken`, which keep
 * created_at as PostgreSQL's own text (`created_at::text`, with microseconds and offset): a
 * JavaScript Date has only milliseconds, and rows created in the same millisecond would
 * otherwise be skipped or repeated.
 */
export interface PageCursor {
  /** `created_at::text` of the last row returned. */
  createdAt: string;
  id: string;
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

/** PostgreSQL's ISO output of a timestamptz, e.g. `2026-11-24 13:56:24.123456+00`. */
const PG_TIMESTAMPTZ =
  /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?[+-](\d{2})(:[0-5]\d){0,2}$/;

/**
 * Whether `text` is a timestamp PostgreSQL will accept: the shape and every field in
 * range (a forged `2026-02-31` must be InvalidArgument, not a database error).
 */
function isPgTimestamptz(text: string): boolean {
  const m = PG_TIMESTAMPTZ.exec(text);
  if (!m) return false;
  const [y, mo, d, h, mi, s, , oh] = m.slice(1).map((x) => Number(x ?? 0)) as number[];
  const date = new Date(Date.UTC(y as number, (mo as number) - 1, d));
  return (
    (y as number) >= 1 &&
    date.getUTCFullYear() === y &&
    date.getUTCMonth() === (mo as number) - 1 &&
    date.getUTCDate() === d &&
    (h as number) < 24 &&
    (mi as number) < 60 &&
    (s as number) < 60 &&
    (oh as number) <= 15
  );
}

function badToken(): FulcrumError {
  return new FulcrumError(
    "Invalid",
    "page_token is not valid: pass the next_page_token of the previous response, unchanged, with the same filters",
    { field: "page_token" },
  );
}

/** The page size to use: 0 means the default; protovalidate bounds the rest. */
export function pageSize(requested: number): number {
  if (!requested || requested < 0) return DEFAULT_PAGE_SIZE;
  return Math.min(requested, MAX_PAGE_SIZE);
}

/** A keyset position: short field names to strings or numbers (`s` is the scope's). */
export type Position = Record<string, string | number>;

export function encodeToken(scope: string, position: Position): string {
  const json = JSON.stringify({ ...position, s: scope });
  return Buffer.from(json, "utf8").toString("base64url");
}

/**
 * The position a token encodes, checked by `shape` (the typed position, or undefined when
 * a field is missing or malformed); undefined for "" (the first page).
 *
 * @throws FulcrumError Invalid (field page_token) when the token is malformed, does not
 * fit `shape`, or was issued for another list or other filters.
 */
export function decodeToken<T>(
  scope: string,
  token: string,
  shape: (position: Record<string, unknown>) => T | undefined,
): T | undefined {
  if (token === "") return undefined;
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw badToken();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw badToken();
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw badToken();
  const { s, ...position } = parsed as Record<string, unknown>;
  if (s !== scope) throw badToken();
  const decoded = shape(position);
  if (decoded === undefined) throw badToken();
  return decoded;
}

export function encodePageToken(scope: string, cursor: PageCursor): string {
  return encodeToken(scope, { t: cursor.createdAt, i: cursor.id });
}

function cursorShape({ t, i }: Record<string, unknown>): PageCursor | undefined {
  if (typeof t !== "string" || typeof i !== "string") return undefined;
  if (!isPgTimestamptz(t) || !isUuid(i)) return undefined;
  return { createdAt: t, id: i };
}

/**
 * The (created_at, id) position a token encodes; undefined for "" (the first page).
 *
 * @throws FulcrumError Invalid (field page_token) when the token is malformed or was
 * issued for another list or other filters.
 */
export function decodePageToken(scope: string, token: string): PageCursor | undefined {
  return decodeToken(scope, token, cursorShape);
}

/** The row position to select as `cursor` with each row, for the next token. */
export function cursorColumn(createdAt: AnyPgColumn): SQL<string> {
  return sql<string>`${createdAt}::text`;
}

/** Rows strictly after `cursor` in the list's order (ascending or descending). */
export function afterCursor(
  createdAt: AnyPgColumn,
  id: AnyPgColumn,
  cursor: PageCursor | undefined,
  order: "asc" | "desc",
): SQL | undefined {
  if (!cursor) return undefined;
  const position = sql`(${cursor.createdAt}::timestamptz, ${cursor.id}::uuid)`;
  return order === "asc"
    ? sql`(${createdAt}, ${id}) > ${position}`
    : sql`(${createdAt}, ${id}) < ${position}`;
}

/**
 * Splits the `size + 1` rows a query fetched into the page and the next token (empty
 * when this is the last page), positioned after the page's last row.
 */
export function nextPage<R>(
  scope: string,
  rows: R[],
  size: number,
  positionOf: (last: R) => Position,
): { rows: R[]; nextPageToken: string } {
  if (rows.length <= size) return { rows, nextPageToken: "" };
  const page = rows.slice(0, size);
  return { rows: page, nextPageToken: encodeToken(scope, positionOf(page[page.length - 1] as R)) };
}

/** nextPage for lists paged on (created_at, id): rows carry `cursor` (cursorColumn) and `id`. */
export function toPage<R extends { cursor: string; id: string }>(
  scope: string,
  rows: R[],
  size: number,
): { rows: R[]; nextPageToken: string } {
  return nextPage(scope, rows, size, (last) => ({ t: last.cursor, i: last.id }));
}

/**
 * One page of a list keyed on (created_at, id), the whole protocol in one place: the
 * caller's token is decoded for `scope`, `fetch` reads up to `limit` rows after `cursor`
 * (one more than the page, to learn whether another follows), and the page comes back
 * with its next token.
 *
 * @example
 * const page = await keysetPage(scope, req, (cursor, limit) => query(cursor).limit(limit));
 */
export async function keysetPage<R extends { cursor: string; id: string }>(
  scope: string,
  request: { pageToken: string; pageSize: number },
  fetch: (cursor: PageCursor | undefined, limit: number) => Promise<R[]>,
): Promise<{ rows: R[]; nextPageToken: string }> {
  const size = pageSize(request.pageSize);
  const cursor = decodePageToken(scope, request.pageToken);
  return toPage(scope, await fetch(cursor, size + 1), size);
}
