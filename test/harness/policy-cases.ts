/**
 * Seeded generator of tenant configurations and evaluation requests for the
 * differential test: random but reproducible (same seed, same cases), drawn
 * from small vocabularies so that rules match often enough to matter.
 */
import type { TenantConfig } from "../../core/policy/tenant-config.js";

/** mulberry32: tiny, fast, good enough to spread test cases. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const some = <T>(items: readonly T[], max: number): T[] => {
    const count = int(max + 1);
    const out: T[] = [];
    for (let i = 0; i < count; i++) {
      const item = pick(items);
      if (!out.includes(item)) out.push(item);
    }
    return out;
  };
  const chance = (p: number) => next() < p;
  return { next, int, pick, some, chance };
}

type Rng = ReturnType<typeof rng>;

const MODELS = [
  "gpt-4o",
  "gpt-4o-mini",
  "gpt-4.1",
  "claude-3-opus",
  "llama-3-70b",
  "mistral-large",
];
const MODEL_GLOBS = [
  "gpt-4o*",
  "claude-*",
  "*-mini",
  "llama-?-70b",
  "mistral-large",
  "gpt-{4o,4.1}",
];
const TOOLS = [
  "search",
  "shell_exec",
  "delete_user",
  "delete_db",
  "send_email",
  "deploy_prod",
  "read_file",
];
const TOOL_GLOBS = ["shell_*", "delete_*", "*_prod", "send_email", "read_*", "*", "[rs]*"];
const ROLES = ["admin", "developer", "viewer", "auditor"];
const PHASES = [
  "PRE_EXECUTION",
  "PRE_LLM_CALL",
  "POST_LLM_CALL",
  "PRE_TOOL_CALL",
  "POST_TOOL_CALL",
];
const WORKFLOWS = ["wf-billing", "wf-support", "wf-research"];
const PATTERNS = [
  "password\\s*[:=]",
  "api[_-]?key",
  "\\b\\d{3}-\\d{2}-\\d{4}\\b",
  "(?i)secret",
  "DROP TABLE",
];
const TEXTS = [
  "summarise this document",
  "my password: hunter2",
  "here is the API_KEY for prod",
  "ssn 123-45-6789 please",
  "the Secret plan",
  "drop table users; DROP TABLE users",
  "",
];
const ENFORCEMENTS = ["AUDIT", "WARN", "BLOCK", "TERMINATE"];
const STATUSES = ["ACTIVE", "ACTIVE", "ACTIVE", "DRAFT", "INACTIVE"];
const ACTIONS = ["", "", "DENY", "WARN", "REQUIRE_APPROVAL", "AUDIT"];

function rule(r: Rng, index: number): Record<string, unknown> {
  const common = {
    id: `r${index}`,
    name: `rule ${index}`,
    enabled: !r.chance(0.1),
    priority: r.int(20),
    phases: r.chance(0.2) ? r.some(PHASES, 2) : [],
    ...(r.chance(0.3) ? { action: r.pick(ACTIONS) } : {}),
  };
  switch (r.int(7)) {
    case 0:
      return {
        ...common,
        type: "MODEL_RESTRICTION",
        allowed_models: r.chance(0.5) ? r.some(MODEL_GLOBS, 2) : [],
        denied_models: r.some(MODEL_GLOBS, 2),
      };
    case 1:
      return {
        ...common,
        type: "TOOL_RESTRICTION",
        allowed_tools: r.chance(0.3) ? r.some(TOOL_GLOBS, 2) : [],
        denied_tools: r.some(TOOL_GLOBS, 2),
      };
    case 2:
      return { ...common, type: "APPROVAL_REQUIRED", tools: r.some(TOOL_GLOBS, 2) };
    case 3:
      return {
        ...common,
        type: "CONTENT_FILTER",
        patterns: r.some(PATTERNS, 3),
        case_insensitive: r.chance(0.5),
        ...(r.chance(0.3) ? { fields: ["input_text", "output_text"] } : {}),
      };
    case 4:
      return { ...common, type: "COST_CONTROL", max_cost_per_call_usd: r.pick([0.01, 0.5, 2]) };
    case 5:
      return {
        ...common,
        type: "RBAC",
        allowed_roles: r.some(ROLES, 2),
        denied_roles: r.chance(0.3) ? r.some(ROLES, 1) : [],
        ...(r.chance(0.5) ? { tools: r.some(TOOL_GLOBS, 2) } : {}),
      };
    default:
      // Unknown rule types are configuration errors (validate-tenant-config.ts):
      // only RATE_LIMIT, drawing as the former pick did so later cases are unchanged.
      r.next();
      return { ...common, type: "RATE_LIMIT", requests_per_minute: 60 };
  }
}

export function tenantConfig(r: Rng, tenantId: string): TenantConfig {
  const policies: Record<string, unknown> = {};
  const count = 1 + r.int(4);
  for (let p = 0; p < count; p++) {
    policies[`p${p}`] = {
      name: `policy ${p}`,
      version: `v${1 + r.int(9)}`,
      status: r.pick(STATUSES),
      enforcement: r.pick(ENFORCEMENTS),
      dry_run: r.chance(0.15),
      priority: r.int(5) * 10,
      scope: {
        workflow_ids: r.chance(0.15) ? r.some(WORKFLOWS, 2) : [],
        phases: r.chance(0.15) ? r.some(PHASES, 2) : [],
        roles: r.chance(0.1) ? r.some(ROLES, 2) : [],
        model_ids: r.chance(0.1) ? r.some(MODEL_GLOBS, 2) : [],
        tool_names: r.chance(0.1) ? r.some(TOOL_GLOBS, 2) : [],
      },
      rules: Array.from({ length: 1 + r.int(4) }, (_, i) => rule(r, i)),
    };
  }
  return { tenant_id: tenantId, policies } as unknown as TenantConfig;
}

export interface EvaluationCase {
  tenantId: string;
  policyIds: string[];
  dryRun: boolean;
  context: {
    tenantId: string;
    workflowId: string;
    userRoles: string[];
    phase: string;
    modelId: string;
    toolNames: string[];
    inputText: string;
    outputText: string;
    estimatedCostUsd: number;
  };
}

export function evaluationCase(r: Rng, tenantId: string, config: TenantConfig): EvaluationCase {
  const ids = Object.keys(config.policies);
  const mode = r.int(10);
  const policyIds = mode < 5 ? [] : mode < 8 ? [r.pick(ids)] : r.some(ids, ids.length);
  return {
    tenantId,
    policyIds,
    dryRun: r.chance(0.1),
    context: {
      tenantId,
      workflowId: r.chance(0.5) ? r.pick(WORKFLOWS) : "",
      userRoles: r.some(ROLES, 2),
      phase: r.chance(0.7) ? r.pick(PHASES) : "",
      modelId: r.chance(0.8) ? r.pick(MODELS) : "",
      toolNames: r.some(TOOLS, 3),
      inputText: r.pick(TEXTS),
      outputText: r.chance(0.3) ? r.pick(TEXTS) : "",
      estimatedCostUsd: r.pick([0, 0.005, 0.3, 1.5, 5]),
    },
  };
}

/** `tenants` configurations with `perTenant` requests each. */
export function generateCases(seed: number, tenants: number, perTenant: number) {
  const r = rng(seed);
  const configs: Record<string, TenantConfig> = {};
  const cases: EvaluationCase[] = [];
  for (let t = 0; t < tenants; t++) {
    const tenantId = `tenant-${String(t).padStart(3, "0")}`;
    const config = tenantConfig(r, tenantId);
    configs[tenantId] = config;
    for (let c = 0; c < perTenant; c++) cases.push(evaluationCase(r, tenantId, config));
  }
  return { configs, cases };
}
