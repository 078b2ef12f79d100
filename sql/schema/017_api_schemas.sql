-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 17: the schemas of sql/api. Tables stay in public;
-- sql/api puts its helpers in core and the daemon's entry points in api
-- (core.privileges_apply() says who may use what).
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS api;

-- A database made before sql/api has this default calling
-- public.draw_random_seed(), which the move to core drops: the same
-- expression with built-ins only (as schema 10 now writes it).
ALTER TABLE permanences ALTER COLUMN draw_secret SET DEFAULT
    encode(sha256(decode(replace(gen_random_uuid()::text
        || gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
        'hex')), 'hex');
