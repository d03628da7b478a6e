package fulcrum.reference_test

import data.fulcrum.reference.decision

tenant := {
	"tenant_id": "t1",
	"policies": {
		"approve": {
			"name": "Approvals", "version": "v3", "status": "ACTIVE", "enforcement": "BLOCK", "priority": 100,
			"rules": [{"id": "r1", "type": "APPROVAL_REQUIRED", "tools": ["delete_*"]}],
		},
		"models": {
			"name": "Models", "version": "v1", "status": "ACTIVE", "enforcement": "BLOCK", "priority": 50,
			"rules": [{"id": "m1", "type": "MODEL_RESTRICTION", "allowed_models": ["claude-*"]}],
		},
		"shadow": {
			"name": "Shadow", "version": "v1", "status": "ACTIVE", "enforcement": "BLOCK", "priority": 10, "dry_run": true,
			"rules": [{"id": "s1", "type": "TOOL_RESTRICTION", "denied_tools": ["*"]}],
		},
		"draft": {
			"name": "Draft", "version": "v0", "status": "DRAFT", "enforcement": "BLOCK",
			"rules": [{"id": "d1", "type": "TOOL_RESTRICTION", "denied_tools": ["search"]}],
		},
	},
}

tool_call := {"context": {"tenant_id": "t1", "phase": "PRE_TOOL_CALL", "tool_names": ["search", "delete_db"]}}

test_all_active_policies_in_priority_order if {
	d := decision with data.tenant_id as tenant.tenant_id with data.policies as tenant.policies with input as tool_call
	[r.policy_id | some r in d.results] == ["approve", "models", "shadow"]
	d.decision == "REQUIRE_APPROVAL"
	d.would_decide == "DENY"
}

test_flattened_lists_carry_policy_ids if {
	d := decision with data.tenant_id as tenant.tenant_id with data.policies as tenant.policies with input as tool_call
	[[m.policy_id, m.rule_id] | some m in d.matched_rules] == [["approve", "r1"], ["shadow", "s1"]]
	[[a.policy_id, a.type] | some a in d.actions] == [["approve", "REQUIRE_APPROVAL"], ["shadow", "AUDIT"]]
	d.reasons == [
		"tool 'delete_db' requires approval (rule r1 of policy approve)",
		"dry run: tool 'search' is denied; tool 'delete_db' is denied (rule s1 of policy shadow)",
	]
}

test_deny_beats_everything if {
	inp := {"context": {"phase": "PRE_LLM_CALL", "model_id": "gpt-4o", "tool_names": ["delete_x"]}}
	d := decision with data.policies as tenant.policies with input as inp
	d.decision == "DENY"
}

test_named_draft_is_evaluated if {
	inp := object.union(tool_call, {"policy_ids": ["draft"]})
	d := decision with data.policies as tenant.policies with input as inp
	d.decision == "DENY"
	[r.policy_id | some r in d.results] == ["draft"]
}

test_request_dry_run_allows_everything if {
	inp := object.union(tool_call, {"dry_run": true, "policy_ids": ["draft", "approve"]})
	d := decision with data.policies as tenant.policies with input as inp
	d.decision == "ALLOW"
	d.would_decide == "DENY"
	every r in d.results {
		r.dry_run
		r.decision == "ALLOW"
	}
}

test_no_policies_allows if {
	d := decision with data.policies as {} with input as tool_call
	d == {"decision": "ALLOW", "would_decide": "ALLOW", "results": [], "matched_rules": [], "reasons": [], "actions": []}
}

test_tenant_mismatch_fails_closed if {
	inp := {"context": {"tenant_id": "t2"}}
	d := decision with data.tenant_id as "t1" with data.policies as tenant.policies with input as inp
	d.decision == "DENY"
	d.results == []
	d.reasons == ["context tenant 't2' does not match the loaded tenant configuration 't1'"]
}

test_missing_context_tenant_is_not_a_mismatch if {
	d := decision with data.tenant_id as "t1" with data.policies as tenant.policies with input as {}
	d.decision == "ALLOW"
}

# Unspecified phase: every phase-scoped policy and rule applies (fail closed);
# a call with another phase is outside them.
phased := {
	"rule": {
		"name": "Phased rule", "version": "v1", "status": "ACTIVE", "enforcement": "BLOCK", "priority": 2,
		"rules": [{"id": "pr", "type": "TOOL_RESTRICTION", "phases": ["PRE_TOOL_CALL"], "denied_tools": ["rm*"]}],
	},
	"policy": {
		"name": "Phased policy", "version": "v1", "status": "ACTIVE", "enforcement": "BLOCK", "priority": 1,
		"scope": {"phases": ["POST_EXECUTION"]},
		"rules": [{"id": "pp", "type": "APPROVAL_REQUIRED", "tools": ["rm*"]}],
	},
}

test_unspecified_phase_is_subject_to_phase_scoped_rules_and_policies if {
	d := decision with data.policies as phased with input as {"context": {"tool_names": ["rm_rf"]}}
	d.decision == "DENY"
	[[m.policy_id, m.rule_id] | some m in d.matched_rules] == [["rule", "pr"], ["policy", "pp"]]
	[r.in_scope | some r in d.results] == [true, true]
}

test_other_phase_is_outside_phase_scoped_rules_and_policies if {
	d := decision with data.policies as phased with input as {"context": {"phase": "PRE_LLM_CALL", "tool_names": ["rm_rf"]}}
	d.decision == "ALLOW"
	d.matched_rules == []
	[r.in_scope | some r in d.results] == [true, false]
}
