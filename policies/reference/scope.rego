# Policy scope and rule phases: whether a policy / rule applies to a context
# at all. An empty (or missing) list means "no restriction".
#
# A context with phase "" (unspecified) is subject to every phase-scoped
# policy and rule: we do not know the phase of a call that did not say, so
# every phase restriction is treated as matching (fail closed: omitting the
# phase must not skip a phase-scoped DENY). A context with a phase is subject
# only to the policies and rules restricted to it (or not restricted).
package fulcrum.reference.scope

import data.fulcrum.reference.lib

dimensions := ["workflow_ids", "phases", "roles", "model_ids", "tool_names"]

# misses(policy, ctx): the scope dimensions the context falls outside of.
misses(policy, ctx) := [d | some d in dimensions; not _allows(_scope(policy), d, ctx)]

_scope(policy) := policy.scope if is_object(policy.scope)

else := {}

_allows(scope, dimension, _) if count(lib.strings(object.get(scope, dimension, []))) == 0

_allows(scope, "workflow_ids", ctx) if ctx.workflow_id in lib.strings(scope.workflow_ids)

_allows(_, "phases", ctx) if ctx.phase == ""

_allows(scope, "phases", ctx) if ctx.phase in lib.strings(scope.phases)

# Roles: the user must hold at least one of the listed roles.
_allows(scope, "roles", ctx) if {
	some role in ctx.user_roles
	role in lib.strings(scope.roles)
}

# model_ids are globs, matched against the context's model.
_allows(scope, "model_ids", ctx) if lib.glob_any(lib.strings(scope.model_ids), ctx.model_id)

# tool_names are globs; one matching tool of the call is enough.
_allows(scope, "tool_names", ctx) if {
	patterns := lib.strings(scope.tool_names)
	some tool in ctx.tool_names
	lib.glob_any(patterns, tool)
}

# rule_applies(rule, ctx): the rule is enabled (a missing `enabled` means
# enabled) and its phases, if any, include the context's phase; an
# unspecified phase ("") is inside every phase restriction.
rule_applies(rule, ctx) if {
	not rule.enabled == false
	_phase_ok(lib.strings(object.get(rule, "phases", [])), ctx.phase)
}

_phase_ok(phases, _) if count(phases) == 0

_phase_ok(_, "")

_phase_ok(phases, phase) if phase in phases
