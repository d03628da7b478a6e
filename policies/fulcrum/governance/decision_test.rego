# Test data: testdata/prepared.json is prepareTenantData() over testdata/raw.json
# (core/policy/prepare-tenant-data.test.ts checks it is up to date and
# regenerates it with FULCRUM_UPDATE_TESTDATA=1).
package fulcrum.governance_test

import data.fulcrum.governance.decision
import data.fulcrum.governance.testdata.prepared

t1 := prepared.t1

run(ids, ctx) := run_dry(ids, ctx, false)

run_dry(ids, ctx, dry) := d if {
	d := decision with data.tenant_id as t1.tenant_id
		with data.active_policy_ids as t1.active_policy_ids
		with data.policies as t1.policies
		with input as {"policy_ids": ids, "dry_run": dry, "context": ctx}
}

# view(policy, r): a compact result with its defaults filled in and its
# matched rules named from rule_info, as expandDecision reads them (the
# rendering itself is tested in core/policy/expand-decision.test.ts).
view(policy, r) := {
	"id": r.id,
	"decision": _decision(r),
	"would_decide": object.get(r, "would_decide", _decision(r)),
	"misses": object.get(r, "misses", []),
	"matched_rules": [object.union(object.remove(policy.rule_info[m[0]], ["severity", "message"]), {
		"reason": _reason(policy.rule_info[m[0]], m),
		"matched_conditions": m[1],
	}) |
		some m in object.get(r, "matched", [])
	],
}

_decision(r) := object.get(r, "decision", "ALLOW")

_reason(_, m) := m[2] if count(m) > 2

_reason(info, m) := info.message if count(m) == 2

views(d) := [view(t1.policies[r.id], r) | some r in d.results]

rule_ids(d) := [concat("/", [r.id, m.rule_id]) | some r in views(d); some m in r.matched_rules]

test_all_active_policies_in_priority_order if {
	d := run([], {"tenant_id": "t1", "phase": "PRE_TOOL_CALL", "tool_names": ["search"]})
	d == {"results": [
		{"id": "models"}, {"id": "tools"}, {"id": "approvals"}, {"id": "content"},
		{"id": "cost"}, {"id": "rbac"}, {"id": "dry"}, {"id": "same_priority_b"},
	]}
}

test_missing_input_fields_behave_as_empty if {
	d := decision with data.tenant_id as t1.tenant_id
		with data.active_policy_ids as t1.active_policy_ids
		with data.policies as t1.policies
		with input as {"context": "not an object"}
	count(d.results) == 8
	every r in views(d) {
		r.decision == "ALLOW"
	}
	not d.dry_run
}

test_named_ids_in_order_without_duplicates_or_unknowns if {
	d := run(["draft", "cost", "nope", "draft", 5], {"tool_names": ["danger"]})
	[r.id | some r in d.results] == ["draft", "cost"]
	[r.decision | some r in views(d)] == ["DENY", "ALLOW"]
	rule_ids(d) == ["draft/d"]
	views(d)[0].matched_rules[0].reason == "tool 'danger' is denied"
}

test_combination if {
	d := run([], {"tenant_id": "t1", "model_id": "llama-3", "tool_names": ["delete_x"], "user_roles": ["dev"]})
	[r.decision | some r in views(d); r.decision != "ALLOW"] == ["DENY", "WARN", "REQUIRE_APPROVAL"]
	rule_ids(d) == ["models/m_deny", "models/m_allow", "tools/t_allow", "approvals/a_delete"]
}

test_dry_run_policy_reports_but_allows if {
	d := run(["dry"], {"tool_names": ["danger"]})
	d.results == [{"id": "dry", "would_decide": "DENY", "matched": [[0, ["tool_names[0] = danger matches danger"], "tool 'danger' is denied"]]}]
	not d.dry_run
}

test_request_dry_run if {
	d := run_dry(["draft", "approvals"], {"tool_names": ["danger", "delete_x"]}, true)
	d.dry_run == true
	[[r.decision, r.would_decide] | some r in views(d)] == [["ALLOW", "DENY"], ["ALLOW", "REQUIRE_APPROVAL"]]
}

test_request_dry_run_clean_result if {
	d := run_dry(["cost"], {}, true)
	d == {"results": [{"id": "cost"}], "dry_run": true}
}

test_no_policies_allows if {
	d := decision with data.tenant_id as "t1"
		with data.active_policy_ids as []
		with data.policies as {}
		with input as {"context": {"tenant_id": "t1"}}
	d == {"results": []}
}

test_tenant_mismatch_fails_closed if {
	d := run([], {"tenant_id": "t2", "tool_names": ["danger"]})
	d == {"tenant": "t2"}
}

test_anonymous_configuration_accepts_any_tenant if {
	a := prepared.anonymous
	d := decision with data.tenant_id as a.tenant_id
		with data.active_policy_ids as a.active_policy_ids
		with data.policies as a.policies
		with input as {"context": {"tenant_id": "whoever", "tool_names": ["danger"]}}
	[r.decision | some r in d.results] == ["DENY"]
}
