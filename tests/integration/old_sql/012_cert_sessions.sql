-- strapontin schema 12: ending the sessions opened by client certificate.
--
-- A connection that logs in by its client certificate gets a token of its
-- own, never shown to the client (auth_cert_login: tokens.via =
-- 'certificate'). Whether that certificate is good is the daemon's
-- judgement at the handshake, against tls.client_ca and tls.client_crl;
-- when those change on SIGHUP, the sessions they let in must not outlive
-- them (docs/operations.md). A password session is not touched: its token
-- says nothing about a certificate.
--
-- Revoking goes through revoked_at, so the tokens_revoked trigger tells
-- every daemon (session.revoked: no more events), and the next request of
-- such a connection answers "unauthenticated".

-- Live certificate sessions, for the revocation below and for operators.
CREATE INDEX tokens_live_by_certificate ON tokens (created_at)
    WHERE via = 'certificate' AND revoked_at IS NULL;

-- Revokes the live certificate sessions among p_token_hashes (a daemon
-- names those of its own connections), or all of them if NULL (from psql,
-- after a client CA was compromised, say). Returns the hashes revoked, so
-- the caller can close the matching connections.
CREATE FUNCTION auth_revoke_cert_sessions(p_token_hashes text[] DEFAULT NULL)
RETURNS SETOF text LANGUAGE sql AS $$
    UPDATE tokens SET revoked_at = now()
     WHERE via = 'certificate' AND revoked_at IS NULL
       AND expires_at > now()
       AND (p_token_hashes IS NULL OR token_hash = ANY (p_token_hashes))
    RETURNING token_hash
$$;
