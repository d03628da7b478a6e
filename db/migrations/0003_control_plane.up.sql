-- What the management API needs on top of 0002:
--   1. api_keys.user_id: the user a key acts as (the user's role decides its permissions);
--   2. policies.revision (publish ordering), archived_at, metadata (Policy.metadata, not
--      versioned), and a name that is unique only among non-archived policies (deleting =
--      archiving frees the name);
--   3. policy_versions: the versioned definition, its change summary, the compiled wasm and
--      its entrypoint;
--   4. policy_activations: the append-only history of activations and rollbacks;
--   5. API-key authentication before the tenant is known: the role fulcrum_auth and the
--      SECURITY DEFINER function fulcrum_authenticate_api_key(text);
--   6. the platform role fulcrum_platform: fulcrum_app plus `tenants`, for TenantService.
-- The tables are empty before the first release; the backfills below only keep this file
-- valid on a database that has rows.

-- 1. api_keys.user_id ----------------------------------------------------------------------

-- Added nullable, backfilled, then made NOT NULL. A key made before 0003 acts as the user
-- who created it or, when it has no creator (a tenant's first key, made by the platform
-- operator), as the tenant's oldest admin. A key that still has nobody to act as makes the
-- migration fail loudly rather than leaving a key that acts as nobody.
ALTER TABLE api_keys ADD COLUMN user_id uuid;
UPDATE api_keys k SET user_id = COALESCE(k.created_by, (
  SELECT u.id FROM users u
  WHERE u.tenant_id = k.tenant_id AND u.role = 'admin'
  ORDER BY u.created_at, u.id LIMIT 1))
WHERE k.user_id IS NULL;
ALTER TABLE api_keys ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_user_id_fkey FOREIGN KEY (tenant_id, user_id)
  REFERENCES users (tenant_id, id);
CREATE INDEX api_keys_tenant_id_user_id_idx ON api_keys (tenant_id, user_id);

-- 2. policies --------------------------------------------------------------------------------

-- revision: incremented (under the row lock) by every change that affects what is published,
-- so the edge's Redis pointer can ignore a write older than the one it holds.
ALTER TABLE policies ADD COLUMN revision bigint NOT NULL DEFAULT 0 CHECK (revision >= 0);
ALTER TABLE policies ADD COLUMN archived_at timestamptz;
UPDATE policies SET archived_at = updated_at WHERE status = 'ARCHIVED' AND archived_at IS NULL;
ALTER TABLE policies ADD CONSTRAINT policies_archived_check
  CHECK ((status = 'ARCHIVED') = (archived_at IS NOT NULL));
-- metadata: the Policy's string map, not versioned (like name, description and tags).
ALTER TABLE policies ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'
  CONSTRAINT policies_metadata_check CHECK (jsonb_typeof(metadata) = 'object');
-- Deleting a policy archives it and frees its name: unique among non-archived policies only.
ALTER TABLE policies DROP CONSTRAINT policies_tenant_id_name_key;
CREATE UNIQUE INDEX policies_tenant_id_name_key ON policies (tenant_id, name)
  WHERE status <> 'ARCHIVED';

-- 3. policy_versions (still append-only for fulcrum_app) -------------------------------------

-- definition: the versioned fields of the Policy message as JSON (an object). Backfilled from
-- the version's own source for rows made before 0003.
ALTER TABLE policy_versions ADD COLUMN definition jsonb;
UPDATE policy_versions
  SET definition = jsonb_build_object('rego_source', rego_source)
    || CASE WHEN rules IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('rules', rules) END
  WHERE definition IS NULL;
ALTER TABLE policy_versions ALTER COLUMN definition SET NOT NULL;
ALTER TABLE policy_versions ADD CONSTRAINT policy_versions_definition_check
  CHECK (jsonb_typeof(definition) = 'object');
ALTER TABLE policy_versions ADD COLUMN change_summary text NOT NULL DEFAULT ''
  CHECK (length(change_summary) <= 4096);
-- The compiled module itself: present exactly when the version compiled, and wasm_sha256 is
-- its hash. A version marked compiled before 0003 has no stored module, and SQL cannot
-- compile one: it is marked FAILED with a note, so saving the policy again recompiles it
-- (what the edge already loaded from Redis keeps working meanwhile).
ALTER TABLE policy_versions ADD COLUMN wasm bytea;
UPDATE policy_versions
  SET compile_status = 'FAILED', wasm_sha256 = NULL,
    compile_errors = jsonb_build_array(jsonb_build_object('message',
      'compiled before the module was stored (migration 0003): save the policy again to recompile'))
  WHERE compile_status = 'COMPILED';
ALTER TABLE policy_versions ADD CONSTRAINT policy_versions_compiled_wasm_bytes_check
  CHECK ((compile_status = 'COMPILED') = (wasm IS NOT NULL));
ALTER TABLE policy_versions ADD CONSTRAINT policy_versions_wasm_sha256_matches_check
  CHECK (wasm IS NULL OR wasm_sha256 = encode(sha256(wasm), 'hex'));
-- The entrypoint of the module to evaluate (e.g. `fulcrum/tenant/decision`).
ALTER TABLE policy_versions ADD COLUMN entrypoint text
  CHECK (length(entrypoint) BETWEEN 1 AND 512);

-- 4. policy_activations ---------------------------------------------------------------------

-- Every activation and rollback of a policy version: who, when, from which version, why.
-- Append-only for the application role, like policy_versions and events.
CREATE TABLE policy_activations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  policy_id uuid NOT NULL,
  version integer NOT NULL CHECK (version >= 1),
  -- The version active before (NULL: none was).
  previous_version integer CHECK (previous_version >= 1),
  kind text NOT NULL CHECK (kind IN ('activate', 'rollback')),
  activated_by uuid,
  reason text NOT NULL DEFAULT '' CHECK (length(reason) <= 4096),
  occurred_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT policy_activations_version_fkey FOREIGN KEY (tenant_id, policy_id, version)
    REFERENCES policy_versions (tenant_id, policy_id, version),
  CONSTRAINT policy_activations_previous_version_fkey
    FOREIGN KEY (tenant_id, policy_id, previous_version)
    REFERENCES policy_versions (tenant_id, policy_id, version),
  CONSTRAINT policy_activations_activated_by_fkey FOREIGN KEY (tenant_id, activated_by)
    REFERENCES users (tenant_id, id)
);
CREATE INDEX policy_activations_tenant_id_policy_id_occurred_at_idx
  ON policy_activations (tenant_id, policy_id, occurred_at);

