# Rules: the rule families, and what a matched rule reports.
#
# Rules arrive prepared (core/policy/prepare-tenant-data.ts): only enabled
# rules of a known, matchable type, already in match order (priority desc,
# then list position) and grouped by phase, with action and index `k`
# resolved. A rule matches when its family reports at least one hit:
# {"condition", "reason"} objects in a deterministic order. (RBAC adds
# reason-less hits naming the calls it governs.)
#
# A matched rule is reported as [k, conditions] or [k, conditions, reason]:
# only what depends on the request. Its id, name, type, priority, action,
# severity and own message are static; expandDecision() adds them from the
# prepared rule_info[k].
package fulcrum.governance.rules

import data.fulcrum.governance.lib

# matched(policy): [rule, record] for each matching rule of the policy, in
# match order. by_phase holds the rules of every phase some rule is restricted
# to, and of "" (unspecified phase: every rule, as an unknown phase is subject
# to every phase restriction); any other phase gets the unrestricted `rules`.
matched(policy) := [[rule, _record(rule, hs)] |
	some rule in object.get(policy.by_phase, lib.phase, policy.rules)
	hs := hits(rule)
	count(hs) > 0
]

# A rule's own message replaces the generated reason: no reason to report.
_record(rule, hs) := [rule.k, [h.condition | some h in hs]] if rule.has_message

else := [rule.k, [h.condition | some h in hs], concat("; ", [h.reason | some h in hs])]

hits(rule) := tool_hits(rule) if {
	rule.type == "TOOL_RESTRICTION"
} else := approval_hits(rule) if {
	rule.type == "APPROVAL_REQUIRED"
} else := model_hits(rule) if {
	rule.type == "MODEL_RESTRICTION"
} else := content_hits(rule) if {
	rule.type == "CONTENT_FILTER"
} else := cost_hits(rule) if {
	rule.type == "COST_CONTROL"
} else := rbac_hits(rule) if {
	rule.type == "RBAC"
} else := []

# TOOL_RESTRICTION: a tool matching a denied glob, or (allowed_tools non-empty)
# matching none of the allowed globs. Each offending tool is reported.
tool_hits(rule) := [hit |
	some i, tool in lib.tool_names
	_tool_offends(rule, tool)
	some hit in array.concat(_tool_denied(rule, i, tool), _tool_not_allowed(rule, i, tool))
]

_tool_offends(rule, tool) if lib.matches(rule.denied, tool)

_tool_offends(rule, tool) if _not_allowed(rule.allowed, tool)

_not_allowed(allowed, value) if {
	allowed != null
	not lib.matches(allowed, value)
}

_tool_denied(rule, i, tool) := [{
	"condition": concat("", [lib.index("tool_names", i), " = ", tool, " matches ", pattern]),
	"reason": concat("", ["tool '", tool, "' is denied"]),
}] if {
	pattern := lib.first(rule.denied, tool)
} else := []

_tool_not_allowed(rule, i, tool) := [{
	"condition": concat("", [lib.index("tool_names", i), " = ", tool, " matches none of allowed_tools ", rule.allowed_list]),
	"reason": concat("", ["tool '", tool, "' is not allowed"]),
}] if {
	_not_allowed(rule.allowed, tool)
} else := []

# APPROVAL_REQUIRED: each tool matching one of `tools`.
approval_hits(rule) := [{
	"condition": concat("", [lib.index("tool_names", i), " = ", tool, " matches ", pattern]),
	"reason": concat("", ["tool '", tool, "' requires approval"]),
} |
	some i, tool in lib.tool_names
	lib.matches(rule.tools, tool)
	pattern := lib.first(rule.tools, tool)
]

# MODEL_RESTRICTION: calls without a model are not checked.
model_hits(rule) := array.concat(_model_denied(rule, model), _model_not_allowed(rule, model)) if {
	model := lib.model_id
	model != ""
	_model_offends(rule, model)
} else := []

_model_offends(rule, model) if lib.matches(rule.denied, model)

_model_offends(rule, model) if _not_allowed(rule.allowed, model)

_model_denied(rule, model) := [{
	"condition": concat("", ["model_id = ", model, " matches ", pattern]),
	"reason": concat("", ["model '", model, "' is denied"]),
}] if {
	pattern := lib.first(rule.denied, model)
} else := []

