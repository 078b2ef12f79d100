-- strapontin schema 1: users, sessions, login throttling and the helpers
-- every API function shares. Applied by `strapontind --migrate` in one
-- transaction.

-- Every API function signals a refusal through api_error(): the daemon maps
-- MESSAGE (a stable reason word) to the JSON-RPC error code, shows HINT to
-- the person, and merges DETAIL (a JSON object, "field" included) into
-- error.data.
CREATE FUNCTION api_error(p_reason text, p_message text,
                          p_data jsonb DEFAULT '{}'::jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'SP001', MESSAGE = p_reason,
        HINT = p_message, DETAIL = p_data::text;
END $$;

-- The protocol's time format: RFC 3339 in UTC with a Z.
CREATE FUNCTION ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL UNIQUE
                  CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    role          text NOT NULL CHECK (role IN ('admin', 'partner', 'referent')),
    partner_id    bigint,
    structure_id  bigint,
    password_hash text NOT NULL,
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- A partner account belongs to exactly one partner, a referent to
    -- exactly one structure, an admin to neither.
    CHECK ((role = 'partner') = (partner_id IS NOT NULL)),
    CHECK ((role = 'referent') = (structure_id IS NOT NULL))
);

-- Tokens are stored only as the hex SHA-256 of the 256-bit secret.
CREATE TABLE tokens (
    token_hash  text PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    user_id     bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    client_addr text,
    via         text NOT NULL DEFAULT 'password'
                CHECK (via IN ('password', 'certificate'))
);
CREATE INDEX tokens_live_by_user ON tokens (user_id) WHERE revoked_at IS NULL;

CREATE TABLE login_failures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text NOT NULL,
    client_addr text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_email ON login_failures (email, at);
CREATE INDEX login_failures_addr ON login_failures (client_addr, at);

CREATE FUNCTION user_json(u users) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', u.id, 'email', u.email,
        'display_name', u.display_name, 'role', u.role,
        'partner_id', u.partner_id, 'structure_id', u.structure_id,
        'enabled', u.enabled, 'created_at', ts(u.created_at))
$$;

-- The caller behind a token, or unauthenticated. Every API function starts
-- here, so a disabled user or a revoked token stops working on the very
-- next request, whichever daemon serves it.
CREATE FUNCTION auth_user(p_token text) RETURNS users
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

-- Step 1 of auth.login: throttling, then the stored hash (NULL for an
-- unknown or disabled account, which the daemon verifies against a dummy
-- hash so both cases take the same time and give the same answer). The
-- daemon runs one attempt per e-mail at a time, so the count it sees is
-- never behind.
CREATE FUNCTION auth_login_begin(p_email text, p_addr text,
                                 p_max integer, p_lockout_s integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    since timestamptz := now() - make_interval(secs => p_lockout_s);
    lock_until timestamptz;
    u users;
BEGIN
    -- A lock ends lockout after the failure that reached the limit.
    SELECT max(t) + make_interval(secs => p_lockout_s) INTO lock_until FROM (
        (SELECT at AS t FROM login_failures WHERE email = p_email AND at > since
          ORDER BY at DESC OFFSET p_max - 1 LIMIT 1)
        UNION ALL
        (SELECT at FROM login_failures WHERE client_addr = p_addr AND at > since
          ORDER BY at DESC OFFSET p_max - 1 LIMIT 1)) x;
    IF lock_until IS NOT NULL THEN
        RETURN jsonb_build_object('locked', true, 'retry_after_s',
            greatest(1, ceil(extract(epoch FROM lock_until - now()))::integer));
    END IF;
    SELECT * INTO u FROM users WHERE email = p_email AND enabled;
    RETURN jsonb_build_object('locked', false, 'user_id', u.id,
                              'password_hash', u.password_hash);
END $$;

CREATE FUNCTION auth_login_failure(p_email text, p_addr text)
RETURNS jsonb LANGUAGE sql AS $$
    DELETE FROM login_failures WHERE at < now() - interval '7 days';
    INSERT INTO login_failures (email, client_addr) VALUES (p_email, p_addr);
    SELECT '{}'::jsonb;
$$;

-- p_new_hash, when not NULL, replaces a hash made at an older cost.
CREATE FUNCTION auth_login_success(p_user_id bigint, p_token_hash text,
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
    DELETE FROM login_failures WHERE email = u.email;
    DELETE FROM tokens WHERE user_id = u.id AND expires_at < now() - interval '1 day';
    INSERT INTO tokens (token_hash, user_id, expires_at, client_addr)
    VALUES (p_token_hash, u.id, exp, p_addr);
    RETURN jsonb_build_object('expires_at', ts(exp), 'user', user_json(u));
END $$;

CREATE FUNCTION auth_resume(p_token_hash text) RETURNS jsonb
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
CREATE FUNCTION auth_cert_login(p_email text, p_token_hash text,
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

CREATE FUNCTION auth_whoami(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('user', user_json(auth_user(p_token)))
$$;

CREATE FUNCTION auth_logout(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM auth_user(p_token);
    UPDATE tokens SET revoked_at = now() WHERE token_hash = p_token;
    RETURN '{}'::jsonb;
END $$;

-- --add-admin: create, or reset the password of, an administrator.
CREATE FUNCTION admin_upsert(p_email text, p_hash text) RETURNS bigint
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

-- Every daemon learns at once that a session ended (logout, password
-- change, disabled user), so it stops sending events to that connection.
CREATE FUNCTION tokens_revoked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('strapontin_events', jsonb_build_object(
        'topic', 'session.revoked', 'token_hash', NEW.token_hash)::text);
    RETURN NULL;
END $$;
CREATE TRIGGER tokens_revoked AFTER UPDATE OF revoked_at ON tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION tokens_revoked();

CREATE FUNCTION events_subscribe(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('topics', p->'topics', 'user_id', (auth_user(p_token)).id)
$$;
