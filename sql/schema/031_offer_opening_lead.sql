-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 31: a targeted offer's opening relative to its show
-- (docs/booking-rules.md, "Targeted offers").
--
-- "Open to everyone 72 hours before the show": an instant cannot say it
-- for a series (one instant for every date), nor follow the show when it
-- is moved. The lead is kept with the offer; opens_to_all_at stays the
-- effective instant every reader uses (the catalogue, bookings, the
-- opening sweep), and these constraints keep the two in step on every
-- write.
ALTER TABLE offers
    -- hours before starts_at at which a targeted offer opens to everyone
    -- (NULL: no lead; opens_to_all_at, if any, is then an instant given
    -- as such)
    ADD COLUMN opens_to_all_hours integer,
    ADD CONSTRAINT offers_opens_hours_range
        CHECK (opens_to_all_hours BETWEEN 1 AND 2160),
    ADD CONSTRAINT offers_opens_hours_targeted
        CHECK (opens_to_all_hours IS NULL
               OR cardinality(target_structure_ids)
                  + cardinality(target_territories) > 0),
    -- the instant is the lead's, whatever moved the show
    ADD CONSTRAINT offers_opens_hours_instant
        CHECK (opens_to_all_hours IS NULL
               OR opens_to_all_at IS NOT DISTINCT FROM
                  starts_at - opens_to_all_hours * interval '1 hour'),
    -- an opening after the deadline would open when nobody may book
    ADD CONSTRAINT offers_opens_hours_deadline
        CHECK (opens_to_all_hours IS NULL
               OR opens_to_all_at <= booking_deadline);
