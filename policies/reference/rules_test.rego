package fulcrum.reference.rules_test

import data.fulcrum.reference.rules

ctx := {
	"phase": "PRE_TOOL_CALL", "model_id": "gpt-4o", "tool_names": ["delete_db"], "user_roles": [],
	"user_id": "", "input_text": "", "output_text": "", "estimated_cost_usd": null,
}

test_dispatch_by_type if {
	count(rules.hits({"type": "MODEL_RESTRICTION", "denied_models": ["gpt-*"]}, ctx)) == 1
	count(rules.hits({"type": "TOOL_RESTRICTION", "denied_tools": ["delete_*"]}, ctx)) == 1
	count(rules.hits({"type": "APPROVAL_REQUIRED", "tools": ["delete_*"]}, ctx)) == 1
	count(rules.hits({"type": "CONTENT_FILTER", "patterns": ["^$"]}, ctx)) == 1
	count(rules.hits({"type": "COST_CONTROL", "max_cost_per_call_usd": 1}, object.union(ctx, {"estimated_cost_usd": 2}))) == 1
	count(rules.hits({"type": "RBAC", "allowed_roles": ["admin"]}, ctx)) == 1
}

test_rate_limit_is_left_to_the_edge if rules.hits({"type": "RATE_LIMIT", "requests_per_minute": 0}, ctx) == []

test_unknown_type_is_ignored if {
	rules.hits({"type": "CUSTOM", "tools": ["*"]}, ctx) == []
	rules.hits({"tools": ["*"]}, ctx) == []
}

test_default_actions if {
	rules.action({"type": "TOOL_RESTRICTION"}) == "DENY"
	rules.action({"type": "APPROVAL_REQUIRED"}) == "REQUIRE_APPROVAL"
	rules.action({"type": "APPROVAL_REQUIRED", "action": ""}) == "REQUIRE_APPROVAL"
	rules.action({}) == "DENY"
}

test_explicit_and_unsupported_actions if {
	rules.action({"type": "TOOL_RESTRICTION", "action": "WARN"}) == "WARN"
	rules.action({"type": "APPROVAL_REQUIRED", "action": "DENY"}) == "DENY"
	rules.action({"type": "TOOL_RESTRICTION", "action": "NOTIFY"}) == "AUDIT"
}

test_severity if {
	rules.severity({"action": "WARN"}) == "LOW"
	rules.severity({"severity": "CRITICAL"}) == "CRITICAL"
	rules.severity({"severity": "bogus", "type": "APPROVAL_REQUIRED"}) == "MEDIUM"
}

deny_delete := {"id": "r1", "name": "no deletes", "type": "TOOL_RESTRICTION", "denied_tools": ["delete_*"]}

test_matched_rule_shape if {
	rules.matched({"rules": [deny_delete]}, ctx) == [{
		"rule_id": "r1", "rule_name": "no deletes", "rule_type": "TOOL_RESTRICTION", "priority": 0,
		"action": "DENY", "severity": "HIGH", "reason": "tool 'delete_db' is denied",
		"matched_conditions": ["tool_names[0] = delete_db matches delete_*"],
	}]
}

test_custom_message_and_positional_id if {
	m := rules.matched({"rules": [{"type": "TOOL_RESTRICTION", "denied_tools": ["*"], "message": "no tools today"}]}, ctx)
	m[0].rule_id == "rules[0]"
	m[0].reason == "no tools today"
}

test_disabled_rule_never_matches if {
	rules.matched({"rules": [object.union(deny_delete, {"enabled": false})]}, ctx) == []
}

test_rule_phase_filter if {
	rules.matched({"rules": [object.union(deny_delete, {"phases": ["PRE_LLM_CALL"]})]}, ctx) == []
}

# A phase-scoped rule applies to a call without a phase (fail closed).
test_rule_phase_unspecified if {
	m := rules.matched({"rules": [object.union(deny_delete, {"phases": ["PRE_LLM_CALL"]})]}, object.union(ctx, {"phase": ""}))
	[r.rule_id | some r in m] == ["r1"]
}

test_priority_then_list_order if {
	policy := {"rules": [
		object.union(deny_delete, {"id": "low", "priority": 1}),
		object.union(deny_delete, {"id": "a", "priority": 5}),
		"not a rule",
		object.union(deny_delete, {"id": "b", "priority": 5}),
		object.union(deny_delete, {"id": "none"}),
	]}
	[m.rule_id | some m in rules.matched(policy, ctx)] == ["a", "b", "low", "none"]
}

test_policy_without_rules if rules.matched({"rules": "oops"}, ctx) == []
