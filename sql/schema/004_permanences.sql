-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 4: permanences - a structure's drop-ins, the seats set
-- aside for them (blocks), the wishes made there, the draw and the claims.
--
-- Seat accounting (docs/booking-rules.md invariant 1), extended from schema 2. offers.seats_taken
-- is the sum of
--   * for each live booking (confirmed, attended, no_show): its seats that
--     came from the common pool, seats - block_seats;
--   * for each block not yet returned: all its seats, claimed or not;
--   * for each returned block (its permanence closed): its claimed seats.
-- A block's `claimed` is the block_seats of the live bookings made from it.
-- Hence seats_taken = seats of live bookings + unclaimed seats of blocks of
-- permanences not closed, which is exactly invariant 1 of docs/booking-rules.md, and the CHECK
-- offers_no_overbooking of schema 2 refuses anything beyond seats_total.
-- A seat moving from a block to a booking (claim, draw) changes nothing in
-- seats_taken, and every step of every change only adds or only removes, so
-- no intermediate state of a statement trips the CHECK.
--
-- A booking made from a block and cancelled while its permanence is not
-- closed gives its block seats back to the block (the desk can hand them out
-- again); once the permanence is closed they go to the common pool like any
-- other seat, and booking.cancel serves the waitlist with them.
--
-- Locks, in the one order every path takes: the permanence row, then
-- beneficiaries (in id order when several), then offers (in id order when
-- several), then bookings and blocks. booking_make (schema 3) takes
-- beneficiary then offer, which fits. A block row is only ever changed with
-- its offer's row lock held.

CREATE TABLE permanence_series (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    structure_id bigint NOT NULL REFERENCES structures,
    weekday      text NOT NULL CHECK (weekday IN ('monday', 'tuesday',
                 'wednesday', 'thursday', 'friday', 'saturday', 'sunday')),
    nth          integer NOT NULL CHECK (nth BETWEEN 1 AND 5 OR nth = -1),
    start_time   time NOT NULL,
    end_time     time NOT NULL CHECK (end_time > start_time),
    from_date    date NOT NULL,
    count        integer NOT NULL CHECK (count BETWEEN 1 AND 120),
    timezone     text NOT NULL,
    created_by   bigint REFERENCES users,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE permanences (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    structure_id bigint NOT NULL REFERENCES structures,
    series_id    bigint REFERENCES permanence_series,
    title        text NOT NULL DEFAULT 'Permanence'
                 CHECK (length(title) BETWEEN 1 AND 200),
    location     text CHECK (length(location) BETWEEN 1 AND 200),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
    state        text NOT NULL DEFAULT 'scheduled'
                 CHECK (state IN ('scheduled', 'open', 'drawn', 'closed')),
    opened_at    timestamptz,
    closed_at    timestamptz,
    -- The draw: its seed, when, and the whole answer (a second draw answers
    -- it again). Kept after closing.
    draw_seed    text,
    drawn_at     timestamptz,
    draw_result  jsonb,
    created_by   bigint REFERENCES users,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((draw_result IS NULL) = (drawn_at IS NULL)
           AND (draw_result IS NULL) = (draw_seed IS NULL)),
    CHECK (state <> 'drawn' OR draw_result IS NOT NULL),
    CHECK ((state = 'closed') = (closed_at IS NOT NULL))
);
CREATE INDEX permanences_structure ON permanences (structure_id, starts_at, id);
CREATE INDEX permanences_starts ON permanences (starts_at, id);

-- Seats of one offer set aside for one permanence. `seats` counts the seats
-- set aside, claimed ones included; `claimed` is kept by the bookings
-- trigger; `returned_at` is set when the permanence closes and the unclaimed
-- seats go back to the common pool.
CREATE TABLE permanence_blocks (
    permanence_id bigint NOT NULL REFERENCES permanences,
    offer_id      bigint NOT NULL REFERENCES offers,
    seats         integer NOT NULL CHECK (seats BETWEEN 0 AND 100000),
    claimed       integer NOT NULL DEFAULT 0,
    returned_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (permanence_id, offer_id),
    CHECK (claimed >= 0 AND claimed <= seats)
);
CREATE INDEX permanence_blocks_offer ON permanence_blocks (offer_id);

-- Bookings made at a permanence (by its draw or a claim) name it, and say
-- how many of their seats came from its block.
ALTER TABLE bookings
    ADD COLUMN permanence_id bigint REFERENCES permanences,
    ADD COLUMN block_seats integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT bookings_block_seats
        CHECK (block_seats >= 0 AND block_seats <= seats
               AND (block_seats = 0 OR permanence_id IS NOT NULL));
CREATE INDEX bookings_permanence ON bookings (permanence_id)
    WHERE permanence_id IS NOT NULL;

-- A beneficiary's ranked choices at a permanence. A new wish replaces the
-- old one (kept, with replaced_at, for the record). The draw writes its
-- outcome on each live wish.
CREATE TABLE wishes (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    permanence_id  bigint NOT NULL REFERENCES permanences,
    beneficiary_id bigint NOT NULL REFERENCES beneficiaries,
    choices        bigint[] NOT NULL
                   CHECK (cardinality(choices) BETWEEN 1 AND 3
                          AND array_position(choices, NULL) IS NULL),
    seats          integer NOT NULL CHECK (seats BETWEEN 1 AND 100),
    created_by     bigint REFERENCES users,
    created_at     timestamptz NOT NULL DEFAULT now(),
    replaced_at    timestamptz,
    draw_position  integer,
    attended       integer,
    no_shows       integer,
    score          numeric,
    lottery_key    text,
    granted_rank   integer CHECK (granted_rank BETWEEN 1 AND 3),
    booking_id     bigint REFERENCES bookings,
    reason         text
);
CREATE UNIQUE INDEX wishes_one_live ON wishes (permanence_id, beneficiary_id)
    WHERE replaced_at IS NULL;
CREATE INDEX wishes_beneficiary ON wishes (beneficiary_id);
DROP TRIGGER IF EXISTS bookings_count_seats ON bookings;
