-- Which of these tokens still open a session. The daemon asks it for its
-- event subscribers when its listener comes back and at a short interval,
-- so a session revoked or expired while a NOTIFY could not reach the
-- daemon still stops its events (docs/protocol.md, events.subscribe).
CREATE FUNCTION auth_tokens_alive(p_hashes text[]) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(t.token_hash), '{}')
      FROM tokens t JOIN users u ON u.id = t.user_id
     WHERE t.token_hash = ANY (p_hashes) AND t.revoked_at IS NULL
       AND t.expires_at > now() AND u.enabled
$$;

-- Statements of the daemon's own (daemon/sqlcall.c) that the runtime role
-- may execute (schema 11): this one, and the revocation a change of client
-- CA calls (schema 12).
INSERT INTO api_entry_points (name)
VALUES ('auth_tokens_alive'), ('auth_revoke_cert_sessions')
ON CONFLICT DO NOTHING;
