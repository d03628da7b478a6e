package fulcrum.reference.content_test

import data.fulcrum.reference.content

ctx := {"input_text": "my SSN is 123-45-6789, keep it SECRET", "output_text": "the password is hunter2"}

test_pattern_in_input if {
	content.hits({"patterns": ["\\d{3}-\\d{2}-\\d{4}"]}, ctx) == [{
		"condition": "input_text matches /\\d{3}-\\d{2}-\\d{4}/",
		"reason": "input_text matches blocked pattern '\\d{3}-\\d{2}-\\d{4}'",
	}]
}

test_case_sensitive_by_default if content.hits({"patterns": ["secret"]}, ctx) == []

test_case_insensitive if {
	content.hits({"patterns": ["secret"], "case_insensitive": true}, ctx) == [{
		"condition": "input_text matches /secret/i",
		"reason": "input_text matches blocked pattern 'secret'",
	}]
}

test_output_only_when_asked if {
	content.hits({"patterns": ["password"]}, ctx) == []
	count(content.hits({"patterns": ["password"], "fields": ["output_text"]}, ctx)) == 1
}

test_field_then_pattern_order if {
	hits := content.hits({"patterns": ["password", "SSN"], "fields": ["output_text", "input_text"]}, ctx)
	[h.condition | some h in hits] == ["output_text matches /password/", "input_text matches /SSN/"]
}

test_unknown_field_skipped if content.hits({"patterns": [".*"], "fields": ["attributes"]}, ctx) == []

test_invalid_pattern_never_matches if content.hits({"patterns": ["("]}, ctx) == []
