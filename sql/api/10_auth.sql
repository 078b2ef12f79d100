-- strapontin API, auth: users, sessions, login, admin accounts.
--
-- Code, not history: every `strapontind --migrate` re-applies all of
-- sql/api/ (in file name order) in one transaction, so each function has
-- exactly one definition, here. CREATE OR REPLACE only; helpers in schema
-- core, the daemon's entry points in schema api (docs/operations.md,
-- "The sql/ tree"). Generated once by the conversion of the numbered
-- migrations; edit freely from now on.

CREATE OR REPLACE FUNCTION core.user_json(u users) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', u.id, 'email', u.email,
        'display_name', u.display_name, 'role', u.role,
        'partner_id', u.partner_id, 'structure_id', u.structure_id,
        'enabled', u.enabled, 'created_at', ts(u.created_at))
$$;

-- The caller behind a token, or unauthenticated. Every API function starts
-- here, so a disabled user or a revoked token stops working on the very
-- next request, whichever daemon serves it.
CREATE OR REPLACE FUNCTION core.auth_user(p_token text) RETURNS users
LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users;
BEGIN
    IF p_token IS NOT NULL THEN
        SELECT users.* INTO u
          FROM tokens JOIN users ON users.id = tokens.user_id
         WHERE tokens.token_hash = p_token AND tokens.revoked_at IS NULL
           AND tokens.expires_at > now() AND users.enabled;
        IF FOUND THEN
            RETURN u;
        END IF;
    END IF;
    PERFORM api_error('unauthenticated',
        'Your session has ended; log in again.');
    RETURN NULL;
END $$;

