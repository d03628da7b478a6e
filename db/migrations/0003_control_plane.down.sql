-- Undoes 0003, in reverse order.
--
-- The roles fulcrum_auth and fulcrum_platform are NOT dropped, for the reasons 0001's down
-- keeps fulcrum_app: roles are cluster-wide, so they may hold privileges in other databases
-- of the same cluster (DROP ROLE would then fail) or have been created by an operator.
-- Everything they were granted in this database is revoked, and the function fulcrum_auth
-- owns is dropped, so after this file nothing in this database refers to them; dropping the
-- roles is an operator's decision (DROP ROLE fulcrum_platform, fulcrum_auth, once no
-- database uses them).
--
-- fulcrum_platform's membership in fulcrum_app is kept with the role: memberships are
-- cluster-wide, so revoking it here would cut off TenantService in every other database of
-- the cluster still at 0003. In this database it then carries nothing fulcrum_app does not
-- already have.

-- 6. The platform role
REVOKE SELECT, INSERT, UPDATE ON tenants FROM fulcrum_platform;

-- 5. API-key authentication
DROP FUNCTION fulcrum_authenticate_api_key(text);
DROP POLICY api_key_authentication ON users;
DROP POLICY api_key_authentication_last_used ON api_keys;
DROP POLICY api_key_authentication ON api_keys;
REVOKE UPDATE (last_used_at) ON api_keys FROM fulcrum_auth;
REVOKE SELECT ON api_keys, users, tenants FROM fulcrum_auth;
REVOKE USAGE ON SCHEMA public FROM fulcrum_auth;

-- 4. policy_activations (its policy, index, constraints and grants go with it)
DROP TABLE policy_activations;

-- 3. policy_versions (a column's CHECKs go with it)
ALTER TABLE policy_versions DROP COLUMN entrypoint;
ALTER TABLE policy_versions DROP CONSTRAINT policy_versions_wasm_sha256_matches_check;
ALTER TABLE policy_versions DROP CONSTRAINT policy_versions_compiled_wasm_bytes_check;
ALTER TABLE policy_versions DROP COLUMN wasm;
ALTER TABLE policy_versions DROP COLUMN change_summary;
ALTER TABLE policy_versions DROP CONSTRAINT policy_versions_definition_check;
ALTER TABLE policy_versions DROP COLUMN definition;

-- 2. policies. Restoring the plain unique constraint fails while an archived policy shares
-- its name with another policy of the tenant: rename or remove one of them first.
DROP INDEX policies_tenant_id_name_key;
ALTER TABLE policies ADD CONSTRAINT policies_tenant_id_name_key UNIQUE (tenant_id, name);
ALTER TABLE policies DROP COLUMN metadata;
ALTER TABLE policies DROP CONSTRAINT policies_archived_check;
ALTER TABLE policies DROP COLUMN archived_at;
ALTER TABLE policies DROP COLUMN revision;

-- 1. api_keys.user_id
DROP INDEX api_keys_tenant_id_user_id_idx;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_user_id_fkey;
ALTER TABLE api_keys DROP COLUMN user_id;
