package fulcrum.reference.selection_test

import data.fulcrum.reference.selection

policies := {
	"b": {"status": "ACTIVE", "priority": 10},
	"a": {"status": "ACTIVE", "priority": 10},
	"c": {"status": "ACTIVE", "priority": 50},
	"d": {"status": "ACTIVE"},
	"draft": {"status": "DRAFT", "priority": 99},
	"gone": {"status": "ARCHIVED", "priority": 99},
	"junk": "not a policy",
}

test_all_active_by_priority_then_id if {
	selection.policy_ids == ["c", "a", "b", "d"] with data.policies as policies with input as {}
}

test_empty_list_means_all_active if {
	selection.policy_ids == ["c", "a", "b", "d"] with data.policies as policies with input as {"policy_ids": []}
}

test_named_in_input_order_any_status_unknown_skipped if {
	ids := selection.policy_ids with data.policies as policies
		with input as {"policy_ids": ["draft", "missing", "a", "draft", "junk", 7]}
	ids == ["draft", "a"]
}

test_no_policies if selection.policy_ids == [] with data.policies as null with input as {}
