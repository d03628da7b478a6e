/**
 * Strict validation of a tenant's policy configuration ({@link TenantConfig}).
 *
 * The governance library fails closed only if its data says what the author
 * meant: a lower-case rule type, a string where a list belongs, a misspelled
 * key or a pattern RE2 rejects would otherwise make a DENY rule silently match
 * nothing. So every value is checked against policies/README.md exactly:
 *
 * - the tenant, policy, scope and rule objects may hold only their documented
 *   keys (each rule family its own; RATE_LIMIT rules, enforced at the edge by
 *   core/rate-limit/, are checked here as strictly as the others);
 * - required: `policies`; per policy `name`, `version`, `status`,
 *   `enforcement`, `rules`; per rule `type`; per COST_CONTROL rule
 *   `max_cost_per_call_usd`; per RATE_LIMIT rule at least one of
 *   `requests_per_minute`, `requests_per_hour`, `tokens_per_minute`;
 * - enum values exactly as documented (upper case); rule `action` may also be
 *   "" (documented: the family default);
 * - lists are arrays of strings; numbers are finite; the cost limit is >= 0;
 *   policy ids, rule ids and list entries are non-empty strings;
 * - content patterns compile with RE2 (`@bufbuild/re2`, a port of RE2/J: the
 *   same syntax as the Go and C++ RE2 the OPA runtimes use, up to corner
 *   cases); globs parse as `glob.match` parses them (character classes are
 *   the only syntax it can reject): both checked by pattern-syntax.ts.
 *
 * Pure and web-standard: used by prepareTenantData, the edge at startup and tests.
 */
import {
  countProblem,
  RATE_LIMIT_ALGORITHMS,
  RATE_LIMIT_FAILURE_MODES,
  RATE_LIMIT_SCOPES,
} from "../rate-limit/rate-limit-spec.js";
import { globProblem, re2Problem } from "./pattern-syntax.js";
import type { TenantConfig } from "./tenant-config.js";

export interface ConfigProblem {
  /** Where, e.g. `policies.p1.rules[0].denied_tools`. */
  path: string;
  message: string;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const POLICY_STATUSES = ["DRAFT", "ACTIVE", "INACTIVE", "ARCHIVED"];
const ENFORCEMENTS = ["AUDIT", "WARN", "BLOCK", "TERMINATE"];
const PHASES = [
  "PRE_EXECUTION",
  "PRE_LLM_CALL",
  "POST_LLM_CALL",
  "PRE_TOOL_CALL",
  "POST_TOOL_CALL",
  "POST_EXECUTION",
];
const RULE_ACTIONS = ["DENY", "WARN", "REQUIRE_APPROVAL", "AUDIT"];
const SEVERITIES = ["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"];
const CONTENT_FIELDS = ["input_text", "output_text"];

const TENANT_KEYS = ["tenant_id", "policies"];
const POLICY_KEYS = [
  "name",
  "version",
  "status",
  "enforcement",
  "dry_run",
  "priority",
  "scope",
  "rules",
];
const SCOPE_KEYS = ["workflow_ids", "phases", "roles", "model_ids", "tool_names"];
const RULE_KEYS = [
  "id",
  "name",
  "type",
  "enabled",
  "priority",
  "phases",
  "action",
  "message",
  "severity",
];

type ListKind = "strings" | "globs" | "regexes" | "phases" | "fields";
/** A positive integer (a rate limit), or one of a fixed list of strings. */
type ValueKind = "number" | "boolean" | "count" | { oneOf: readonly string[] };

/** RATE_LIMIT's limits: each becomes one edge rate limit (core/rate-limit/rate-limit-rules.ts). */
export const RATE_LIMIT_PARAMS = ["requests_per_minute", "requests_per_hour", "tokens_per_minute"];

/** Each rule family's own keys and what they hold. */
const FAMILIES: Record<string, Record<string, ListKind | ValueKind>> = {
  MODEL_RESTRICTION: { allowed_models: "globs", denied_models: "globs" },
  TOOL_RESTRICTION: { allowed_tools: "globs", denied_tools: "globs" },
  APPROVAL_REQUIRED: { tools: "globs" },
  CONTENT_FILTER: { patterns: "regexes", case_insensitive: "boolean", fields: "fields" },
  COST_CONTROL: { max_cost_per_call_usd: "number" },
  RBAC: { allowed_roles: "strings", denied_roles: "strings", tools: "globs", models: "globs" },
  RATE_LIMIT: {
    requests_per_minute: "count",
    requests_per_hour: "count",
    tokens_per_minute: "count",
    per: { oneOf: RATE_LIMIT_SCOPES },
    algorithm: { oneOf: RATE_LIMIT_ALGORITHMS },
    burst: "count",
    failure_mode: { oneOf: RATE_LIMIT_FAILURE_MODES },
    tools: "globs",
  },
};

const show = (v: unknown): string => {
  const text = JSON.stringify(v);
  if (text === undefined) return String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

const oneOf = (values: readonly string[]): string => values.join(", ");

/** A property path segment: `.key`, or `["key"]` when the key is not an identifier. */
const key = (k: string): string => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `.${k}` : `[${show(k)}]`);

class Checker {
  readonly problems: ConfigProblem[] = [];

