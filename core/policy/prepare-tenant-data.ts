/**
 * Compiles a {@link TenantConfig} into the `data` document the Rego governance
 * library evaluates against ({@link PreparedTenantData}).
 *
 * `setData` runs once per tenant instance while `evaluate` runs per request, so
 * everything that depends only on the configuration is done here, once:
 * strict validation (validate-tenant-config.ts: any problem throws
 * InvalidTenantConfigError, nothing is prepared leniently), defaults (rule
 * ids, actions, severities), the ACTIVE policies in evaluation order, rules filtered
 * (disabled, RATE_LIMIT or never-matching ones removed), sorted by priority and
 * grouped by phase, globs classified (exact / prefix / suffix / infix / general),
 * content patterns analysed (literal fast paths and prefilters), every static
 * string of the output pre-rendered, and the complete "nothing matched" result
 * of each policy built ahead of time. The Rego trusts this shape and does only
 * the per-request work. policies/README.md documents the semantics, which are
 * exactly those of the raw configuration.
 *
 * This module does policies, scope and the entry point; the rest lives in
 * prepare-rule.ts (one rule), glob-patterns.ts (glob classification),
 * regex-prefilter.ts with regex-syntax.ts (content pattern analysis) and
 * prepared-data-types.ts (the document's types, re-exported here).
 *
 * Pure, deterministic, web-standard TypeScript (no Node imports): used by the
 * edge Worker and by tests.
 */
import { compareCodePoints } from "./code-point-order.js";
import { prepareGlobs } from "./glob-patterns.js";
import { isObject, type Json, num, set, str, strings } from "./lenient-config.js";
import { prepareRule, type RuleDraft, ruleInfo } from "./prepare-rule.js";
import type {
  PreparedPolicy,
  PreparedRule,
  PreparedRuleInfo,
  PreparedScope,
  PreparedTenantData,
} from "./prepared-data-types.js";
import type { Enforcement, TenantConfig } from "./tenant-config.js";
import { InvalidTenantConfigError, validateTenantConfig } from "./validate-tenant-config.js";

// The public surface stays importable from here (edge, bench, tests): the
// implementation lives in the modules named in each line.
export { compareCodePoints } from "./code-point-order.js";
export { type PreparedGlobs, prepareGlobs } from "./glob-patterns.js";
export type * from "./prepared-data-types.js";
export { analysePattern, type PatternAnalysis } from "./regex-prefilter.js";
export {
  type ConfigProblem,
  InvalidTenantConfigError,
  validateTenantConfig,
} from "./validate-tenant-config.js";

const ENFORCEMENTS = new Set<string>(["AUDIT", "WARN", "BLOCK", "TERMINATE"]);

function prepareScope(scope: unknown): PreparedScope | null {
  if (!isObject(scope)) return null;
  const out: PreparedScope = {};
  const workflows = strings(scope.workflow_ids);
  const phases = strings(scope.phases);
  const roles = strings(scope.roles);
  const models = strings(scope.model_ids);
  const tools = strings(scope.tool_names);
  if (workflows.length > 0) out.workflow_ids = set(workflows);
  if (phases.length > 0) out.phases = set(phases);
  if (roles.length > 0) out.roles = set(roles);
  if (models.length > 0) out.model_ids = prepareGlobs(models);
  if (tools.length > 0) out.tool_names = prepareGlobs(tools);
  return Object.keys(out).length > 0 ? out : null;
}

function preparePolicy(id: string, policy: Json): PreparedPolicy {
  const enforcement =
    typeof policy.enforcement === "string" && ENFORCEMENTS.has(policy.enforcement)
      ? (policy.enforcement as Enforcement)
      : "BLOCK";
  const dryRun = policy.dry_run === true;
  const raw = Array.isArray(policy.rules) ? policy.rules : [];
  const drafts: { draft: RuleDraft; info: PreparedRuleInfo; phases: string[]; index: number }[] =
    [];
  raw.forEach((rule: unknown, index) => {
    if (!isObject(rule)) return;
    const draft = prepareRule(rule);
    if (draft)
      drafts.push({ draft, info: ruleInfo(rule, index), phases: strings(rule.phases), index });
  });
  // Priority descending, then list position (stable); k is the rank in that order.
  drafts.sort((a, b) => b.info.priority - a.info.priority || a.index - b.index);
  const prepared = drafts.map((d, k) => ({ ...d, rule: { ...d.draft, k } as PreparedRule }));
  const anyPhase = prepared.filter((r) => r.phases.length === 0).map((r) => r.rule);
  const phases = [...new Set(prepared.flatMap((r) => r.phases))].sort(compareCodePoints);
  const byPhase: Record<string, PreparedRule[]> = {};
  // An unspecified phase ("") is subject to every phase restriction (README
  // "Scope and phases": fail closed), so its rules are the union over all
  // phases: every prepared rule, in match order. Only needed (and only listed)
  // when some rule is phase-restricted; otherwise `rules` already holds them all.
  // Validation rejects "" as a configured phase, so the key cannot collide.
  if (phases.length > 0) byPhase[""] = prepared.map((r) => r.rule);
  for (const phase of phases) {
    byPhase[phase] = prepared
      .filter((r) => r.phases.length === 0 || r.phases.includes(phase))
      .map((r) => r.rule);
  }
  return {
    policy_id: id,
    policy_name: str(policy.name),
    policy_version: str(policy.version),
    enforcement,
    dry_run: dryRun,
    scope: prepareScope(policy.scope),
    rules: anyPhase,
    by_phase: byPhase,
    rule_info: prepared.map((r) => r.info),
  };
}

/**
 * Validates a tenant configuration strictly and compiles it into the data
 * document of the governance bundle. Throws {@link InvalidTenantConfigError}
 * (with every problem in `.problems`) when the configuration is not exactly
 * as documented: a mistake must fail closed, never become an ALLOW.
 */
export function prepareTenantData(config: TenantConfig): PreparedTenantData {
  const problems = validateTenantConfig(config);
  if (problems.length > 0) throw new InvalidTenantConfigError(problems);
  const raw = config as unknown as Json;
  const policies: Record<string, PreparedPolicy> = {};
  const active: { id: string; priority: number }[] = [];
  const source = isObject(raw?.policies) ? raw.policies : {};
  for (const id of Object.keys(source).sort(compareCodePoints)) {
    const policy = source[id];
    if (!isObject(policy)) continue;
    policies[id] = preparePolicy(id, policy);
    if (policy.status === "ACTIVE") active.push({ id, priority: num(policy.priority) });
  }
  active.sort((a, b) => b.priority - a.priority || compareCodePoints(a.id, b.id));
  return {
    tenant_id: str(raw?.tenant_id),
    active_policy_ids: active.map((a) => a.id),
    policies,
  };
}
