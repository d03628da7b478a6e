package fulcrum.reference.cost_test

import data.fulcrum.reference.cost

test_over_limit if {
	cost.hits({"max_cost_per_call_usd": 0.5}, {"estimated_cost_usd": 0.75}) == [{
		"condition": "estimated_cost_usd = 0.75 > max_cost_per_call_usd = 0.5",
		"reason": "estimated cost $0.75 exceeds the per-call limit $0.5",
	}]
}

test_at_limit_is_fine if cost.hits({"max_cost_per_call_usd": 0.5}, {"estimated_cost_usd": 0.5}) == []

test_no_estimate_is_not_checked if cost.hits({"max_cost_per_call_usd": 0.5}, {"estimated_cost_usd": null}) == []

test_non_numeric_limit_ignored if cost.hits({"max_cost_per_call_usd": "0.5"}, {"estimated_cost_usd": 1}) == []
