-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 23: a late withdrawal is not a no-show
-- (docs/booking-rules.md, "booking.withdraw"; docs/draw.md, rule 1).
--
-- A person who cannot come after the booking deadline (ill, no transport,
-- a family matter) gives the seats back before the show: the booking
-- becomes `withdrawn_late`, which is not live (its seats go back at once,
-- like a cancellation's) and weighs less in the draw's score than a
-- no-show. The reason is a word from a short list, never free text: it
-- may touch on health, and a category is all the score needs
-- (docs/privacy.md).
ALTER TABLE bookings DROP CONSTRAINT bookings_status_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_status_check
    CHECK (status IN ('confirmed', 'cancelled', 'cancelled_by_partner',
                      'attended', 'no_show', 'withdrawn_late'));
ALTER TABLE bookings
    ADD COLUMN withdraw_reason text
        CHECK (withdraw_reason IN ('illness', 'transport', 'family', 'other')),
    -- set by offer.close_attendance for a person the venue saw come in
    -- late, without a scan: attended all the same
    ADD COLUMN arrived_late boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT bookings_withdraw_reason
        CHECK ((status = 'withdrawn_late') = (withdraw_reason IS NOT NULL)),
    ADD CONSTRAINT bookings_arrived_late_attended
        CHECK (NOT arrived_late OR status = 'attended');

-- The draw keeps, on each wish, what its score counted.
ALTER TABLE wishes ADD COLUMN withdrawn_late integer;

-- Reports count late withdrawals (docs/reports.md, `withdrawn_late`): in
-- seats, like no-shows, kept by the same triggers. They were none before
-- this file, so the counters start at zero. report_values() gains the
-- column: CREATE OR REPLACE cannot change its result type, so the old one
-- goes here and sql/api/70_reports.sql defines the new one.
ALTER TABLE report_offers ADD COLUMN withdrawn_late integer NOT NULL DEFAULT 0;
ALTER TABLE report_structure_months
    ADD COLUMN withdrawn_late integer NOT NULL DEFAULT 0;
DROP FUNCTION IF EXISTS core.report_values(report_share[]);
-- What the reports read of late withdrawals from the bookings (a
-- referent's report, or rows by structure over an odd range), beside
-- bookings_report, which holds live bookings only.
CREATE INDEX bookings_report_withdrawn ON bookings (offer_starts_at)
    INCLUDE (offer_id, structure_id, seats)
    WHERE status = 'withdrawn_late';