ALTER TABLE policy_activations ENABLE ROW LEVEL SECURITY;
ALTER TABLE policy_activations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON policy_activations FOR ALL
  USING (tenant_id = NULLIF(current_setting('fulcrum.current_tenant', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('fulcrum.current_tenant', true), '')::uuid);

-- As in 0002: stated explicitly (whatever role runs this file), then narrowed to append-only.
GRANT SELECT, INSERT ON policy_activations TO fulcrum_app;
REVOKE UPDATE, DELETE ON policy_activations FROM fulcrum_app;

-- 5. API-key authentication ----------------------------------------------------------------
--
-- A request carries only its API key; the tenant is what the key says. Finding the key by
-- its hash therefore happens before any tenant is set, and row-level security (rightly)
-- shows fulcrum_app nothing then. Rather than give the application a BYPASSRLS connection
-- (which would make every query of that connection cross-tenant), one narrow function does
-- that lookup: fulcrum_authenticate_api_key(hash) runs as the role fulcrum_auth, which may
-- read keys, users and tenants of every tenant and touch api_keys.last_used_at, nothing
-- else. Given a hash it returns the one matching usable key (tenant, user, scopes, role)
-- or no row: the caller learns nothing about other keys or tenants, and without the secret
-- it cannot produce the hash of a key. It is the only cross-tenant read fulcrum_app can make.
--
-- fulcrum_auth is NOLOGIN and no login role is made a member of it, so nothing can act as
-- it except this function (fulcrum_app cannot SET ROLE to it). Roles are cluster-wide: it
-- is created only when absent (another database of the cluster, or an operator, may have
-- made it), and its attributes are then enforced. The attributes are only altered when they
-- differ, so migrations of several databases at once do not update the same pg_authid row.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fulcrum_auth') THEN
    BEGIN
      CREATE ROLE fulcrum_auth NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION
        NOLOGIN;
    EXCEPTION
      -- A migration of another database on the same cluster created it meanwhile.
      WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'fulcrum_auth' AND (rolsuper OR rolbypassrls
      OR rolcreatedb OR rolcreaterole OR rolreplication OR rolcanlogin)) THEN
    ALTER ROLE fulcrum_auth NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION
      NOLOGIN;
  END IF;
  -- The application must not be able to become fulcrum_auth: that would make every key of
  -- every tenant readable to it. Refuse to go on rather than revoke an operator's grant.
  -- (fulcrum_platform, section 6, is checked there: it does not exist yet on a new cluster.)
  IF pg_has_role('fulcrum_app', 'fulcrum_auth', 'MEMBER') THEN
    RAISE EXCEPTION 'fulcrum_app is a member of fulcrum_auth; revoke that membership first';
  END IF;
