# The evaluation context, normalised once per evaluation.
#
# Rule families read `ctx` (never `input` directly) so that they are pure
# functions of (rule, ctx): easy to unit test and impossible to break with a
# missing or mistyped input field. Missing strings become "", missing lists
# become [], a missing or non-numeric cost becomes null (never matches).
package fulcrum.reference.context

import data.fulcrum.reference.lib

_raw := input.context if is_object(input.context)

else := {}

ctx := {
	"tenant_id": lib.str(object.get(_raw, "tenant_id", "")),
	"workflow_id": lib.str(object.get(_raw, "workflow_id", "")),
	"envelope_id": lib.str(object.get(_raw, "envelope_id", "")),
	"user_id": lib.str(object.get(_raw, "user_id", "")),
	"user_roles": lib.strings(object.get(_raw, "user_roles", [])),
	"phase": lib.str(object.get(_raw, "phase", "")),
	"model_id": lib.str(object.get(_raw, "model_id", "")),
	"tool_names": lib.strings(object.get(_raw, "tool_names", [])),
	"input_text": lib.str(object.get(_raw, "input_text", "")),
	"output_text": lib.str(object.get(_raw, "output_text", "")),
	"estimated_cost_usd": _cost,
	"action": lib.str(object.get(_raw, "action", "")),
}

_cost := c if {
	c := _raw.estimated_cost_usd
	is_number(c)
} else := null

# request_dry_run: the caller asked for a dry run of every policy.
request_dry_run if input.dry_run == true