  add(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  keys(obj: Json, allowed: readonly string[], path: string, what: string): void {
    for (const k of Object.keys(obj)) {
      if (!allowed.includes(k)) this.add(`${path}${key(k)}`, `unknown ${what} field`);
    }
  }

  string(v: unknown, path: string, nonEmpty = false): void {
    if (typeof v !== "string") this.add(path, `must be a string, not ${show(v)}`);
    else if (nonEmpty && v === "") this.add(path, "must not be empty");
  }

  boolean(v: unknown, path: string): void {
    if (typeof v !== "boolean") this.add(path, `must be true or false, not ${show(v)}`);
  }

  number(v: unknown, path: string, min?: number): void {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      this.add(path, `must be a finite number, not ${show(v)}`);
    } else if (min !== undefined && v < min) {
      this.add(path, `must be >= ${min}, not ${v}`);
    }
  }

  enumValue(v: unknown, values: readonly string[], path: string, what: string): void {
    if (typeof v !== "string" || !values.includes(v)) {
      this.add(path, `unknown ${what} ${show(v)} (one of ${oneOf(values)})`);
    }
  }

  list(v: unknown, kind: ListKind, path: string): void {
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      this.add(path, "must be a list of strings");
      return;
    }
    for (const [i, item] of (v as string[]).entries()) {
      const at = `${path}[${i}]`;
      if (item === "") {
        this.add(at, "must not be empty");
        continue;
      }
      if (kind === "phases") this.enumValue(item, PHASES, at, "phase");
      else if (kind === "fields") this.enumValue(item, CONTENT_FIELDS, at, "field");
      else if (kind === "globs") {
        const problem = globProblem(item);
        if (problem) this.add(at, `invalid glob ${show(item)}: ${problem}`);
      } else if (kind === "regexes") {
        const problem = re2Problem(item);
        if (problem) this.add(at, `invalid RE2 pattern ${show(item)}: ${problem}`);
      }
    }
  }

  scope(scope: unknown, path: string): void {
    if (!isObject(scope)) {
      this.add(path, "must be an object");
      return;
    }
    this.keys(scope, SCOPE_KEYS, path, "scope");
    const kinds: Record<string, ListKind> = {
      workflow_ids: "strings",
      phases: "phases",
      roles: "strings",
      model_ids: "globs",
      tool_names: "globs",
    };
    for (const [k, kind] of Object.entries(kinds)) {
      if (scope[k] !== undefined) this.list(scope[k], kind, `${path}.${k}`);
    }
  }

  rule(rule: unknown, path: string): void {
    if (!isObject(rule)) {
      this.add(path, "must be an object (a rule)");
      return;
    }
    const type = rule.type;
    const family = typeof type === "string" ? FAMILIES[type] : undefined;
    if (type === undefined) this.add(`${path}.type`, "is required");
    else if (typeof type !== "string" || !Object.hasOwn(FAMILIES, type)) {
      this.add(
        `${path}.type`,
        `unknown rule type ${show(type)} (one of ${oneOf(Object.keys(FAMILIES))})`,
      );
    }
    if (rule.id !== undefined) this.string(rule.id, `${path}.id`, true);
    if (rule.name !== undefined) this.string(rule.name, `${path}.name`);
    if (rule.enabled !== undefined) this.boolean(rule.enabled, `${path}.enabled`);
    if (rule.priority !== undefined) this.number(rule.priority, `${path}.priority`);
    if (rule.phases !== undefined) this.list(rule.phases, "phases", `${path}.phases`);
    // "" is documented as "the family default", like a missing action.
    if (rule.action !== undefined && rule.action !== "") {
      this.enumValue(rule.action, RULE_ACTIONS, `${path}.action`, "action");
    }
    if (rule.message !== undefined) this.string(rule.message, `${path}.message`);
    if (rule.severity !== undefined) {
      this.enumValue(rule.severity, SEVERITIES, `${path}.severity`, "severity");
    }
    // An unknown type has no known fields: its parameters are not reported on top.
    if (family === undefined) return;
    this.keys(rule, [...RULE_KEYS, ...Object.keys(family)], path, `${type} rule`);
    for (const [k, kind] of Object.entries(family)) {
      const v = rule[k];
      const at = `${path}.${k}`;
      if (v === undefined) {
        if (type === "COST_CONTROL") this.add(at, "is required");
        continue;
      }
      if (kind === "boolean") this.boolean(v, at);
      else if (kind === "number") this.number(v, at, 0);
      else if (kind === "count") {
        const problem = countProblem(v);
        if (problem) this.add(at, problem);
      } else if (typeof kind === "object") this.enumValue(v, kind.oneOf, at, k);
      else this.list(v, kind, at);
    }
    if (type === "RATE_LIMIT") this.rateLimit(rule, path);
  }

