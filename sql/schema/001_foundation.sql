-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 1: users, sessions, login throttling and the helpers
-- every API function shares. Applied by `strapontind --migrate` in one
-- transaction.

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL UNIQUE
                  CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    role          text NOT NULL CHECK (role IN ('admin', 'partner', 'referent')),
    partner_id    bigint,
    structure_id  bigint,
    password_hash text NOT NULL,
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- A partner account belongs to exactly one partner, a referent to
    -- exactly one structure, an admin to neither.
    CHECK ((role = 'partner') = (partner_id IS NOT NULL)),
    CHECK ((role = 'referent') = (structure_id IS NOT NULL))
);

-- Tokens are stored only as the hex SHA-256 of the 256-bit secret.
CREATE TABLE tokens (
    token_hash  text PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    user_id     bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    client_addr text,
    via         text NOT NULL DEFAULT 'password'
                CHECK (via IN ('password', 'certificate'))
);
CREATE INDEX tokens_live_by_user ON tokens (user_id) WHERE revoked_at IS NULL;

CREATE TABLE login_failures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text NOT NULL,
    client_addr text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_email ON login_failures (email, at);
CREATE INDEX login_failures_addr ON login_failures (client_addr, at);
