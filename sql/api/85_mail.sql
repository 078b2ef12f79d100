-- E-mail (docs/mail.md): the outbox every message goes through.
-- Composing messages (who gets what, when) and sending them (the daemon's
-- sender, daemon/mail.c) both go through mail_outbox (sql/schema/021).

-- Queues one message, in the caller's transaction. A message whose
-- dedup_key is already queued is not queued again: returns its id, or
-- NULL when it was a duplicate.
CREATE OR REPLACE FUNCTION core.mail_queue(p_kind text, p_recipient text,
        p_subject text, p_body text, p_dedup_key text,
        p_not_before timestamptz DEFAULT now())
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO mail_outbox (kind, recipient, subject, body, dedup_key,
                             not_before, next_attempt_at)
    VALUES (p_kind, p_recipient, p_subject, p_body, p_dedup_key,
            p_not_before, greatest(p_not_before, now()))
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;

-- ---- The sender (daemon/mail.c; docs/mail.md, "Transport") -------------
--
-- A daemon takes due rows under a lease: the claim moves next_attempt_at
-- to the end of the lease, so no other daemon takes them while it holds
-- them (SKIP LOCKED: two claims at once take different rows), and a
-- daemon that dies holding them only delays them by the lease. The
-- attempt is counted at the claim, so a crash mid-send is an attempt.
-- Answers {items: [{id, kind, recipient, subject, body, created_at,
-- attempts}], backlog: messages neither sent nor given up}.
CREATE OR REPLACE FUNCTION api.mail_claim(p_owner text, p_limit integer,
        p_lease_s integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_items jsonb;
    v_backlog bigint;
BEGIN
    WITH due AS (
        SELECT id FROM mail_outbox
         WHERE sent_at IS NULL AND given_up_at IS NULL
           AND next_attempt_at <= now()
         ORDER BY next_attempt_at, id
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED),
    taken AS (
        UPDATE mail_outbox m
           SET lease_owner = p_owner,
               lease_until = now() + make_interval(secs => p_lease_s),
               next_attempt_at = now() + make_interval(secs => p_lease_s),
               attempts = m.attempts + 1
          FROM due
         WHERE m.id = due.id
        RETURNING m.id, m.kind, m.recipient, m.subject, m.body,
                  m.created_at, m.attempts)
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', id, 'kind', kind, 'recipient', recipient,
               'subject', subject,
               'body', body,
               'created_at', extract(epoch FROM created_at)::bigint,
               'attempts', attempts) ORDER BY id), '[]'::jsonb)
      INTO v_items FROM taken;
    SELECT count(*) INTO v_backlog FROM mail_outbox
     WHERE sent_at IS NULL AND given_up_at IS NULL;
    RETURN jsonb_build_object('items', v_items, 'backlog', v_backlog);
END $$;

-- Records what became of claimed messages: p_results is
-- [{id, ok, permanent, error}]. A message sent is marked sent whoever
-- holds its lease now (it was sent: no one must send it again);
-- lease_owner then says which daemon sent it. A failure
-- is recorded only while the lease is still the caller's: retried after
-- an exponential backoff (retry_min, doubling, at most retry_max), or
-- given up when the relay refused its recipient for good (p_results says
-- permanent: a 5xx answer to RCPT, or an address no relay takes) or when it
-- has waited give_up_after since it was due. Answers the number of
-- messages given up; safe to call again with the same results.
CREATE OR REPLACE FUNCTION api.mail_settle(p_owner text, p_results jsonb,
        p_retry_min_s integer, p_retry_max_s integer,
        p_give_up_after_s integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n_given_up integer;
BEGIN
    UPDATE mail_outbox m
       SET sent_at = now(), lease_owner = p_owner, lease_until = NULL,
           last_error = NULL
      FROM jsonb_array_elements(p_results) r
     WHERE m.id = (r->>'id')::bigint AND (r->>'ok')::boolean
       AND m.sent_at IS NULL;
    WITH failed AS (
    UPDATE mail_outbox m
       SET lease_owner = NULL, lease_until = NULL,
           last_error = left(r->>'error', 500),
           next_attempt_at = now() + make_interval(secs =>
               least(p_retry_max_s::double precision,
                     p_retry_min_s * power(2, least(m.attempts - 1, 30)))),
           given_up_at = CASE
               WHEN coalesce((r->>'permanent')::boolean, false)
                 OR now() >= greatest(m.created_at, m.not_before)
                             + make_interval(secs => p_give_up_after_s)
               THEN now() END
      FROM jsonb_array_elements(p_results) r
     WHERE m.id = (r->>'id')::bigint AND NOT (r->>'ok')::boolean
       AND m.sent_at IS NULL AND m.given_up_at IS NULL
       AND m.lease_owner = p_owner
    RETURNING m.given_up_at)
    SELECT count(*) FILTER (WHERE given_up_at IS NOT NULL)
      INTO n_given_up FROM failed;
    RETURN n_given_up;
END $$;
