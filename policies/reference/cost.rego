# COST_CONTROL: a ceiling on the estimated cost of one call.
#
#   max_cost_per_call_usd: number; a call estimated above it is a violation
#
# A context without a numeric estimate is not checked (the budget service,
# not this policy, accounts for actual spend). Numbers are echoed with
# json.marshal, which reproduces the JSON literal identically in OPA and wasm.
package fulcrum.reference.cost

hits(rule, ctx) := [{
	"condition": concat("", ["estimated_cost_usd = ", cost, " > max_cost_per_call_usd = ", limit]),
	"reason": concat("", ["estimated cost $", cost, " exceeds the per-call limit $", limit]),
}] if {
	max := rule.max_cost_per_call_usd
	is_number(max)
	is_number(ctx.estimated_cost_usd)
	ctx.estimated_cost_usd > max
	cost := json.marshal(ctx.estimated_cost_usd)
	limit := json.marshal(max)
} else := []
