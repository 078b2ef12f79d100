-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 11: least privilege (docs/operations.md, "Database
-- roles").
--
-- The daemon's runtime login role owns nothing: it is a member of the
-- group role strapontin_api, which may only EXECUTE the API entry points,
-- the functions the daemon calls (one per method, and its own statements:
-- login steps, sweeps). Those run SECURITY DEFINER, as the role that ran
-- --migrate and owns the schema, with a fixed search_path. Tables,
-- sequences and every other function are closed to PUBLIC.
--
-- privileges_apply() holds the rules; `strapontind --migrate` runs it after
-- every migration run, so functions that later migrations add or replace
-- get them too.
-- Login roles belong to the administrator; the group role is ours. Every
-- database of a cluster shares it: another one may create it meanwhile.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'strapontin_api') THEN
        CREATE ROLE strapontin_api NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;

-- The entry points that are not methods. A method's function is found by
-- its signature (p_token text, p jsonb, p_addr text, p_policy jsonb), so
-- that a method added later needs nothing here; a new statement of the
-- daemon's own with another signature must be added to this table.
CREATE TABLE api_entry_points (
    name text PRIMARY KEY
);
INSERT INTO api_entry_points (name) VALUES
    ('auth_login_begin'), ('auth_login_success'), ('auth_login_failure'),
    ('auth_resume'), ('auth_cert_login'), ('auth_password_hash'),
    ('auth_set_password'), ('waitlist_sweep'), ('retention_sweep'),
    ('schema_versions');