_model_not_allowed(rule, model) := [{
	"condition": concat("", ["model_id = ", model, " matches none of allowed_models ", rule.allowed_list]),
	"reason": concat("", ["model '", model, "' is not allowed (allowed: ", rule.allowed_join, ")"]),
}] if {
	_not_allowed(rule.allowed, model)
} else := []

# CONTENT_FILTER: one prepared scan per (field, pattern). Reasons name the
# pattern, never the text. An invalid pattern never matches (regex.match is
# undefined for it, in OPA and in wasm).
content_hits(rule) := [scan.hit | some scan in rule.scans; _scan_matches(scan)]

# A literal pattern (finite language, see PreparedContentScan.exact): decided
# with contains() alone.
_scan_matches(scan) if {
	_exact(scan)
	t := _scanned(scan)
	some literal in scan.exact
	contains(t, literal)
}

_scan_matches(scan) if {
	not _exact(scan)
	_may_match(scan)
	regex.match(scan.regex, lib.text(scan.field))
}

_exact(scan) if {
	scan.exact
	_shortcuts(scan)
}

_shortcuts(scan) if not scan.fold

_shortcuts(scan) if {
	scan.fold
	not lib.exotic(scan.field)
}

# Necessary conditions, checked before the (expensive) regex.match.
_may_match(scan) if not _shortcuts(scan)

_may_match(scan) if {
	_shortcuts(scan)
	t := _scanned(scan)
	every literal in scan.need {
		contains(t, literal)
	}
	every chars in scan.need_char {
		_contains_any(t, chars)
	}
}

_contains_any(t, chars) if {
	some c in chars
	contains(t, c)
}

_scanned(scan) := lib.folded(scan.field) if scan.fold

else := lib.text(scan.field)

# COST_CONTROL: a numeric estimate strictly above the limit. Numbers are echoed
# with json.marshal (the limit pre-rendered the same way).
cost_hits(rule) := [{
	"condition": concat("", ["estimated_cost_usd = ", cost, " > max_cost_per_call_usd = ", rule.max_text]),
	"reason": concat("", ["estimated cost $", cost, " exceeds the per-call limit $", rule.max_text]),
}] if {
	is_number(lib.cost)
	lib.cost > rule.max
	cost := json.marshal(lib.cost)
} else := []

# RBAC: violations (missing allowed role, denied role held) on a governed
# call; the gate's matches are listed first in matched_conditions.
rbac_hits(rule) := array.concat(gate, violations) if {
	violations := array.concat(_missing_role(rule), _denied_roles(rule))
	count(violations) > 0
	gate := array.concat(_tool_gate(rule), _model_gate(rule))
} else := []

# The gates are undefined when the rule does not govern this call. Gate hits
# carry a condition but no reason: they explain the match without being a
# violation themselves.
_tool_gate(rule) := [] if rule.tools == null

_tool_gate(rule) := conditions if {
	rule.tools != null
	conditions := [{"condition": concat("", [lib.index("tool_names", i), " = ", tool, " matches ", pattern])} |
		some i, tool in lib.tool_names
		pattern := lib.first(rule.tools, tool)
	]
	count(conditions) > 0
}

_model_gate(rule) := [] if rule.models == null

_model_gate(rule) := [{"condition": concat("", ["model_id = ", lib.model_id, " matches ", pattern])}] if {
	rule.models != null
	pattern := lib.first(rule.models, lib.model_id)
}

_missing_role(rule) := [{
	"condition": concat("", ["user_roles ", lib.list(lib.user_roles), " contain none of allowed_roles ", rule.allowed_list]),
	"reason": concat("", [_who, " holds none of the roles ", rule.allowed_list]),
}] if {
	rule.allowed != null
	not _holds_any(rule.allowed)
} else := []

_holds_any(allowed) if {
	some role in lib.user_roles
	allowed[role]
}

_denied_roles(rule) := [{
	"condition": concat("", [lib.index("user_roles", i), " = ", role, " is in denied_roles"]),
	"reason": concat("", ["role '", role, "' is denied"]),
} |
	rule.has_denied
	some i, role in lib.user_roles
	rule.denied[role]
]

_who := "the caller" if lib.user_id == ""

else := concat("", ["user '", lib.user_id, "'"])
