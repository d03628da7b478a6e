# CONTENT_FILTER: blocked patterns in the prompt and/or the model output.
#
#   patterns:         RE2 regular expressions
#   case_insensitive: true prefixes every pattern with (?i)
#   fields:           which texts to scan; default ["input_text"]; the other
#                     supported field is "output_text" (unknown ones are skipped)
#
# Reasons name the pattern, never the matched text: the text may be the very
# secret or personal data the filter exists to keep out of logs.
# An invalid pattern never matches (both OPA and the wasm runtime treat the
# regex error as undefined); the management API should reject it on save.
package fulcrum.reference.content

import data.fulcrum.reference.lib

scannable_fields := {"input_text", "output_text"}

hits(rule, ctx) := [{
	"condition": concat("", [field, " matches /", pattern, "/", flags]),
	"reason": concat("", [field, " matches blocked pattern '", pattern, "'"]),
} |
	some field in fields
	field in scannable_fields
	some pattern in patterns
	regex.match(concat("", [prefix, pattern]), ctx[field])
] if {
	patterns := lib.strings(object.get(rule, "patterns", []))
	fields := _fields(rule)
	prefix := _prefix(rule)
	flags := _flags(rule)
}

_fields(rule) := fields if {
	fields := lib.strings(rule.fields)
	count(fields) > 0
} else := ["input_text"]

_prefix(rule) := "(?i)" if rule.case_insensitive == true

else := ""

_flags(rule) := "i" if rule.case_insensitive == true

else := ""
