-- Undoes 0001 in this database only. The role itself is NOT dropped: roles are
-- cluster-wide, so it may hold privileges in other databases of the same cluster (DROP ROLE
-- would then fail) or have been created by an operator with its password before 0001 ran.
-- After this file nothing in this database refers to fulcrum_app; dropping the role is an
-- operator's decision (DROP ROLE fulcrum_app, once no database uses it).
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  REVOKE USAGE, SELECT ON SEQUENCES FROM fulcrum_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM fulcrum_app;

REVOKE USAGE ON SCHEMA public FROM fulcrum_app;

DO $$
BEGIN
  EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM fulcrum_app', current_database());
END
$$;
