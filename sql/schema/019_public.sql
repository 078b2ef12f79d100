-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 19: what the public web pages show without a login
-- (docs/protocol.md, "public"): the voucher of a ticket, and a
-- structure's upcoming permanences.
--
-- A voucher names the venue's street address, which offers did not hold
-- (venue and city only): an optional address, given by offer.publish and
-- offer.update. A permanence may say what to bring (notes), shown on the
-- public page and in its calendar.
ALTER TABLE offers
    ADD COLUMN address text CHECK (length(address) BETWEEN 1 AND 300);
ALTER TABLE permanences
    ADD COLUMN notes text CHECK (length(notes) BETWEEN 1 AND 1000);

-- voucher.get is open to anyone who has a code: codes are 75 random bits,
-- so guessing is hopeless, but a flood of guesses still costs the
-- database. Calls are counted per client address and minute (window: the
-- start of the minute); policy.voucher_rate per minute are allowed. Rows
-- of past minutes are deleted by the calls themselves.
CREATE TABLE voucher_hits (
    client_addr text NOT NULL,
    window_at   timestamptz NOT NULL,
    hits        integer NOT NULL DEFAULT 1,
    PRIMARY KEY (client_addr, window_at)
);
CREATE INDEX voucher_hits_window ON voucher_hits (window_at);

-- The calendar of /p/ID.ics is an entry point of another signature
-- (structure id alone), called by the daemon's HTTP side.
INSERT INTO api_entry_points (name) VALUES ('permanence_ics')
    ON CONFLICT DO NOTHING;
