-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 5: activity reports for funders (docs/reports.md).
-- The definitions, for a funder, are in docs/reports.md; how fast this is on
-- a network of the largest real size, in docs/BENCHMARKS.md.
--
-- A year of the largest network is about 350,000 bookings. Counting them
-- again for each report, distinct people included, takes seconds, so what a
-- report needs is kept current by triggers, in the transaction of the change
-- it follows:
--
--   * bookings.offer_starts_at: a copy of its offer's start, so that the
--     live bookings of a time range are one range of one covering index
--     (bookings_report);
--   * bookings.report_flags: which "first" this booking is, among its
--     person's attended outings (the bits are listed below). Distinct people then
--     add up: the people who went out in March are the March bookings
--     flagged "first of the month";
--   * report_offers: per offer, its start, partner, category, seats
--     offered, and the sums of its bookings' seats and flags;
--   * report_structure_months: the same sums per structure and calendar
--     month.
--
-- A calendar year or month (Europe/Paris) of the whole network, the admin's
-- yearly report, reads only the two summary tables: some 50,000 rows a year
-- instead of 350,000 bookings and their distinct people. Any other range,
-- and the scoped reports of a partner or a referent (a few thousand
-- bookings at most), are computed from the bookings themselves, through
-- their indexes.
--
-- Every counter is a plain sum over bookings of a function of the booking's
-- own row (status, seats, flags, offer, structure, offer_starts_at), so a
-- statement-level trigger keeps it by adding the new rows' share and taking
-- out the old rows'. Flags depend on a person's other outings: whenever a
-- booking becomes or stops being attended, or an attended one moves in
-- time, partner or category, the person's flags are recomputed under a
-- per-person lock (report_refresh_person), and the shares of the flags that
-- changed are added with the rest, in one batch (report_apply).
-- report_rebuild() recomputes it all from scratch; report_check() says
-- whether what is kept equals that.
--
-- The locking argument assumes READ COMMITTED, the daemon's level: each
-- statement of a trigger function sees what committed before it started.

-- Flag bits of bookings.report_flags. A booking has flags only while it is
-- attended; among a person's attended bookings, ordered by their offer's
-- start then booking id, it is the first ...
--     1  of its calendar month            8  of its calendar year
--     2  ... of that month at its partner 16 ... of that year at its partner
--     4  ... of that month in its category 32 ... of that year in its category
--    64  ever (the person's first outing)

ALTER TABLE bookings ADD COLUMN offer_starts_at timestamptz,
                     ADD COLUMN report_flags smallint NOT NULL DEFAULT 0;
UPDATE bookings bk SET offer_starts_at = o.starts_at
  FROM offers o WHERE o.id = bk.offer_id;
ALTER TABLE bookings ALTER COLUMN offer_starts_at SET NOT NULL;

-- Live bookings only: nothing else enters a report.
CREATE INDEX bookings_report ON bookings (offer_starts_at)
    INCLUDE (offer_id, structure_id, beneficiary_id, seats, status, report_flags)
    WHERE status IN ('confirmed', 'attended', 'no_show');

-- Counters are integers (an offer has at most 100,000 seats; a structure
-- books far fewer in a month): sums over them then run on 64-bit integers,
-- not on numerics, several times faster.
CREATE TABLE report_offers (
    offer_id          bigint PRIMARY KEY REFERENCES offers,
    starts_at         timestamptz NOT NULL,
    partner_id        bigint NOT NULL,
    category          text NOT NULL,
    seats_offered     integer NOT NULL,   -- seats_total, 0 once cancelled
    seats_booked      integer NOT NULL DEFAULT 0,
    seats_attended    integer NOT NULL DEFAULT 0,
    no_shows          integer NOT NULL DEFAULT 0,
    first_timers      integer NOT NULL DEFAULT 0,
    people_m          integer NOT NULL DEFAULT 0,   -- flag 1
    people_m_partner  integer NOT NULL DEFAULT 0,   -- flag 2
    people_m_category integer NOT NULL DEFAULT 0,   -- flag 4
    people_y          integer NOT NULL DEFAULT 0,   -- flag 8
    people_y_partner  integer NOT NULL DEFAULT 0,   -- flag 16
    people_y_category integer NOT NULL DEFAULT 0    -- flag 32
);
CREATE INDEX report_offers_starts ON report_offers (starts_at);
CREATE INDEX report_offers_partner ON report_offers (partner_id, starts_at);

CREATE TABLE report_structure_months (
    structure_id   bigint NOT NULL REFERENCES structures,
    month          date NOT NULL,      -- report_month() of the offers' start
    seats_booked   integer NOT NULL DEFAULT 0,
    seats_attended integer NOT NULL DEFAULT 0,
    no_shows       integer NOT NULL DEFAULT 0,
    first_timers   integer NOT NULL DEFAULT 0,
    people_m       integer NOT NULL DEFAULT 0,    -- flag 1
    people_y       integer NOT NULL DEFAULT 0,    -- flag 8
    PRIMARY KEY (structure_id, month)
);
CREATE INDEX report_structure_months_month ON report_structure_months (month);

-- The share of one booking row in the counters.
CREATE TYPE report_share AS (
    sign           integer,      -- +1 a row that is, -1 a row that was
    offer_id       bigint,
    structure_id   bigint,
    offer_starts_at timestamptz,
    status         text,
    seats          integer,
    report_flags   smallint
);
