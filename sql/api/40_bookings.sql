-- strapontin API, bookings: bookings and tickets.
--
-- Code, not history: every `strapontind --migrate` re-applies all of
-- sql/api/ (in file name order) in one transaction, so each function has
-- exactly one definition, here. CREATE OR REPLACE only; helpers in schema
-- core, the daemon's entry points in schema api (docs/operations.md,
-- "The sql/ tree"). Generated once by the conversion of the numbered
-- migrations; edit freely from now on.

------------------------------------------------------------ seat triggers

-- Replaces schema 2's version: a live booking counts only its pool seats in
-- offers.seats_taken, and moves its block seats into its block's `claimed`
-- (the block keeps counting them while it is not returned).
CREATE OR REPLACE FUNCTION core.bookings_count_seats() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    was integer := 0;
    now_ integer := 0;
    was_block integer := 0;
    now_block integer := 0;
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.offer_id <> NEW.offer_id
       OR OLD.permanence_id IS DISTINCT FROM NEW.permanence_id
       OR OLD.block_seats <> NEW.block_seats) THEN
        RAISE EXCEPTION 'a booking never moves to another offer, permanence or block';
    END IF;
    IF TG_OP <> 'INSERT' AND OLD.status IN ('confirmed', 'attended', 'no_show') THEN
        was := OLD.seats - OLD.block_seats;
        was_block := OLD.block_seats;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status IN ('confirmed', 'attended', 'no_show') THEN
        now_ := NEW.seats - NEW.block_seats;
        now_block := NEW.block_seats;
    END IF;
    IF now_block <> was_block THEN
        UPDATE permanence_blocks SET claimed = claimed + now_block - was_block,
               updated_at = now()
         WHERE permanence_id = coalesce(NEW.permanence_id, OLD.permanence_id)
           AND offer_id = coalesce(NEW.offer_id, OLD.offer_id);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'booking % took seats from a block that is gone',
                coalesce(NEW.id, OLD.id);
        END IF;
    END IF;
    IF now_ <> was THEN
        UPDATE offers SET seats_taken = seats_taken + now_ - was
         WHERE id = coalesce(NEW.offer_id, OLD.offer_id);
    END IF;
    RETURN NULL;
END $$;

-- Ticket codes: 75 random bits (gen_random_uuid() draws from
-- pg_strong_random, OpenSSL's CSPRNG in Debian's PostgreSQL) written in
-- Crockford's base32 (no I, L, O, U: easy to read aloud over a counter),
-- plus a check character (weighted sum mod 31) that catches a misread or
-- swapped character. Stored as 16 characters, shown as XXXX-XXXX-XXXX-XXXX.
CREATE OR REPLACE FUNCTION core.ticket_alphabet() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0123456789ABCDEFGHJKMNPQRSTVWXYZ' $$;

