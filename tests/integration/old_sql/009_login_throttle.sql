-- strapontin schema 9: login throttling nobody can turn against a victim.
--
-- Until now failures were counted per e-mail and per address, and
-- login_max_failures failures on an e-mail locked that account for
-- login_lockout from every address: anyone could keep a colleague out by
-- typing wrong passwords for them. Failures now count per (e-mail,
-- address) pair, with a delay that grows with each failure instead of a
-- lock, plus a rate per address over all e-mails (one address guessing
-- many accounts). Nothing is kept per account alone: the owner of an
-- account, at another address, logs in at once. docs/protocol.md
-- (auth.login) gives the rules to users.
--
-- The daemon's statements do not change: auth_login_begin still receives
-- (e-mail, address, policy.login_max_failures, policy.login_lockout), and
-- both values keep their names with a new meaning:
--   login_max_failures  failures of a pair that cost nothing; the next
--                       ones each wait 2 s, 4 s, 8 s ... after the last
--                       failure of the pair, at most login_lockout. A pair
--                       forgets its failures after a day, or at once when
--                       the right password is given from that address.
--   login_lockout       the longest delay, and the window of the address
--                       rate: at most 10 x login_max_failures failures
--                       from one address within login_lockout.

-- Pair lookups and deletes (the old (email, at) index served the per
-- e-mail count and the delete of an e-mail's failures, both gone).
CREATE INDEX login_failures_pair ON login_failures (email, client_addr, at);
DROP INDEX login_failures_email;
-- auth_login_failure prunes rows older than 7 days on every failure; without
-- an index on at that is a full scan of the table, which is at its largest
-- precisely while someone is guessing.
CREATE INDEX login_failures_at ON login_failures (at);

-- Step 1 of auth.login (and of auth.change_password): may this address try
-- this e-mail now? If not, 'locked' with the seconds to wait; if so, the
-- stored hash (NULL for an unknown or disabled account, which the daemon
-- verifies against a dummy hash so both cases take the same time and give
-- the same answer). The daemon runs one attempt per e-mail and per address
-- at a time, so the counts it sees are never behind.
CREATE OR REPLACE FUNCTION auth_login_begin(p_email text, p_addr text,
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

-- p_new_hash, when not NULL, replaces a hash made at an older cost. Only
-- this address's failures for the account are forgotten: a login of the
-- owner must not reset the delay of someone guessing from elsewhere.
CREATE OR REPLACE FUNCTION auth_login_success(p_user_id bigint,
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

-- auth.change_password, step 1: the caller's e-mail, for the daemon to
-- throttle the check of the old password like a login (auth_login_begin
-- then gives the stored hash).
CREATE OR REPLACE FUNCTION auth_password_hash(p_token text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
BEGIN
    RETURN jsonb_build_object('email', u.email,
                              'password_hash', u.password_hash);
END $$;

-- Step 2: store the new hash; other sessions of the user end; the right
-- old password from this address clears its failures, as a login does.
CREATE OR REPLACE FUNCTION auth_set_password(p_token text, p_old_hash text,
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
