package fulcrum.governance.enforcement_test

import data.fulcrum.governance.decision
import data.fulcrum.governance.enforcement
import data.fulcrum.governance.testdata.prepared
import data.fulcrum.governance_test.view

t1 := prepared.t1

run(id) := view(t1.policies[id], d.results[0]) if {
	d := decision with data.tenant_id as t1.tenant_id
		with data.active_policy_ids as t1.active_policy_ids
		with data.policies as t1.policies
		with input as {"policy_ids": [id], "dry_run": false, "context": {"tool_names": ["danger"]}}
}

test_strongest if {
	enforcement.strongest([]) == "ALLOW"
	enforcement.strongest(["AUDIT", "WARN"]) == "WARN"
	enforcement.strongest(["REQUIRE_APPROVAL", "DENY", "WARN"]) == "DENY"
}

test_capped if {
	enforcement.capped("DENY", "AUDIT") == "ALLOW"
	enforcement.capped("DENY", "WARN") == "WARN"
	enforcement.capped("ALLOW", "WARN") == "ALLOW"
	enforcement.capped("REQUIRE_APPROVAL", "BLOCK") == "REQUIRE_APPROVAL"
}

# Action types, messages and the TERMINATE action are rendered by
# expandDecision (core/policy/expand-decision.test.ts); the Rego decides.

test_block if {
	r := run("draft")
	r.decision == "DENY"
	r.would_decide == "DENY"
	r.matched_rules[0].reason == "tool 'danger' is denied"
}

test_audit_enforcement_allows_but_reports if {
	r := run("audit")
	r.decision == "ALLOW"
	r.would_decide == "ALLOW"
	r.matched_rules[0].action == "DENY"
}

test_warn_enforcement_caps if {
	r := run("warn")
	r.decision == "WARN"
	r.would_decide == "WARN"
}

test_terminate_is_deny if {
	r := run("terminate")
	r.decision == "DENY"
	r.would_decide == "DENY"
}

test_compact_result_shapes if {
	d := decision with data.tenant_id as t1.tenant_id
		with data.active_policy_ids as t1.active_policy_ids
		with data.policies as t1.policies
		with input as {"policy_ids": ["audit", "draft", "cost"], "context": {"tool_names": ["danger"]}}
	d == {"results": [
		{"id": "audit", "matched": [[0, ["tool_names[0] = danger matches danger"], "tool 'danger' is denied"]]},
		{"id": "draft", "decision": "DENY", "matched": [[0, ["tool_names[0] = danger matches danger"], "tool 'danger' is denied"]]},
		{"id": "cost"},
	]}
}
