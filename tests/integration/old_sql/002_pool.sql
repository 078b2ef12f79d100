-- strapontin schema 2: the ticket pool. Partners donate offers, structures
-- follow beneficiaries, referents book, venues check in.
--
-- Capacity (docs/booking-rules.md invariant 1) is kept by the database itself: offers.seats_taken
-- and offers.seats_held are maintained by triggers on every row that holds
-- seats, and a CHECK refuses any state where they exceed seats_total,
-- whatever code path or daemon made the change.

CREATE TABLE partners (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind          text NOT NULL CHECK (kind IN ('theatre', 'cinema', 'museum',
                  'heritage', 'concert_hall', 'festival', 'sport', 'library',
                  'other')),
    city          text NOT NULL CHECK (length(city) BETWEEN 1 AND 200),
    contact_email text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE structures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('mds', 'centre_social', 'ccas',
                'association', 'housing', 'other')),
    territory   text NOT NULL CHECK (length(territory) BETWEEN 1 AND 200),
    city        text NOT NULL CHECK (length(city) BETWEEN 1 AND 200),
    timezone    text NOT NULL DEFAULT 'Europe/Paris',
    created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE users
    ADD FOREIGN KEY (partner_id) REFERENCES partners,
    ADD FOREIGN KEY (structure_id) REFERENCES structures;
CREATE INDEX users_partner ON users (partner_id) WHERE partner_id IS NOT NULL;
CREATE INDEX users_structure ON users (structure_id) WHERE structure_id IS NOT NULL;

CREATE TABLE beneficiaries (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    structure_id   bigint NOT NULL REFERENCES structures,
    first_name     text CHECK (length(first_name) BETWEEN 1 AND 100),
    last_name      text CHECK (length(last_name) BETWEEN 1 AND 100),
    birth_year     integer CHECK (birth_year BETWEEN 1900 AND 2100),
    household_size integer CHECK (household_size BETWEEN 1 AND 30),
    postal_code    text CHECK (postal_code ~ '^[0-9A-Za-z -]{2,10}$'),
    consent_at     timestamptz NOT NULL,
    created_by     bigint REFERENCES users,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    erased_at      timestamptz,
    -- Names are there until the person is erased, and gone after.
    CHECK ((erased_at IS NULL) = (first_name IS NOT NULL AND last_name IS NOT NULL))
);
CREATE INDEX beneficiaries_structure ON beneficiaries (structure_id, id);

CREATE TABLE offers (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id       bigint NOT NULL REFERENCES partners,
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    category         text NOT NULL CHECK (category IN ('show', 'concert',
                     'cinema', 'heritage', 'museum', 'sport', 'festival',
                     'workshop', 'other')),
    venue            text NOT NULL CHECK (length(venue) BETWEEN 1 AND 200),
    city             text NOT NULL CHECK (length(city) BETWEEN 1 AND 200),
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz CHECK (ends_at > starts_at),
    seats_total      integer NOT NULL CHECK (seats_total BETWEEN 1 AND 100000),
    seats_taken      integer NOT NULL DEFAULT 0,   -- live bookings + open blocks
    seats_held       integer NOT NULL DEFAULT 0,   -- offered to the waitlist
    max_per_booking  integer NOT NULL DEFAULT 4 CHECK (max_per_booking BETWEEN 1 AND 100),
    booking_deadline timestamptz NOT NULL CHECK (booking_deadline <= starts_at),
    delivery         text NOT NULL DEFAULT 'guest_list'
                     CHECK (delivery IN ('guest_list', 'e_ticket', 'pickup')),
    description      text,
    accessibility    text,
    status           text NOT NULL DEFAULT 'published'
                     CHECK (status IN ('published', 'cancelled')),
    cancel_reason    text,
    cancelled_at     timestamptz,
    attendance_closed_at timestamptz,
    created_by       bigint REFERENCES users,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT offers_no_overbooking
        CHECK (seats_taken >= 0 AND seats_held >= 0
               AND seats_taken + seats_held <= seats_total)
);
CREATE INDEX offers_starts ON offers (starts_at, id);
CREATE INDEX offers_partner ON offers (partner_id, starts_at);

