-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 25: recurring offers (docs/series.md).
--
-- Gardens every Wednesday, a season of Sunday matches: offer.publish_series
-- records the rule once and publishes one ordinary offer per date, each
-- naming its series. Every offer stays a whole offer (its own seats,
-- bookings, waiting list, cancellation); the series only says which offers
-- "this and the following" reaches: those of the same series starting at
-- or after the one named.
CREATE TABLE offer_series (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id  bigint NOT NULL REFERENCES partners,
    weekday     text NOT NULL CHECK (weekday IN ('monday', 'tuesday',
                'wednesday', 'thursday', 'friday', 'saturday', 'sunday')),
    nth         integer CHECK (nth BETWEEN -1 AND 5 AND nth <> 0), -- NULL: every week
    start_time  time NOT NULL,
    end_time    time,
    from_date   date NOT NULL,
    count       integer CHECK (count BETWEEN 1 AND 120),
    until_date  date,
    -- the wall clock of start_time and end_time
    timezone    text NOT NULL DEFAULT 'Europe/Paris',
    created_by  bigint REFERENCES users,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((count IS NULL) <> (until_date IS NULL))
);

ALTER TABLE offers ADD COLUMN series_id bigint REFERENCES offer_series;
CREATE INDEX offers_series ON offers (series_id, starts_at)
    WHERE series_id IS NOT NULL;
