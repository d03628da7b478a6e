# Small helpers shared by every rule family.
#
# (Reference library: evaluated by `opa eval`/`opa test` only, never built to
# wasm. It was written for wasm, hence the fast paths below; keep it readable.)
package fulcrum.reference.lib

# strings(xs) keeps the string elements of xs. Tenant configuration is written
# by people and validated elsewhere; a stray number in a list must neither
# crash evaluation nor match anything.
strings(xs) := [x | some x in xs; is_string(x)] if is_array(xs)

else := []

# str(x) is x when it is a string, "" otherwise.
str(x) := x if is_string(x)

else := ""

# number(x, fallback) is x when it is a number, fallback otherwise.
number(x, fallback) := x if is_number(x)

else := fallback

# glob_any(patterns, value) holds when value matches one of the patterns.
glob_any(patterns, value) if {
	some pattern in patterns
	matches_glob(pattern, value)
}

# first_glob(patterns, value) is the first pattern (in list order) matching
# value; undefined when none does. Used to name the pattern in explanations.
first_glob(patterns, value) := matching[0] if {
	matching := [p | some p in patterns; matches_glob(p, value)]
	count(matching) > 0
}

# matches_glob(pattern, value): glob.match(pattern, null, value), with fast paths.
#
# The delimiters argument is null on purpose: with [] OPA falls back to the
# default delimiter ".", so "gpt-*" would not match "gpt-4.1". With null,
# "*" matches any sequence of characters, which is what tenants expect.
#
# glob.match compiles the pattern on every call (~8 us in wasm), so the
# common shapes are answered with plain string builtins: a literal
# ("search"), a literal prefix or suffix ("delete_*", "*-preview"; "*" is
# the empty prefix). Anything else with a glob metacharacter goes to
# glob.match. lib_test.rego checks the fast paths against glob.match.
matches_glob(pattern, value) if {
	_literal(pattern)
	pattern == value
}

matches_glob(pattern, value) if {
	not _literal(pattern)
	_glob(pattern, value)
}

_glob(pattern, value) if {
	endswith(pattern, "*")
	prefix := trim_suffix(pattern, "*")
	_literal(prefix)
	startswith(value, prefix)
}

_glob(pattern, value) if {
	startswith(pattern, "*")
	suffix := trim_prefix(pattern, "*")
	_literal(suffix)
	endswith(value, suffix)
}

_glob(pattern, value) if {
	not _simple(pattern)
	glob.match(pattern, null, value)
}

# A pattern is simple when one of the fast paths above decides it exactly
# ("*" is the empty prefix).
_simple(pattern) if {
	endswith(pattern, "*")
	_literal(trim_suffix(pattern, "*"))
}

_simple(pattern) if {
	startswith(pattern, "*")
	_literal(trim_prefix(pattern, "*"))
}

# Characters with a meaning in glob syntax (conservatively including the
# closing and separator characters of classes and alternations).
_glob_meta := ["*", "?", "[", "]", "{", "}", ",", "\\", "!"]

_literal(s) if {
	is_string(s)
	every c in _glob_meta {
		not contains(s, c)
	}
}

# list(xs) renders a list of strings for human-readable messages: "[a, b]".
list(xs) := concat("", ["[", concat(", ", xs), "]"])

# index(name, i) renders "name[i]" for matched_conditions.
index(name, i) := concat("", [name, "[", format_int(i, 10), "]"])
