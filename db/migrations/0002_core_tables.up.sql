-- The control plane's tables, their row-level security and the application role's grants.
--
-- Every table except `tenants` carries `tenant_id` and is isolated by the policy
-- `tenant_isolation`: a row is visible and writable only while the session's
-- `fulcrum.current_tenant` (set by db/tenant-context.ts, transaction-local) names its
-- tenant. An unset or empty setting matches nothing (NULLIF → NULL → no row), so a query
-- outside a tenant context sees no rows instead of failing. FORCE applies the policy to
-- the table owner as well (superusers and BYPASSRLS roles still bypass it: that is the
-- admin path).
--
-- References between tenant tables are composite, (tenant_id, x) → (tenant_id, id), so a
-- row can never point at another tenant's row: foreign-key checks bypass row-level
-- security, so a plain `x → id` would accept (and so reveal the existence of) a foreign id.

CREATE TABLE tenants (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  -- Stored lower-cased, so the unique constraint is case-insensitive.
  email text NOT NULL CHECK (email = lower(email) AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'
    AND length(email) <= 320),
  display_name text NOT NULL DEFAULT '',
  role text NOT NULL CHECK (role IN ('admin', 'policy_author', 'viewer')),
  disabled_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_tenant_id_id_key UNIQUE (tenant_id, id),
  CONSTRAINT users_tenant_id_email_key UNIQUE (tenant_id, email)
);

-- The secret itself is never stored: only its SHA-256 (hex) and a visible prefix.
CREATE TABLE api_keys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  prefix text NOT NULL CHECK (length(prefix) BETWEEN 4 AND 32),
  key_hash text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
  scopes text[] NOT NULL CHECK (cardinality(scopes) >= 1
    AND scopes <@ ARRAY['check', 'manage']::text[]),
  created_by uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  CONSTRAINT api_keys_created_by_fkey FOREIGN KEY (tenant_id, created_by)
    REFERENCES users (tenant_id, id)
);
CREATE INDEX api_keys_tenant_id_created_at_idx ON api_keys (tenant_id, created_at);

CREATE TABLE policies (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description text NOT NULL DEFAULT '',
  tags text[] NOT NULL DEFAULT '{}',
  status text NOT NULL DEFAULT 'DRAFT'
    CHECK (status IN ('DRAFT', 'ACTIVE', 'INACTIVE', 'ARCHIVED')),
  enforcement text NOT NULL DEFAULT 'BLOCK'
    CHECK (enforcement IN ('AUDIT', 'WARN', 'BLOCK', 'TERMINATE')),
  priority integer NOT NULL DEFAULT 0,
  scope jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(scope) = 'object'),
  -- The version number of the active policy_versions row (NULL: none active yet).
  active_version integer CHECK (active_version >= 1),
  effective_at timestamptz,
  expires_at timestamptz,
  created_by uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT policies_tenant_id_id_key UNIQUE (tenant_id, id),
  CONSTRAINT policies_tenant_id_name_key UNIQUE (tenant_id, name),
  CONSTRAINT policies_created_by_fkey FOREIGN KEY (tenant_id, created_by)
    REFERENCES users (tenant_id, id),
  CONSTRAINT policies_effective_window_check
    CHECK (expires_at IS NULL OR effective_at IS NULL OR expires_at > effective_at)
);
CREATE INDEX policies_tenant_id_status_idx ON policies (tenant_id, status);

-- Immutable (append-only: the application role may not UPDATE or DELETE).
CREATE TABLE policy_versions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  policy_id uuid NOT NULL,
  version integer NOT NULL CHECK (version >= 1),
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  source_kind text NOT NULL CHECK (source_kind IN ('rego', 'rules')),
  -- The Rego module (written, or generated from `rules`); at most 256 KiB.
  rego_source text NOT NULL CHECK (octet_length(rego_source) <= 262144),
  rules jsonb CHECK (rules IS NULL OR jsonb_typeof(rules) = 'array'),
  compile_status text NOT NULL CHECK (compile_status IN ('COMPILED', 'FAILED')),
  compile_errors jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(compile_errors) = 'array'),
  wasm_sha256 text CHECK (wasm_sha256 ~ '^[0-9a-f]{64}$'),
  created_by uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT policy_versions_tenant_id_policy_id_version_key UNIQUE (tenant_id, policy_id, version),
  CONSTRAINT policy_versions_policy_id_fkey FOREIGN KEY (tenant_id, policy_id)
    REFERENCES policies (tenant_id, id),
  CONSTRAINT policy_versions_created_by_fkey FOREIGN KEY (tenant_id, created_by)
    REFERENCES users (tenant_id, id),
  CONSTRAINT policy_versions_source_kind_rules_check CHECK ((source_kind = 'rules') = (rules IS NOT NULL)),
  CONSTRAINT policy_versions_compiled_wasm_check
    CHECK ((compile_status = 'COMPILED') = (wasm_sha256 IS NOT NULL))
);