-- Step 1 of auth.login (and of auth.change_password): may this address try
-- this e-mail now? If not, 'locked' with the seconds to wait; if so, the
-- stored hash (NULL for an unknown or disabled account, which the daemon
-- verifies against a dummy hash so both cases take the same time and give
-- the same answer). The daemon runs one attempt per e-mail and per address
-- at a time, so the counts it sees are never behind.
CREATE OR REPLACE FUNCTION api.auth_login_begin(p_email text, p_addr text,
                                            p_max integer, p_lockout_s integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    pair_n bigint;
    pair_last timestamptz;
    addr_nth timestamptz;
    wait_until timestamptz;
    u users;
BEGIN
    SELECT count(*), max(at) INTO pair_n, pair_last FROM login_failures
     WHERE email = p_email AND client_addr = p_addr
       AND at > now() - interval '1 day';
    IF pair_n >= p_max THEN
        -- 2^30 s is far beyond any lockout: no overflow, same answer.
        wait_until := pair_last + make_interval(secs => least(
            p_lockout_s::float8, 2.0::float8 ^ least(pair_n - p_max + 1, 30)));
    END IF;
    -- The address may go on once its (10 x max)-th latest failure leaves
    -- the window.
    SELECT at + make_interval(secs => p_lockout_s) INTO addr_nth
      FROM login_failures
     WHERE client_addr = p_addr
       AND at > now() - make_interval(secs => p_lockout_s)
     ORDER BY at DESC OFFSET 10 * p_max - 1 LIMIT 1;
    wait_until := greatest(wait_until, addr_nth);
    IF wait_until > now() THEN
        RETURN jsonb_build_object('locked', true, 'retry_after_s',
            greatest(1, ceil(extract(epoch FROM wait_until - now()))::integer));
    END IF;
    SELECT * INTO u FROM users WHERE email = p_email AND enabled;
    RETURN jsonb_build_object('locked', false, 'user_id', u.id,
                              'password_hash', u.password_hash);
END $$;

CREATE OR REPLACE FUNCTION api.auth_login_failure(p_email text, p_addr text)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM login_failures WHERE at < now() - interval '7 days';
    INSERT INTO login_failures (email, client_addr) VALUES (p_email, p_addr);
    RETURN '{}'::jsonb;
END $$;

-- p_new_hash, when not NULL, replaces a hash made at an older cost. Only
-- this address's failures for the account are forgotten: a login of the
-- owner must not reset the delay of someone guessing from elsewhere.
CREATE OR REPLACE FUNCTION api.auth_login_success(p_user_id bigint,
                                              p_token_hash text,
                                              p_ttl_s integer, p_addr text,
                                              p_new_hash text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users;
    exp timestamptz := now() + make_interval(secs => p_ttl_s);
BEGIN
    SELECT * INTO u FROM users WHERE id = p_user_id AND enabled;
    IF NOT FOUND THEN
        PERFORM api_error('unauthenticated', 'Unknown e-mail or wrong password.');
    END IF;
    IF p_new_hash IS NOT NULL THEN
        UPDATE users SET password_hash = p_new_hash WHERE id = u.id;
    END IF;
    DELETE FROM login_failures WHERE email = u.email AND client_addr = p_addr;
    DELETE FROM tokens WHERE user_id = u.id AND expires_at < now() - interval '1 day';
    INSERT INTO tokens (token_hash, user_id, expires_at, client_addr)
    VALUES (p_token_hash, u.id, exp, p_addr);
    RETURN jsonb_build_object('expires_at', ts(exp), 'user', user_json(u));
END $$;

CREATE OR REPLACE FUNCTION api.auth_resume(p_token_hash text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token_hash);
BEGIN
    RETURN jsonb_build_object('user', user_json(u),
        'expires_at', (SELECT ts(expires_at) FROM tokens
                        WHERE token_hash = p_token_hash));
END $$;

-- Mutual TLS: the e-mail of a verified client certificate names an
-- enabled user; the connection gets a token of its own (NULL if nobody).
CREATE OR REPLACE FUNCTION api.auth_cert_login(p_email text, p_token_hash text,
                                p_ttl_s integer, p_addr text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users;
BEGIN
    SELECT * INTO u FROM users WHERE email = lower(p_email) AND enabled;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO tokens (token_hash, user_id, expires_at, client_addr, via)
    VALUES (p_token_hash, u.id, now() + make_interval(secs => p_ttl_s),
            p_addr, 'certificate');
    RETURN jsonb_build_object('user', user_json(u));
END $$;

-- The e-mail notices a role receives (docs/mail.md, "What is sent"), in
-- the order they are shown: the only ones its accounts may turn off. An
-- admin receives none.
CREATE OR REPLACE FUNCTION core.mail_kinds(p_role text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_role
        WHEN 'referent' THEN ARRAY['referent_digest', 'offer_cancelled',
                                   'offer_moved', 'hold_expiring']
        WHEN 'partner' THEN ARRAY['guest_list', 'attendance_to_close']
        ELSE '{}' END::text[]
$$;

-- {mail_off, mail_kinds}: what the user turned off, and what their role
-- receives, both in mail_kinds' order. Only the role's kinds are shown:
-- an account --add-admin made an admin keeps a list that no longer
-- counts. PL/pgSQL: a sub-select stops a LANGUAGE sql helper's inlining.
CREATE OR REPLACE FUNCTION core.mail_prefs_json(u users) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN jsonb_build_object(
        'mail_off', to_jsonb(ARRAY(SELECT k FROM unnest(mail_kinds(u.role))
                                       WITH ORDINALITY AS t(k, i)
                                  WHERE k = ANY(u.mail_off) ORDER BY i)),
        'mail_kinds', to_jsonb(mail_kinds(u.role)));
END $$;

CREATE OR REPLACE FUNCTION api.auth_whoami(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
BEGIN
    RETURN jsonb_build_object('user', user_json(u) || mail_prefs_json(u));
END $$;

-- auth.set_mail_preferences: mail_off replaces the list of notices the
-- caller turned off ([] turns every one back on); only kinds their role
-- receives. Without mail_off, nothing changes. Answers {mail_off,
-- mail_kinds}.
CREATE OR REPLACE FUNCTION api.auth_set_mail_preferences(p_token text, p jsonb,
        p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    v_kinds text[] := mail_kinds(u.role);
    v_off text[];
BEGIN
    IF p->'mail_off' IS NULL THEN
        RETURN mail_prefs_json(u);
    END IF;
    v_off := ARRAY(SELECT jsonb_array_elements_text(p->'mail_off'));
    IF NOT v_off <@ v_kinds THEN
        PERFORM bad_param('mail_off', CASE WHEN cardinality(v_kinds) = 0
            THEN 'Your role receives no e-mail notice.'
            ELSE 'Your role receives only these notices: '
                 || array_to_string(v_kinds, ', ') || '.' END);
    END IF;
    -- Kept in mail_kinds' order, each once: the audit and the answer
    -- read the same whatever order the caller used.
    v_off := ARRAY(SELECT k FROM unnest(v_kinds) WITH ORDINALITY AS t(k, i)
                    WHERE k = ANY(v_off) ORDER BY i);
    UPDATE users SET mail_off = v_off, updated_at = now()
     WHERE id = u.id RETURNING * INTO u;
    PERFORM audit(u, 'auth.set_mail_preferences', 'user', u.id,
                  jsonb_build_object('mail_off', to_jsonb(v_off)), p_addr);
    RETURN mail_prefs_json(u);
END $$;

CREATE OR REPLACE FUNCTION api.auth_logout(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM auth_user(p_token);
    UPDATE tokens SET revoked_at = now() WHERE token_hash = p_token;
    RETURN '{}'::jsonb;
END $$;

-- --add-admin: create, or reset the password of, an administrator.
CREATE OR REPLACE FUNCTION core.admin_upsert(p_email text, p_hash text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    uid bigint;
BEGIN
    INSERT INTO users (email, display_name, role, password_hash)
    VALUES (p_email, split_part(p_email, '@', 1), 'admin', p_hash)
    ON CONFLICT (email) DO UPDATE
       SET password_hash = excluded.password_hash, role = 'admin',
           partner_id = NULL, structure_id = NULL, enabled = true,
           updated_at = now()
    RETURNING id INTO uid;
    -- A reset password ends every session opened with the old one.
    UPDATE tokens SET revoked_at = now()
     WHERE user_id = uid AND revoked_at IS NULL;
    RETURN uid;
END $$;

-- p carries password_hash (hashed by the daemon on its worker pool), never
-- the password.
CREATE OR REPLACE FUNCTION core.user_create_unchecked(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    role text := p->>'role';
    pid bigint := (p->>'partner_id')::bigint;
    sid bigint := (p->>'structure_id')::bigint;
    r users;
BEGIN
    IF role = 'partner' THEN
        IF pid IS NULL THEN
            PERFORM bad_param('partner_id', 'a partner account needs partner_id');
        END IF;
        IF NOT EXISTS (SELECT 1 FROM partners WHERE id = pid) THEN
            PERFORM not_found('partner', 'partner_id');
        END IF;
    ELSIF pid IS NOT NULL THEN
        PERFORM bad_param('partner_id', 'only a partner account has partner_id');
    END IF;
    IF role = 'referent' THEN
        IF sid IS NULL THEN
            PERFORM bad_param('structure_id', 'a referent account needs structure_id');
        END IF;
        IF NOT EXISTS (SELECT 1 FROM structures WHERE id = sid) THEN
            PERFORM not_found('structure', 'structure_id');
        END IF;
    ELSIF sid IS NOT NULL THEN
        PERFORM bad_param('structure_id', 'only a referent account has structure_id');
    END IF;
    IF EXISTS (SELECT 1 FROM users WHERE email = lower(p->>'email')) THEN
        PERFORM api_error('duplicate', 'An account with this e-mail exists.',
                          '{"field": "email"}');
    END IF;
    INSERT INTO users (email, display_name, role, partner_id, structure_id,
                       password_hash)
    VALUES (lower(p->>'email'), p->>'display_name', role, pid, sid,
            p->>'password_hash')
    RETURNING * INTO r;
    PERFORM audit(u, 'user.create', 'user', r.id,
                  jsonb_build_object('role', role), p_addr);
    RETURN user_json(r);
END $$;

CREATE OR REPLACE FUNCTION core.user_list_unchecked(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    lim integer := page_limit(p);
    items jsonb;
BEGIN
    SELECT jsonb_agg(user_json(r) ORDER BY r.id) INTO items
      FROM (SELECT * FROM users
             WHERE id > cursor_id(p)
               AND (p->>'role' IS NULL OR role = p->>'role')
             ORDER BY id LIMIT lim) r;
    RETURN page(items, lim, items->-1->>'id');
END $$;

CREATE OR REPLACE FUNCTION core.user_disable_unchecked(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    r users;
BEGIN
    UPDATE users SET enabled = false, updated_at = now()
     WHERE id = (p->>'user_id')::bigint RETURNING * INTO r;
    IF NOT FOUND THEN
        PERFORM not_found('user', 'user_id');
    END IF;
    -- Every session ends now; each daemon sees it on the next request.
    UPDATE tokens SET revoked_at = now()
     WHERE user_id = r.id AND revoked_at IS NULL;
    PERFORM audit(u, 'user.disable', 'user', r.id, '{}', p_addr);
    RETURN user_json(r);
END $$;

-- auth.change_password, step 1: the caller's e-mail, for the daemon to
-- throttle the check of the old password like a login (auth_login_begin
-- then gives the stored hash).
CREATE OR REPLACE FUNCTION api.auth_password_hash(p_token text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
BEGIN
    RETURN jsonb_build_object('email', u.email,
                              'password_hash', u.password_hash);
END $$;

-- Step 2: store the new hash; other sessions of the user end; the right
-- old password from this address clears its failures, as a login does.
CREATE OR REPLACE FUNCTION api.auth_set_password(p_token text, p_old_hash text,
                                             p_new_hash text, p_addr text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
BEGIN
    UPDATE users SET password_hash = p_new_hash, updated_at = now()
     WHERE id = u.id AND password_hash = p_old_hash;
    IF NOT FOUND THEN   -- changed meanwhile by another session
        PERFORM api_error('unauthenticated', 'The old password is wrong.',
                          '{"field": "old_password"}');
    END IF;
    DELETE FROM login_failures WHERE email = u.email AND client_addr = p_addr;
    UPDATE tokens SET revoked_at = now()
     WHERE user_id = u.id AND revoked_at IS NULL AND token_hash <> p_token;
    PERFORM audit(u, 'auth.change_password', 'user', u.id, '{}', p_addr);
    RETURN '{}'::jsonb;
END $$;

------------------------------------------------------------------- audit

CREATE OR REPLACE FUNCTION core.audit_list_unchecked(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    lim integer := page_limit(p);
    items jsonb;
BEGIN
    SELECT jsonb_agg(jsonb_build_object('id', a.id, 'at', ts(a.at),
               'user_id', a.user_id, 'method', a.method,
               'object_type', a.object_type, 'object_id', a.object_id,
               'summary', a.summary, 'client_addr', a.client_addr)
               ORDER BY a.id) INTO items
      FROM (SELECT * FROM audit_log a
             WHERE a.id > cursor_id(p)
               AND a.at >= coalesce((p->>'from')::timestamptz, '-infinity')
               AND a.at < coalesce((p->>'to')::timestamptz, 'infinity')
               AND (p->>'user_id' IS NULL OR a.user_id = (p->>'user_id')::bigint)
             ORDER BY a.id LIMIT lim) a;
    RETURN page(items, lim, items->-1->>'id');
END $$;

-- Admin-only methods check the role themselves, whoever calls them: the
-- daemon refuses other roles before any SQL runs, and these refuse them
-- again. Each method's function is <name>_unchecked (schema 3), never an
-- entry point, behind a function of its own name that checks first.
CREATE OR REPLACE FUNCTION core.auth_admin(p_token text) RETURNS users
LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
BEGIN
    IF u.role <> 'admin' THEN
        PERFORM api_error('forbidden', 'Your role may not call this method.');
    END IF;
    RETURN u;
END $$;

CREATE OR REPLACE FUNCTION api.user_create(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM auth_admin(p_token);
    RETURN user_create_unchecked(p_token, p, p_addr, p_policy);
END $$;

CREATE OR REPLACE FUNCTION api.user_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM auth_admin(p_token);
    RETURN user_list_unchecked(p_token, p, p_addr, p_policy);
END $$;

CREATE OR REPLACE FUNCTION api.user_disable(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM auth_admin(p_token);
    RETURN user_disable_unchecked(p_token, p, p_addr, p_policy);
END $$;

CREATE OR REPLACE FUNCTION api.audit_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM auth_admin(p_token);
    RETURN audit_list_unchecked(p_token, p, p_addr, p_policy);
END $$;

-- Revokes the live certificate sessions among p_token_hashes (a daemon
-- names those of its own connections), or all of them if NULL (from psql,
-- after a client CA was compromised, say). Returns the hashes revoked, so
-- the caller can close the matching connections.
CREATE OR REPLACE FUNCTION api.auth_revoke_cert_sessions(p_token_hashes text[] DEFAULT NULL)
RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY UPDATE tokens SET revoked_at = now()
         WHERE via = 'certificate' AND revoked_at IS NULL
           AND expires_at > now()
           AND (p_token_hashes IS NULL OR token_hash = ANY (p_token_hashes))
        RETURNING token_hash;
END $$;

-- Which of these tokens still open a session. The daemon asks it for its
-- event subscribers when its listener comes back and at a short interval,
-- so a session revoked or expired while a NOTIFY could not reach the
-- daemon still stops its events (docs/protocol.md, events.subscribe).
CREATE OR REPLACE FUNCTION api.auth_tokens_alive(p_hashes text[]) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(array_agg(t.token_hash), '{}')
          FROM tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = ANY (p_hashes) AND t.revoked_at IS NULL
           AND t.expires_at > now() AND u.enabled);
END $$;