CREATE TABLE bookings (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    offer_id       bigint NOT NULL REFERENCES offers,
    beneficiary_id bigint NOT NULL REFERENCES beneficiaries,
    structure_id   bigint NOT NULL REFERENCES structures,
    seats          integer NOT NULL CHECK (seats BETWEEN 1 AND 100),
    code           text NOT NULL UNIQUE CHECK (code ~ '^[0-9A-HJKMNP-TV-Z]{16}$'),
    status         text NOT NULL DEFAULT 'confirmed'
                   CHECK (status IN ('confirmed', 'cancelled',
                   'cancelled_by_partner', 'attended', 'no_show')),
    source         text NOT NULL DEFAULT 'direct'
                   CHECK (source IN ('direct', 'waitlist', 'draw', 'claim')),
    created_by     bigint REFERENCES users,
    created_at     timestamptz NOT NULL DEFAULT now(),
    cancelled_at   timestamptz,
    checked_in_at  timestamptz,
    CHECK ((status = 'attended') = (checked_in_at IS NOT NULL))
);
-- docs/booking-rules.md invariant 4: one live booking per beneficiary and offer.
CREATE UNIQUE INDEX bookings_one_live
    ON bookings (offer_id, beneficiary_id)
    WHERE status IN ('confirmed', 'attended', 'no_show');
CREATE INDEX bookings_beneficiary ON bookings (beneficiary_id, created_at);
CREATE INDEX bookings_offer ON bookings (offer_id, status);
CREATE INDEX bookings_structure ON bookings (structure_id, id);

CREATE TABLE waitlist_entries (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    offer_id       bigint NOT NULL REFERENCES offers,
    beneficiary_id bigint NOT NULL REFERENCES beneficiaries,
    structure_id   bigint NOT NULL REFERENCES structures,
    seats          integer NOT NULL CHECK (seats BETWEEN 1 AND 100),
    status         text NOT NULL DEFAULT 'waiting'
                   CHECK (status IN ('waiting', 'offered', 'accepted',
                   'expired', 'left', 'cancelled')),
    created_by     bigint REFERENCES users,
    created_at     timestamptz NOT NULL DEFAULT now(),
    offered_at     timestamptz,
    expires_at     timestamptz,
    ended_at       timestamptz,
    booking_id     bigint REFERENCES bookings,
    CHECK (status <> 'offered' OR (expires_at IS NOT NULL AND ended_at IS NULL))
);
CREATE UNIQUE INDEX waitlist_one_active
    ON waitlist_entries (offer_id, beneficiary_id)
    WHERE status IN ('waiting', 'offered');
CREATE INDEX waitlist_queue ON waitlist_entries (offer_id, id)
    WHERE status = 'waiting';
CREATE INDEX waitlist_due ON waitlist_entries (expires_at)
    WHERE status = 'offered';
CREATE INDEX waitlist_structure ON waitlist_entries (structure_id, id);

CREATE TABLE idempotency_keys (
    user_id    bigint NOT NULL REFERENCES users,
    key        text NOT NULL,
    method     text NOT NULL,
    request    jsonb NOT NULL,     -- the params, less the key: a replay must match
    result     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- Who changed what, when, through which method. Summaries carry ids and
-- counts, never a password, a token or a beneficiary's name.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    user_id     bigint REFERENCES users,
    method      text NOT NULL,
    object_type text NOT NULL,
    object_id   bigint,
    summary     jsonb NOT NULL DEFAULT '{}'::jsonb,
    client_addr text
);
CREATE INDEX audit_at ON audit_log (at, id);
CREATE INDEX audit_user ON audit_log (user_id, at);

-- Seat accounting: the only code that moves seats_taken for bookings.
CREATE FUNCTION bookings_count_seats() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    was integer := 0;
    now_ integer := 0;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status IN ('confirmed', 'attended', 'no_show') THEN
        was := OLD.seats;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status IN ('confirmed', 'attended', 'no_show') THEN
        now_ := NEW.seats;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.offer_id <> NEW.offer_id THEN
        RAISE EXCEPTION 'a booking never moves to another offer';
    END IF;
    IF now_ <> was THEN
        UPDATE offers SET seats_taken = seats_taken + now_ - was
         WHERE id = coalesce(NEW.offer_id, OLD.offer_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bookings_count_seats
    AFTER INSERT OR DELETE OR UPDATE OF status, seats, offer_id ON bookings
    FOR EACH ROW EXECUTE FUNCTION bookings_count_seats();

-- Seats offered to a waitlist entry are held until accepted or expired.
CREATE FUNCTION waitlist_count_held() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    was integer := 0;
    now_ integer := 0;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status = 'offered' THEN
        was := OLD.seats;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'offered' THEN
        now_ := NEW.seats;
    END IF;
    IF now_ <> was THEN
        UPDATE offers SET seats_held = seats_held + now_ - was
         WHERE id = coalesce(NEW.offer_id, OLD.offer_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER waitlist_count_held
    AFTER INSERT OR DELETE OR UPDATE OF status, seats ON waitlist_entries
    FOR EACH ROW EXECUTE FUNCTION waitlist_count_held();