CREATE TABLE budgets (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description text NOT NULL DEFAULT '',
  tags text[] NOT NULL DEFAULT '{}',
  workflow_id text,
  period text NOT NULL CHECK (period IN
    ('HOURLY', 'DAILY', 'WEEKLY', 'MONTHLY', 'QUARTERLY', 'YEARLY', 'CUSTOM', 'INFINITE')),
  period_seconds integer CHECK (period_seconds > 0),
  max_tokens bigint CHECK (max_tokens >= 0),
  max_input_tokens bigint CHECK (max_input_tokens >= 0),
  max_output_tokens bigint CHECK (max_output_tokens >= 0),
  max_cost_usd numeric(18, 6) CHECK (max_cost_usd >= 0),
  max_llm_calls bigint CHECK (max_llm_calls >= 0),
  max_tool_calls bigint CHECK (max_tool_calls >= 0),
  max_execution_seconds integer CHECK (max_execution_seconds > 0),
  -- [{ "percent": 80, "notified": false, "notified_at": null }, …]
  thresholds jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(thresholds) = 'array'),
  current_spend_usd numeric(18, 6) NOT NULL DEFAULT 0 CHECK (current_spend_usd >= 0),
  current_tokens bigint NOT NULL DEFAULT 0 CHECK (current_tokens >= 0),
  status text NOT NULL DEFAULT 'OK'
    CHECK (status IN ('OK', 'WARNING', 'CRITICAL', 'EXCEEDED', 'SUSPENDED')),
  reset_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT budgets_tenant_id_id_key UNIQUE (tenant_id, id),
  CONSTRAINT budgets_tenant_id_name_key UNIQUE (tenant_id, name),
  CONSTRAINT budgets_custom_period_check
    CHECK ((period = 'CUSTOM') = (period_seconds IS NOT NULL))
);
CREATE INDEX budgets_tenant_id_workflow_id_idx ON budgets (tenant_id, workflow_id);

CREATE TABLE envelopes (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  workflow_id text NOT NULL CHECK (length(workflow_id) BETWEEN 1 AND 200),
  execution_id text NOT NULL CHECK (length(execution_id) BETWEEN 1 AND 200),
  budget_id uuid,
  parent_envelope_id uuid,
  framework text NOT NULL DEFAULT 'CUSTOM' CHECK (framework ~ '^[A-Z][A-Z0-9_]{0,39}$'),
  status text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'AUTHORIZED', 'RUNNING',
    'PAUSED', 'COMPLETED', 'FAILED', 'TERMINATED', 'BUDGET_EXCEEDED', 'POLICY_VIOLATION',
    'TIMEOUT')),
  status_reason text,
  -- token budget, cost limit, timeout, allowed models/tools, max calls, compliance tags
  governance jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(governance) = 'object'),
  cost_summary jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(cost_summary) = 'object'),
  metadata jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  trace_context jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(trace_context) = 'object'),
  started_at timestamptz,
  completed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT envelopes_tenant_id_id_key UNIQUE (tenant_id, id),
  CONSTRAINT envelopes_tenant_id_execution_id_key UNIQUE (tenant_id, execution_id),
  CONSTRAINT envelopes_budget_id_fkey FOREIGN KEY (tenant_id, budget_id)
    REFERENCES budgets (tenant_id, id),
  CONSTRAINT envelopes_parent_envelope_id_fkey FOREIGN KEY (tenant_id, parent_envelope_id)
    REFERENCES envelopes (tenant_id, id),
  CONSTRAINT envelopes_parent_not_self_check CHECK (parent_envelope_id <> id)
);
CREATE INDEX envelopes_tenant_id_workflow_id_created_at_idx
  ON envelopes (tenant_id, workflow_id, created_at);
CREATE INDEX envelopes_tenant_id_parent_envelope_id_idx
  ON envelopes (tenant_id, parent_envelope_id) WHERE parent_envelope_id IS NOT NULL;
CREATE INDEX envelopes_tenant_id_budget_id_idx
  ON envelopes (tenant_id, budget_id) WHERE budget_id IS NOT NULL;

