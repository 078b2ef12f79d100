-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 30: what e-mail says, and to whom (docs/mail.md).
--
-- The messages to a beneficiary (their voucher, the reminder the day
-- before) go to their own address. When the person is erased, or takes
-- back the address or the consent, those messages go from the outbox
-- (docs/privacy.md): this index finds them by address, without reading
-- the whole outbox.
CREATE INDEX mail_outbox_person ON mail_outbox (recipient)
    WHERE kind IN ('voucher', 'reminder');
