# MODEL_RESTRICTION: which models a call may use.
#
#   allowed_models: globs; if non-empty, a model matching none is a violation
#   denied_models:  globs; a model matching any is a violation
#
# Calls without a model (model_id "", e.g. a tool call) are not restricted:
# there is nothing to check, and flagging them would deny every tool call.
package fulcrum.reference.models

import data.fulcrum.reference.lib

hits(rule, ctx) := array.concat(_denied(rule, ctx.model_id), _not_allowed(rule, ctx.model_id)) if ctx.model_id != ""

else := []

_denied(rule, model) := [{
	"condition": concat("", ["model_id = ", model, " matches ", pattern]),
	"reason": concat("", ["model '", model, "' is denied"]),
}] if {
	pattern := lib.first_glob(lib.strings(object.get(rule, "denied_models", [])), model)
} else := []

_not_allowed(rule, model) := [{
	"condition": concat("", ["model_id = ", model, " matches none of allowed_models ", lib.list(allowed)]),
	"reason": concat("", ["model '", model, "' is not allowed (allowed: ", concat(", ", allowed), ")"]),
}] if {
	allowed := lib.strings(object.get(rule, "allowed_models", []))
	count(allowed) > 0
	not lib.glob_any(allowed, model)
} else := []