-- The audit trail of management changes (who, what, on what, details such as version
-- hashes). Append-only: the application role may not UPDATE or DELETE.
CREATE TABLE events (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  actor_type text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system')),
  actor_id text,
  action text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{0,99}$'),
  target_type text NOT NULL CHECK (length(target_type) BETWEEN 1 AND 100),
  target_id text,
  details jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
  occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_tenant_id_occurred_at_idx ON events (tenant_id, occurred_at);
CREATE INDEX events_tenant_id_target_idx ON events (tenant_id, target_type, target_id);

CREATE TABLE cost_events (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  envelope_id uuid,
  budget_id uuid,
  workflow_id text,
  model_id text,
  input_tokens bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
  output_tokens bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
  cost_usd numeric(18, 6) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
  llm_calls integer NOT NULL DEFAULT 0 CHECK (llm_calls >= 0),
  tool_calls integer NOT NULL DEFAULT 0 CHECK (tool_calls >= 0),
  -- Retried publishes carry the same key and are stored once.
  dedupe_key text,
  occurred_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT cost_events_tenant_id_dedupe_key_key UNIQUE (tenant_id, dedupe_key),
  CONSTRAINT cost_events_envelope_id_fkey FOREIGN KEY (tenant_id, envelope_id)
    REFERENCES envelopes (tenant_id, id),
  CONSTRAINT cost_events_budget_id_fkey FOREIGN KEY (tenant_id, budget_id)
    REFERENCES budgets (tenant_id, id)
);
CREATE INDEX cost_events_tenant_id_occurred_at_idx ON cost_events (tenant_id, occurred_at);
CREATE INDEX cost_events_tenant_id_envelope_id_idx
  ON cost_events (tenant_id, envelope_id) WHERE envelope_id IS NOT NULL;
CREATE INDEX cost_events_tenant_id_workflow_id_occurred_at_idx
  ON cost_events (tenant_id, workflow_id, occurred_at);

CREATE TABLE approvals (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  envelope_id uuid,
  policy_id uuid,
  workflow_id text,
  action_name text NOT NULL CHECK (length(action_name) BETWEEN 1 AND 200),
  action_arguments jsonb NOT NULL DEFAULT '{}',
  reason text,
  status text NOT NULL DEFAULT 'PENDING'
    CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED', 'EXPIRED', 'CANCELLED')),
  reviewer_id uuid,
  review_note text,
  reviewed_at timestamptz,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT approvals_envelope_id_fkey FOREIGN KEY (tenant_id, envelope_id)
    REFERENCES envelopes (tenant_id, id),
  CONSTRAINT approvals_policy_id_fkey FOREIGN KEY (tenant_id, policy_id)
    REFERENCES policies (tenant_id, id),
  CONSTRAINT approvals_reviewer_id_fkey FOREIGN KEY (tenant_id, reviewer_id)
    REFERENCES users (tenant_id, id),
  CONSTRAINT approvals_reviewed_check
    CHECK ((status IN ('APPROVED', 'REJECTED')) = (reviewed_at IS NOT NULL)),
  CONSTRAINT approvals_expires_after_created_check CHECK (expires_at > created_at)
);
CREATE INDEX approvals_tenant_id_status_expires_at_idx ON approvals (tenant_id, status, expires_at);
CREATE INDEX approvals_tenant_id_envelope_id_idx
  ON approvals (tenant_id, envelope_id) WHERE envelope_id IS NOT NULL;

-- Row-level security on every tenant table.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['users', 'api_keys', 'policies', 'policy_versions', 'budgets',
    'envelopes', 'events', 'cost_events', 'approvals']
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

-- Grants. 0001's default privileges already give fulcrum_app SELECT/INSERT/UPDATE/DELETE on
-- tables created by the role that ran 0001; they are stated here too so the result does not
-- depend on which role runs this file, then narrowed:
-- - tenants: nothing at all (admin path only: a superuser / BYPASSRLS connection);
-- - policy_versions and events: append-only (SELECT, INSERT).
GRANT SELECT, INSERT, UPDATE, DELETE
  ON users, api_keys, policies, budgets, envelopes, cost_events, approvals TO fulcrum_app;
GRANT SELECT, INSERT ON policy_versions, events TO fulcrum_app;
REVOKE UPDATE, DELETE ON policy_versions, events FROM fulcrum_app;
REVOKE ALL ON tenants FROM fulcrum_app;
