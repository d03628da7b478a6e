# TOOL_RESTRICTION: which tools a call may invoke.
#
#   allowed_tools: globs; if non-empty, every tool of the call must match one
#   denied_tools:  globs; a tool matching any is a violation
#
# Each offending tool is reported separately (tool_names[i] in the condition),
# so a caller can tell which of several tools was refused.
package fulcrum.reference.tools

import data.fulcrum.reference.lib

hits(rule, ctx) := [hit |
	some i, tool in ctx.tool_names
	some hit in array.concat(_denied(denied, i, tool), _not_allowed(allowed, i, tool))
] if {
	denied := lib.strings(object.get(rule, "denied_tools", []))
	allowed := lib.strings(object.get(rule, "allowed_tools", []))
}

_denied(patterns, i, tool) := [{
	"condition": concat("", [lib.index("tool_names", i), " = ", tool, " matches ", pattern]),
	"reason": concat("", ["tool '", tool, "' is denied"]),
}] if {
	pattern := lib.first_glob(patterns, tool)
} else := []

_not_allowed(allowed, i, tool) := [{
	"condition": concat("", [lib.index("tool_names", i), " = ", tool, " matches none of allowed_tools ", lib.list(allowed)]),
	"reason": concat("", ["tool '", tool, "' is not allowed"]),
}] if {
	count(allowed) > 0
	not lib.glob_any(allowed, tool)
} else := []
