package fulcrum.reference.context_test

import data.fulcrum.reference.context

test_missing_context_normalised if {
	c := context.ctx with input as {}
	c.tool_names == []
	c.phase == ""
	c.estimated_cost_usd == null
}

test_mistyped_fields_normalised if {
	c := context.ctx with input as {"context": {"tool_names": "delete_db", "user_roles": ["a", 1], "model_id": 4, "estimated_cost_usd": "1"}}
	c.tool_names == []
	c.user_roles == ["a"]
	c.model_id == ""
	c.estimated_cost_usd == null
}

test_values_kept if {
	c := context.ctx with input as {"context": {"phase": "PRE_LLM_CALL", "estimated_cost_usd": 0.2, "tool_names": ["x"]}}
	c.phase == "PRE_LLM_CALL"
	c.estimated_cost_usd == 0.2
	c.tool_names == ["x"]
}

test_request_dry_run if {
	context.request_dry_run with input as {"dry_run": true}
	not context.request_dry_run with input as {"dry_run": "yes"}
}
