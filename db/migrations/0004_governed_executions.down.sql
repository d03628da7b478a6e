-- Undoes 0004_governed_executions exactly (the grants and policies go with the tables).

DROP TABLE webhook_deliveries;
DROP TABLE webhooks;

DROP INDEX approvals_tenant_id_arguments_hash_idx;
ALTER TABLE approvals
  DROP COLUMN consumed_at,
  DROP COLUMN reviewer,
  DROP COLUMN context,
  DROP COLUMN reasons,
  DROP COLUMN requested_by,
  DROP COLUMN rule_id,
  DROP COLUMN decision_id,
  DROP COLUMN arguments_hash;

DROP TABLE model_prices;

ALTER TABLE envelopes DROP COLUMN deadline_at;

ALTER TABLE cost_events
  DROP COLUMN budget_ids,
  DROP COLUMN execution_ms,
  DROP COLUMN reservation_id;

-- 0002's references without an ON DELETE action (a referenced budget cannot be deleted).
ALTER TABLE envelopes DROP CONSTRAINT envelopes_budget_id_fkey;
ALTER TABLE envelopes ADD CONSTRAINT envelopes_budget_id_fkey
  FOREIGN KEY (tenant_id, budget_id) REFERENCES budgets (tenant_id, id);
ALTER TABLE cost_events DROP CONSTRAINT cost_events_budget_id_fkey;
ALTER TABLE cost_events ADD CONSTRAINT cost_events_budget_id_fkey
  FOREIGN KEY (tenant_id, budget_id) REFERENCES budgets (tenant_id, id);

DROP INDEX budgets_tenant_id_envelope_id_idx;
ALTER TABLE budgets
  DROP COLUMN current_execution_ms,
  DROP COLUMN current_tool_calls,
  DROP COLUMN current_llm_calls,
  DROP COLUMN current_output_tokens,
  DROP COLUMN current_input_tokens,
  DROP COLUMN period_start,
  DROP COLUMN created_by,
  DROP COLUMN hard_limit,
  DROP CONSTRAINT budgets_scope_check,
  DROP CONSTRAINT budgets_envelope_id_fkey,
  DROP COLUMN envelope_id;
