/**
 * An envelope's governance as the service keeps it: the proto `Governance` checked and
 * turned into integer units (tokens, calls, micro-USD, milliseconds), stored in
 * `envelopes.governance` (jsonb, snake_case keys below) and published in the edge's
 * EnvelopeRecord. A zero in the proto means "no cap of this kind" and is stored as an
 * absent key.
 *
 * A child envelope draws on its parent and can never exceed it (`withinParent`): a
 * limit the child leaves unset is the parent's, a limit above the parent's is refused,
 * and when the parent restricts models or tools the child's lists must be within the
 * parent's (an empty child list inherits the parent's).
 */
import { create } from "@bufbuild/protobuf";
import { type Duration, DurationSchema } from "@bufbuild/protobuf/wkt";
import { FulcrumError, invalid } from "../../../core/errors/fulcrum-error.js";
import {
  type Governance,
  GovernanceSchema,
} from "../../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";

/** The longest an execution may run: longer is a configuration mistake, not a need. */
export const MAX_TIMEOUT_MS = 7 * 24 * 3600 * 1000;

export interface EnvelopeGovernance {
  budgetId?: string;
  tokenBudget?: number;
  costLimitMicros?: number;
  timeoutMs?: number;
  maxLlmCalls?: number;
  maxToolCalls?: number;
  allowedModels: string[];
  allowedTools: string[];
  complianceTags: string[];
}

/** The four counted limits, by their names in requests (for messages). */
const LIMITS = [
  ["tokenBudget", "governance.token_budget"],
  ["costLimitMicros", "governance.cost_limit_usd"],
  ["maxLlmCalls", "governance.max_llm_calls"],
  ["maxToolCalls", "governance.max_tool_calls"],
  ["timeoutMs", "governance.timeout"],
] as const;

function count(field: string, value: number | bigint): number | undefined {
  const n = typeof value === "bigint" ? Number(value) : value;
  if (!Number.isSafeInteger(n) || n < 0) {
    throw invalid(field, `must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`);
  }
  return n === 0 ? undefined : n;
}

function durationMs(d: Duration | undefined): number | undefined {
  if (!d) return undefined;
  const ms = Number(d.seconds) * 1000 + Math.ceil(d.nanos / 1e6);
  if (!Number.isFinite(ms) || ms < 0) throw invalid("governance.timeout", "must not be negative");
  if (ms > MAX_TIMEOUT_MS) {
    throw invalid("governance.timeout", "must be at most 7 days (604800s)");
  }
  return ms === 0 ? undefined : ms;
}

/**
 * The request's governance in service units. `budgetId` is the request's top-level
 * `budget_id` (a shorthand for governance.budget_id; both set must agree).
 *
 * @throws FulcrumError Invalid naming the field.
 */
