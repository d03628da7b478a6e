package fulcrum.reference.tools_test

import data.fulcrum.reference.tools

ctx(names) := {"tool_names": names}

test_each_denied_tool_is_reported if {
	hits := tools.hits({"denied_tools": ["shell*", "rm"]}, ctx(["search", "shell_exec", "rm"]))
	hits == [
		{"condition": "tool_names[1] = shell_exec matches shell*", "reason": "tool 'shell_exec' is denied"},
		{"condition": "tool_names[2] = rm matches rm", "reason": "tool 'rm' is denied"},
	]
}

test_allow_list if {
	hits := tools.hits({"allowed_tools": ["search", "read_*"]}, ctx(["read_file", "write_file"]))
	hits == [{
		"condition": "tool_names[1] = write_file matches none of allowed_tools [search, read_*]",
		"reason": "tool 'write_file' is not allowed",
	}]
}

test_denied_and_not_allowed_both_reported if {
	count(tools.hits({"allowed_tools": ["search"], "denied_tools": ["shell"]}, ctx(["shell"]))) == 2
}

test_no_tools_no_hits if tools.hits({"allowed_tools": ["search"]}, ctx([])) == []

test_allowed_tools_pass if tools.hits({"allowed_tools": ["*"], "denied_tools": []}, ctx(["a", "b"])) == []
