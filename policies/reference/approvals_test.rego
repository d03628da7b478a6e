package fulcrum.reference.approvals_test

import data.fulcrum.reference.approvals

test_matching_tool_requires_approval if {
	approvals.hits({"tools": ["delete_*"]}, {"tool_names": ["search", "delete_db"]}) == [{
		"condition": "tool_names[1] = delete_db matches delete_*",
		"reason": "tool 'delete_db' requires approval",
	}]
}

test_every_matching_tool_is_reported if {
	count(approvals.hits({"tools": ["delete_*", "drop_*"]}, {"tool_names": ["delete_a", "drop_b", "x"]})) == 2
}

test_no_match if approvals.hits({"tools": ["delete_*"]}, {"tool_names": ["search"]}) == []

test_empty_tools_matches_nothing if approvals.hits({}, {"tool_names": ["delete_db"]}) == []
