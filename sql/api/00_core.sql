-- strapontin API, core: helpers shared by every domain, the privilege rules.
--
-- Code, not history: every `strapontind --migrate` re-applies all of
-- sql/api/ (in file name order) in one transaction, so each function has
-- exactly one definition, here. CREATE OR REPLACE only; helpers in schema
-- core, the daemon's entry points in schema api (docs/operations.md,
-- "The sql/ tree"). Generated once by the conversion of the numbered
-- migrations; edit freely from now on.

-- Every API function signals a refusal through api_error(): the daemon maps
-- MESSAGE (a stable reason word) to the JSON-RPC error code, shows HINT to
-- the person, and merges DETAIL (a JSON object, "field" included) into
-- error.data.
CREATE OR REPLACE FUNCTION core.api_error(p_reason text, p_message text,
                          p_data jsonb DEFAULT '{}'::jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'SP001', MESSAGE = p_reason,
        HINT = p_message, DETAIL = p_data::text;
END $$;

-- to_char() of a timestamp is STABLE: declared IMMUTABLE, ts() was never
-- inlined.
CREATE OR REPLACE FUNCTION core.ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

CREATE OR REPLACE FUNCTION core.audit(u users, p_method text, p_type text, p_id bigint,
                                 p_summary jsonb, p_addr text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (user_id, method, object_type, object_id, summary,
                           client_addr)
    VALUES (u.id, p_method, p_type, p_id, coalesce(p_summary, '{}'), p_addr);
END $$;

CREATE OR REPLACE FUNCTION core.not_found(p_what text, p_field text) RETURNS void
LANGUAGE sql AS $$
    SELECT api_error('not_found', 'No such ' || p_what || '.',
                     jsonb_build_object('field', p_field));
$$;

CREATE OR REPLACE FUNCTION core.bad_param(p_field text, p_message text) RETURNS void
LANGUAGE sql AS $$
    SELECT api_error('invalid_params', p_message,
                     jsonb_build_object('field', p_field));
$$;

CREATE OR REPLACE FUNCTION core.page_limit(p jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce((p->>'limit')::integer, 50)
$$;

-- Cursors are the last id seen (lists in id order) or "epoch:id" (lists
-- in time order); anything else is refused as a bad cursor.
CREATE OR REPLACE FUNCTION core.cursor_id(p jsonb) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p->>'cursor' IS NULL THEN
        RETURN 0;
    END IF;
    IF p->>'cursor' !~ '^[0-9]{1,18}$' THEN
        PERFORM bad_param('cursor', 'cursor is not one this server gave');
    END IF;
    RETURN (p->>'cursor')::bigint;
END $$;

CREATE OR REPLACE FUNCTION core.page(p_items jsonb, p_limit integer, p_next text)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('items', coalesce(p_items, '[]'::jsonb),
        'next_cursor', CASE WHEN jsonb_array_length(coalesce(p_items, '[]'))
                             >= p_limit THEN p_next END)
$$;

-- Lists in time order page by "microseconds since the epoch:id" of the
-- last item: the start after which the next page begins, then the id
-- among items of that same start.
CREATE OR REPLACE FUNCTION core.time_cursor(p jsonb, OUT after_ts timestamptz,
                                            OUT after_id bigint)
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    after_ts := '-infinity';
    after_id := 0;
    IF p ? 'cursor' THEN
        IF p->>'cursor' !~ '^-?[0-9]{1,20}:[0-9]{1,18}$' THEN
            PERFORM bad_param('cursor', 'cursor is not one this server gave');
        END IF;
        after_ts := to_timestamp(split_part(p->>'cursor', ':', 1)::numeric / 1000000);
        after_id := split_part(p->>'cursor', ':', 2)::bigint;
    END IF;
END $$;

-- The page of a list in time order: p_key names the items' time field.
CREATE OR REPLACE FUNCTION core.time_page(p_items jsonb, p_limit integer, p_key text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT page(p_items, p_limit,
        (extract(epoch FROM (p_items->-1->>p_key)::timestamptz) * 1000000)::bigint
        || ':' || (p_items->-1->>'id'))
$$;

------------------------------------------------------------------- scope

CREATE OR REPLACE FUNCTION core.scope_beneficiary(u users, p_id bigint, p_lock boolean)
RETURNS beneficiaries LANGUAGE plpgsql AS $$
DECLARE
    b beneficiaries;
BEGIN
    IF p_lock THEN
        SELECT * INTO b FROM beneficiaries WHERE id = p_id FOR UPDATE;
    ELSE
        SELECT * INTO b FROM beneficiaries WHERE id = p_id;
    END IF;
    IF NOT FOUND OR b.erased_at IS NOT NULL
       OR (u.role = 'referent' AND b.structure_id <> u.structure_id)
       OR u.role = 'partner' THEN
        PERFORM not_found('beneficiary', 'beneficiary_id');
    END IF;
    RETURN b;
END $$;

-- An offer the caller may change: its partner's staff, or an admin.
CREATE OR REPLACE FUNCTION core.scope_own_offer(u users, p_id bigint) RETURNS offers
LANGUAGE plpgsql AS $$
DECLARE
    o offers;
BEGIN
    SELECT * INTO o FROM offers WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR (u.role <> 'admin' AND
                     (u.role <> 'partner' OR o.partner_id <> u.partner_id)) THEN
        PERFORM not_found('offer', 'offer_id');
    END IF;
    RETURN o;
END $$;

CREATE OR REPLACE FUNCTION core.scope_booking(u users, p_id bigint, p_lock boolean)
RETURNS bookings LANGUAGE plpgsql AS $$
DECLARE
    bk bookings;
BEGIN
    IF p_lock THEN
        SELECT * INTO bk FROM bookings WHERE id = p_id FOR UPDATE;
    ELSE
        SELECT * INTO bk FROM bookings WHERE id = p_id;
    END IF;
    IF NOT FOUND OR (u.role = 'referent' AND bk.structure_id <> u.structure_id)
       OR u.role = 'partner' THEN
        PERFORM not_found('booking', 'booking_id');
    END IF;
    RETURN bk;
END $$;

CREATE OR REPLACE FUNCTION core.scope_entry(u users, p_id bigint) RETURNS waitlist_entries
LANGUAGE plpgsql AS $$
DECLARE
    e waitlist_entries;
BEGIN
    SELECT * INTO e FROM waitlist_entries WHERE id = p_id;
    IF NOT FOUND OR (u.role = 'referent' AND e.structure_id <> u.structure_id)
       OR u.role = 'partner' THEN
        PERFORM not_found('waitlist entry', 'entry_id');
    END IF;
    RETURN e;
END $$;

-- A structure an admin names, or the referent's own.
CREATE OR REPLACE FUNCTION core.scope_structure_id(u users, p jsonb) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    sid bigint := (p->>'structure_id')::bigint;
BEGIN
    IF u.role = 'referent' THEN
        IF sid IS NOT NULL AND sid <> u.structure_id THEN
            PERFORM not_found('structure', 'structure_id');
        END IF;
        RETURN u.structure_id;
    END IF;
    IF sid IS NULL THEN
        PERFORM bad_param('structure_id', 'structure_id is required for an admin');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM structures WHERE id = sid) THEN
        PERFORM not_found('structure', 'structure_id');
    END IF;
    RETURN sid;
END $$;

------------------------------------------------------------------- scope

-- A permanence of the caller's structure (any, for an admin), locked as
-- asked: 'update', 'share' or 'none'.
CREATE OR REPLACE FUNCTION core.scope_permanence(u users, p_id bigint, p_lock text)
RETURNS permanences LANGUAGE plpgsql AS $$
DECLARE
    pm permanences;
BEGIN
    IF p_lock = 'update' THEN
        SELECT * INTO pm FROM permanences WHERE id = p_id FOR UPDATE;
    ELSIF p_lock = 'share' THEN
        SELECT * INTO pm FROM permanences WHERE id = p_id FOR SHARE;
    ELSE
        SELECT * INTO pm FROM permanences WHERE id = p_id;
    END IF;
    IF NOT FOUND OR u.role = 'partner'
       OR (u.role = 'referent' AND pm.structure_id <> u.structure_id) THEN
        PERFORM not_found('permanence', 'permanence_id');
    END IF;
    RETURN pm;
END $$;

-- The start-up check reads the schema version as the runtime role, which
-- may not read schema_migrations itself.
CREATE OR REPLACE FUNCTION api.schema_versions() RETURNS SETOF integer
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT version FROM schema_migrations;
END $$;

-- The rules, for every object of ours. Run as the owner of the schemas, by
-- `strapontind --migrate` after every run, in the transaction that applies
-- sql/api. Tables stay in public; helpers are in core, closed to everyone
-- but their owner; the runtime role's group strapontin_api may use schema
-- api and EXECUTE its functions, which run SECURITY DEFINER with a fixed
-- search_path. Returns the number of entry points.
CREATE OR REPLACE FUNCTION core.privileges_apply() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    f record;
    n integer := 0;
BEGIN
    REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, strapontin_api;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, strapontin_api;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public, core, api
        FROM PUBLIC, strapontin_api;
    -- Functions created later by this role start closed too.
    ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
    REVOKE ALL ON SCHEMA core FROM PUBLIC, strapontin_api;
    REVOKE ALL ON SCHEMA api FROM PUBLIC;
    GRANT USAGE ON SCHEMA api TO strapontin_api;
    FOR f IN
        SELECT p.oid::regprocedure AS sig
          FROM pg_proc p
         WHERE p.pronamespace = 'api'::regnamespace AND p.prokind = 'f'
         ORDER BY 1
    LOOP
        -- pg_catalog first and pg_temp last: nobody's objects can stand in
        -- for ours or for the built-ins inside a SECURITY DEFINER call. The
        -- helpers an entry point calls, and the triggers it fires, run with
        -- this search_path too.
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER '
                       'SET search_path = pg_catalog, public, core, api, pg_temp',
                       f.sig);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO strapontin_api', f.sig);
        n := n + 1;
    END LOOP;
    -- A trigger fires in whatever session changes its table: an entry
    -- point's, or an operator's psql, whose search_path does not name
    -- core. The trigger functions, which call helpers unqualified, carry
    -- the path themselves (not SECURITY DEFINER: they act as the session).
    FOR f IN
        SELECT p.oid::regprocedure AS sig
          FROM pg_proc p
         WHERE p.pronamespace = 'core'::regnamespace
           AND p.prorettype = 'trigger'::regtype
         ORDER BY 1
    LOOP
        EXECUTE format('ALTER FUNCTION %s '
                       'SET search_path = pg_catalog, public, core, api, pg_temp',
                       f.sig);
    END LOOP;
    RETURN n;
END $$;

-- What sql/api no longer defines, after `strapontind --migrate` applied
-- all of it in the current transaction: every function of core and api and
-- every trigger calling one that this transaction did not (re)create (a
-- CREATE OR REPLACE rewrites the catalog row, so its xmin is ours), and the
-- functions a database made before sql/api had in public under a name that
-- core or api now has. Never CASCADE: an object of public that still
-- depends on one of them stops the migration with PostgreSQL's own
-- message instead of disappearing with it. Returns the number dropped.
CREATE OR REPLACE FUNCTION core.api_prune() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    me xid := pg_current_xact_id()::xid;
    o record;
    n integer := 0;
BEGIN
    FOR o IN
        SELECT t.tgname, t.tgrelid::regclass AS rel
          FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
         WHERE NOT t.tgisinternal
           AND p.pronamespace IN ('core'::regnamespace, 'api'::regnamespace)
           AND t.xmin <> me
         ORDER BY 2, 1
    LOOP
        RAISE NOTICE 'dropping trigger % on %', o.tgname, o.rel;
        EXECUTE format('DROP TRIGGER %I ON %s', o.tgname, o.rel);
        n := n + 1;
    END LOOP;
    FOR o IN
        SELECT p.oid::regprocedure AS sig
          FROM pg_proc p
         WHERE (p.pronamespace IN ('core'::regnamespace, 'api'::regnamespace)
                AND p.xmin <> me)
            OR (p.pronamespace = 'public'::regnamespace
                AND p.proowner = current_user::regrole
                AND p.proname IN (SELECT proname FROM pg_proc
                                   WHERE pronamespace IN ('core'::regnamespace,
                                                          'api'::regnamespace))
                AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                 WHERE d.classid = 'pg_proc'::regclass
                                   AND d.objid = p.oid AND d.deptype = 'e'))
         ORDER BY 1
    LOOP
        RAISE NOTICE 'dropping function %', o.sig;
        EXECUTE format('DROP FUNCTION %s', o.sig);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- Idempotency (docs/protocol.md, "Retries"), written once for every
-- method that takes an idempotency_key. idem_replay() serialises the
-- retries of one key (a transaction-scoped advisory lock: the second
-- waits, then finds the first one's answer) and returns the stored answer
-- of the same request, NULL when there is none; a key used for another
-- request is refused. idem_store() keeps an answer.
CREATE OR REPLACE FUNCTION core.idem_replay(u users, p_key text, p_method text,
                                       p_request jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    prev jsonb;
    prev_method text;
    prev_request jsonb;
BEGIN
    IF p_key IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('idem:' || u.id || ':' || p_key, 0));
    SELECT result, method, request INTO prev, prev_method, prev_request
      FROM idempotency_keys WHERE user_id = u.id AND key = p_key;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF prev_method = p_method AND prev_request = p_request THEN
        RETURN prev;
    END IF;
    PERFORM bad_param('idempotency_key',
        'this idempotency_key was used for another request');
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION core.idem_store(u users, p_key text, p_method text,
                                      p_request jsonb, p_result jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (user_id, key, method, request, result)
        VALUES (u.id, p_key, p_method, p_request, p_result);
    END IF;
END $$;

-- The error of an api_error() caught in the batch, as {reason, message,
-- data}: what the daemon would have made of it had it come alone.
CREATE OR REPLACE FUNCTION core.api_error_json(p_reason text, p_hint text, p_detail text)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('reason', p_reason, 'message', p_hint,
                              'data', CASE WHEN p_detail IS NOT NULL AND p_detail <> ''
                                           THEN p_detail::jsonb END)
$$;
