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

-- The start-up check reads the schema version as the runtime role, which
-- may not read schema_migrations itself.
CREATE FUNCTION schema_versions() RETURNS SETOF integer
LANGUAGE sql STABLE AS $$
    SELECT version FROM schema_migrations
$$;

-- Admin-only methods check the role themselves, whoever calls them: the
-- daemon refuses other roles before any SQL runs, and these refuse them
-- again. Each method's function becomes <name>_unchecked, never an entry
-- point, behind a function of its own name that checks first.
CREATE FUNCTION auth_admin(p_token text) RETURNS users
LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
BEGIN
    IF u.role <> 'admin' THEN
        PERFORM api_error('forbidden', 'Your role may not call this method.');
    END IF;
    RETURN u;
END $$;

DO $$
DECLARE
    fn text;
    ret text;
    vol text;
BEGIN
    FOREACH fn IN ARRAY ARRAY['partner_create', 'structure_create',
                              'user_create', 'user_list', 'user_disable',
                              'audit_list']
    LOOP
        SELECT pg_get_function_result(p.oid),
               CASE p.provolatile WHEN 'i' THEN 'IMMUTABLE'
                                  WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END
          INTO STRICT ret, vol
          FROM pg_proc p
         WHERE p.oid = format('%I(text, jsonb, text, jsonb)', fn)::regprocedure;
        EXECUTE format('ALTER FUNCTION %I(text, jsonb, text, jsonb) RENAME TO %I',
                       fn, fn || '_unchecked');
        EXECUTE format($f$
            CREATE FUNCTION %1$I(p_token text, p jsonb, p_addr text, p_policy jsonb)
            RETURNS %2$s LANGUAGE plpgsql %3$s AS $b$
            BEGIN
                PERFORM auth_admin(p_token);
                RETURN %4$I(p_token, p, p_addr, p_policy);
            END $b$
            $f$, fn, ret, vol, fn || '_unchecked');
    END LOOP;
END $$;

-- report.activity: a range of at most policy.report_max_days days, so that
-- one call cannot read the whole history of the service.
ALTER FUNCTION report_activity(text, jsonb, text, jsonb)
    RENAME TO report_activity_unchecked;

CREATE FUNCTION report_activity(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    max_days integer := coalesce((p_policy->>'report_max_days')::integer, 400);
BEGIN
    PERFORM auth_user(p_token);
    IF extract(epoch FROM (p->>'to')::timestamptz - (p->>'from')::timestamptz)
       > max_days * 86400.0 THEN
        PERFORM bad_param('to', format('to may be at most %s days after from', max_days));
    END IF;
    RETURN report_activity_unchecked(p_token, p, p_addr, p_policy);
END $$;

-- The rules, for every object of the schema. Run as the schema's owner.
-- Returns the number of entry points.
CREATE FUNCTION privileges_apply() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    s text := current_schema();
    f record;
    n integer := 0;
BEGIN
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM PUBLIC, strapontin_api', s);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM PUBLIC, strapontin_api', s);
    EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM PUBLIC, strapontin_api', s);
    -- Functions created later by this role start closed too.
    ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO strapontin_api', s);
    FOR f IN
        SELECT p.oid::regprocedure AS sig
          FROM pg_proc p
         WHERE p.pronamespace = s::regnamespace AND p.prokind = 'f'
           AND (p.proname IN (SELECT name FROM api_entry_points)
                OR (oidvectortypes(p.proargtypes) = 'text, jsonb, text, jsonb'
                    AND p.proname NOT LIKE '%\_unchecked'))
         ORDER BY 1
    LOOP
        -- pg_catalog first and pg_temp last: nobody's objects can stand in
        -- for ours or for the built-ins inside a SECURITY DEFINER call.
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER '
                       'SET search_path = pg_catalog, %I, pg_temp', f.sig, s);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO strapontin_api', f.sig);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
