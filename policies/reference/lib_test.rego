package fulcrum.reference.lib_test

import data.fulcrum.reference.lib

test_glob_star_crosses_dots if lib.glob_any(["gpt-*"], "gpt-4.1")

test_glob_no_match if not lib.glob_any(["claude-*"], "gpt-4")

test_glob_invalid_pattern_never_matches if not lib.glob_any(["["], "[")

test_first_glob_is_first_in_list_order if lib.first_glob(["x*", "a*", "ab*"], "abc") == "a*"

test_first_glob_undefined_without_match if not lib.first_glob(["x*"], "abc")

test_strings_drops_non_strings if lib.strings(["a", 1, null, "b"]) == ["a", "b"]

test_strings_of_non_array_is_empty if lib.strings("a") == []

test_str if {
	lib.str("a") == "a"
	lib.str(3) == ""
}

test_number if {
	lib.number(2.5, 0) == 2.5
	lib.number("2", 7) == 7
}

test_list_and_index if {
	lib.list(["a", "b"]) == "[a, b]"
	lib.index("tool_names", 3) == "tool_names[3]"
}

# The fast paths must agree with glob.match(pattern, null, value) exactly.
glob_cases := [
	["search", "search"], ["search", "searchx"], ["*", ""], ["*", "a.b/c"],
	["delete_*", "delete_db"], ["delete_*", "x_delete_db"], ["delete_*", "delete_"],
	["*-preview", "o3-preview"], ["*-preview", "o3-previews"], ["*abc*", "xabcx"],
	["a?c", "a.c"], ["{a,b}*", "bz"], ["[a-c]x", "bx"], ["**", "a.b"], ["", ""], ["", "a"],
	["a,b", "a,b"], ["x\\*", "x*"], ["gpt-4*", "gpt-4o-mini"], ["gpt-4*", "gpt-3.5"],
]

test_fast_paths_agree_with_glob_match if {
	every c in glob_cases {
		glob.match(c[0], null, c[1]) == fast(c[0], c[1])
	}
}

fast(pattern, value) if lib.matches_glob(pattern, value)

else := false

test_literal_detection if {
	lib.matches_glob("a.b", "a.b")
	not lib.matches_glob("a.b", "a-b")
}
