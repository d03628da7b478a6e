/**
 * Who a decision counts against, and the counter identifiers each spec gives it.
 * Every identifier starts with the tenant (`t:<tenant>:…`) so two tenants never share
 * a counter whatever their key, workflow or tool ids, and ends with the spec id, so
 * two limits of one scope (per minute, per hour) never share one either. Components
 * are percent-encoded: an id holding `:` cannot forge another's identifier.
 */
import { globMatch } from "../policy-bundle/glob.js";
import type { RateLimitSpec } from "./rate-limit-spec.js";

export interface RateLimitSubject {
  tenantId: string;
  apiKeyId: string;
  workflowId?: string;
  /** The call's tools: a scope "tool" spec counts each (distinct) matching tool once. */
  toolNames: readonly string[];
  /** The call's tokens, for "tokens" specs (which do not apply without them). */
  tokens?: number;
  /** The decision's phase; "" or missing counts against every spec. */
  phase?: string;
}

const enc = encodeURIComponent;

/** One counter a decision updates: which spec, whose counter, and by how much. */
export interface RateLimitCheck {
  spec: RateLimitSpec;
  identifier: string;
  /** Units consumed: 1 for requests, the call's tokens for tokens. */
  cost: number;
}

/** `t:<tenant>[:k:<key> | :w:<workflow> | :tool:<tool>]:s:<spec>`, or null when the subject lacks the scope. */
export function identifierFor(
  spec: RateLimitSpec,
  subject: RateLimitSubject,
  toolName?: string,
): string | null {
  const tenant = `t:${enc(subject.tenantId)}`;
  const tail = `s:${enc(spec.id)}`;
  switch (spec.scope) {
    case "tenant":
      return `${tenant}:${tail}`;
    case "api_key":
      return subject.apiKeyId ? `${tenant}:k:${enc(subject.apiKeyId)}:${tail}` : null;
    case "workflow":
      return subject.workflowId ? `${tenant}:w:${enc(subject.workflowId)}:${tail}` : null;
    case "tool":
      return toolName ? `${tenant}:tool:${enc(toolName)}:${tail}` : null;
  }
}

/**
 * The counters `subject` updates, spec by spec in order. A spec does not apply (and
 * is left out) when the subject lacks its scope (no workflow, no matching tool), a
 * "tokens" spec when the call carries no positive token count (fractions round up),
 * and a phased spec in another phase.
 */
export function rateLimitChecks(
  specs: readonly RateLimitSpec[],
  subject: RateLimitSubject,
): RateLimitCheck[] {
  const checks: RateLimitCheck[] = [];
  for (const spec of specs) {
    if (spec.phases && subject.phase && !spec.phases.includes(subject.phase)) continue;
    let cost = 1;
    if (spec.unit === "tokens") {
      const tokens = subject.tokens;
      if (tokens === undefined || !Number.isFinite(tokens) || tokens <= 0) continue;
      cost = Math.ceil(tokens);
    }
    if (spec.scope === "tool") {
      const tools = [...new Set(subject.toolNames)].filter(
        (tool) => tool !== "" && (!spec.tools || spec.tools.some((g) => globMatch(g, tool))),
      );
      for (const tool of tools) {
        checks.push({ spec, identifier: identifierFor(spec, subject, tool) as string, cost });
      }
      continue;
    }
    const identifier = identifierFor(spec, subject);
    if (identifier !== null) checks.push({ spec, identifier, cost });
  }
  return checks;
}
