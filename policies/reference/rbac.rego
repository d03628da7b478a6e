# RBAC: which roles may make a call.
#
#   allowed_roles: the user must hold at least one (if non-empty)
#   denied_roles:  holding any of them is a violation
#   tools, models: optional globs restricting the calls the rule governs, e.g.
#                  tools ["deploy_*"] + allowed_roles ["admin"] = "only admins
#                  may deploy". With both, the call must match both. The gate's
#                  matches are listed first in matched_conditions.
package fulcrum.reference.rbac

import data.fulcrum.reference.lib

hits(rule, ctx) := array.concat(gate, violations) if {
	gate := array.concat(_tool_gate(rule, ctx), _model_gate(rule, ctx))
	violations := array.concat(_missing_role(rule, ctx), _denied_roles(rule, ctx))
	count(violations) > 0
} else := []

# The gates are undefined when the rule does not govern this call, which
# makes hits fall through to []. Gate hits carry a condition but no reason:
# they explain the match without being a violation themselves.
_tool_gate(rule, _) := [] if count(lib.strings(object.get(rule, "tools", []))) == 0

_tool_gate(rule, ctx) := conditions if {
	patterns := lib.strings(object.get(rule, "tools", []))
	conditions := [{"condition": concat("", [lib.index("tool_names", i), " = ", tool, " matches ", pattern])} |
		some i, tool in ctx.tool_names
		pattern := lib.first_glob(patterns, tool)
	]
	count(conditions) > 0
}

_model_gate(rule, _) := [] if count(lib.strings(object.get(rule, "models", []))) == 0

_model_gate(rule, ctx) := [{"condition": concat("", ["model_id = ", ctx.model_id, " matches ", pattern])}] if {
	pattern := lib.first_glob(lib.strings(rule.models), ctx.model_id)
}

_missing_role(rule, ctx) := [{
	"condition": concat("", ["user_roles ", lib.list(ctx.user_roles), " contain none of allowed_roles ", lib.list(allowed)]),
	"reason": concat("", [_who(ctx.user_id), " holds none of the roles ", lib.list(allowed)]),
}] if {
	allowed := lib.strings(object.get(rule, "allowed_roles", []))
	count(allowed) > 0
	not _holds_any(ctx.user_roles, allowed)
} else := []

_denied_roles(rule, ctx) := [{
	"condition": concat("", [lib.index("user_roles", i), " = ", role, " is in denied_roles"]),
	"reason": concat("", ["role '", role, "' is denied"]),
} |
	some i, role in ctx.user_roles
	role in denied
] if {
	denied := lib.strings(object.get(rule, "denied_roles", []))
}

_holds_any(roles, wanted) if {
	some role in roles
	role in wanted
}

_who(user_id) := "the caller" if user_id == ""

else := concat("", ["user '", user_id, "'"])
