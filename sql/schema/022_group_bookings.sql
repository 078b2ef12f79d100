-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 22: group outings (docs/booking-rules.md, "Group
-- outings").
--
-- A referent takes a group out: several people it follows, each with
-- their companions, and one or two staff members. Each person keeps a
-- booking of their own (their outing, for caps, fairness and reports); the
-- group row ties them together and holds the staff seats, which take seats
-- of the offer but are nobody's outing. The partner chooses on the offer
-- whether the group's code admits everyone at the door ('group') or only
-- its staff, each person showing their own code ('person').

ALTER TABLE offers
    ADD COLUMN group_codes text NOT NULL DEFAULT 'person'
        CHECK (group_codes IN ('group', 'person'));

CREATE TABLE booking_groups (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    offer_id      bigint NOT NULL REFERENCES offers,
    structure_id  bigint NOT NULL REFERENCES structures,
    staff_seats   integer NOT NULL CHECK (staff_seats BETWEEN 0 AND 20),
    -- the group's ticket code, of the same alphabet as bookings.code
    code          text NOT NULL UNIQUE CHECK (code ~ '^[0-9A-HJKMNP-TV-Z]{16}$'),
    -- 'confirmed' while its staff seats are held (counted in
    -- offers.seats_taken); cancelled by the referent, or with the offer
    status        text NOT NULL DEFAULT 'confirmed'
                  CHECK (status IN ('confirmed', 'cancelled', 'cancelled_by_partner')),
    created_by    bigint REFERENCES users,
    created_at    timestamptz NOT NULL DEFAULT now(),
    cancelled_at  timestamptz,
    checked_in_at timestamptz
);
CREATE INDEX booking_groups_offer ON booking_groups (offer_id, status);
CREATE INDEX booking_groups_structure ON booking_groups (structure_id, id);

ALTER TABLE bookings ADD COLUMN group_id bigint REFERENCES booking_groups;
CREATE INDEX bookings_group ON bookings (group_id) WHERE group_id IS NOT NULL;
