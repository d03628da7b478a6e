/**
 * The fixed wrapper module compiled with every tenant policy. It reads the
 * tenant module's `deny`, `require_approval`, `warn` and `audit` (each
 * optional) and returns them as one document at {@link POLICY_ENTRYPOINT}:
 * `{"deny": [...], "require_approval": [...], "warn": [...], "audit": [...]}`
 * (core/policy-bundle/published-policy.ts `VerdictSets`).
 *
 * Normalisation (at evaluation time; nothing here can fail):
 * - a missing set is `[]`; a set or array is read element by element; any
 *   other value (`deny := true`) is one element;
 * - a string element is `{"message": s}`; an object with a string `message`
 *   keeps `message` and those of `rule_id`, `rule_name` (strings), `rule_type`
 *   (a RuleType name), `severity` (INFO..CRITICAL) and `priority` (a number)
 *   that are well-formed, dropping the rest;
 * - any other element (a number, an object without a string message, ...)
 *   still counts, fail closed, as `{"message": "malformed element: <json>"}`;
 * - each list is sorted by priority (desc, missing = 0), then by value, so the
 *   answer never depends on set iteration order.
 */
export { POLICY_ENTRYPOINT, TENANT_PACKAGE } from "../../../core/policy-bundle/published-policy.js";

/** File names inside the build directory (they are recorded in the bundle). */
export const TENANT_FILE = "policy.rego";
export const ENTRY_FILE = "fulcrum_entry.rego";

export const ENTRY_MODULE = `package fulcrum.entry

_severities := {"INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

_rule_types := {
	"RBAC", "CONTENT_FILTER", "TOOL_ALLOWLIST", "MODEL_RESTRICTION", "RATE_LIMIT",
	"COST_CONTROL", "CUSTOM", "TOOL_RESTRICTION", "APPROVAL_REQUIRED",
}

default _deny := []

_deny := data.fulcrum.policy.deny

default _require_approval := []

_require_approval := data.fulcrum.policy.require_approval

default _warn := []

_warn := data.fulcrum.policy.warn

default _audit := []

_audit := data.fulcrum.policy.audit

result := {
	"deny": _normalise(_deny),
	"require_approval": _normalise(_require_approval),
	"warn": _normalise(_warn),
	"audit": _normalise(_audit),
}

_elements(x) := x if is_set(x)

else := x if is_array(x)

else := [x]

_normalise(x) := [pair[1] | some pair in sort({_keyed(_item(e)) | some e in _elements(x)})]

_keyed(item) := [0 - object.get(item, "priority", 0), item]

_item(e) := {"message": e} if is_string(e)

else := object.union({"message": e.message}, _optional(e)) if {
	is_object(e)
	is_string(e.message)
}

else := {"message": concat("", ["malformed element: ", json.marshal(e)])}

_optional(e) := {k: v |
	some k in ["rule_id", "rule_name", "rule_type", "severity", "priority"]
	v := e[k]
	_valid(k, v)
}

_valid("rule_id", v) if is_string(v)

_valid("rule_name", v) if is_string(v)

_valid("rule_type", v) if v in _rule_types

_valid("severity", v) if v in _severities

_valid("priority", v) if is_number(v)
`;