  /** What RATE_LIMIT's parameters need beyond their types: see rate-limit-rules.ts. */
  rateLimit(rule: Json, path: string): void {
    if (RATE_LIMIT_PARAMS.every((k) => rule[k] === undefined)) {
      this.add(path, `a RATE_LIMIT rule needs at least one of ${oneOf(RATE_LIMIT_PARAMS)}`);
    }
    if (rule.burst !== undefined) {
      if (rule.algorithm !== "token_bucket") {
        this.add(`${path}.burst`, 'is for algorithm "token_bucket" only');
      } else if (RATE_LIMIT_PARAMS.filter((k) => rule[k] !== undefined).length > 1) {
        // One capacity cannot fit requests and tokens alike.
        this.add(`${path}.burst`, "needs a rule with a single limit");
      }
    }
    if (rule.tools !== undefined) {
      if (rule.per !== "tool") this.add(`${path}.tools`, 'is for per "tool" only');
      else if (Array.isArray(rule.tools) && rule.tools.length === 0) {
        this.add(`${path}.tools`, "must not be empty (leave it out to limit every tool)");
      }
    }
  }

  policy(policy: unknown, path: string): void {
    if (!isObject(policy)) {
      this.add(path, "must be an object (a policy)");
      return;
    }
    this.keys(policy, POLICY_KEYS, path, "policy");
    for (const k of ["name", "version", "status", "enforcement", "rules"]) {
      if (policy[k] === undefined) this.add(`${path}.${k}`, "is required");
    }
    if (policy.name !== undefined) this.string(policy.name, `${path}.name`);
    if (policy.version !== undefined) this.string(policy.version, `${path}.version`);
    if (policy.status !== undefined) {
      this.enumValue(policy.status, POLICY_STATUSES, `${path}.status`, "status");
    }
    if (policy.enforcement !== undefined) {
      this.enumValue(policy.enforcement, ENFORCEMENTS, `${path}.enforcement`, "enforcement");
    }
    if (policy.dry_run !== undefined) this.boolean(policy.dry_run, `${path}.dry_run`);
    if (policy.priority !== undefined) this.number(policy.priority, `${path}.priority`);
    if (policy.scope !== undefined) this.scope(policy.scope, `${path}.scope`);
    if (policy.rules === undefined) return;
    if (!Array.isArray(policy.rules)) {
      this.add(`${path}.rules`, "must be a list of rules");
      return;
    }
    policy.rules.forEach((rule, i) => {
      this.rule(rule, `${path}.rules[${i}]`);
    });
  }

  tenant(config: unknown): void {
    if (!isObject(config)) {
      this.add("", "the tenant configuration must be an object");
      return;
    }
    this.keys(config, TENANT_KEYS, "", "tenant");
    if (config.tenant_id !== undefined) this.string(config.tenant_id, "tenant_id");
    const policies = config.policies;
    if (policies === undefined) {
      this.add("policies", "is required");
      return;
    }
    if (!isObject(policies)) {
      this.add("policies", "must be an object keyed by policy id");
      return;
    }
    for (const [id, policy] of Object.entries(policies)) {
      if (id === "") this.add(`policies[""]`, "a policy id must not be empty");
      this.policy(policy, `policies${key(id)}`);
    }
  }
}

/**
 * Every problem of `config` as a {@link TenantConfig}, in document order;
 * empty when it is valid. Never throws.
 */
export function validateTenantConfig(config: unknown): ConfigProblem[] {
  const checker = new Checker();
  checker.tenant(config);
  // Top-level paths are written without the leading dot.
  return checker.problems.map((p) => ({ ...p, path: p.path.replace(/^\./, "") }));
}

/** Thrown by prepareTenantData for a configuration with problems; never prepared leniently. */
export class InvalidTenantConfigError extends Error {
  override readonly name = "InvalidTenantConfigError";

  constructor(readonly problems: readonly ConfigProblem[]) {
    super(
      `invalid tenant configuration: ${problems
        .slice(0, 5)
        .map(formatProblem)
        .join("; ")}${problems.length > 5 ? `; and ${problems.length - 5} more` : ""}`,
    );
  }
}

/** `path: message`. */
export const formatProblem = (p: ConfigProblem): string =>
  p.path === "" ? p.message : `${p.path}: ${p.message}`;

/** Asserts `config` is valid (see validateTenantConfig). */
export function assertValidTenantConfig(config: unknown): asserts config is TenantConfig {
  const problems = validateTenantConfig(config);
  if (problems.length > 0) throw new InvalidTenantConfigError(problems);
}
