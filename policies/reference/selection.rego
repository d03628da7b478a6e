# Which of the tenant's policies an evaluation covers, and in which order.
#
# - input.policy_ids non-empty: those policies, in input order, duplicates
#   dropped, whatever their status (evaluating a DRAFT explicitly is how
#   drafts are dry-run). Ids the tenant does not have are skipped silently:
#   the caller checks existence before evaluating.
# - otherwise: every ACTIVE policy, by priority (descending) then id.
package fulcrum.reference.selection

import data.fulcrum.reference.lib

policies := data.policies if is_object(data.policies)

else := {}

_requested := lib.strings(input.policy_ids) if is_array(input.policy_ids)

else := []

policy_ids := _named if count(_requested) > 0

else := _active

_named := [id |
	some i, id in _requested
	is_object(policies[id])
	not id in array.slice(_requested, 0, i)
]

# Sorting [-priority, id] pairs gives priority descending, then id ascending,
# identically in `opa eval` and in wasm (sets would iterate differently).
_active := [pair[1] | some pair in sort([[0 - lib.number(object.get(p, "priority", 0), 0), id] |
	some id, p in policies
	is_object(p)
	p.status == "ACTIVE"
])]
