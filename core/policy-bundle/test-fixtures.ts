/** Shared by this folder's tests. */
import type { PublishedPolicy } from "./published-policy.js";

export function meta(overrides: Partial<PublishedPolicy> = {}): PublishedPolicy {
  const { source_kind = "rego", ...rest } = overrides;
  return {
    source_kind,
    tenant_id: "t1",
    policy_id: "p1",
    name: "Policy one",
    version: 3,
    sha256: "0".repeat(64),
    wasm_sha256: "1".repeat(64),
    entrypoint: "fulcrum/entry/result",
    enforcement: "BLOCK",
    dry_run: false,
    priority: 0,
    scope: {},
    ...rest,
  };
}
