# Entrypoint: fulcrum/governance/decision.
#
# One compiled bundle serves every tenant: all behaviour comes from `data`
# (the tenant's policies, prepared by core/policy/prepare-tenant-data.ts and
# loaded with setData) and `input` (the request). The output is built only
# from arrays iterated in order, so `opa eval` and the wasm runtime produce
# identical JSON.
#
# The output is deliberately minimal (opa-wasm serialises it as JSON on every
# call, ~12 ns per byte): the selected policies, each one's verdict and the
# matched rules' per-request strings. Everything derivable from the prepared
# data (names, versions, severities, actions, messages, the flattened
# top-level lists) is rendered by expandDecision() (core/policy/expand-decision.ts).
#
#   {"results": [...], "dry_run": true?}   dry_run only for a request dry run
#   {"tenant": "<context tenant>"}        the context names another tenant
package fulcrum.governance

import data.fulcrum.governance.enforcement
import data.fulcrum.governance.lib

# Which policies: the named ones (input order, duplicates dropped, whatever
# their status, unknown ids skipped), else every ACTIVE policy in the
# prepared order (priority desc, then id).
_requested := input.policy_ids if is_array(input.policy_ids)

else := []

policy_ids := [id |
	some i, id in _requested
	data.policies[id]
	not id in array.slice(_requested, 0, i)
] if count(_requested) > 0

else := data.active_policy_ids

request_dry_run if input.dry_run == true

else := false

results := [enforcement.result(data.policies[id], request_dry_run) | some id in policy_ids]

decision := {"tenant": lib.tenant_id} if {
	tenant_mismatch
} else := {"results": results, "dry_run": true} if {
	request_dry_run
} else := {"results": results}

# Defence in depth: a context naming another tenant than the configuration
# loaded into this instance means the caller mixed tenants up. Fail closed.
tenant_mismatch if {
	data.tenant_id != ""
	lib.tenant_id != ""
	lib.tenant_id != data.tenant_id
}
