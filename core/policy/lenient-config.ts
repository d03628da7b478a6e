/**
 * Typed readers for the tenant configuration. prepareTenantData validates the
 * configuration strictly first (validate-tenant-config.ts) and throws on any
 * problem, so these only read optional values with their defaults (a missing
 * value reads as empty); the fallbacks for mistyped values are defence in
 * depth, never a leniency configurations can rely on.
 */
export type Json = Record<string, unknown>;

export const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

export const str = (v: unknown): string => (typeof v === "string" ? v : "");

export const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

export const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

/** "[a, b]": how lists are rendered in conditions and reasons. */
export const list = (xs: readonly string[]): string => `[${xs.join(", ")}]`;

/** A Rego set-like object (value -> true), looked up in O(1) by the policy. */
export const set = (xs: readonly string[]): Record<string, true> => {
  const out: Record<string, true> = {};
  for (const x of xs) out[x] = true;
  return out;
};
