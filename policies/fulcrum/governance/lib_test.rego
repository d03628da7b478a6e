package fulcrum.governance.lib_test

import data.fulcrum.governance.lib
import data.fulcrum.governance.testdata.prepared

# The fast paths (prepared by prepareGlobs) agree with glob.match(p, null, v).
globs := prepared.t1.policies.tools.rules[0].denied

values := ["shell_exec", "shell_", "exec", "execute", "db_admin", "_admin", "visudo", "sudo", "rm_rf", "rm_fr", "rm_xx", "", "shell.exec"]

test_matches_agrees_with_glob_match if {
	every v in values {
		_fast(v) == _slow(v)
	}
}

_fast(v) if lib.matches(globs, v)

else := false

_slow(v) if {
	some p in globs.patterns
	glob.match(p, null, v)
} else := false

test_first_is_first_in_list_order if {
	lib.first(globs, "shell_exec") == "shell_*"
	lib.first(globs, "rm_rf") == "rm_{rf,fr}"
	not lib.first(globs, "search")
}

test_context_accessors_default if {
	lib.tool_names == [] with input as {}
	lib.tool_names == ["a"] with input as {"context": {"tool_names": ["a", 1]}}
	lib.model_id == "" with input as {"context": {"model_id": 5}}
	lib.cost == null with input as {"context": {"estimated_cost_usd": "1"}}
}

test_list_and_index if {
	lib.list(["a", "b"]) == "[a, b]"
	lib.index("tool_names", 2) == "tool_names[2]"
}
