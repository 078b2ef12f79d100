-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 32: the e-mail notices a member of staff turned off
-- (docs/mail.md, "Turning notices off").
--
-- Staff choose which notices they receive: a referent who reads the desk
-- every morning needs no digest, a venue with a box office no guest list.
-- The list holds what is turned off, so that everyone receives every
-- notice until they say otherwise, and a kind added later reaches them
-- too. Which kinds a role may turn off is the API's rule
-- (core.mail_kinds, sql/api/10_auth.sql); this check only keeps out what
-- is no staff notice at all (a beneficiary's voucher and reminder follow
-- their consent, never this list).
ALTER TABLE users ADD COLUMN mail_off text[] NOT NULL DEFAULT '{}'
    CONSTRAINT users_mail_off_kinds CHECK (
        array_position(mail_off, NULL) IS NULL
        AND mail_off <@ ARRAY['referent_digest', 'offer_cancelled',
                              'offer_moved', 'hold_expiring', 'guest_list',
                              'attendance_to_close']::text[]);
