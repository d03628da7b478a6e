# Rules: dispatch to the rule families and describe what matched.
#
# Every family exposes hits(rule, ctx): an array of {"condition", "reason"}
# objects, in a deterministic order, [] when the rule does not match. (RBAC
# adds reason-less hits naming the calls it governs.)
#
# A rule matches when it applies (enabled, phase) and its family reports at
# least one hit. RATE_LIMIT (enforced at the edge with Redis) and unknown
# types report no hits: they never match and never raise an error, so a
# tenant can hold rule types this bundle does not know yet.
package fulcrum.reference.rules

import data.fulcrum.reference.approvals
import data.fulcrum.reference.content
import data.fulcrum.reference.cost
import data.fulcrum.reference.lib
import data.fulcrum.reference.models
import data.fulcrum.reference.rbac
import data.fulcrum.reference.scope
import data.fulcrum.reference.tools

hits(rule, ctx) := models.hits(rule, ctx) if {
	rule.type == "MODEL_RESTRICTION"
} else := tools.hits(rule, ctx) if {
	rule.type == "TOOL_RESTRICTION"
} else := approvals.hits(rule, ctx) if {
	rule.type == "APPROVAL_REQUIRED"
} else := content.hits(rule, ctx) if {
	rule.type == "CONTENT_FILTER"
} else := cost.hits(rule, ctx) if {
	rule.type == "COST_CONTROL"
} else := rbac.hits(rule, ctx) if {
	rule.type == "RBAC"
} else := []

# Actions a rule may take. Anything else a tenant wrote (ALLOW, NOTIFY, a
# typo) is reported as AUDIT: visible, but never changes a verdict. A missing
# or empty action means the family's default.
rule_actions := {"DENY", "WARN", "REQUIRE_APPROVAL", "AUDIT"}

family_default_action := {"APPROVAL_REQUIRED": "REQUIRE_APPROVAL"}

action(rule) := rule.action if {
	rule.action in rule_actions
} else := "AUDIT" if {
	lib.str(object.get(rule, "action", "")) != ""
} else := object.get(family_default_action, lib.str(object.get(rule, "type", "")), "DENY")

severities := {"INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

default_severity := {"DENY": "HIGH", "REQUIRE_APPROVAL": "MEDIUM", "WARN": "LOW", "AUDIT": "INFO"}

severity(rule) := rule.severity if {
	rule.severity in severities
} else := default_severity[action(rule)]

# matched(policy, ctx): the policy's matching rules, highest priority first,
# then in the order they are listed. Sorting [-priority, index] pairs keeps
# the order identical in OPA and in wasm.
matched(policy, ctx) := [_describe(rule, pair[1], hs) |
	some pair in _order(policy, ctx)
	rule := policy.rules[pair[1]]
	hs := hits(rule, ctx)
	count(hs) > 0
]

_order(policy, ctx) := sort([[0 - lib.number(object.get(rule, "priority", 0), 0), i] |
	some i, rule in _rules(policy)
	is_object(rule)
	scope.rule_applies(rule, ctx)
])

_rules(policy) := policy.rules if is_array(policy.rules)

else := []

_describe(rule, i, hs) := {
	"rule_id": _id(rule, i),
	"rule_name": lib.str(object.get(rule, "name", "")),
	"rule_type": rule.type,
	"priority": lib.number(object.get(rule, "priority", 0), 0),
	"action": action(rule),
	"severity": severity(rule),
	"reason": _reason(rule, hs),
	"matched_conditions": [h.condition | some h in hs],
}

# Rules without an id are named by position so that reasons stay traceable.
_id(rule, i) := rule.id if {
	is_string(rule.id)
	rule.id != ""
} else := lib.index("rules", i)

# A rule's own message wins over the generated explanation.
_reason(rule, hs) := rule.message if {
	is_string(rule.message)
	rule.message != ""
} else := concat("; ", [h.reason | some h in hs])
