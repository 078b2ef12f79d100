-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 15: the draw, set-based (docs/draw.md).
--
-- The draw of schema 4 took each wish in turn and booked through the
-- booking path: per booking an INSERT firing two row triggers (seat
-- counting, the offer's start for reports), an UPDATE of the person, a
-- booking.created event, and per choice booking_refusal()'s queries. For
-- 10,000 wishes that was 18 s, with every offer concerned locked all along.
--
-- Now the same rules, in three steps:
--   1. one query computes every wish's score, lottery key and order, and
--      for each of its choices the refusals that do not depend on the draw
--      itself (cancelled offer, deadline, party size, duplicate, caps);
--   2. a loop over that result, in draw order, hands out seats from arrays
--      in memory (block first, then the pool): only the seats left depend
--      on the wishes before;
--   3. one INSERT of all the bookings, one UPDATE of the wishes, one of the
--      people's activity, seat counting once per statement.
-- The caps and duplicates of step 1 cannot change during the draw: a
-- person has one live wish per permanence, which gets at most one booking,
-- so the draw's own bookings only ever count against the person who got
-- them, after their wish is settled. The result is the same table as the
-- schema 4 draw for the same seed (tests/integration/itest_draw_set.c
-- checks it against that function, read from sql/004).
--
-- Locks, as before and in the order of sql/004: the permanence, the people
-- who wished (id order), then the offers concerned (id order), all taken
-- at the start and held to the commit. booking_make takes a person then an
-- offer, which fits; other bookings of those offers wait for the draw's
-- commit, that is at most the draw's own duration.
DROP TRIGGER IF EXISTS bookings_count_seats ON bookings;

-- A path that inserts many bookings copies their offer's start itself,
-- from the offers it holds locked (the draw): no query per booking. The
-- others leave it to this trigger.
DROP TRIGGER IF EXISTS report_booking_starts ON bookings;

-------------------------------------------------------------------- draw

-- A draw's stored answer is a few megabytes for 10,000 wishes: lz4
-- compresses it several times faster than the default pglz, where the
-- server has it.
DO $$
BEGIN
    ALTER TABLE permanences ALTER COLUMN draw_result SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END $$;

-- The draw (docs/draw.md), in one transaction, with the seed drawn at
-- scheduling (sql/010), revealed now. Rules and answer as schema 4's:
--  1. score = attended + no_show_weight * no_show bookings of the
--     beneficiary over offers starting in [starts_at - window, starts_at),
--     the window being history_window_days * 24 hours; lower goes first;
--  2. ties by draw_key(seed, beneficiary_id), ascending byte by byte
--     (COLLATE "C"; then by id, which a SHA-256 collision would need);
--  3. in that order each wish gets its best-ranked choice that passes the
--     rules of booking.create (booking_refusal, in its order) with this
--     permanence's unclaimed block seats counted as available, block
--     first, pool for the rest.
-- A wish that gets nothing carries the reason its first choice was refused.
-- Wishes of erased beneficiaries are left out.
-- Events: one offer.seats_changed and one booking.created per offer that
-- got bookings, the latter a summary of the draw's bookings of that offer
-- (docs/draw.md), not one event per booking. One audit row for the draw.
DROP FUNCTION IF EXISTS api.permanence_draw(text, jsonb, text, jsonb);
DROP FUNCTION IF EXISTS core.permanence_draw_with_seed(text, jsonb, text, jsonb);
-- where a database made before sql/api had it
DROP FUNCTION IF EXISTS public.permanence_draw_with_seed(text, jsonb, text, jsonb);
