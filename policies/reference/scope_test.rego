package fulcrum.reference.scope_test

import data.fulcrum.reference.scope

ctx := {
	"workflow_id": "wf1", "phase": "PRE_TOOL_CALL", "user_roles": ["dev"],
	"model_id": "gpt-4o", "tool_names": ["search", "delete_db"],
}

test_unscoped_policy_applies if scope.misses({}, ctx) == []

test_non_object_scope_means_unscoped if scope.misses({"scope": "all"}, ctx) == []

test_matching_scope if {
	s := {
		"workflow_ids": ["wf1", "wf2"], "phases": ["PRE_TOOL_CALL"], "roles": ["admin", "dev"],
		"model_ids": ["gpt-*"], "tool_names": ["delete_*"],
	}
	scope.misses({"scope": s}, ctx) == []
}

test_each_dimension_can_miss if {
	s := {
		"workflow_ids": ["wf9"], "phases": ["POST_EXECUTION"], "roles": ["admin"],
		"model_ids": ["claude-*"], "tool_names": ["deploy_*"],
	}
	scope.misses({"scope": s}, ctx) == ["workflow_ids", "phases", "roles", "model_ids", "tool_names"]
}

# An unspecified phase is subject to every phase-scoped policy (fail closed);
# a different phase is not.
test_unspecified_phase_is_inside_phase_scoped_policy if {
	scope.misses({"scope": {"phases": ["POST_EXECUTION"]}}, object.union(ctx, {"phase": ""})) == []
}

test_other_phase_misses_phase_scoped_policy if {
	scope.misses({"scope": {"phases": ["POST_EXECUTION"]}}, ctx) == ["phases"]
}

test_rule_enabled_by_default if scope.rule_applies({}, ctx)

test_disabled_rule_never_applies if not scope.rule_applies({"enabled": false}, ctx)

test_rule_phases if {
	scope.rule_applies({"phases": ["PRE_LLM_CALL", "PRE_TOOL_CALL"]}, ctx)
	not scope.rule_applies({"phases": ["POST_LLM_CALL"]}, ctx)
	scope.rule_applies({"phases": ["POST_LLM_CALL"]}, object.union(ctx, {"phase": ""}))
	not scope.rule_applies({"enabled": false, "phases": ["POST_LLM_CALL"]}, object.union(ctx, {"phase": ""}))
}
