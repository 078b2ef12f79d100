-- strapontin API, retention: retention of beneficiaries' data.
--
-- Code, not history: every `strapontind --migrate` re-applies all of
-- sql/api/ (in file name order) in one transaction, so each function has
-- exactly one definition, here. CREATE OR REPLACE only; helpers in schema
-- core, the daemon's entry points in schema api (docs/operations.md,
-- "The sql/ tree"). Generated once by the conversion of the numbered
-- migrations; edit freely from now on.

-- strapontin schema 6: retention. policy.retention_months after a
-- beneficiary's last activity, the daemon anonymises them by itself:
-- names and personal fields wiped for good, upcoming seats given back,
-- past bookings kept (anonymous) for the statistics.
--
-- Last activity is the latest of: the record's own activity (created,
-- updated, booked, checked in, waitlisted) and the start of the latest
-- offer the person held a booking for - a booking made in January for a
-- December concert keeps the person until December + retention_months.

CREATE OR REPLACE FUNCTION core.beneficiary_last_activity(b beneficiaries) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT greatest(b.last_activity_at,
            (SELECT max(o.starts_at) FROM bookings bk JOIN offers o ON o.id = bk.offer_id
              WHERE bk.beneficiary_id = b.id)));
END $$;

-- Run by every daemon on a timer. Rows another daemon is working on are
-- skipped (SKIP LOCKED) and erased rows are never picked again, so each
-- person is anonymised once, whatever the number of daemons.
CREATE OR REPLACE FUNCTION api.retention_sweep(p_policy jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    months integer := coalesce((p_policy->>'retention_months')::integer, 24);
    cutoff timestamptz := now() - make_interval(months => months);
    b beneficiaries;
    n integer := 0;
BEGIN
    FOR b IN
        SELECT * FROM beneficiaries
         WHERE erased_at IS NULL AND last_activity_at < cutoff
         ORDER BY id LIMIT 200
         FOR UPDATE SKIP LOCKED
    LOOP
        CONTINUE WHEN beneficiary_last_activity(b) >= cutoff;
        PERFORM beneficiary_release(b, p_policy);
        PERFORM beneficiary_wipe(b);
        INSERT INTO audit_log (user_id, method, object_type, object_id, summary)
        VALUES (NULL, 'retention', 'beneficiary', b.id,
                jsonb_build_object('retention_months', months));
        n := n + 1;
    END LOOP;
    -- Housekeeping that needs no hurry: old replays and dead sessions.
    DELETE FROM idempotency_keys WHERE created_at < now() - interval '30 days';
    DELETE FROM tokens WHERE expires_at < now() - interval '1 day';
    -- E-mails, which name people by first name and initial, are kept
    -- policy.mail_keep_days after they were queued, sent or not (a
    -- message still unsent by then is about a day long past), unless a
    -- sender holds it at this moment (docs/privacy.md).
    DELETE FROM mail_outbox
     WHERE created_at < now() - make_interval(days =>
               coalesce((p_policy->>'mail_keep_days')::integer, 30))
       AND (lease_until IS NULL OR lease_until < now()
            OR sent_at IS NOT NULL OR given_up_at IS NOT NULL);
    RETURN n;
END $$;

-- Editing a person's record is activity too.
CREATE OR REPLACE FUNCTION core.beneficiary_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.erased_at IS NULL THEN
        NEW.last_activity_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER beneficiary_touch BEFORE UPDATE OF first_name, last_name,
    birth_year, household_size, postal_code ON beneficiaries
    FOR EACH ROW EXECUTE FUNCTION core.beneficiary_touch();

-- Joining a waitlist is activity.
CREATE OR REPLACE FUNCTION core.waitlist_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE beneficiaries SET last_activity_at = now()
     WHERE id = NEW.beneficiary_id AND last_activity_at < now();
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER waitlist_touch AFTER INSERT ON waitlist_entries
    FOR EACH ROW EXECUTE FUNCTION core.waitlist_touch();
