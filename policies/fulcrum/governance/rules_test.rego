package fulcrum.governance.rules_test

import data.fulcrum.governance.decision
import data.fulcrum.governance.testdata.prepared
import data.fulcrum.governance_test.view

t1 := prepared.t1

run(id, ctx) := view(t1.policies[id], d.results[0]) if {
	d := decision with data.tenant_id as t1.tenant_id
		with data.active_policy_ids as t1.active_policy_ids
		with data.policies as t1.policies
		with input as {"policy_ids": [id], "dry_run": false, "context": ctx}
}

conditions(r) := [[m.rule_id, m.matched_conditions] | some m in r.matched_rules]

# MODEL_RESTRICTION

test_model_denied_and_not_allowed if {
	r := run("models", {"model_id": "llama-3"})
	conditions(r) == [
		["m_deny", ["model_id = llama-3 matches llama-*"]],
		["m_allow", ["model_id = llama-3 matches none of allowed_models [gpt-4o*, claude-*, o[13]-mini]"]],
	]
	r.matched_rules[1].reason == "model 'llama-3' is not allowed (allowed: gpt-4o*, claude-*, o[13]-mini)"
	r.decision == "DENY"
}

test_model_allowed_by_prefix_and_general_glob if {
	run("models", {"model_id": "gpt-4o-mini"}).decision == "ALLOW"
	run("models", {"model_id": "o3-mini"}).decision == "ALLOW"
	conditions(run("models", {"model_id": "o2-mini"})) == [["m_allow", ["model_id = o2-mini matches none of allowed_models [gpt-4o*, claude-*, o[13]-mini]"]]]
}

test_model_denied_by_suffix if {
	r := run("models", {"model_id": "claude-x-preview"})
	conditions(r) == [["m_deny", ["model_id = claude-x-preview matches *-preview"]]]
	r.matched_rules[0] == {
		"rule_id": "m_deny", "rule_name": "", "rule_type": "MODEL_RESTRICTION", "priority": 20, "action": "DENY",
		"reason": "model 'claude-x-preview' is denied",
		"matched_conditions": ["model_id = claude-x-preview matches *-preview"],
	}
}

test_no_model_is_not_checked if {
	run("models", {"model_id": ""}).decision == "ALLOW"
	run("models", {}).decision == "ALLOW"
}

# TOOL_RESTRICTION

test_tool_denied_globs_name_the_first_pattern if {
	r := run("tools", {"tool_names": ["search", "shell_exec", "exec", "db_admin", "visudo_x", "rm_fr"]})
	conditions(r) == [
		["t_deny", [
			"tool_names[1] = shell_exec matches shell_*",
			"tool_names[2] = exec matches exec",
			"tool_names[3] = db_admin matches *_admin",
			"tool_names[4] = visudo_x matches *sudo*",
			"tool_names[5] = rm_fr matches rm_{rf,fr}",
		]],
		["t_allow", [
			"tool_names[2] = exec matches none of allowed_tools [search, read_*, shell_*]",
			"tool_names[3] = db_admin matches none of allowed_tools [search, read_*, shell_*]",
			"tool_names[4] = visudo_x matches none of allowed_tools [search, read_*, shell_*]",
			"tool_names[5] = rm_fr matches none of allowed_tools [search, read_*, shell_*]",
		]],
	]
	r.matched_rules[1].action == "WARN"
	r.decision == "DENY"
}

test_tool_allowed_only_warns if {
	r := run("tools", {"tool_names": ["read_x", "write_x"]})
	r.decision == "WARN"
	conditions(r) == [["t_allow", ["tool_names[1] = write_x matches none of allowed_tools [search, read_*, shell_*]"]]]
	r.matched_rules[0].reason == "tool 'write_x' is not allowed"
}

test_no_tools_no_match if {
	run("tools", {"tool_names": []}).decision == "ALLOW"
	run("tools", {"tool_names": ["search", "read_file"]}).decision == "ALLOW"
}

# APPROVAL_REQUIRED, disabled / unknown / rate-limit / malformed rules

test_approval_globs if {
	r := run("approvals", {"tool_names": ["drop_db", "delete_x", "drop_view"]})
	conditions(r) == [["a_delete", ["tool_names[0] = drop_db matches drop_{table,db}", "tool_names[1] = delete_x matches delete_*"]]]
	r.decision == "REQUIRE_APPROVAL"
}

test_disabled_unknown_rate_limit_and_empty_rules_never_match if {
	r := run("approvals", {"tool_names": ["anything"]})
	r.matched_rules == []
	r.decision == "ALLOW"
}

# CONTENT_FILTER

