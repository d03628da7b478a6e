package fulcrum.reference.rbac_test

import data.fulcrum.reference.rbac

ctx(roles, tools) := {"user_id": "u1", "user_roles": roles, "tool_names": tools, "model_id": "gpt-4o"}

deploy_admins := {"tools": ["deploy_*"], "allowed_roles": ["admin"]}

test_role_missing_for_gated_tool if {
	rbac.hits(deploy_admins, ctx(["dev"], ["search", "deploy_prod"])) == [
		{"condition": "tool_names[1] = deploy_prod matches deploy_*"},
		{
			"condition": "user_roles [dev] contain none of allowed_roles [admin]",
			"reason": "user 'u1' holds none of the roles [admin]",
		},
	]
}

test_admin_may_deploy if rbac.hits(deploy_admins, ctx(["dev", "admin"], ["deploy_prod"])) == []

test_gate_not_matching_means_not_governed if rbac.hits(deploy_admins, ctx(["dev"], ["search"])) == []

test_ungated_rule_applies_to_every_call if {
	hits := rbac.hits({"allowed_roles": ["member"]}, {"user_id": "", "user_roles": [], "tool_names": [], "model_id": ""})
	hits[0].reason == "the caller holds none of the roles [member]"
}

test_denied_roles_each_reported if {
	hits := rbac.hits({"denied_roles": ["guest", "suspended"]}, ctx(["guest", "dev", "suspended"], []))
	[h.condition | some h in hits] == ["user_roles[0] = guest is in denied_roles", "user_roles[2] = suspended is in denied_roles"]
	hits[0].reason == "role 'guest' is denied"
}

test_model_gate if {
	r := {"models": ["gpt-4*"], "allowed_roles": ["ml"]}
	rbac.hits(r, ctx(["dev"], []))[0] == {"condition": "model_id = gpt-4o matches gpt-4*"}
	rbac.hits(r, object.union(ctx(["dev"], []), {"model_id": "claude"})) == []
}

test_both_gates_must_match if {
	r := {"models": ["gpt-4*"], "tools": ["deploy_*"], "allowed_roles": ["admin"]}
	count(rbac.hits(r, ctx([], ["deploy_x"]))) == 3
	rbac.hits(r, ctx([], ["search"])) == []
}
