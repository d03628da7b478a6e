# Enforcement: from a policy's matched rules to its verdict.
#
#   verdict     strongest matched action: DENY > REQUIRE_APPROVAL > WARN > ALLOW
#               (AUDIT matches are reported but leave ALLOW)
#   enforcement caps the verdict (validated before preparation: AUDIT, WARN, BLOCK or TERMINATE):
#               AUDIT     -> ALLOW
#               WARN      -> nothing stronger than WARN
#               BLOCK, TERMINATE -> unchanged
#   dry run     (policy or request): decision ALLOW; would_decide keeps the
#               capped verdict
#
# A result carries only what depends on the request (see policies/README.md,
# Output); actions, messages and the static rule fields are rendered from the
# prepared data by expandDecision() (core/policy/expand-decision.ts).
package fulcrum.governance.enforcement

import data.fulcrum.governance.lib
import data.fulcrum.governance.rules

rank := {"ALLOW": 0, "WARN": 1, "REQUIRE_APPROVAL": 2, "DENY": 3}

by_rank := ["ALLOW", "WARN", "REQUIRE_APPROVAL", "DENY"]

# strongest(decisions): the strongest of a list of decisions/actions; ALLOW
# for an empty list. Values without a rank (AUDIT) are ignored.
strongest(decisions) := by_rank[max(array.concat([0], [rank[d] | some d in decisions]))]

capped(_, "AUDIT") := "ALLOW"

capped(decision, "WARN") := by_rank[min([rank[decision], 1])]

capped(decision, level) := decision if not level in {"AUDIT", "WARN"}

# result(policy, request_dry_run): the policy's entry in `results`:
#   {"id"}                          nothing matched (ALLOW)
#   {"id", "misses"}                out of scope (ALLOW), the missed dimensions
#   {"id", "matched", "decision"?, "would_decide"?}
#                                   decision omitted when ALLOW, would_decide
#                                   when equal to decision
result(policy, request_dry_run) := _result(policy, _misses(policy), request_dry_run)

_result(policy, misses, _) := {"id": policy.policy_id, "misses": misses} if count(misses) > 0

_result(policy, misses, request_dry_run) := _in_scope(policy, rules.matched(policy), request_dry_run) if {
	count(misses) == 0
}

_in_scope(policy, pairs, _) := {"id": policy.policy_id} if count(pairs) == 0

_in_scope(policy, pairs, request_dry_run) := _verdict(
	policy.policy_id,
	[pair[1] | some pair in pairs],
	capped(strongest([pair[0].action | some pair in pairs]), policy.enforcement),
	_dry_run(policy, request_dry_run),
) if {
	count(pairs) > 0
}

_verdict(id, matched, "ALLOW", _) := {"id": id, "matched": matched}

_verdict(id, matched, verdict, true) := {"id": id, "matched": matched, "would_decide": verdict} if verdict != "ALLOW"

_verdict(id, matched, verdict, false) := {"id": id, "matched": matched, "decision": verdict} if verdict != "ALLOW"

_dry_run(_, true) := true

_dry_run(policy, false) := policy.dry_run

# Scope: the restricting dimensions (prepared: only non-empty ones are
# present) the context falls outside of, in this order.
dimensions := ["workflow_ids", "phases", "roles", "model_ids", "tool_names"]

_misses(policy) := [] if policy.scope == null

else := [d | some d in dimensions; policy.scope[d]; not _allows(policy.scope, d)]

_allows(scope, "workflow_ids") if scope.workflow_ids[lib.workflow_id]

# An unspecified phase ("") is subject to every phase restriction (fail
# closed: we do not know the phase, so every restriction counts as matching).
_allows(_, "phases") if lib.phase == ""

_allows(scope, "phases") if scope.phases[lib.phase]

_allows(scope, "roles") if {
	some role in lib.user_roles
	scope.roles[role]
}

_allows(scope, "model_ids") if lib.matches(scope.model_ids, lib.model_id)

_allows(scope, "tool_names") if {
	some tool in lib.tool_names
	lib.matches(scope.tool_names, tool)
}