test_content_literal_and_regex_patterns if {
	r := run("content", {"input_text": "my API_KEY and password = x", "output_text": "call 1234-5678 now"})
	conditions(r) == [["c_patterns", [
		"input_text matches /(?i)api[_-]?key/",
		"input_text matches /password\\s*[:=]/",
		"output_text matches /\\b\\d{4}-\\d{4}\\b/",
	]]]
	r.matched_rules[0].reason == concat("; ", [
		"input_text matches blocked pattern '(?i)api[_-]?key'",
		"input_text matches blocked pattern 'password\\s*[:=]'",
		"output_text matches blocked pattern '\\b\\d{4}-\\d{4}\\b'",
	])
}

test_content_prefilter_passes_but_regex_decides if {
	# "password" and "-" are present, the patterns still do not match.
	run("content", {"input_text": "password reset for a-b, 12345-6789"}).matched_rules == []
	conditions(run("content", {"input_text": "xxy"})) == [["c_patterns", ["input_text matches /x{2,}y/"]]]
	run("content", {"input_text": "xy"}).matched_rules == []
}

test_content_case_insensitive_and_message if {
	r := run("content", {"input_text": "The SeCrEt is TOKEN7"})
	r.matched_rules == [{
		"rule_id": "c_folded", "rule_name": "", "rule_type": "CONTENT_FILTER", "priority": 0, "action": "DENY",
		"reason": "no secrets",
		"matched_conditions": ["input_text matches /secret/i", "input_text matches /token\\d/i"],
	}]
}

test_content_exotic_case_folding_goes_to_regex if {
	# U+017F LONG S folds to s in RE2: lower() would miss it, so the regex decides.
	conditions(run("content", {"input_text": "the \u017fecret"})) == [["c_folded", ["input_text matches /secret/i"]]]

	# U+0130 lower-cases to i, but RE2 does not fold it to i.
	run("content", {"input_text": "ap\u0130_key"}).matched_rules == []
	conditions(run("content", {"input_text": "api_\u212aey"})) == [["c_patterns", ["input_text matches /(?i)api[_-]?key/"]]]
}

test_content_output_text_and_invalid_pattern if {
	run("content", {"output_text": "bad("}).matched_rules == []
	conditions(run("content", {"output_text": "apikey"})) == [["c_patterns", ["output_text matches /(?i)api[_-]?key/"]]]
}

# COST_CONTROL

test_cost_cap if {
	r := run("cost", {"estimated_cost_usd": 0.75})
	conditions(r) == [["cost_cap", ["estimated_cost_usd = 0.75 > max_cost_per_call_usd = 0.5"]]]
	r.matched_rules[0].reason == "estimated cost $0.75 exceeds the per-call limit $0.5"
	run("cost", {"estimated_cost_usd": 0.5}).decision == "ALLOW"
	run("cost", {"estimated_cost_usd": "9"}).decision == "ALLOW"
	run("cost", {}).decision == "ALLOW"
}

test_cost_missing_is_zero_and_non_numeric_unchecked if {
	# The edge leaves a zero cost out: missing must behave as 0, which a
	# negative limit catches; a present non-number (null) is never checked.
	negative := json.patch(t1.policies.cost, [
		{"op": "replace", "path": "/rules/0/max", "value": -1},
		{"op": "replace", "path": "/rules/0/max_text", "value": "-1"},
	])
	r := view(negative, data.fulcrum.governance.enforcement.result(negative, false)) with input as {"context": {}}
	conditions(r) == [["cost_cap", ["estimated_cost_usd = 0 > max_cost_per_call_usd = -1"]]]
	r0 := view(negative, data.fulcrum.governance.enforcement.result(negative, false)) with input as {"context": {"estimated_cost_usd": null}}
	r0.matched_rules == []
}

# RBAC

test_rbac_tool_gate_and_missing_role if {
	r := run("rbac", {"user_id": "u1", "user_roles": ["dev"], "tool_names": ["search", "deploy_prod"]})
	r.matched_rules[0] == {
		"rule_id": "r_deploy", "rule_name": "", "rule_type": "RBAC", "priority": 0, "action": "DENY",
		"reason": "user 'u1' holds none of the roles [admin]",
		"matched_conditions": [
			"tool_names[1] = deploy_prod matches deploy_*",
			"user_roles [dev] contain none of allowed_roles [admin]",
		],
	}
	run("rbac", {"user_roles": ["admin"], "tool_names": ["deploy_prod"]}).matched_rules == []
}

test_rbac_denied_role if {
	r := run("rbac", {"user_roles": ["intern", "dev"]})
	conditions(r) == [["r_intern", ["user_roles[0] = intern is in denied_roles"]]]
	r.matched_rules[0].reason == "role 'intern' is denied"
}

