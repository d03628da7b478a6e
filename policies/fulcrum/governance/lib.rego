# Context accessors and glob matching, shared by every rule family.
#
# Everything here must compile to wasm: only builtins listed in
# policies/capabilities.json may be used (the build enforces it).
#
# The data document is prepared by core/policy/prepare-tenant-data.ts and is
# trusted as is. The input is built by the edge and well typed; the accessors
# below only make a missing or mistyped field behave as empty. They are
# complete rules, so each is computed at most once per evaluation, and only
# when a rule family needs it.
package fulcrum.governance.lib

_ctx := input.context if is_object(input.context)

else := {}

tenant_id := _str("tenant_id")

workflow_id := _str("workflow_id")

user_id := _str("user_id")

phase := _str("phase")

model_id := _str("model_id")

tool_names := _strings("tool_names")

user_roles := _strings("user_roles")

input_text := _str("input_text")

output_text := _str("output_text")

# The edge leaves a zero cost out of the input, so a missing cost is 0 (checked
# like an explicit 0); a present non-numeric one (a non-finite number arrives
# as null) is null: never checked.
_cost := object.get(_ctx, "estimated_cost_usd", 0)

cost := _cost if is_number(_cost)

else := null

_str(key) := s if {
	s := _ctx[key]
	is_string(s)
} else := ""

_strings(key) := [x | some x in xs; is_string(x)] if {
	xs := _ctx[key]
	is_array(xs)
} else := []

# text(field) and folded(field): the texts content filters scan, as given
# and lower-cased (each computed once per evaluation).
text("input_text") := input_text

text("output_text") := output_text

folded("input_text") := lower_input_text

folded("output_text") := lower_output_text

lower_input_text := lower(input_text)

lower_output_text := lower(output_text)

# exotic(field): the text holds a character whose case folding lower() does not
# reproduce: U+0130 (lower() gives "i", RE2 (?i) does not match it to i),
# U+212A KELVIN SIGN and U+017F LONG S (RE2 (?i) matches them to k and s).
# Case-insensitive content shortcuts are skipped for such texts.
exotic("input_text") if exotic_input_text

exotic("output_text") if exotic_output_text

exotic_input_text if _exotic(input_text)

exotic_output_text if _exotic(output_text)

_exotic(t) if contains(t, "\u0130")

_exotic(t) if contains(t, "\u212a")

_exotic(t) if contains(t, "\u017f")

# matches(globs, value): value matches one of the prepared globs (see
# PreparedGlobs): literal, prefix*, *suffix and *infix* patterns use string
# builtins, only the others glob.match(pattern, null, value) (~8 us each).
matches(g, value) if g.exact[value] >= 0

matches(g, value) if {
	some e in g.prefix
	startswith(value, e[0])
}

matches(g, value) if {
	some e in g.suffix
	endswith(value, e[0])
}

matches(g, value) if {
	some e in g.infix
	contains(value, e[0])
}

matches(g, value) if {
	some e in g.glob
	glob.match(e[0], null, value)
}

# first(globs, value): the first pattern in list order matching value;
# undefined when none does. Named in matched_conditions.
first(g, value) := g.patterns[min(indexes)] if {
	indexes := ((_exact_index(g, value) | {e[1] | some e in g.prefix; startswith(value, e[0])}) | ({e[1] | some e in g.suffix; endswith(value, e[0])} | {e[1] | some e in g.infix; contains(value, e[0])})) | {e[1] | some e in g.glob; glob.match(e[0], null, value)}
	count(indexes) > 0
}

_exact_index(g, value) := {g.exact[value]} if g.exact[value] >= 0

else := set()

# list(xs) renders a list of strings for human-readable messages: "[a, b]".
list(xs) := concat("", ["[", concat(", ", xs), "]"])

# index(name, i) renders "name[i]" for matched_conditions.
index(name, i) := concat("", [name, "[", format_int(i, 10), "]"])
