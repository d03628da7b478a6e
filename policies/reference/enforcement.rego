# Enforcement: from a policy's matched rules to its result.
#
#   verdict     strongest matched action: DENY > REQUIRE_APPROVAL > WARN > ALLOW
#               (AUDIT matches are reported but leave ALLOW)
#   enforcement caps the verdict:
#               AUDIT     -> ALLOW (matches still reported, actions become AUDIT)
#               WARN      -> nothing stronger than WARN
#               BLOCK     -> unchanged (also the default for missing/unknown values:
#                            an unreadable enforcement must not weaken a policy)
#               TERMINATE -> unchanged, plus a terminal TERMINATE action on DENY
#   dry run     (policy or request): decision ALLOW; would_decide keeps the
#               capped verdict; every action is downgraded to AUDIT
package fulcrum.reference.enforcement

import data.fulcrum.reference.lib
import data.fulcrum.reference.rules
import data.fulcrum.reference.scope

rank := {"ALLOW": 0, "WARN": 1, "REQUIRE_APPROVAL": 2, "DENY": 3}

by_rank := ["ALLOW", "WARN", "REQUIRE_APPROVAL", "DENY"]

enforcement_levels := {"AUDIT", "WARN", "BLOCK", "TERMINATE"}

# strongest(decisions): the strongest of a list of decisions/actions; ALLOW
# for an empty list. Values without a rank (AUDIT) are ignored.
strongest(decisions) := by_rank[max(array.concat([0], [rank[d] | some d in decisions]))]

enforcement(policy) := policy.enforcement if policy.enforcement in enforcement_levels

else := "BLOCK"

capped(_, "AUDIT") := "ALLOW"

capped(decision, "WARN") := by_rank[min([rank[decision], 1])]

capped(decision, level) := decision if not level in {"AUDIT", "WARN"}

# effective_action(action, level, dry_run): the type a rule's action takes
# once enforcement and dry run are applied.
effective_action(_, _, true) := "AUDIT"

effective_action(action, level, false) := "AUDIT" if {
	"AUDIT" in {action, level}
} else := capped(action, level)

result(policy_id, policy, ctx, request_dry_run) := {
	"policy_id": policy_id,
	"policy_version": lib.str(object.get(policy, "version", "")),
	"policy_name": lib.str(object.get(policy, "name", "")),
	"enforcement": level,
	"in_scope": count(misses) == 0,
	"decision": _final(verdict, dry_run),
	"dry_run": dry_run,
	"would_decide": verdict,
	"matched_rules": matched,
	"actions": _actions(matched, level, verdict, dry_run),
	"message": _message(misses, matched, raw, verdict, level, dry_run),
} if {
	level := enforcement(policy)
	dry_run := _dry_run(policy, request_dry_run)
	misses := scope.misses(policy, ctx)
	matched := _matched(policy, ctx, misses)
	raw := strongest([m.action | some m in matched])
	verdict := capped(raw, level)
}

_dry_run(policy, request_dry_run) if request_dry_run

else := object.get(policy, "dry_run", false) == true

# Out-of-scope policies are reported (so callers see why nothing matched)
# but their rules are not evaluated.
_matched(policy, ctx, misses) := rules.matched(policy, ctx) if count(misses) == 0

else := []

_final(_, true) := "ALLOW"

_final(verdict, false) := verdict

_actions(matched, level, verdict, dry_run) := array.concat(
	[_action(m, level, dry_run) | some m in matched],
	_terminate(level, verdict, dry_run),
)

_action(m, level, dry_run) := {
	"type": type,
	"rule_id": m.rule_id,
	"message": _action_message(m.reason, effective_action(m.action, level, false), dry_run),
	"severity": _action_severity(type, m.severity),
	"terminal": type == "DENY",
} if {
	type := effective_action(m.action, level, dry_run)
}

_action_message(reason, would, true) := concat("", ["dry run: would ", would, ": ", reason])

_action_message(reason, _, false) := reason

_action_severity("AUDIT", _) := "INFO"

_action_severity(type, severity) := severity if type != "AUDIT"

_terminate(level, verdict, dry_run) := [{
	"type": "TERMINATE",
	"rule_id": "",
	"message": "policy enforcement is TERMINATE: the execution must stop",
	"severity": "CRITICAL",
	"terminal": true,
}] if {
	level == "TERMINATE"
	verdict == "DENY"
	not dry_run
} else := []

_message(misses, matched, raw, verdict, level, dry_run) := concat("", [
	"not applicable: the context is outside the policy scope (", concat(", ", misses), ")",
]) if {
	count(misses) > 0
} else := "no rule matched" if {
	count(matched) == 0
} else := concat("", ["dry run: would ", verdict, ": ", _summary(matched)]) if {
	dry_run
} else := concat("", ["audit only, rules would ", raw, ": ", _summary(matched)]) if {
	level == "AUDIT"
	raw != "ALLOW"
} else := concat("", [verdict, " (capped from ", raw, " by WARN enforcement): ", _summary(matched)]) if {
	verdict != raw
} else := concat("", [verdict, ": ", _summary(matched)])

_summary(matched) := concat("; ", [m.reason | some m in matched])
