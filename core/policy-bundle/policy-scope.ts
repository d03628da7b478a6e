/**
 * Whether a published policy applies to a context: its effective window and
 * its scope, with the governance library's scope semantics
 * (policies/README.md "Scope and phases", enforcement.rego `_misses`):
 *
 * - an empty or missing list does not restrict; `apply_to_all` ignores every list;
 * - every non-empty list must match: `workflow_ids` exactly, `phases` exactly
 *   (a context without a phase is subject to every phase-scoped policy: fail
 *   closed), `roles` (the user holds at least one), `model_ids` (globs),
 *   `tool_names` (globs; at least one tool of the call);
 * - `effective_at` <= now < `expires_at` (either bound may be absent).
 */
import type { PolicyContext } from "../policy/tenant-config.js";
import { globMatchAny } from "./glob.js";
import type { PublishedPolicy } from "./published-policy.js";

/** Scope dimensions in the order misses are reported (as the governance library). */
export const SCOPE_DIMENSIONS = [
  "workflow_ids",
  "phases",
  "roles",
  "model_ids",
  "tool_names",
] as const;

export type ScopeDimension = (typeof SCOPE_DIMENSIONS)[number];

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const strs = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

function allows(dimension: ScopeDimension, list: readonly string[], ctx: PolicyContext): boolean {
  switch (dimension) {
    case "workflow_ids":
      return list.includes(str(ctx.workflow_id));
    case "phases": {
      const phase = str(ctx.phase);
      return phase === "" || list.includes(phase);
    }
    case "roles":
      return strs(ctx.user_roles).some((role) => list.includes(role));
    case "model_ids":
      return globMatchAny(list, str(ctx.model_id));
    case "tool_names":
      return strs(ctx.tool_names).some((tool) => globMatchAny(list, tool));
  }
}

/** The scope dimensions the context falls outside of, in {@link SCOPE_DIMENSIONS} order. */
export function scopeMisses(meta: PublishedPolicy, context: PolicyContext): ScopeDimension[] {
  const scope = meta.scope ?? {};
  if (scope.apply_to_all) return [];
  return SCOPE_DIMENSIONS.filter((d) => {
    const list = scope[d] ?? [];
    return list.length > 0 && !allows(d, list, context);
  });
}

/** Why the policy is not in effect at `now` ("not yet in effect ..." / "expired ..."), or null. */
export function outsideWindow(meta: PublishedPolicy, now: Date): string | null {
  const t = now.getTime();
  if (meta.effective_at !== undefined && t < Date.parse(meta.effective_at)) {
    return `the policy is not in effect before ${meta.effective_at}`;
  }
  if (meta.expires_at !== undefined && t >= Date.parse(meta.expires_at)) {
    return `the policy expired at ${meta.expires_at}`;
  }
  return null;
}

/**
 * Why the policy does not apply, as the message of its not-applicable
 * result (the governance library's wording for scope misses), or null.
 */
export function notApplicableMessage(
  meta: PublishedPolicy,
  context: PolicyContext,
  now: Date,
): string | null {
  const window = outsideWindow(meta, now);
  if (window) return `not applicable: ${window}`;
  const misses = scopeMisses(meta, context);
  if (misses.length > 0) {
    return `not applicable: the context is outside the policy scope (${misses.join(", ")})`;
  }
  return null;
}

export function policyApplies(meta: PublishedPolicy, context: PolicyContext, now: Date): boolean {
  return notApplicableMessage(meta, context, now) === null;
}
