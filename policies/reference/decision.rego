# Entrypoint: fulcrum/reference/decision (reference specification).
#
# The governance semantics written plainly over the RAW tenant configuration
# (`data.tenant_id`, `data.policies`, no preparation) and the request
# (`input`), producing the full decision document directly. Never compiled to
# wasm: it is the oracle the optimised library (policies/fulcrum/governance +
# core/policy) is checked against. See policies/reference/README.md.
package fulcrum.reference

import data.fulcrum.reference.context.ctx
import data.fulcrum.reference.context.request_dry_run
import data.fulcrum.reference.enforcement
import data.fulcrum.reference.selection

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
