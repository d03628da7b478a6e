-- The audit trail: every event of every tenant, exactly once per event_id.
--
-- ReplacingMergeTree collapses rows with the same sorting key (tenant, time, id): a
-- redelivered event (the processor crashed before acking) is inserted again and
-- merged away; every read uses FINAL so a not-yet-merged duplicate is never seen.
-- event_time is the event's own time, so both copies share the key and partition.
CREATE TABLE IF NOT EXISTS events (
  tenant_id LowCardinality(String),
  event_time DateTime64(3, 'UTC'),
  event_id UUID,
  event_type LowCardinality(String),
  custom_type String,
  execution_id String,
  envelope_id String,
  workflow_id String,
  -- Set for POLICY_* events: ALLOW / DENY / WARN / REQUIRE_APPROVAL.
  decision LowCardinality(String),
  decision_id String,
  policy_id String,
  rule_id String,
  -- Set for LLM_CALL_* events.
  model_id LowCardinality(String),
  input_tokens UInt64,
  output_tokens UInt64,
  cost_usd Float64,
  trace_id String,
  span_id String,
  source LowCardinality(String),
  labels Map(String, String),
  -- Position in FULCRUM_EXECUTION_EVENTS and when JetStream stored it.
  stream_sequence UInt64,
  stored_at DateTime64(3, 'UTC'),
  inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
  -- The whole event as protobuf JSON: what the query API returns.
  event_json String CODEC(ZSTD(3)),
  INDEX events_execution_id_idx execution_id TYPE bloom_filter GRANULARITY 4,
  INDEX events_envelope_id_idx envelope_id TYPE bloom_filter GRANULARITY 4,
  INDEX events_workflow_id_idx workflow_id TYPE bloom_filter GRANULARITY 4,
  INDEX events_event_type_idx event_type TYPE set(64) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, event_time, event_id)
-- The runbook's retention: 90 days.
TTL toDateTime(event_time) + INTERVAL 90 DAY;
