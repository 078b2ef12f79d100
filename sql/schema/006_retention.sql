-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
CREATE INDEX beneficiaries_retention ON beneficiaries (last_activity_at)
    WHERE erased_at IS NULL;
