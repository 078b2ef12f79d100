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
