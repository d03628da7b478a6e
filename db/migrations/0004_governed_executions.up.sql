-- Governed executions (issue 6) on top of 0003:
--   1. budgets: envelope scope, hard limits, the counted period and every usage dimension;
--   2. cost_events: the reservation it settles, execution time, every budget it counted for;
--   3. envelopes: deadline_at;
--   4. model_prices: a tenant's own prices over the built-in table (core/budget/prices.ts);
--   5. approvals: what the edge records when a decision needs a reviewer;
--   6. webhooks and webhook_deliveries (notifications).
-- Money is numeric(18, 6) USD here; Redis keeps integer micro-USD (core/budget/).

-- 1. budgets ---------------------------------------------------------------------------------

-- envelope_id: a budget scoped to one envelope (and, through ancestry, its children). It
-- goes with the envelope: a budget of a deleted execution has nothing left to govern.
-- A budget is scoped to the tenant (neither), a workflow or an envelope, never both.
ALTER TABLE budgets ADD COLUMN envelope_id uuid;
ALTER TABLE budgets ADD CONSTRAINT budgets_envelope_id_fkey FOREIGN KEY (tenant_id, envelope_id)
  REFERENCES envelopes (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE budgets ADD CONSTRAINT budgets_scope_check
  CHECK (workflow_id IS NULL OR envelope_id IS NULL);
CREATE INDEX budgets_tenant_id_envelope_id_idx
  ON budgets (tenant_id, envelope_id) WHERE envelope_id IS NOT NULL;
-- hard_limit false: the budget is counted and its thresholds notify, but it never denies.
ALTER TABLE budgets ADD COLUMN hard_limit boolean NOT NULL DEFAULT true;
-- The API key (or user) that created the budget, as the audit trail names actors.
ALTER TABLE budgets ADD COLUMN created_by text;
-- The start of the period the current_* columns count. RecordUsage rolls a budget over
-- (zeroes the counters, clears the thresholds' notified flags) under the row lock when this
-- is older than the current window, so usage and notifications are per period.
ALTER TABLE budgets ADD COLUMN period_start timestamptz NOT NULL DEFAULT now();
ALTER TABLE budgets ADD COLUMN current_input_tokens bigint NOT NULL DEFAULT 0
  CHECK (current_input_tokens >= 0);
ALTER TABLE budgets ADD COLUMN current_output_tokens bigint NOT NULL DEFAULT 0
  CHECK (current_output_tokens >= 0);
ALTER TABLE budgets ADD COLUMN current_llm_calls bigint NOT NULL DEFAULT 0
  CHECK (current_llm_calls >= 0);
ALTER TABLE budgets ADD COLUMN current_tool_calls bigint NOT NULL DEFAULT 0
  CHECK (current_tool_calls >= 0);
ALTER TABLE budgets ADD COLUMN current_execution_ms bigint NOT NULL DEFAULT 0
  CHECK (current_execution_ms >= 0);

-- Deleting a budget keeps the history that counted against it (cost_events) and the
-- executions that used it (envelopes), which then have no budget. The column list keeps
-- tenant_id (NOT NULL, part of the composite key) as it is.
ALTER TABLE cost_events DROP CONSTRAINT cost_events_budget_id_fkey;
ALTER TABLE cost_events ADD CONSTRAINT cost_events_budget_id_fkey
  FOREIGN KEY (tenant_id, budget_id) REFERENCES budgets (tenant_id, id)
  ON DELETE SET NULL (budget_id);
ALTER TABLE envelopes DROP CONSTRAINT envelopes_budget_id_fkey;
ALTER TABLE envelopes ADD CONSTRAINT envelopes_budget_id_fkey
  FOREIGN KEY (tenant_id, budget_id) REFERENCES budgets (tenant_id, id)
  ON DELETE SET NULL (budget_id);

-- 2. cost_events -----------------------------------------------------------------------------

-- reservation_id: the edge reservation this usage settles (dedupe_key is then
-- `res:<reservation_id>`, so settling twice is refused by the unique key).
ALTER TABLE cost_events ADD COLUMN reservation_id text
  CHECK (length(reservation_id) BETWEEN 1 AND 200);
ALTER TABLE cost_events ADD COLUMN execution_ms bigint NOT NULL DEFAULT 0
  CHECK (execution_ms >= 0);
-- Every budget the event was counted against (no foreign key: an array cannot have one, and
-- the history outlives deleted budgets).
ALTER TABLE cost_events ADD COLUMN budget_ids uuid[] NOT NULL DEFAULT '{}';

-- 3. envelopes -------------------------------------------------------------------------------

-- started_at + the governance timeout, set when the envelope starts RUNNING; the edge denies
-- past it.
ALTER TABLE envelopes ADD COLUMN deadline_at timestamptz;

-- 4. model_prices ----------------------------------------------------------------------------

-- A tenant's price for a model, overriding the built-in default (USD per million tokens).
-- Keyed by (tenant, model); `id` is a surrogate so that, like every tenant table, a row can
-- be named by one uuid (the isolation tests and audit details rely on that).
CREATE TABLE model_prices (
  id uuid NOT NULL DEFAULT gen_random_uuid() CONSTRAINT model_prices_id_key UNIQUE,
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  model_id text NOT NULL CHECK (length(model_id) BETWEEN 1 AND 200),
  input_usd_per_million numeric(18, 6) NOT NULL CHECK (input_usd_per_million >= 0),
  output_usd_per_million numeric(18, 6) NOT NULL CHECK (output_usd_per_million >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, model_id)
);

-- 5. approvals -------------------------------------------------------------------------------

-- The edge creates an approval (in Redis, then the event processor inserts this row) bound
-- to the sha256 of the action's canonical arguments: an approved retry of the same arguments
-- is allowed once (consumed_at). reviewer is the reviewing key/user as the API names it
-- (reviewer_id stays for a user id).
ALTER TABLE approvals ADD COLUMN arguments_hash text CHECK (arguments_hash ~ '^[0-9a-f]{64}$');
ALTER TABLE approvals ADD COLUMN decision_id uuid;
ALTER TABLE approvals ADD COLUMN rule_id text;
-- The API key that asked (its id).
ALTER TABLE approvals ADD COLUMN requested_by text;
ALTER TABLE approvals ADD COLUMN reasons text[] NOT NULL DEFAULT '{}';
ALTER TABLE approvals ADD COLUMN context jsonb NOT NULL DEFAULT '{}'
  CONSTRAINT approvals_context_check CHECK (jsonb_typeof(context) = 'object');
ALTER TABLE approvals ADD COLUMN reviewer text;
ALTER TABLE approvals ADD COLUMN consumed_at timestamptz;
CREATE INDEX approvals_tenant_id_arguments_hash_idx ON approvals (tenant_id, arguments_hash);

-- 6. webhooks --------------------------------------------------------------------------------

-- secret: the HMAC key deliveries are signed with. It has to be readable in clear to sign,
-- so unlike API keys it is not hashed; row-level security keeps it to its tenant, and the
-- API shows it only once, at creation.
CREATE TABLE webhooks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  url text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
  -- Event type names (fulcrum.eventstore.v1.EventType without the prefix); empty: the defaults (budget warning + exceeded, approval requested; core/notifications/webhook-events.ts).
  event_types text[] NOT NULL DEFAULT '{}',
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
  secret text NOT NULL CHECK (length(secret) BETWEEN 16 AND 200),
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT webhooks_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX webhooks_tenant_id_created_at_idx ON webhooks (tenant_id, created_at);

-- One row per (webhook, event): the notifier upserts it on every attempt, so a redelivered
-- event never makes a second row.
CREATE TABLE webhook_deliveries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  webhook_id uuid NOT NULL,
  event_id uuid NOT NULL,
  event_type text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 100),
  status text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_status_code integer,
  last_error text,
  next_attempt_at timestamptz,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT webhook_deliveries_webhook_id_event_id_key UNIQUE (webhook_id, event_id),
  CONSTRAINT webhook_deliveries_webhook_id_fkey FOREIGN KEY (tenant_id, webhook_id)
    REFERENCES webhooks (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_tenant_id_webhook_id_created_at_idx
  ON webhook_deliveries (tenant_id, webhook_id, created_at);

-- Row-level security and grants on the new tables, as in 0002.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['model_prices', 'webhooks', 'webhook_deliveries']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format(
      'CREATE POLICY tenant_isolation ON %I FOR ALL '
      'USING (tenant_id = NULLIF(current_setting(''fulcrum.current_tenant'', true), '''')::uuid) '
      'WITH CHECK (tenant_id = NULLIF(current_setting(''fulcrum.current_tenant'', true), '''')::uuid)',
      t);
  END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON model_prices, webhooks, webhook_deliveries
  TO fulcrum_app;
