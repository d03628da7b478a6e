# APPROVAL_REQUIRED: tools that need a human approval before they run.
#
#   tools: globs (e.g. "delete_*"); each matching tool of the call is reported
#
# The family's default action is REQUIRE_APPROVAL (see rules.rego). An empty
# `tools` list matches nothing: requiring approval for every call must be
# spelled out as "*".
package fulcrum.reference.approvals

import data.fulcrum.reference.lib

hits(rule, ctx) := [{
	"condition": concat("", [lib.index("tool_names", i), " = ", tool, " matches ", pattern]),
	"reason": concat("", ["tool '", tool, "' requires approval"]),
} |
	some i, tool in ctx.tool_names
	pattern := lib.first_glob(patterns, tool)
] if {
	patterns := lib.strings(object.get(rule, "tools", []))
}
