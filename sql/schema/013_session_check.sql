-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- Statements of the daemon's own (daemon/sqlcall.c) that the runtime role
-- may execute (schema 11): this one, and the revocation a change of client
-- CA calls (schema 12).
INSERT INTO api_entry_points (name)
VALUES ('auth_tokens_alive'), ('auth_revoke_cert_sessions')
ON CONFLICT DO NOTHING;