END
$$;

-- Explicit, for clusters where PUBLIC's USAGE on public was revoked (as 0001 does for
-- fulcrum_app).
GRANT USAGE ON SCHEMA public TO fulcrum_auth;
GRANT SELECT ON api_keys, users, tenants TO fulcrum_auth;
GRANT UPDATE (last_used_at) ON api_keys TO fulcrum_auth;

-- RLS: fulcrum_auth sees every row of api_keys and users (the function filters), and may
-- update api_keys rows (its column grant limits that to last_used_at). tenants has no RLS
-- (0002: it is not granted to fulcrum_app at all), so the SELECT grant suffices there.
CREATE POLICY api_key_authentication ON api_keys FOR SELECT TO fulcrum_auth USING (true);
CREATE POLICY api_key_authentication_last_used ON api_keys FOR UPDATE TO fulcrum_auth
  USING (true) WITH CHECK (true);
CREATE POLICY api_key_authentication ON users FOR SELECT TO fulcrum_auth USING (true);

-- Returns the key's row only when the key is neither revoked nor expired, its user is not
-- disabled and its tenant is active; otherwise (unknown hash included) no row. The hash is
-- the lower-case hex SHA-256 of the secret (core/auth/api-key.ts). created_by is the user
-- who made the key (NULL: the platform operator did), so the audit trail can name who
-- stands behind a key that acts as someone else.
--
-- last_used_at is set to now() when it is NULL or older than 60 s, so a busy key costs one
-- write a minute, not one per request. The touch never waits: a key row locked by another
-- transaction (say, a revocation in progress) is skipped (SKIP LOCKED), and in a read-only
-- transaction (a replica) the touch is left out, so authentication never blocks or fails on
-- it.
--
-- SECURITY DEFINER with a fixed search_path (pg_catalog first, so no function or operator
-- of the caller's can shadow a built-in), and every table schema-qualified (pg_temp, which
-- the caller can write, is searched first for unqualified relations).
CREATE FUNCTION fulcrum_authenticate_api_key(p_key_hash text)
  RETURNS TABLE (key_id uuid, tenant_id uuid, user_id uuid, scopes text[], role text,
    created_by uuid)
  LANGUAGE plpgsql
  VOLATILE
  SECURITY DEFINER
  SET search_path = pg_catalog, public
AS $$
#variable_conflict use_column
DECLARE
  hit record;
