/**
 * What the control plane publishes with each compiled policy version, and the
 * value the compiled wasm returns. Web-standard only: read by the management
 * API (dry run) and by the edge.
 *
 * A tenant policy module (`package fulcrum.policy`, docs/policy-authoring.md)
 * is compiled together with a fixed wrapper module (`package fulcrum.entry`)
 * whose one entrypoint, {@link POLICY_ENTRYPOINT}, normalises the module's
 * `deny` / `require_approval` / `warn` / `audit` sets into {@link VerdictSets}.
 */

import type { Enforcement, Phase, RuleType, Severity } from "../policy/tenant-config.js";
import type { RateLimitSpec } from "../rate-limit/rate-limit-spec.js";

/** The entrypoint every compiled tenant policy exposes. */
export const POLICY_ENTRYPOINT = "fulcrum/entry/result" as const;

/** The package a tenant module must declare. */
export const TENANT_PACKAGE = "fulcrum.policy" as const;

export interface PublishedPolicyScope {
  /** Apply everywhere in the tenant, ignoring the lists below. */
  apply_to_all?: boolean;
  workflow_ids?: string[];
  phases?: Phase[];
  roles?: string[];
  /** Globs (glob.match with no delimiters). */
  model_ids?: string[];
  /** Globs; at least one tool of the call must match. */
  tool_names?: string[];
}

/**
 * Per-version metadata published next to the wasm. Everything in it is fixed when the
 * version is written, so the stored value never changes (written once, SET NX).
 */
export interface PublishedPolicy {
  tenant_id: string;
  policy_id: string;
  /**
   * The policy's display name, for `policy_name` in results ("" when absent). Never part
   * of the published value: a name can change, a version cannot. Set only by whoever
   * evaluates and knows the current name (the management API's dry run).
   */
  name?: string;
  /** The policy version number (1, 2, ...). */
  version: number;
  /** Hex SHA-256 of the policy definition (PolicyVersion.sha256). */
  sha256: string;
  /** Hex SHA-256 of the wasm bytes. */
  wasm_sha256: string;
  /** Always {@link POLICY_ENTRYPOINT} today. */
  entrypoint: string;
  /**
   * How the version was written. A Worker cannot compile wasm from bytes at run time
   * ("Wasm code generation disallowed by embedder", verified in workerd), so the edge
   * cannot instantiate `wasm_sha256`'s module from Redis; structured rules therefore
   * also travel as data (`rules`), which a bundled evaluator can interpret.
   */
  source_kind: "rego" | "rules";
  /** The structured rules in proto3 JSON (`fulcrum.policy.v1.Rule`), when source_kind is "rules". */
  rules?: unknown[];
  /**
   * The rate limits of the version's enabled RATE_LIMIT rules (structured rules only;
   * docs/policy-authoring.md), validated when the version is written. Enforced at the
   * edge unless the policy is a dry run.
   */
  rate_limits?: RateLimitSpec[];
  enforcement: Enforcement;
  dry_run: boolean;
  priority: number;
  scope: PublishedPolicyScope;
  /** RFC 3339; not evaluated before. */
  effective_at?: string;
  /** RFC 3339; not evaluated from then on. */
  expires_at?: string;
}

/** One element of a verdict set, as normalised by the wrapper module. */
export interface VerdictItem {
  message: string;
  rule_id?: string;
  rule_name?: string;
  /** A RuleType short name; CUSTOM when absent. */
  rule_type?: RuleType | "CUSTOM" | "RBAC" | "TOOL_ALLOWLIST";
  severity?: Severity;
  priority?: number;
}

/** The value of {@link POLICY_ENTRYPOINT}: each list sorted by priority (desc), then value. */
export interface VerdictSets {
  deny: VerdictItem[];
  require_approval: VerdictItem[];
  warn: VerdictItem[];
  /** Reported, never a verdict (like AUDIT rule actions in the governance library). */
  audit: VerdictItem[];
}