test_rbac_model_and_tool_gates if {
	r := run("rbac", {"model_id": "gpt-4o", "tool_names": ["search"], "user_roles": []})
	conditions(r) == [["r_models", [
		"tool_names[0] = search matches *",
		"model_id = gpt-4o matches gpt-*",
		"user_roles [] contain none of allowed_roles [ops]",
	]]]
	r.matched_rules[0].reason == "the caller holds none of the roles [ops]"
	run("rbac", {"model_id": "claude", "tool_names": ["search"]}).matched_rules == []
	run("rbac", {"model_id": "gpt-4o", "tool_names": []}).matched_rules == []
}

# Phases and scope

test_rule_phases if {
	conditions(run("phased", {"phase": "POST_TOOL_CALL", "tool_names": ["x"]})) == [
		["ph_post", ["tool_names[0] = x matches *"]],
		["ph_any", ["tool_names[0] = x matches x"]],
	]
	conditions(run("phased", {"phase": "PRE_TOOL_CALL", "tool_names": ["x"]})) == [["ph_any", ["tool_names[0] = x matches x"]]]

	# An unspecified phase is subject to every phase restriction.
	conditions(run("phased", {"phase": "", "tool_names": ["x"]})) == [
		["ph_post", ["tool_names[0] = x matches *"]],
		["ph_any", ["tool_names[0] = x matches x"]],
	]
	conditions(run("phased", {"tool_names": ["x"]})) == conditions(run("phased", {"phase": "", "tool_names": ["x"]}))
}

# A phase-scoped DENY rule applies to a call without a phase (fail closed),
# with the rules of every phase in match order, and only to its own phase
# otherwise.
test_phase_scoped_deny_without_phase if {
	r := run("phased_deny", {"tool_names": ["rm_rf"]})
	[m.rule_id | some m in r.matched_rules] == ["pd_post", "pd_pre", "pd_any"]
	r.decision == "DENY"
	run("phased_deny", {"phase": "", "tool_names": ["rm_rf"]}).decision == "DENY"
}

test_phase_scoped_deny_with_phase if {
	pre := run("phased_deny", {"phase": "PRE_TOOL_CALL", "tool_names": ["rm_rf"]})
	[m.rule_id | some m in pre.matched_rules] == ["pd_pre", "pd_any"]
	pre.decision == "DENY"
	post := run("phased_deny", {"phase": "POST_TOOL_CALL", "tool_names": ["rm_rf"]})
	[m.rule_id | some m in post.matched_rules] == ["pd_post", "pd_any"]
	post.decision == "REQUIRE_APPROVAL"
	other := run("phased_deny", {"phase": "PRE_LLM_CALL", "tool_names": ["rm_rf"]})
	[m.rule_id | some m in other.matched_rules] == ["pd_any"]
	other.decision == "REQUIRE_APPROVAL"
}

in_scope_ctx := {"workflow_id": "wf1", "phase": "PRE_TOOL_CALL", "user_roles": ["dev"], "model_id": "gpt-4o", "tool_names": ["search"]}

test_scope_in if {
	r := run("scoped", in_scope_ctx)
	r.decision == "DENY"
}

test_scope_out_names_missed_dimensions if {
	r := run("scoped", {"workflow_id": "wf2", "phase": "POST_EXECUTION", "user_roles": [], "model_id": "claude", "tool_names": ["other"]})
	r.decision == "ALLOW"
	r.matched_rules == []
	r.misses == ["workflow_ids", "phases", "roles", "model_ids", "tool_names"]
	run("scoped", object.union(in_scope_ctx, {"phase": "POST_TOOL_CALL"})).misses == ["phases"]
}

# A phase-scoped policy applies to a call without a phase (fail closed).
test_phase_scoped_policy_without_phase if {
	r := run("scoped", object.union(in_scope_ctx, {"phase": ""}))
	r.misses == []
	r.decision == "DENY"
	run("scoped", object.remove(in_scope_ctx, ["phase"])).decision == "DENY"
	run("scoped", {"workflow_id": "wf2", "tool_names": ["other"]}).misses == ["workflow_ids", "roles", "model_ids", "tool_names"]
}

# Rule order, ids and actions (severities and action types: expand-decision.test.ts)

test_rule_order_ids_actions if {
	r := run("ordered", {"tool_names": ["danger"]})
	[[m.rule_id, m.action, m.priority] | some m in r.matched_rules] == [
		["o_high", "WARN", 50],
		["o_mid", "REQUIRE_APPROVAL", 5],
		["rules[0]", "AUDIT", 0],
	]
	r.decision == "REQUIRE_APPROVAL"
}