BEGIN
  SELECT k.id, k.tenant_id, k.user_id, k.scopes, u.role, k.created_by, k.last_used_at
    INTO hit
    FROM public.api_keys k
    JOIN public.users u ON u.tenant_id = k.tenant_id AND u.id = k.user_id
    JOIN public.tenants t ON t.id = k.tenant_id
    WHERE k.key_hash = p_key_hash
      AND k.revoked_at IS NULL
      AND (k.expires_at IS NULL OR k.expires_at > now())
      AND u.disabled_at IS NULL
      AND t.status = 'active';
  IF NOT FOUND THEN
    RETURN;
  END IF;

  IF (hit.last_used_at IS NULL OR hit.last_used_at < now() - interval '60 seconds')
      AND current_setting('transaction_read_only') = 'off' THEN
    UPDATE public.api_keys k
      SET last_used_at = now()
      WHERE k.id IN (
        SELECT l.id FROM public.api_keys l
          WHERE l.id = hit.id
            AND (l.last_used_at IS NULL OR l.last_used_at < now() - interval '60 seconds')
          FOR UPDATE SKIP LOCKED);
  END IF;

  key_id := hit.id;
  tenant_id := hit.tenant_id;
  user_id := hit.user_id;
  scopes := hit.scopes;
  role := hit.role;
  created_by := hit.created_by;
  RETURN NEXT;
END
$$;

ALTER FUNCTION fulcrum_authenticate_api_key(text) OWNER TO fulcrum_auth;
REVOKE ALL ON FUNCTION fulcrum_authenticate_api_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fulcrum_authenticate_api_key(text) TO fulcrum_app;

-- 6. The platform role -----------------------------------------------------------------------
--
-- TenantService (the platform operator's API: creating, listing, suspending tenants) is the
-- one code path that reaches `tenants`, which fulcrum_app may not touch at all. It connects
-- as fulcrum_platform, not as the owner: a LOGIN role without SUPERUSER, BYPASSRLS,
-- CREATEDB, CREATEROLE or REPLICATION, a member of fulcrum_app (so it has the application's
-- grants, and row-level security applies to it on every tenant table exactly as to the
-- application: with no tenant set it sees and writes no tenant row), plus SELECT, INSERT and
-- UPDATE on `tenants` (no DELETE: tenants are suspended, never deleted). `tenants` has no
-- RLS, so those grants are the whole of what it adds. INHERIT is enforced: without it the
-- membership would not carry fulcrum_app's grants.
--
-- Created only when absent and its attributes enforced, tolerating a concurrent migration
-- of another database of the cluster, as for fulcrum_app (0001) and fulcrum_auth (above).
-- The membership is cluster-wide like the role and is granted only when missing.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fulcrum_platform') THEN
    BEGIN
      CREATE ROLE fulcrum_platform NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
        NOREPLICATION INHERIT LOGIN;
    EXCEPTION
      -- A migration of another database on the same cluster created it meanwhile.
      WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'fulcrum_platform' AND (rolsuper
      OR rolbypassrls OR rolcreatedb OR rolcreaterole OR rolreplication OR NOT rolinherit
      OR NOT rolcanlogin)) THEN
    ALTER ROLE fulcrum_platform NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION
      INHERIT LOGIN;
  END IF;
  -- Like the application, the platform role must not be able to become fulcrum_auth.
  IF pg_has_role('fulcrum_platform', 'fulcrum_auth', 'MEMBER') THEN
    RAISE EXCEPTION 'fulcrum_platform is a member of fulcrum_auth; revoke that membership first';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_auth_members
      WHERE roleid = 'fulcrum_app'::regrole AND member = 'fulcrum_platform'::regrole) THEN
    BEGIN
      GRANT fulcrum_app TO fulcrum_platform;
    EXCEPTION
      WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
END
$$;

GRANT SELECT, INSERT, UPDATE ON tenants TO fulcrum_platform;
