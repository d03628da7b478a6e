package fulcrum.reference.models_test

import data.fulcrum.reference.models

ctx(model) := {"model_id": model}

rule := {"type": "MODEL_RESTRICTION", "allowed_models": ["gpt-4*", "claude-*"], "denied_models": ["gpt-4o-mini"]}

test_allowed_model_passes if models.hits(rule, ctx("claude-3.5-sonnet")) == []

test_model_outside_allow_list if {
	models.hits(rule, ctx("llama-3")) == [{
		"condition": "model_id = llama-3 matches none of allowed_models [gpt-4*, claude-*]",
		"reason": "model 'llama-3' is not allowed (allowed: gpt-4*, claude-*)",
	}]
}

test_denied_model_even_if_allowed if {
	models.hits(rule, ctx("gpt-4o-mini")) == [{
		"condition": "model_id = gpt-4o-mini matches gpt-4o-mini",
		"reason": "model 'gpt-4o-mini' is denied",
	}]
}

test_deny_list_only if {
	r := {"denied_models": ["*-preview"]}
	count(models.hits(r, ctx("o3-preview"))) == 1
	models.hits(r, ctx("o3")) == []
}

test_no_model_in_context_is_not_restricted if models.hits(rule, ctx("")) == []

test_empty_rule_matches_nothing if models.hits({}, ctx("anything")) == []
