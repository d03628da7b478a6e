# Entrypoint: fulcrum/governance/decision.
#
# One compiled bundle serves every tenant: all behaviour comes from `data`
# (the tenant's policies, loaded with setData) and `input` (the request).
# The output is built only from arrays iterated in order and from sorted
# keys, so `opa eval` and the wasm runtime produce identical JSON.
package fulcrum.governance

import data.fulcrum.governance.context.ctx
import data.fulcrum.governance.context.request_dry_run
import data.fulcrum.governance.enforcement
import data.fulcrum.governance.selection

results := [enforcement.result(id, selection.policies[id], ctx, _request_dry_run) | some id in selection.policy_ids]

_request_dry_run if request_dry_run

else := false

# Only enforced (non-dry-run) results decide; a dry-run result is always ALLOW.
decision := {
	"decision": enforcement.strongest([r.decision | some r in results]),
	"would_decide": enforcement.strongest([r.would_decide | some r in results]),
	"results": results,
	"matched_rules": [object.union(m, {"policy_id": r.policy_id}) | some r in results; some m in r.matched_rules],
	"reasons": [_reason(r, m) | some r in results; some m in r.matched_rules],
	"actions": [object.union(a, {"policy_id": r.policy_id}) | some r in results; some a in r.actions],
} if {
	not tenant_mismatch
} else := {
	"decision": "DENY",
	"would_decide": "DENY",
	"results": [],
	"matched_rules": [],
	"reasons": [_mismatch_reason],
	"actions": [{
		"type": "DENY",
		"policy_id": "",
		"rule_id": "",
		"message": _mismatch_reason,
		"severity": "CRITICAL",
		"terminal": true,
	}],
}

_reason(r, m) := concat("", [_prefix(r.dry_run), m.reason, " (rule ", m.rule_id, " of policy ", r.policy_id, ")"])

_prefix(true) := "dry run: "

_prefix(false) := ""

# Defence in depth: a context naming another tenant than the configuration
# loaded into this instance means the caller mixed tenants up. Fail closed.
tenant_mismatch if {
	is_string(data.tenant_id)
	data.tenant_id != ""
	ctx.tenant_id != ""
	ctx.tenant_id != data.tenant_id
}

_mismatch_reason := concat("", [
	"context tenant '", ctx.tenant_id,
	"' does not match the loaded tenant configuration '", data.tenant_id, "'",
])
