package fulcrum.reference.enforcement_test

import data.fulcrum.reference.enforcement

ctx := {
	"phase": "PRE_TOOL_CALL", "model_id": "", "tool_names": ["delete_db", "shell"], "user_roles": [],
	"user_id": "u1", "input_text": "", "output_text": "", "estimated_cost_usd": null, "workflow_id": "wf",
}

approve := {"id": "ap", "type": "APPROVAL_REQUIRED", "tools": ["delete_*"]}

deny := {"id": "dn", "type": "TOOL_RESTRICTION", "denied_tools": ["shell"]}

warn := {"id": "wn", "type": "TOOL_RESTRICTION", "denied_tools": ["delete_*"], "action": "WARN"}

audit := {"id": "au", "type": "TOOL_RESTRICTION", "denied_tools": ["*"], "action": "AUDIT"}

policy(level, rs) := {"name": "P", "version": "v1", "enforcement": level, "rules": rs}

run(level, rs) := enforcement.result("p1", policy(level, rs), ctx, false)

test_strongest if {
	enforcement.strongest([]) == "ALLOW"
	enforcement.strongest(["AUDIT", "WARN"]) == "WARN"
	enforcement.strongest(["WARN", "REQUIRE_APPROVAL"]) == "REQUIRE_APPROVAL"
	enforcement.strongest(["REQUIRE_APPROVAL", "DENY", "WARN"]) == "DENY"
}

test_no_match_allows if {
	r := run("BLOCK", [])
	r.decision == "ALLOW"
	r.message == "no rule matched"
	r.actions == []
}

test_block_keeps_strongest if {
	r := run("BLOCK", [warn, approve, deny, audit])
	r.decision == "DENY"
	r.would_decide == "DENY"
	[a.type | some a in r.actions] == ["WARN", "REQUIRE_APPROVAL", "DENY", "AUDIT"]
	[a.terminal | some a in r.actions] == [false, false, true, false]
	[a.severity | some a in r.actions] == ["LOW", "MEDIUM", "HIGH", "INFO"]
}

test_block_require_approval if {
	r := run("BLOCK", [approve, warn])
	r.decision == "REQUIRE_APPROVAL"
	r.message == "REQUIRE_APPROVAL: tool 'delete_db' requires approval; tool 'delete_db' is denied"
}

test_audit_matches_alone_allow if {
	r := run("BLOCK", [audit])
	r.decision == "ALLOW"
	count(r.matched_rules) == 1
}

test_audit_enforcement_allows_but_reports if {
	r := run("AUDIT", [deny])
	r.decision == "ALLOW"
	r.would_decide == "ALLOW"
	r.matched_rules[0].action == "DENY"
	r.actions == [{"type": "AUDIT", "rule_id": "dn", "message": "tool 'shell' is denied", "severity": "INFO", "terminal": false}]
	r.message == "audit only, rules would DENY: tool 'shell' is denied"
}

test_warn_enforcement_caps if {
	r := run("WARN", [deny, approve])
	r.decision == "WARN"
	[a.type | some a in r.actions] == ["WARN", "WARN"]
	r.actions[0].severity == "HIGH"
	r.message == "WARN (capped from DENY by WARN enforcement): tool 'shell' is denied; tool 'delete_db' requires approval"
}

test_warn_enforcement_keeps_weaker if run("WARN", [warn]).decision == "WARN"

test_terminate_adds_terminal_action if {
	r := run("TERMINATE", [deny])
	r.decision == "DENY"
	[a.type | some a in r.actions] == ["DENY", "TERMINATE"]
	r.actions[1].terminal
	r.actions[1].severity == "CRITICAL"
}

test_terminate_only_on_deny if {
	r := run("TERMINATE", [approve])
	r.decision == "REQUIRE_APPROVAL"
	[a.type | some a in r.actions] == ["REQUIRE_APPROVAL"]
}

test_unknown_enforcement_blocks if {
	r := run("LOUDLY", [deny])
	r.enforcement == "BLOCK"
	r.decision == "DENY"
}

test_policy_dry_run if {
	r := enforcement.result("p1", object.union(policy("TERMINATE", [deny]), {"dry_run": true}), ctx, false)
	r.dry_run
	r.decision == "ALLOW"
	r.would_decide == "DENY"
	r.actions == [{
		"type": "AUDIT", "rule_id": "dn", "message": "dry run: would DENY: tool 'shell' is denied",
		"severity": "INFO", "terminal": false,
	}]
	r.message == "dry run: would DENY: tool 'shell' is denied"
}

test_request_dry_run_overrides_policy if {
	r := enforcement.result("p1", object.union(policy("BLOCK", [approve]), {"dry_run": false}), ctx, true)
	r.decision == "ALLOW"
	r.would_decide == "REQUIRE_APPROVAL"
}

test_dry_run_would_decide_is_capped if {
	r := enforcement.result("p1", object.union(policy("WARN", [deny]), {"dry_run": true}), ctx, false)
	r.would_decide == "WARN"
	r.actions[0].message == "dry run: would WARN: tool 'shell' is denied"
}

test_out_of_scope_policy_reported_not_evaluated if {
	p := object.union(policy("BLOCK", [deny]), {"scope": {"phases": ["POST_EXECUTION"], "workflow_ids": ["other"]}})
	r := enforcement.result("p1", p, ctx, false)
	not r.in_scope
	r.decision == "ALLOW"
	r.matched_rules == []
	r.message == "not applicable: the context is outside the policy scope (workflow_ids, phases)"
}

test_result_echoes_policy if {
	r := run("BLOCK", [])
	[r.policy_id, r.policy_version, r.policy_name, r.enforcement] == ["p1", "v1", "P", "BLOCK"]
}
