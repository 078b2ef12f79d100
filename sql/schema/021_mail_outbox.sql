-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 21: e-mail (docs/mail.md).
--
-- A message is a row of mail_outbox, written in the same transaction as
-- the change it tells of: a change that rolls back sends nothing, and a
-- change that commits is told even if the relay is down for a day. The
-- daemons' senders take due rows under a lease, send them and mark them
-- sent; several daemons share the table without sending a row twice.

-- A beneficiary may give an e-mail address, and separately consent to
-- reminders (their voucher, a reminder the day before). Without the
-- consent the address is kept for the referent's own use, never written
-- to.
ALTER TABLE beneficiaries
    ADD COLUMN email text
        CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254
               AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    ADD COLUMN reminders_consent_at timestamptz,
    ADD CONSTRAINT beneficiaries_reminders_need_email
        CHECK (reminders_consent_at IS NULL OR email IS NOT NULL),
    -- an erased person keeps no address (docs/privacy.md)
    ADD CONSTRAINT beneficiaries_erased_no_email
        CHECK (erased_at IS NULL OR email IS NULL);

CREATE TABLE mail_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- what it is (docs/mail.md lists them): 'referent_digest',
    -- 'offer_cancelled', 'offer_moved', 'hold_expiring', 'guest_list',
    -- 'attendance_to_close', 'voucher', 'reminder'
    kind            text NOT NULL CHECK (kind ~ '^[a-z_]{1,40}$'),
    -- one message per key: a job run by two daemons at once, or run again
    -- after a crash, queues it once (e.g. 'digest:42:2026-12-05')
    dedup_key       text UNIQUE CHECK (length(dedup_key) BETWEEN 1 AND 200),
    recipient       text NOT NULL CHECK (length(recipient) BETWEEN 3 AND 254),
    subject         text NOT NULL CHECK (length(subject) BETWEEN 1 AND 400),
    body            text NOT NULL,          -- text/plain, UTF-8
    created_at      timestamptz NOT NULL DEFAULT now(),
    not_before      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_owner     text,
    lease_until     timestamptz,
    sent_at         timestamptz,
    given_up_at     timestamptz,
    last_error      text,
    CHECK (sent_at IS NULL OR given_up_at IS NULL)
);
-- what a sender looks for: unsent, not given up, due
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at, id)
    WHERE sent_at IS NULL AND given_up_at IS NULL;