export function governanceFromProto(
  g: Governance | undefined,
  budgetId: string,
): EnvelopeGovernance {
  const gov = g ?? create(GovernanceSchema);
  if (budgetId && gov.budgetId && budgetId !== gov.budgetId) {
    throw invalid("budget_id", "differs from governance.budget_id; set one of them");
  }
  if (!Number.isFinite(gov.costLimitUsd) || gov.costLimitUsd < 0) {
    throw invalid("governance.cost_limit_usd", "must be a finite amount of USD, 0 or more");
  }
  const out: EnvelopeGovernance = {
    allowedModels: [...new Set(gov.allowedModels)],
    allowedTools: [...new Set(gov.allowedTools)],
    complianceTags: [...gov.complianceTags],
  };
  const budget = budgetId || gov.budgetId;
  if (budget) out.budgetId = budget;
  const set = <K extends keyof EnvelopeGovernance>(k: K, v: EnvelopeGovernance[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set("tokenBudget", count("governance.token_budget", gov.tokenBudget));
  set(
    "costLimitMicros",
    count("governance.cost_limit_usd", Math.round(gov.costLimitUsd * 1_000_000)),
  );
  set("maxLlmCalls", count("governance.max_llm_calls", gov.maxLlmCalls));
  set("maxToolCalls", count("governance.max_tool_calls", gov.maxToolCalls));
  set("timeoutMs", durationMs(gov.timeout));
  return out;
}

/** A parent's `prefix*` (or `*`) covers any child entry starting with the prefix. */
function covered(parentList: readonly string[], entry: string): boolean {
  return parentList.some((p) => {
    if (p === entry) return true;
    if (!p.endsWith("*")) return false;
    const prefix = p.slice(0, -1);
    return !/[*?[\]{}\\!,]/.test(prefix) && entry.startsWith(prefix);
  });
}

function fmt(key: (typeof LIMITS)[number][0], value: number): string {
  if (key === "costLimitMicros") return `${value / 1_000_000} USD`;
  if (key === "timeoutMs") return `${value / 1000}s`;
  return String(value);
}

/**
 * The child's governance within its parent's: unset limits and lists inherited, the
 * rest checked.
 *
 * @throws FulcrumError FailedPrecondition naming the limit or entry above the parent's.
 */
export function withinParent(
  child: EnvelopeGovernance,
  parent: EnvelopeGovernance,
  parentId: string,
): EnvelopeGovernance {
  const out: EnvelopeGovernance = { ...child };
  for (const [key, field] of LIMITS) {
    const p = parent[key];
    if (p === undefined) continue;
    const c = child[key];
    if (c === undefined) out[key] = p;
    else if (c > p) {
      throw new FulcrumError(
        "FailedPrecondition",
        `${field} (${fmt(key, c)}) exceeds the parent envelope ${parentId}'s (${fmt(key, p)}); a child envelope can never exceed its parent`,
        { field },
      );
    }
  }
  for (const [key, field] of [
    ["allowedModels", "governance.allowed_models"],
    ["allowedTools", "governance.allowed_tools"],
  ] as const) {
    if (parent[key].length === 0) continue;
    if (child[key].length === 0) {
      out[key] = [...parent[key]];
      continue;
    }
    const outside = child[key].filter((entry) => !covered(parent[key], entry));
    if (outside.length > 0) {
      throw new FulcrumError(
        "FailedPrecondition",
        `${field} lists ${outside.map((e) => JSON.stringify(e)).join(", ")}, not allowed by the parent envelope ${parentId} (${parent[key].join(", ")})`,
        { field },
      );
    }
  }
  return out;
}

/** The jsonb form (snake_case; absent = no cap). */
export function governanceToJson(g: EnvelopeGovernance): Record<string, unknown> {
  const out: Record<string, unknown> = {
    allowed_models: g.allowedModels,
    allowed_tools: g.allowedTools,
    compliance_tags: g.complianceTags,
  };
  if (g.budgetId) out.budget_id = g.budgetId;
  if (g.tokenBudget !== undefined) out.token_budget = g.tokenBudget;
  if (g.costLimitMicros !== undefined) out.cost_limit_micros = g.costLimitMicros;
  if (g.timeoutMs !== undefined) out.timeout_ms = g.timeoutMs;
  if (g.maxLlmCalls !== undefined) out.max_llm_calls = g.maxLlmCalls;
  if (g.maxToolCalls !== undefined) out.max_tool_calls = g.maxToolCalls;
  return out;
}

const num = (v: unknown): number | undefined => (typeof v === "number" && v > 0 ? v : undefined);
const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : [];

export function governanceFromJson(json: unknown): EnvelopeGovernance {
  const j = (json && typeof json === "object" ? json : {}) as Record<string, unknown>;
  const out: EnvelopeGovernance = {
    allowedModels: strings(j.allowed_models),
    allowedTools: strings(j.allowed_tools),
    complianceTags: strings(j.compliance_tags),
  };
  if (typeof j.budget_id === "string" && j.budget_id) out.budgetId = j.budget_id;
  const pairs = [
    ["tokenBudget", j.token_budget],
    ["costLimitMicros", j.cost_limit_micros],
    ["timeoutMs", j.timeout_ms],
    ["maxLlmCalls", j.max_llm_calls],
    ["maxToolCalls", j.max_tool_calls],
  ] as const;
  for (const [key, value] of pairs) {
    const n = num(value);
    if (n !== undefined) out[key] = n;
  }
  return out;
}

export function governanceToProto(g: EnvelopeGovernance): Governance {
  return create(GovernanceSchema, {
    budgetId: g.budgetId ?? "",
    tokenBudget: BigInt(g.tokenBudget ?? 0),
    costLimitUsd: (g.costLimitMicros ?? 0) / 1_000_000,
    ...(g.timeoutMs !== undefined
      ? {
          timeout: create(DurationSchema, {
            seconds: BigInt(Math.floor(g.timeoutMs / 1000)),
            nanos: (g.timeoutMs % 1000) * 1_000_000,
          }),
        }
      : {}),
    allowedModels: g.allowedModels,
    allowedTools: g.allowedTools,
    maxLlmCalls: g.maxLlmCalls ?? 0,
    maxToolCalls: g.maxToolCalls ?? 0,
    complianceTags: g.complianceTags,
  });
}