CREATE OR REPLACE FUNCTION core.ticket_check_char(p_body text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    s integer := 0;
    i integer;
BEGIN
    FOR i IN 1 .. length(p_body) LOOP
        s := s + (strpos(ticket_alphabet(), substr(p_body, i, 1)) - 1) * i;
    END LOOP;
    RETURN substr(ticket_alphabet(), s % 31 + 1, 1);
END $$;

-- One code: ticket_codes() below, which makes them in one expression
-- (the loop over characters this replaced cost more than the booking's
-- INSERT).
CREATE OR REPLACE FUNCTION core.ticket_code() RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (SELECT c FROM ticket_codes(1) c);
END $$;

CREATE OR REPLACE FUNCTION core.ticket_display(p_code text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT substr(p_code, 1, 4) || '-' || substr(p_code, 5, 4) || '-' ||
           substr(p_code, 9, 4) || '-' || substr(p_code, 13, 4)
$$;

-- What a person typed or read: case, dashes and spaces do not matter, and
-- the letters Crockford folds (O as 0, I and L as 1) are folded.
CREATE OR REPLACE FUNCTION core.ticket_normalize(p_input text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT translate(upper(regexp_replace(p_input, '[\s-]', '', 'g')),
                     'OIL', '011')
$$;

CREATE OR REPLACE FUNCTION core.booking_json(bk bookings) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o offers;
BEGIN
    SELECT * INTO o FROM offers WHERE id = bk.offer_id;
    RETURN booking_json_of(bk, o);
END $$;

---------------------------------------------------------------- bookings

-- The policy caps (docs/booking-rules.md invariant 5) this booking would
-- pass: NULL when within them, else the cap's name. p_prior_upcoming and
-- p_prior_month count bookings of the same call not inserted yet.
-- Months are calendar months of the event in the structure's timezone.
-- Both counts read the person's own bookings through their index and the
-- start each booking copies from its offer (offer_starts_at, kept by the
-- offers trigger when a show moves): never a pass over every offer, which
-- a test on the month of each offer's start would need. A person followed
-- by several structures has one set of caps: the bookings of all their
-- records count (person_ids(), docs/privacy.md).
CREATE OR REPLACE FUNCTION core.booking_caps(b beneficiaries, o offers, p_policy jsonb,
                                p_prior_upcoming integer, p_prior_month integer)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    tz text;
    m timestamp;
    ids bigint[] := person_ids(b);
BEGIN
    IF (SELECT count(*) FROM bookings bk
         WHERE bk.beneficiary_id = ANY (ids) AND bk.status = 'confirmed'
           AND bk.offer_starts_at > now()) + p_prior_upcoming
       >= coalesce((p_policy->>'max_upcoming_per_beneficiary')::integer, 2) THEN
        RETURN 'max_upcoming_per_beneficiary';
    END IF;
    tz := (SELECT timezone FROM structures WHERE id = b.structure_id);
    m := date_trunc('month', o.starts_at AT TIME ZONE tz);
    -- No range on offer_starts_at here: the planner would then prefer the
    -- reports' index over a month of everybody's bookings.
    IF (SELECT count(*) FROM bookings bk
         WHERE bk.beneficiary_id = ANY (ids)
           AND bk.status IN ('confirmed', 'attended', 'no_show')
           AND date_trunc('month', bk.offer_starts_at AT TIME ZONE tz) = m) + p_prior_month
       >= coalesce((p_policy->>'max_per_month')::integer, 2) THEN
        RETURN 'max_per_month';
    END IF;
    RETURN NULL;
END $$;

-- (PL/pgSQL, as the wrappers below: its plans are kept per session, where
-- an SQL function that cannot be inlined is planned again at each call.)
CREATE OR REPLACE FUNCTION core.booking_cap_hit(b beneficiaries, o offers, p_policy jsonb)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN booking_caps(b, o, p_policy, 0, 0);
END $$;

-- The rules a new booking must pass (docs/booking-rules.md), in one place
-- for every path: why this beneficiary cannot take p_seats of this offer
-- now (NULL if it can) and, for limit_reached, which cap. p_from_held:
-- seats of the offer held for this booking (a waiting-list offer, a
-- permanence block). The p_prior_* count what requests before this one
-- in the same call took (booking_create_batch(); zero and false on the
-- other paths): a booking of the same pair, upcoming bookings of the
-- beneficiary, its bookings in the offer's month, seats of the offer.
-- Both rows must be locked by the caller (beneficiary first, then offer).
CREATE OR REPLACE FUNCTION core.booking_check(b beneficiaries, o offers, p_seats integer,
                                p_policy jsonb, p_from_held integer,
                                p_prior_dup boolean, p_prior_upcoming integer,
                                p_prior_month integer, p_prior_seats integer,
                                OUT why text, OUT cap text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- An offer kept for other structures is none of this one's, unless
    -- seats of it are held for this booking (given while it was).
    IF p_from_held = 0 AND NOT offer_open_to(o, b.structure_id) THEN
        why := 'not_targeted';
    ELSIF o.status = 'cancelled' THEN
        why := 'offer_cancelled';
    ELSIF now() > o.booking_deadline THEN
        why := 'deadline_passed';
    ELSIF p_prior_dup OR EXISTS (SELECT 1 FROM bookings WHERE offer_id = o.id
                                    AND beneficiary_id = ANY (person_ids(b))
                                    AND status IN ('confirmed', 'attended', 'no_show')) THEN
        why := 'duplicate';
    ELSE
        cap := booking_caps(b, o, p_policy, p_prior_upcoming, p_prior_month);
        IF cap IS NOT NULL THEN
            why := 'limit_reached';
        ELSIF o.seats_total - o.seats_taken - o.seats_held + p_from_held
              - p_prior_seats < p_seats THEN
            why := 'sold_out';
        END IF;
    END IF;
END $$;

-- booking_check() of one request alone.
CREATE OR REPLACE FUNCTION core.booking_refusal(b beneficiaries, o offers, p_seats integer,
                                p_policy jsonb, p_from_held integer)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (booking_check(b, o, p_seats, p_policy, p_from_held, false, 0, 0, 0)).why;
END $$;

-- The single-request path raises the same texts.
CREATE OR REPLACE FUNCTION core.booking_refuse(p_reason text, b beneficiaries, o offers,
                                          p_policy jsonb, p_from_held integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    e jsonb := booking_refusal_error(p_reason,
                   CASE p_reason WHEN 'limit_reached'
                        THEN booking_cap_hit(b, o, p_policy) END,
                   o, o.seats_total - o.seats_taken - o.seats_held + p_from_held,
                   p_policy);
BEGIN
    PERFORM api_error(e->>'reason', e->>'message', coalesce(e->'data', '{}'));
END $$;

CREATE OR REPLACE FUNCTION core.booking_insert(u users, b beneficiaries, o offers,
                               p_seats integer, p_source text)
RETURNS bookings LANGUAGE plpgsql AS $$
DECLARE
    bk bookings;
BEGIN
    INSERT INTO bookings (offer_id, beneficiary_id, structure_id, seats, code,
                          source, created_by)
    VALUES (o.id, b.id, b.structure_id, p_seats, ticket_code(), p_source, u.id)
    RETURNING * INTO bk;
    -- (a day's precision is plenty for a retention counted in months, and
    -- spares a new version of the person's row at each booking)
    UPDATE beneficiaries SET last_activity_at = now()
     WHERE id = b.id AND last_activity_at < now() - interval '1 day';
    PERFORM emit('booking.created', o.partner_id, b.structure_id, booking_json(bk));
    PERFORM emit('offer.seats_changed', o.partner_id, NULL,
                 (SELECT offer_json(x) FROM offers x WHERE x.id = o.id));
    RETURN bk;
END $$;

-- The one way to a booking outside permanences: locks, checks every rule,
-- inserts; the seat triggers and the CHECK on offers do the rest.
CREATE OR REPLACE FUNCTION core.booking_make(u users, p_beneficiary_id bigint, p_offer_id bigint,
                             p_seats integer, p_policy jsonb, p_source text)
RETURNS bookings LANGUAGE plpgsql AS $$
DECLARE
    b beneficiaries := scope_beneficiary(u, p_beneficiary_id, true);
    o offers;
    why text;
BEGIN
    PERFORM person_lock(b);
    SELECT * INTO o FROM offers WHERE id = p_offer_id FOR UPDATE;
    IF NOT FOUND OR NOT offer_open_to(o, b.structure_id) THEN
        PERFORM not_found('offer', 'offer_id');
    END IF;
    IF p_seats > o.max_per_booking THEN
        PERFORM bad_param('seats', format('seats must be from 1 to %s for this offer',
                                          o.max_per_booking));
    END IF;
    why := booking_refusal(b, o, p_seats, p_policy, 0);
    IF why IS NOT NULL THEN
        PERFORM booking_refuse(why, b, o, p_policy, 0);
    END IF;
    RETURN booking_insert(u, b, o, p_seats, p_source);
END $$;

CREATE OR REPLACE FUNCTION api.booking_create(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    k text := p->>'idempotency_key';
    req jsonb := p - 'idempotency_key';
    bk bookings;
    res jsonb;
BEGIN
    res := idem_replay(u, k, 'booking.create', req);
    IF res IS NOT NULL THEN
        RETURN res;
    END IF;
    bk := booking_make(u, (p->>'beneficiary_id')::bigint,
                       (p->>'offer_id')::bigint, (p->>'seats')::integer,
                       p_policy, 'direct');
    res := booking_json(bk);
    PERFORM idem_store(u, k, 'booking.create', req, res);
    PERFORM audit(u, 'booking.create', 'booking', bk.id,
                  jsonb_build_object('offer_id', bk.offer_id, 'seats', bk.seats), p_addr);
    RETURN res;
END $$;

CREATE OR REPLACE FUNCTION api.booking_get(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
BEGIN
    RETURN booking_json(scope_booking(u, (p->>'booking_id')::bigint, false));
END $$;

CREATE OR REPLACE FUNCTION api.booking_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    lim integer := page_limit(p);
    items jsonb;
BEGIN
    SELECT jsonb_agg(booking_json(bk) ORDER BY bk.id) INTO items
      FROM (SELECT bk.* FROM bookings bk JOIN offers o ON o.id = bk.offer_id
             WHERE bk.id > cursor_id(p)
               AND (u.role = 'admin' OR bk.structure_id = u.structure_id)
               AND (p->>'beneficiary_id' IS NULL OR bk.beneficiary_id = (p->>'beneficiary_id')::bigint)
               AND (p->>'offer_id' IS NULL OR bk.offer_id = (p->>'offer_id')::bigint)
               AND (p->>'status' IS NULL OR bk.status = p->>'status')
               AND o.starts_at >= coalesce((p->>'from')::timestamptz, '-infinity')
               AND o.starts_at < coalesce((p->>'to')::timestamptz, 'infinity')
             ORDER BY bk.id LIMIT lim) bk;
    RETURN page(items, lim, items->-1->>'id');
END $$;

-- booking.cancel and booking.withdraw (docs/booking-rules.md): the seats
-- go back (to the permanence's block or to the pool) and the waiting list
-- is served with them. A cancellation is refused after the booking
-- deadline. A withdrawal is taken until the show: after the deadline the
-- booking becomes withdrawn_late with its reason, which the draw counts
-- with policy.withdrawn_late_weight instead of a no-show's weight; before
-- it, nothing is owed and it is a plain cancellation.
CREATE OR REPLACE FUNCTION core.booking_give_back(u users, p jsonb,
        p_withdraw boolean, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    bk bookings := scope_booking(u, (p->>'booking_id')::bigint, false);
    o offers;
    v_late boolean;
BEGIN
    -- offer first, then booking: the order every path takes
    SELECT * INTO o FROM offers WHERE id = bk.offer_id FOR UPDATE;
    SELECT * INTO bk FROM bookings WHERE id = bk.id FOR UPDATE;
    IF bk.status IN ('cancelled', 'cancelled_by_partner', 'withdrawn_late') THEN
        RETURN booking_json(bk);        -- already done: same answer
    END IF;
    IF bk.status IN ('attended', 'no_show') THEN
        PERFORM api_error('already_used', 'This ticket has already been used or closed.');
    END IF;
    IF p_withdraw AND now() >= o.starts_at THEN
        PERFORM api_error('deadline_passed',
            'The show has started: the venue records who came when it closes attendance.',
            jsonb_build_object('starts_at', ts(o.starts_at)));
    ELSIF NOT p_withdraw AND now() > o.booking_deadline THEN
        PERFORM api_error('deadline_passed',
            'The booking deadline has passed; until the show, use booking.withdraw.',
            jsonb_build_object('booking_deadline', ts(o.booking_deadline)));
    END IF;
    v_late := now() > o.booking_deadline;
    UPDATE bookings
       SET status = CASE WHEN v_late THEN 'withdrawn_late' ELSE 'cancelled' END,
           withdraw_reason = CASE WHEN v_late THEN p->>'reason' END,
           cancelled_at = now()
     WHERE id = bk.id RETURNING * INTO bk;
    PERFORM waitlist_serve(o.id, p_policy);
    PERFORM emit('booking.cancelled', o.partner_id, bk.structure_id, booking_json(bk));
    PERFORM emit('offer.seats_changed', o.partner_id, NULL,
                 (SELECT offer_json(x) FROM offers x WHERE x.id = o.id));
    IF p_withdraw THEN
        PERFORM audit(u, 'booking.withdraw', 'booking', bk.id,
                      jsonb_build_object('offer_id', bk.offer_id, 'seats', bk.seats,
                                         'status', bk.status, 'reason', p->>'reason'),
                      p_addr);
    ELSE
        PERFORM audit(u, 'booking.cancel', 'booking', bk.id,
                      jsonb_build_object('offer_id', bk.offer_id, 'seats', bk.seats),
                      p_addr);
    END IF;
    RETURN booking_json(bk);
END $$;

CREATE OR REPLACE FUNCTION api.booking_cancel(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    RETURN booking_give_back(auth_user(p_token), p, false, p_addr, p_policy);
END $$;

CREATE OR REPLACE FUNCTION api.booking_withdraw(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    RETURN booking_give_back(auth_user(p_token), p, true, p_addr, p_policy);
END $$;

------------------------------------------------------------ the door

CREATE OR REPLACE FUNCTION api.ticket_check_in(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    v_code text := ticket_normalize(p->>'code');
    bk bookings;
    o offers;
    b beneficiaries;
BEGIN
    IF v_code !~ '^[0-9A-HJKMNP-TV-Z]{16}$'
       OR ticket_check_char(left(v_code, 15)) <> right(v_code, 1) THEN
        PERFORM api_error('not_found',
            'No ticket has this code; check it for a misread character.',
            jsonb_build_object('field', 'code', 'checksum', false));
    END IF;
    SELECT * INTO bk FROM bookings WHERE bookings.code = v_code FOR UPDATE;
    IF NOT FOUND AND EXISTS (SELECT 1 FROM booking_groups WHERE code = v_code) THEN
        RETURN group_check_in(u, v_code, p, p_addr);   -- a group's code
    END IF;
    IF FOUND THEN
        SELECT * INTO o FROM offers WHERE id = bk.offer_id;
    END IF;
    IF NOT FOUND OR (u.role = 'partner' AND o.partner_id <> u.partner_id) THEN
        PERFORM not_found('ticket', 'code');
    END IF;
    -- At the door of one show, a ticket for another show of the same
    -- venue is refused, and stays valid for its own.
    IF p ? 'offer_id' AND bk.offer_id <> (p->>'offer_id')::bigint THEN
        PERFORM api_error('wrong_offer',
            format('This ticket is for another show: %s, %s.', o.title, ts(o.starts_at)),
            jsonb_build_object('field', 'code', 'booking_offer_id', o.id,
                               'offer_title', o.title, 'starts_at', ts(o.starts_at)));
    END IF;
    IF bk.status = 'attended' THEN
        PERFORM api_error('already_used',
            format('This ticket was checked in at %s.', ts(bk.checked_in_at)),
            jsonb_build_object('checked_in_at', ts(bk.checked_in_at), 'booking_id', bk.id));
    ELSIF bk.status = 'cancelled_by_partner' THEN
        PERFORM api_error('offer_cancelled', 'This offer was cancelled.');
    ELSIF bk.status IN ('cancelled', 'withdrawn_late') THEN
        -- a withdrawn ticket's seats may be someone else's by now
        PERFORM api_error('not_found', 'This ticket was cancelled.',
                          jsonb_build_object('field', 'code', 'status', bk.status));
    END IF;
    -- confirmed, or no_show arriving late after attendance was closed
    UPDATE bookings SET status = 'attended', checked_in_at = now()
     WHERE id = bk.id RETURNING * INTO bk;
    SELECT * INTO b FROM beneficiaries WHERE id = bk.beneficiary_id;
    UPDATE beneficiaries SET last_activity_at = now()
     WHERE id = b.id AND last_activity_at < now() - interval '1 day';
    PERFORM audit(u, 'ticket.check_in', 'booking', bk.id,
                  jsonb_build_object('offer_id', bk.offer_id), p_addr);
    RETURN jsonb_build_object('id', bk.id, 'offer_id', bk.offer_id,
        'offer_title', o.title, 'seats', bk.seats,
        'holder', coalesce(b.first_name || ' ' || left(b.last_name, 1) || '.', '(erased)'),
        'code', ticket_display(bk.code), 'status', bk.status,
        'checked_in_at', ts(bk.checked_in_at));
END $$;

------------------------------------------------------------ seat counting

-- The seats of inserted bookings are counted once per statement: the
-- draw's single INSERT of thousands of bookings makes one UPDATE of each
-- block and of each offer concerned instead of one per booking. Updates
-- and deletions stay counted row by row by bookings_count_seats (sql/004).
-- Every path that inserts bookings holds the offers' row locks.
CREATE OR REPLACE FUNCTION core.bookings_count_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    want integer;
    done integer;
BEGIN
    WITH k AS (
        SELECT permanence_id, offer_id, sum(block_seats)::integer AS seats
          FROM new_rows
         WHERE block_seats > 0 AND status IN ('confirmed', 'attended', 'no_show')
         GROUP BY permanence_id, offer_id
    ), u AS (
        UPDATE permanence_blocks b SET claimed = b.claimed + k.seats,
               updated_at = now()
          FROM k
         WHERE b.permanence_id = k.permanence_id AND b.offer_id = k.offer_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM k), (SELECT count(*) FROM u) INTO want, done;
    IF done <> want THEN
        RAISE EXCEPTION 'bookings took seats from a block that is gone';
    END IF;
    UPDATE offers o SET seats_taken = o.seats_taken + x.seats
      FROM (SELECT offer_id, sum(seats - block_seats)::integer AS seats
              FROM new_rows
             WHERE status IN ('confirmed', 'attended', 'no_show')
             GROUP BY offer_id) x
     WHERE o.id = x.offer_id AND x.seats <> 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER bookings_count_seats
    AFTER DELETE
       OR UPDATE OF status, seats, offer_id, permanence_id, block_seats ON bookings
    FOR EACH ROW EXECUTE FUNCTION core.bookings_count_seats();

CREATE OR REPLACE TRIGGER bookings_count_inserted AFTER INSERT ON bookings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION core.bookings_count_inserted();

-- Ticket codes for n bookings at once (and ticket_code()'s one), without
-- a loop per character: 75 random bits of a v4
-- UUID (its version and variant nibbles skipped), as a 60-bit and a 16-bit
-- number, written 5 bits a character in Crockford's base32, plus the check
-- character (the i-th character's value weighted by i, mod 31).
-- PL/pgSQL, which keeps the query's plan for the session: as a VOLATILE
-- SQL function it could not be inlined and was planned again at every
-- call, its sixteen inlined ticket_char() calls and all, which made it
-- the costliest part of a booking's INSERT.
CREATE OR REPLACE FUNCTION core.ticket_char(v bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT substr(ticket_alphabet(), v::integer + 1, 1)
$$;

CREATE OR REPLACE FUNCTION core.ticket_codes(n integer) RETURNS SETOF text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN QUERY SELECT ticket_char((a >> 55) & 31) ||
           ticket_char((a >> 50) & 31) ||
           ticket_char((a >> 45) & 31) ||
           ticket_char((a >> 40) & 31) ||
           ticket_char((a >> 35) & 31) ||
           ticket_char((a >> 30) & 31) ||
           ticket_char((a >> 25) & 31) ||
           ticket_char((a >> 20) & 31) ||
           ticket_char((a >> 15) & 31) ||
           ticket_char((a >> 10) & 31) ||
           ticket_char((a >> 5) & 31) ||
           ticket_char((a >> 0) & 31) ||
           ticket_char((b >> 11) & 31) ||
           ticket_char((b >> 6) & 31) ||
           ticket_char((b >> 1) & 31) ||
           ticket_char((1 * ((a >> 55) & 31) + 2 * ((a >> 50) & 31) + 3 * ((a >> 45) & 31) +
                 4 * ((a >> 40) & 31) + 5 * ((a >> 35) & 31) + 6 * ((a >> 30) & 31) +
                 7 * ((a >> 25) & 31) + 8 * ((a >> 20) & 31) + 9 * ((a >> 15) & 31) +
                 10 * ((a >> 10) & 31) + 11 * ((a >> 5) & 31) +
                 12 * ((a >> 0) & 31) + 13 * ((b >> 11) & 31) +
                 14 * ((b >> 6) & 31) + 15 * ((b >> 1) & 31)) % 31)
      FROM (SELECT ('x' || substr(x.h, 1, 15))::bit(60)::bigint AS a,
                   ('x' || substr(x.h, 16, 4))::bit(16)::bigint AS b
              FROM (SELECT substr(h, 1, 12) || substr(h, 14, 3) || substr(h, 18) AS h
                      FROM (SELECT replace(gen_random_uuid()::text, '-', '') AS h
                              FROM generate_series(1, n)) r
                    OFFSET 0) x) y;
END $$;

CREATE OR REPLACE FUNCTION core.booking_json_of(bk bookings, o offers)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', bk.id, 'offer_id', bk.offer_id,
        'beneficiary_id', bk.beneficiary_id,
        'structure_id', bk.structure_id, 'seats', bk.seats,
        'code', ticket_display(bk.code), 'status', bk.status,
        'source', bk.source,
        'offer_title', o.title, 'starts_at', ts(o.starts_at),
        'venue', o.venue, 'city', o.city,
        'created_at', ts(bk.created_at),
        'cancelled_at', ts(bk.cancelled_at),
        'checked_in_at', ts(bk.checked_in_at),
        'withdraw_reason', bk.withdraw_reason, 'arrived_late', bk.arrived_late,
        'group_id', bk.group_id)
$$;

-- The error a refusal gets, as api_error() would raise it:
-- {reason, message, data}. p_avail is what the person could still take.
CREATE OR REPLACE FUNCTION core.booking_refusal_error(p_reason text, p_cap text,
                                                 o offers, p_avail integer,
                                                 p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    CASE p_reason
    WHEN 'not_targeted' THEN
        RETURN jsonb_build_object('reason', 'not_found',
            'message', 'No such offer.',
            'data', jsonb_build_object('field', 'offer_id'));
    WHEN 'offer_cancelled' THEN
        RETURN jsonb_build_object('reason', p_reason,
            'message', 'This offer was cancelled.');
    WHEN 'deadline_passed' THEN
        RETURN jsonb_build_object('reason', p_reason,
            'message', 'The booking deadline has passed.',
            'data', jsonb_build_object('booking_deadline', ts(o.booking_deadline)));
    WHEN 'duplicate' THEN
        RETURN jsonb_build_object('reason', p_reason,
            'message', 'This person already holds a booking for this offer.');
    WHEN 'limit_reached' THEN
        RETURN jsonb_build_object('reason', p_reason,
            'message', CASE p_cap
                WHEN 'max_per_month' THEN 'This person already has the most outings allowed in that month.'
                ELSE 'This person already has the most upcoming bookings allowed.' END,
            'data', jsonb_build_object('cap', p_cap, 'limit', (p_policy->>p_cap)::integer));
    WHEN 'sold_out' THEN
        RETURN jsonb_build_object('reason', p_reason,
            'message', format('Sold out: %s of %s seats left.',
                              greatest(p_avail, 0), o.seats_total),
            'data', jsonb_build_object('seats_available', greatest(p_avail, 0),
                                       'seats_total', o.seats_total));
    ELSE
        RETURN jsonb_build_object('reason', 'internal_error', 'message', p_reason);
    END CASE;
END $$;

-- booking.create for many requests: p_items is an array of
-- {"token": token hash or null, "params": {...}, "addr": text}; the answer
-- an array of the same length, each {"result": booking} or {"error":
-- {reason, message, data}}. Locks: the idempotency keys' advisory locks,
-- then the beneficiaries, then the offers, each set in id order, so two
-- batches never wait on each other in a cycle, nor a batch and a single
-- booking (beneficiary, then offer).
CREATE OR REPLACE FUNCTION api.booking_create_batch(p_items jsonb, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    n integer := jsonb_array_length(p_items);
    res jsonb[] := array_fill(NULL::jsonb, ARRAY[n]);
    -- per item, once its request is valid
    v_user users[] := array_fill(NULL::users, ARRAY[n]);
    v_ben bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    v_offer bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    v_seats integer[] := array_fill(NULL::integer, ARRAY[n]);
    v_key text[] := array_fill(NULL::text, ARRAY[n]);
    v_req jsonb[] := array_fill(NULL::jsonb, ARRAY[n]);
    v_replay_of integer[] := array_fill(NULL::integer, ARRAY[n]);
    -- sessions seen in this batch
    tok text[] := '{}';
    tok_user users[] := '{}';
    tok_err jsonb[] := '{}';
    -- the locked rows
    bens beneficiaries[];
    ben_ids bigint[];
    offs offers[];
    off_ids bigint[];
    off_used integer[];          -- seats this batch took, per offer
    tzs text[];                  -- per beneficiary: its structure's zone
    -- accepted requests, in order
    a_item integer[] := '{}';
    a_ben bigint[] := '{}';
    a_offer bigint[] := '{}';
    a_month date[] := '{}';
    -- the person of each: their identity key, or the record's own id
    a_person text[] := '{}';
    v_person text;
    item jsonb;
    p jsonb;
    u users;
    b beneficiaries;
    o offers;
    bk bookings;
    i integer;
    j integer;
    t integer;
    bi integer;
    oi integer;
    why text;
    cap text;
    mon date;
    up_count integer;
    mon_count integer;
    dup boolean;
    e_reason text;
    e_hint text;
    e_detail text;
BEGIN
    -- 1. Each request alone: its session, its key, the rows it names.
    FOR i IN 1..n LOOP
        item := p_items->(i - 1);
        p := item->'params';
        t := array_position(tok, coalesce(item->>'token', ''));
        IF t IS NULL THEN
            tok := tok || coalesce(item->>'token', '');
            BEGIN
                tok_user := tok_user || auth_user(item->>'token');
                tok_err := tok_err || NULL::jsonb;
            EXCEPTION WHEN SQLSTATE 'SP001' THEN
                GET STACKED DIAGNOSTICS e_reason = MESSAGE_TEXT,
                    e_hint = PG_EXCEPTION_HINT, e_detail = PG_EXCEPTION_DETAIL;
                tok_user := tok_user || NULL::users;
                tok_err := tok_err || api_error_json(e_reason, e_hint, e_detail);
            END;
            t := array_length(tok, 1);
        END IF;
        IF tok_err[t] IS NOT NULL THEN
            res[i] := jsonb_build_object('error', tok_err[t]);
            CONTINUE;
        END IF;
        u := tok_user[t];
        v_key[i] := p->>'idempotency_key';
        v_req[i] := p - 'idempotency_key';
        BEGIN
            IF v_key[i] IS NOT NULL THEN
                -- the same key earlier in this batch: the retry of a
                -- request still in flight
                FOR j IN 1..i - 1 LOOP
                    IF v_key[j] = v_key[i] AND (v_user[j]).id = u.id THEN
                        IF v_req[j] <> v_req[i] THEN
                            PERFORM bad_param('idempotency_key',
                                'this idempotency_key was used for another request');
                        END IF;
                        v_replay_of[i] := j;
                        EXIT;
                    END IF;
                END LOOP;
                IF v_replay_of[i] IS NULL THEN
                    res[i] := idem_replay(u, v_key[i], 'booking.create', v_req[i]);
                    IF res[i] IS NOT NULL THEN
                        res[i] := jsonb_build_object('result', res[i]);
                        CONTINUE;
                    END IF;
                END IF;
            END IF;
            IF v_replay_of[i] IS NULL THEN
                b := scope_beneficiary(u, (p->>'beneficiary_id')::bigint, false);
                SELECT * INTO o FROM offers WHERE id = (p->>'offer_id')::bigint;
                IF NOT FOUND OR NOT offer_open_to(o, b.structure_id) THEN
                    PERFORM not_found('offer', 'offer_id');
                END IF;
                IF (p->>'seats')::integer > o.max_per_booking THEN
                    PERFORM bad_param('seats', format('seats must be from 1 to %s for this offer',
                                                      o.max_per_booking));
                END IF;
                v_ben[i] := b.id;
                v_offer[i] := o.id;
                v_seats[i] := (p->>'seats')::integer;
            END IF;
            v_user[i] := u;
        EXCEPTION WHEN SQLSTATE 'SP001' THEN
            GET STACKED DIAGNOSTICS e_reason = MESSAGE_TEXT,
                e_hint = PG_EXCEPTION_HINT, e_detail = PG_EXCEPTION_DETAIL;
            res[i] := jsonb_build_object('error', api_error_json(e_reason, e_hint, e_detail));
            v_replay_of[i] := NULL;
        END;
    END LOOP;

    -- 2. Lock what the valid requests name, in id order, and read it
    -- again: it may have changed while we were not holding it.
    SELECT array_agg(x ORDER BY x.id), array_agg(x.id ORDER BY x.id)
      INTO bens, ben_ids
      FROM (SELECT * FROM beneficiaries
             WHERE id = ANY (v_ben) ORDER BY id FOR UPDATE) x;
    -- the persons' locks (person_lock()), in key order: after the
    -- beneficiaries' rows, before the offers'
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT person_lock_key(x.identity_key) AS k
               FROM unnest(bens) x WHERE x.identity_key IS NOT NULL
              ORDER BY 1) pk;
    SELECT array_agg(x ORDER BY x.id), array_agg(x.id ORDER BY x.id)
      INTO offs, off_ids
      FROM (SELECT * FROM offers
             WHERE id = ANY (v_offer) ORDER BY id FOR UPDATE) x;
    off_used := array_fill(0, ARRAY[coalesce(array_length(off_ids, 1), 0)]);
    SELECT array_agg(s.timezone ORDER BY x.id) INTO tzs
      FROM unnest(bens) x JOIN structures s ON s.id = x.structure_id;

    -- 3. The rules, request after request, counting what the requests
    -- before it in this batch took.
    FOR i IN 1..n LOOP
        CONTINUE WHEN res[i] IS NOT NULL OR v_ben[i] IS NULL;
        bi := array_position(ben_ids, v_ben[i]);
        oi := array_position(off_ids, v_offer[i]);
        b := bens[bi];
        o := offs[oi];
        u := v_user[i];
        IF b.erased_at IS NOT NULL THEN
            res[i] := jsonb_build_object('error', jsonb_build_object(
                'reason', 'not_found', 'message', 'No such beneficiary.',
                'data', jsonb_build_object('field', 'beneficiary_id')));
            CONTINUE;
        END IF;
        IF v_seats[i] > o.max_per_booking THEN
            res[i] := jsonb_build_object('error', jsonb_build_object(
                'reason', 'invalid_params',
                'message', format('seats must be from 1 to %s for this offer',
                                  o.max_per_booking),
                'data', jsonb_build_object('field', 'seats')));
            CONTINUE;
        END IF;
        mon := date_trunc('month', o.starts_at AT TIME ZONE tzs[bi])::date;
        -- An accepted request of this batch is upcoming (its deadline
        -- has not passed, and a deadline is never after the show).
        -- (one person's records of several structures count together)
        v_person := coalesce(encode(b.identity_key, 'hex'), b.id::text);
        SELECT count(*) FILTER (WHERE a_person[g] = v_person AND a_offer[g] = o.id) > 0,
               count(*) FILTER (WHERE a_person[g] = v_person),
               count(*) FILTER (WHERE a_person[g] = v_person AND a_month[g] = mon)
          INTO dup, up_count, mon_count
          FROM generate_subscripts(a_item, 1) g;
        SELECT c.why, c.cap INTO why, cap
          FROM booking_check(b, o, v_seats[i], p_policy, 0, dup, up_count,
                             mon_count, off_used[oi]) c;
        IF why IS NOT NULL THEN
            res[i] := jsonb_build_object('error', booking_refusal_error(why, cap, o,
                o.seats_total - o.seats_taken - o.seats_held - off_used[oi], p_policy));
            CONTINUE;
        END IF;
        off_used[oi] := off_used[oi] + v_seats[i];
        a_item := a_item || i;
        a_ben := a_ben || b.id;
        a_offer := a_offer || o.id;
        a_month := a_month || mon;
        a_person := a_person || v_person;
    END LOOP;

    IF array_length(a_item, 1) IS NOT NULL THEN
        -- 4. One statement for all the bookings: the seat and report
        -- triggers run once for them; the offers' CHECK and the unique
        -- index on live bookings still stand behind the counts above.
        FOR bk IN
            INSERT INTO bookings (offer_id, beneficiary_id, structure_id, seats,
                                  code, source, created_by, offer_starts_at)
            SELECT v_offer[g.k], v_ben[g.k], (bens[array_position(ben_ids, v_ben[g.k])]).structure_id,
                   v_seats[g.k], c.code, 'direct', (v_user[g.k]).id,
                   (offs[array_position(off_ids, v_offer[g.k])]).starts_at
              FROM unnest(a_item) WITH ORDINALITY AS g(k, ord)
              JOIN (SELECT code, row_number() OVER () AS n
                      FROM ticket_codes(array_length(a_item, 1)) code) c
                ON c.n = g.ord
             ORDER BY g.ord
            RETURNING *
        LOOP
            FOR j IN 1..array_length(a_item, 1) LOOP
                i := a_item[j];
                IF v_ben[i] = bk.beneficiary_id AND v_offer[i] = bk.offer_id THEN
                    o := offs[array_position(off_ids, bk.offer_id)];
                    res[i] := jsonb_build_object('result', booking_json_of(bk, o),
                                                 'id', bk.id);
                    EXIT;
                END IF;
            END LOOP;
        END LOOP;
        -- Activity is kept to the day (booking_insert()).
        UPDATE beneficiaries SET last_activity_at = now()
         WHERE id = ANY (a_ben) AND last_activity_at < now() - interval '1 day';
        INSERT INTO idempotency_keys (user_id, key, method, request, result)
        SELECT (v_user[g.k]).id, v_key[g.k], 'booking.create', v_req[g.k],
               res[g.k]->'result'
          FROM unnest(a_item) AS g(k) WHERE v_key[g.k] IS NOT NULL;
        INSERT INTO audit_log (user_id, method, object_type, object_id, summary,
                               client_addr)
        SELECT (v_user[g.k]).id, 'booking.create', 'booking', (res[g.k]->>'id')::bigint,
               jsonb_build_object('offer_id', v_offer[g.k], 'seats', v_seats[g.k]),
               p_items->(g.k - 1)->>'addr'
          FROM unnest(a_item) AS g(k);
        -- 5. Events: each booking, then each offer once, as it now is.
        FOR j IN 1..array_length(a_item, 1) LOOP
            i := a_item[j];
            o := offs[array_position(off_ids, v_offer[i])];
            PERFORM emit('booking.created', o.partner_id,
                         (bens[array_position(ben_ids, v_ben[i])]).structure_id,
                         res[i]->'result');
        END LOOP;
        FOR o IN SELECT * FROM offers WHERE id IN (SELECT DISTINCT unnest(a_offer))
                  ORDER BY id LOOP
            PERFORM emit('offer.seats_changed', o.partner_id, NULL, offer_json(o));
        END LOOP;
    END IF;

    -- 6. Retries of a request of this batch answer what it got.
    FOR i IN 1..n LOOP
        IF v_replay_of[i] IS NOT NULL THEN
            res[i] := CASE WHEN res[v_replay_of[i]] ? 'result'
                           THEN jsonb_build_object('result', res[v_replay_of[i]]->'result')
                           ELSE res[v_replay_of[i]] END;
        ELSIF res[i] ? 'id' THEN
            res[i] := res[i] - 'id';
        END IF;
    END LOOP;
    RETURN to_jsonb(res);
END $$;

------------------------------------------------------------ the voucher

-- voucher.get: what the holder of a ticket code may see, without a login
-- (docs/protocol.md, "public"; docs/privacy.md). The code is the only
-- secret: an unknown code, a cancelled booking and a show that is over all
-- answer the same not_found, so a code cannot be probed for what became
-- of it. A show without ends_at is over 6 hours after it starts.
--
-- Calls are counted per client address and minute in voucher_hits
-- (sql/schema/019_public.sql); past policy.voucher_rate in a minute, the
-- answer is rate_limited until the minute ends. A refusal must not undo
-- its own count, so this function never raises: it returns either
-- {"result": voucher} or {"error": {reason, message, data}}, which the
-- daemon answers as sqlcall_error_json() (daemon/methods.c).
CREATE OR REPLACE FUNCTION api.voucher_get(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_window timestamptz := date_trunc('minute', now());
    v_rate integer := coalesce((p_policy->>'voucher_rate')::integer, 30);
    v_code text := ticket_normalize(p->>'code');
    v_hits integer;
    bk bookings;
    o offers;
    b beneficiaries;
BEGIN
    INSERT INTO voucher_hits AS h (client_addr, window_at)
    VALUES (coalesce(p_addr, ''), v_window)
    ON CONFLICT (client_addr, window_at) DO UPDATE SET hits = h.hits + 1
    RETURNING hits INTO v_hits;
    IF v_hits = 1 THEN
        -- An address's first call of a minute forgets past minutes, of
        -- every address; rows another call is deleting are left to it.
        DELETE FROM voucher_hits WHERE ctid IN (
            SELECT ctid FROM voucher_hits WHERE window_at < v_window
             LIMIT 1000 FOR UPDATE SKIP LOCKED);
    END IF;
    IF v_hits > v_rate THEN
        RETURN jsonb_build_object('error', api_error_json('rate_limited',
            'Too many vouchers asked from this address; try again in a minute.',
            jsonb_build_object('retry_after_s', greatest(1, ceil(extract(epoch
                FROM v_window + interval '1 minute' - now()))::integer))::text));
    END IF;
    IF v_code ~ '^[0-9A-HJKMNP-TV-Z]{16}$'
       AND ticket_check_char(left(v_code, 15)) = right(v_code, 1) THEN
        SELECT * INTO bk FROM bookings WHERE code = v_code;
        IF FOUND THEN
            SELECT * INTO o FROM offers WHERE id = bk.offer_id;
            SELECT * INTO b FROM beneficiaries WHERE id = bk.beneficiary_id;
        END IF;
    END IF;
    IF bk.id IS NULL OR bk.status NOT IN ('confirmed', 'attended')
       OR o.status <> 'published'
       OR now() >= coalesce(o.ends_at, o.starts_at + interval '6 hours') THEN
        RETURN jsonb_build_object('error', api_error_json('not_found',
            'No valid ticket has this code: check it, or ask the person who booked it.',
            jsonb_build_object('field', 'code')::text));
    END IF;
    RETURN jsonb_build_object('result', jsonb_build_object(
        'offer', jsonb_build_object('id', o.id, 'title', o.title,
            'venue_name', o.venue, 'address', o.address, 'town', o.city,
            'starts_at', ts(o.starts_at), 'ends_at', ts(o.ends_at)),
        'seats', bk.seats, 'first_name', b.first_name,
        'last_initial', left(b.last_name, 1),
        'code', ticket_display(bk.code), 'status', bk.status));
END $$;

---------------------------------------------------------------- history

-- A person's record over a window, as the fairness score reads it
-- (docs/draw.md, rule 1): outings attended, no-shows, late withdrawals,
-- and the score they give. The draw computes the same figures for all its
-- wishes in one query (api.permanence_draw); every other reader of a
-- person's score (the waiting list's order, the referent's view of a
-- person) calls this function, so the formula lives in two places only,
-- and a test compares them. The record is the person's: the bookings of
-- every record with the same identity key (docs/privacy.md).
CREATE OR REPLACE FUNCTION core.person_history(p_beneficiary_id bigint,
        p_from timestamptz, p_to timestamptz, p_policy jsonb,
        OUT attended integer, OUT no_shows integer,
        OUT withdrawn_late integer, OUT score numeric)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT count(*) FILTER (WHERE bk.status = 'attended'),
           count(*) FILTER (WHERE bk.status = 'no_show'),
           count(*) FILTER (WHERE bk.status = 'withdrawn_late')
      INTO attended, no_shows, withdrawn_late
      FROM bookings bk
     WHERE bk.beneficiary_id = ANY (core.person_ids_of(p_beneficiary_id))
       AND bk.status IN ('attended', 'no_show', 'withdrawn_late')
       AND bk.offer_starts_at >= p_from AND bk.offer_starts_at < p_to;
    score := trim_scale(attended
        + coalesce((p_policy->>'no_show_weight')::numeric, 2) * no_shows
        + coalesce((p_policy->>'withdrawn_late_weight')::numeric, 0.5)
          * withdrawn_late);
END $$;

----------------------------------------------------------- group outings

-- A group outing (docs/booking-rules.md, "Group outings"): people a
-- structure follows, each with a booking of their own (their outing, under
-- the same rules as any booking), tied by a booking_groups row that holds
-- the staff seats and the group's code (sql/schema/022_group_bookings.sql).

-- Staff seats are seats taken while the group is confirmed, like a live
-- booking's (invariant 1); the CHECK on offers stands behind them.
CREATE OR REPLACE FUNCTION core.booking_groups_count_seats() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    was integer := 0;
    now_ integer := 0;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.offer_id <> NEW.offer_id THEN
        RAISE EXCEPTION 'a group never moves to another offer';
    END IF;
    IF TG_OP <> 'INSERT' AND OLD.status = 'confirmed' THEN
        was := OLD.staff_seats;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'confirmed' THEN
        now_ := NEW.staff_seats;
    END IF;
    IF now_ <> was THEN
        UPDATE offers SET seats_taken = seats_taken + now_ - was
         WHERE id = coalesce(NEW.offer_id, OLD.offer_id);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER booking_groups_count_seats
    AFTER INSERT OR DELETE OR UPDATE OF status, staff_seats, offer_id ON booking_groups
    FOR EACH ROW EXECUTE FUNCTION core.booking_groups_count_seats();

-- Staff accompany people: when the last live booking of a group stops
-- being live (cancelled by the referent, with the offer, an erasure, any
-- path), its staff seats go too, with the same kind of end. A trigger, so
-- that no path that ends a booking has to know about groups. Every such
-- path holds the offer's row lock, so the group is not changed meanwhile.
CREATE OR REPLACE FUNCTION core.booking_groups_member_gone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE booking_groups g
       SET status = CASE NEW.status WHEN 'cancelled_by_partner'
                        THEN 'cancelled_by_partner' ELSE 'cancelled' END,
           cancelled_at = now()
     WHERE g.id = NEW.group_id AND g.status = 'confirmed'
       AND NOT EXISTS (SELECT 1 FROM bookings bk
                        WHERE bk.group_id = g.id
                          AND bk.status IN ('confirmed', 'attended', 'no_show'));
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER booking_groups_member_gone
    AFTER UPDATE OF status ON bookings
    FOR EACH ROW
    WHEN (NEW.group_id IS NOT NULL
          AND OLD.status IN ('confirmed', 'attended', 'no_show')
          AND NEW.status NOT IN ('confirmed', 'attended', 'no_show'))
    EXECUTE FUNCTION core.booking_groups_member_gone();

-- The group as its referent sees it: its members' bookings (cancelled
-- ones too), its staff seats, its code and what that code admits.
CREATE OR REPLACE FUNCTION core.group_json(g booking_groups) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o offers;
    members jsonb;
    live_seats integer;
BEGIN
    SELECT * INTO o FROM offers WHERE id = g.offer_id;
    SELECT coalesce(jsonb_agg(booking_json_of(bk, o) ORDER BY bk.id), '[]'),
           coalesce(sum(bk.seats) FILTER (WHERE bk.status IN ('confirmed', 'attended', 'no_show')), 0)
      INTO members, live_seats
      FROM bookings bk WHERE bk.group_id = g.id;
    RETURN jsonb_build_object('id', g.id, 'offer_id', g.offer_id,
        'structure_id', g.structure_id, 'staff_seats', g.staff_seats,
        'seats', live_seats + CASE WHEN g.status = 'confirmed' THEN g.staff_seats ELSE 0 END,
        'code', ticket_display(g.code), 'group_codes', o.group_codes,
        'code_admits', CASE o.group_codes WHEN 'group' THEN 'everyone' ELSE 'staff' END,
        'status', g.status, 'offer_title', o.title, 'starts_at', ts(o.starts_at),
        'venue', o.venue, 'city', o.city, 'created_at', ts(g.created_at),
        'cancelled_at', ts(g.cancelled_at), 'checked_in_at', ts(g.checked_in_at),
        'members', members);
END $$;

CREATE OR REPLACE FUNCTION core.scope_group(u users, p_id bigint, p_lock boolean)
RETURNS booking_groups LANGUAGE plpgsql AS $$
DECLARE
    g booking_groups;
BEGIN
    IF p_lock THEN
        SELECT * INTO g FROM booking_groups WHERE id = p_id FOR UPDATE;
    ELSE
        SELECT * INTO g FROM booking_groups WHERE id = p_id;
    END IF;
    IF NOT FOUND OR (u.role = 'referent' AND g.structure_id <> u.structure_id)
       OR u.role = 'partner' THEN
        PERFORM not_found('group', 'group_id');
    END IF;
    RETURN g;
END $$;

-- booking.create_group: all or nothing. Each person is checked by
-- booking_check(), as a booking of their own, in the order given, with the
-- staff seats and the seats of the people before them counted against
-- the seats left; the first refusal answers for the group and names the
-- person (data.beneficiary_id). Locks: the people in id order, then the
-- offer, as a single booking takes them.
CREATE OR REPLACE FUNCTION api.booking_create_group(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    u users := auth_user(p_token);
    k text := p->>'idempotency_key';
    req jsonb := p - 'idempotency_key';
    ids bigint[] := ARRAY(SELECT x::bigint FROM jsonb_array_elements_text(p->'beneficiary_ids') x);
    seats integer[];
    staff integer := coalesce((p->>'staff_seats')::integer, 0);
    n integer := cardinality(ids);
    bens beneficiaries[] := '{}';
    b beneficiaries;
    o offers;
    g booking_groups;
    c record;
    i integer;
    prior integer;
    avail integer;
    e jsonb;
    res jsonb;
BEGIN
    res := idem_replay(u, k, 'booking.create_group', req);
    IF res IS NOT NULL THEN
        RETURN res;
    END IF;
    IF p ? 'seats' THEN
        -- (the daemon checks each is an integer >= 1; any above 1000 is
        -- as refused as 101, below, and must not overflow the cast)
        seats := ARRAY(SELECT least(x::numeric, 1000)::integer
                         FROM jsonb_array_elements_text(p->'seats') x);
        IF cardinality(seats) <> n THEN
            PERFORM bad_param('seats', 'seats must give one number per person of beneficiary_ids');
        END IF;
    ELSE
        seats := array_fill(1, ARRAY[n]);
    END IF;
    IF (SELECT count(DISTINCT x) FROM unnest(ids) x) <> n THEN
        PERFORM bad_param('beneficiary_ids', 'a person appears twice in beneficiary_ids');
    END IF;
    FOR b IN SELECT * FROM beneficiaries WHERE id = ANY (ids) ORDER BY id FOR UPDATE LOOP
        bens := bens || b;
    END LOOP;
    -- The persons' locks, as a booking takes them (docs/privacy.md): the
    -- caps count the bookings another structure makes for them at the
    -- same moment. After the beneficiaries' rows, before the offer's.
    PERFORM pg_advisory_xact_lock(pk.k)
       FROM (SELECT DISTINCT person_lock_key(x.identity_key) AS k
               FROM unnest(bens) x WHERE x.identity_key IS NOT NULL
              ORDER BY 1) pk;
    FOR i IN 1..n LOOP
        SELECT * INTO b FROM unnest(bens) x WHERE x.id = ids[i];
        IF NOT FOUND OR b.erased_at IS NOT NULL
           OR (u.role = 'referent' AND b.structure_id <> u.structure_id) THEN
            PERFORM api_error('not_found', 'No such beneficiary.',
                jsonb_build_object('field', 'beneficiary_ids', 'beneficiary_id', ids[i]));
        END IF;
        IF b.structure_id <> bens[1].structure_id THEN
            PERFORM bad_param('beneficiary_ids', 'the people of a group belong to one structure');
        END IF;
    END LOOP;
    SELECT * INTO o FROM offers WHERE id = (p->>'offer_id')::bigint FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM not_found('offer', 'offer_id');
    END IF;
    avail := o.seats_total - o.seats_taken - o.seats_held;
    prior := staff;
    FOR i IN 1..n LOOP
        SELECT * INTO b FROM unnest(bens) x WHERE x.id = ids[i];
        IF seats[i] > o.max_per_booking THEN
            PERFORM api_error('invalid_params',
                format('seats must be from 1 to %s per person for this offer', o.max_per_booking),
                jsonb_build_object('field', 'seats', 'beneficiary_id', b.id));
        END IF;
        SELECT * INTO c FROM booking_check(b, o, seats[i], p_policy, 0, false, 0, 0, prior);
        IF c.why IS NOT NULL THEN
            e := booking_refusal_error(c.why, c.cap, o, avail, p_policy);
            IF c.why = 'sold_out' THEN
                e := jsonb_set(e, '{message}', to_jsonb(format(
                    'Sold out for this group: it needs %s seats, %s are left.',
                    staff + (SELECT sum(x) FROM unnest(seats) x), greatest(avail, 0))));
                e := jsonb_set(e, '{data,seats_wanted}',
                    to_jsonb(staff + (SELECT sum(x) FROM unnest(seats) x)));
            ELSE
                e := jsonb_set(e, '{data}', coalesce(e->'data', '{}')
                                            || jsonb_build_object('beneficiary_id', b.id));
            END IF;
            PERFORM api_error(e->>'reason', e->>'message', coalesce(e->'data', '{}'));
        END IF;
        prior := prior + seats[i];
    END LOOP;

    INSERT INTO booking_groups (offer_id, structure_id, staff_seats, code, created_by)
    VALUES (o.id, bens[1].structure_id, staff, ticket_code(), u.id)
    RETURNING * INTO g;
    -- One statement: the seat and report triggers count the group once.
    INSERT INTO bookings (offer_id, beneficiary_id, structure_id, seats, code,
                          source, created_by, group_id)
    SELECT o.id, m.id, bens[1].structure_id, m.seats, c2.code, 'direct', u.id, g.id
      FROM unnest(ids, seats) WITH ORDINALITY AS m(id, seats, ord)
      JOIN (SELECT code, row_number() OVER () AS ord FROM ticket_codes(n) code) c2
        ON c2.ord = m.ord;
    UPDATE beneficiaries SET last_activity_at = now()
     WHERE id = ANY (ids) AND last_activity_at < now() - interval '1 day';
    res := group_json(g);
    FOR e IN SELECT x FROM jsonb_array_elements(res->'members') x LOOP
        PERFORM emit('booking.created', o.partner_id, g.structure_id, e);
    END LOOP;
    PERFORM emit('offer.seats_changed', o.partner_id, NULL,
                 (SELECT offer_json(x) FROM offers x WHERE x.id = o.id));
    PERFORM idem_store(u, k, 'booking.create_group', req, res);
    PERFORM audit(u, 'booking.create_group', 'booking_group', g.id,
                  jsonb_build_object('offer_id', o.id, 'members', n,
                                     'seats', res->'seats', 'staff_seats', staff), p_addr);
    RETURN res;
END $$;

CREATE OR REPLACE FUNCTION api.booking_get_group(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
BEGIN
    RETURN group_json(scope_group(u, (p->>'group_id')::bigint, false));
END $$;

-- booking.cancel_group: every confirmed member and the staff seats, under
-- booking.cancel's rules; one member alone is booking.cancel.
CREATE OR REPLACE FUNCTION api.booking_cancel_group(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    g booking_groups := scope_group(u, (p->>'group_id')::bigint, false);
    o offers;
    bk bookings;
    nb integer := 0;
BEGIN
    -- offer, then group, then bookings: the order of booking.cancel
    SELECT * INTO o FROM offers WHERE id = g.offer_id FOR UPDATE;
    SELECT * INTO g FROM booking_groups WHERE id = g.id FOR UPDATE;
    IF g.status <> 'confirmed' THEN
        RETURN group_json(g);           -- already done: same answer
    END IF;
    IF g.checked_in_at IS NOT NULL OR EXISTS (
            SELECT 1 FROM bookings WHERE group_id = g.id
               AND status IN ('attended', 'no_show')) THEN
        PERFORM api_error('already_used',
            'Someone of this group has already been checked in or marked absent.');
    END IF;
    IF now() > o.booking_deadline THEN
        PERFORM api_error('deadline_passed',
            'The booking deadline has passed; ask the venue directly.',
            jsonb_build_object('booking_deadline', ts(o.booking_deadline)));
    END IF;
    FOR bk IN
        UPDATE bookings SET status = 'cancelled', cancelled_at = now()
         WHERE group_id = g.id AND status = 'confirmed'
        RETURNING *
    LOOP
        nb := nb + 1;
        PERFORM emit('booking.cancelled', o.partner_id, bk.structure_id, booking_json_of(bk, o));
    END LOOP;
    -- (the last member's trigger has ended the group already)
    UPDATE booking_groups SET status = 'cancelled', cancelled_at = coalesce(cancelled_at, now())
     WHERE id = g.id RETURNING * INTO g;
    PERFORM waitlist_serve(o.id, p_policy);
    PERFORM emit('offer.seats_changed', o.partner_id, NULL,
                 (SELECT offer_json(x) FROM offers x WHERE x.id = o.id));
    PERFORM audit(u, 'booking.cancel_group', 'booking_group', g.id,
                  jsonb_build_object('offer_id', o.id, 'bookings', nb,
                                     'staff_seats', g.staff_seats), p_addr);
    RETURN group_json(g);
END $$;

-- ticket.check_in of a group's code (api.ticket_check_in hands it over).
-- With group_codes 'group', it admits every member not checked in yet and
-- the staff; with 'person', the staff only (each person shows their own
-- code). The offer is locked first, as booking.cancel does, since ending a
-- member's booking may end the group.
CREATE OR REPLACE FUNCTION core.group_check_in(u users, p_code text, p jsonb, p_addr text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    g booking_groups;
    o offers;
    n integer := 0;
    admitted integer := 0;
BEGIN
    SELECT * INTO g FROM booking_groups WHERE code = p_code;
    SELECT * INTO o FROM offers WHERE id = g.offer_id FOR UPDATE;
    SELECT * INTO g FROM booking_groups WHERE id = g.id FOR UPDATE;
    IF u.role = 'partner' AND o.partner_id <> u.partner_id THEN
        PERFORM not_found('ticket', 'code');
    END IF;
    IF p ? 'offer_id' AND g.offer_id <> (p->>'offer_id')::bigint THEN
        PERFORM api_error('wrong_offer',
            format('This ticket is for another show: %s, %s.', o.title, ts(o.starts_at)),
            jsonb_build_object('field', 'code', 'booking_offer_id', o.id,
                               'offer_title', o.title, 'starts_at', ts(o.starts_at)));
    END IF;
    IF g.status = 'cancelled_by_partner' THEN
        PERFORM api_error('offer_cancelled', 'This offer was cancelled.');
    ELSIF g.status = 'cancelled' THEN
        PERFORM api_error('not_found', 'This ticket was cancelled.',
                          jsonb_build_object('field', 'code', 'status', g.status));
    ELSIF g.checked_in_at IS NOT NULL THEN
        PERFORM api_error('already_used',
            format('This group ticket was checked in at %s.', ts(g.checked_in_at)),
            jsonb_build_object('checked_in_at', ts(g.checked_in_at), 'group_id', g.id));
    ELSIF o.group_codes = 'person' AND g.staff_seats = 0 THEN
        PERFORM api_error('not_found',
            'This group has no staff seats: check in each person''s own code.',
            jsonb_build_object('field', 'code', 'group_id', g.id));
    END IF;
    UPDATE booking_groups SET checked_in_at = now() WHERE id = g.id RETURNING * INTO g;
    admitted := g.staff_seats;
    IF o.group_codes = 'group' THEN
        -- confirmed, or no_show arriving late after attendance was closed
        WITH x AS (
            UPDATE bookings SET status = 'attended', checked_in_at = now()
             WHERE group_id = g.id AND status IN ('confirmed', 'no_show')
            RETURNING beneficiary_id, seats
        ), y AS (
            UPDATE beneficiaries SET last_activity_at = now()
             WHERE id IN (SELECT beneficiary_id FROM x)
               AND last_activity_at < now() - interval '1 day'
        )
        SELECT count(*), coalesce(sum(seats), 0) INTO n, admitted FROM x;
        admitted := admitted + g.staff_seats;
    END IF;
    PERFORM audit(u, 'ticket.check_in', 'booking_group', g.id,
                  jsonb_build_object('offer_id', g.offer_id, 'members', n), p_addr);
    RETURN jsonb_build_object('id', NULL, 'group_id', g.id, 'offer_id', g.offer_id,
        'offer_title', o.title, 'seats', admitted, 'staff_seats', g.staff_seats,
        'members_checked_in', n,
        'holder', (SELECT s.name FROM structures s WHERE s.id = g.structure_id)
                  || ' (groupe / group)',
        'code', ticket_display(g.code), 'status', 'attended',
        'checked_in_at', ts(g.checked_in_at));
END $$;

-- The groups of an offer as its guest list shows them: the structure, the
-- code, the staff seats and how many people, never who.
CREATE OR REPLACE FUNCTION core.group_guest_items(p_offer_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('group_id', g.id,
               'structure', s.name, 'code', ticket_display(g.code),
               'staff_seats', g.staff_seats,
               'members', (SELECT count(*) FROM bookings bk WHERE bk.group_id = g.id
                              AND bk.status IN ('confirmed', 'attended', 'no_show')),
               'checked_in_at', ts(g.checked_in_at)) ORDER BY g.id), '[]')
      FROM booking_groups g JOIN structures s ON s.id = g.structure_id
     WHERE g.offer_id = p_offer_id AND g.status = 'confirmed');
END $$;
