-- The application role: what the control plane and the edge functions connect as.
-- Not a superuser and without BYPASSRLS, so row-level security applies to every query it
-- runs. Roles are cluster-wide: the role may already exist (another database on the same
-- cluster, or an operator who created it with its password), so it is created only when
-- absent and its attributes are then enforced either way. No password here: secrets never
-- go in migrations; operators set it with ALTER ROLE out of band (local trust auth needs none).
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fulcrum_app') THEN
    BEGIN
      CREATE ROLE fulcrum_app;
    EXCEPTION
      -- A migration of another database on the same cluster created it meanwhile.
      WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
END
$$;

ALTER ROLE fulcrum_app NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION LOGIN;

-- CONNECT on this database (explicit, for clusters where PUBLIC's CONNECT was revoked).
DO $$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO fulcrum_app', current_database());
END
$$;

GRANT USAGE ON SCHEMA public TO fulcrum_app;

-- Tables and sequences that later migrations create (as the role running the migrations)
-- are usable by the application; row-level security then decides which rows it sees.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO fulcrum_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO fulcrum_app;
