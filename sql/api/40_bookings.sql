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

CREATE OR REPLACE FUNCTION core.ticket_code() RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    h text := replace(gen_random_uuid()::text, '-', '');
    bits bit(76);
    body text := '';
    i integer;
BEGIN
    -- skip the version nibble (13th) and the variant nibble (17th)
    bits := ('x' || substr(substr(h, 1, 12) || substr(h, 14, 3) ||
             substr(h, 18), 1, 19))::bit(76);
    FOR i IN 0 .. 14 LOOP
        body := body || substr(ticket_alphabet(),
                               substring(bits FROM i * 5 + 1 FOR 5)::integer + 1, 1);
    END LOOP;
    RETURN body || ticket_check_char(body);
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
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', bk.id, 'offer_id', bk.offer_id,
        'beneficiary_id', bk.beneficiary_id,
        'structure_id', bk.structure_id, 'seats', bk.seats,
        'code', ticket_display(bk.code), 'status', bk.status,
        'source', bk.source,
        'offer_title', o.title, 'starts_at', ts(o.starts_at),
        'venue', o.venue, 'city', o.city,
        'created_at', ts(bk.created_at),
        'cancelled_at', ts(bk.cancelled_at),
        'checked_in_at', ts(bk.checked_in_at))
      FROM offers o WHERE o.id = bk.offer_id
$$;

---------------------------------------------------------------- bookings

-- Policy caps (docs/booking-rules.md invariant 5). NULL when within them, else the cap's name.
-- Months are calendar months of the event in the structure's timezone.
CREATE OR REPLACE FUNCTION core.booking_cap_hit(b beneficiaries, o offers, p_policy jsonb)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    tz text := (SELECT timezone FROM structures WHERE id = b.structure_id);
BEGIN
    IF (SELECT count(*) FROM bookings bk JOIN offers x ON x.id = bk.offer_id
         WHERE bk.beneficiary_id = b.id AND bk.status = 'confirmed'
           AND x.starts_at > now())
       >= coalesce((p_policy->>'max_upcoming_per_beneficiary')::integer, 2) THEN
        RETURN 'max_upcoming_per_beneficiary';
    END IF;
    IF (SELECT count(*) FROM bookings bk JOIN offers x ON x.id = bk.offer_id
         WHERE bk.beneficiary_id = b.id
           AND bk.status IN ('confirmed', 'attended', 'no_show')
           AND date_trunc('month', x.starts_at AT TIME ZONE tz)
             = date_trunc('month', o.starts_at AT TIME ZONE tz))
       >= coalesce((p_policy->>'max_per_month')::integer, 2) THEN
        RETURN 'max_per_month';
    END IF;
    RETURN NULL;
END $$;

-- Why this beneficiary cannot take p_seats of this offer now, or NULL.
-- Both rows must be locked by the caller (beneficiary first, then offer).
CREATE OR REPLACE FUNCTION core.booking_refusal(b beneficiaries, o offers, p_seats integer,
                                p_policy jsonb, p_from_held integer)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF o.status = 'cancelled' THEN
        RETURN 'offer_cancelled';
    ELSIF now() > o.booking_deadline THEN
        RETURN 'deadline_passed';
    ELSIF EXISTS (SELECT 1 FROM bookings WHERE offer_id = o.id
                     AND beneficiary_id = b.id
                     AND status IN ('confirmed', 'attended', 'no_show')) THEN
        RETURN 'duplicate';
    ELSIF booking_cap_hit(b, o, p_policy) IS NOT NULL THEN
        RETURN 'limit_reached';
    ELSIF o.seats_total - o.seats_taken - o.seats_held + p_from_held < p_seats THEN
        RETURN 'sold_out';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION core.booking_refuse(p_reason text, b beneficiaries, o offers,
                               p_policy jsonb, p_from_held integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    avail integer := o.seats_total - o.seats_taken - o.seats_held + p_from_held;
    cap text;
BEGIN
    CASE p_reason
    WHEN 'offer_cancelled' THEN
        PERFORM api_error(p_reason, 'This offer was cancelled.');
    WHEN 'deadline_passed' THEN
        PERFORM api_error(p_reason, 'The booking deadline has passed.',
                          jsonb_build_object('booking_deadline', ts(o.booking_deadline)));
    WHEN 'duplicate' THEN
        PERFORM api_error(p_reason, 'This person already holds a booking for this offer.');
    WHEN 'limit_reached' THEN
        cap := booking_cap_hit(b, o, p_policy);
        PERFORM api_error(p_reason, CASE cap
            WHEN 'max_per_month' THEN 'This person already has the most outings allowed in that month.'
            ELSE 'This person already has the most upcoming bookings allowed.' END,
            jsonb_build_object('cap', cap, 'limit', (p_policy->>cap)::integer));
    WHEN 'sold_out' THEN
        PERFORM api_error(p_reason, format('Sold out: %s of %s seats left.',
                                           greatest(avail, 0), o.seats_total),
                          jsonb_build_object('seats_available', greatest(avail, 0),
                                             'seats_total', o.seats_total));
    ELSE
        PERFORM api_error('internal_error', p_reason);
    END CASE;
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
    UPDATE beneficiaries SET last_activity_at = now() WHERE id = b.id;
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
    SELECT * INTO o FROM offers WHERE id = p_offer_id FOR UPDATE;
    IF NOT FOUND THEN
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
    prev jsonb;
    bk bookings;
    res jsonb;
BEGIN
    IF k IS NOT NULL THEN
        -- Two retries racing with the same key: the second waits here,
        -- then finds the first one's answer.
        PERFORM pg_advisory_xact_lock(hashtextextended('idem:' || u.id || ':' || k, 0));
        SELECT result INTO prev FROM idempotency_keys
         WHERE user_id = u.id AND key = k
           AND method = 'booking.create' AND request = p - 'idempotency_key';
        IF FOUND THEN
            RETURN prev;
        END IF;
        IF EXISTS (SELECT 1 FROM idempotency_keys WHERE user_id = u.id AND key = k) THEN
            PERFORM bad_param('idempotency_key',
                'this idempotency_key was used for another request');
        END IF;
    END IF;
    bk := booking_make(u, (p->>'beneficiary_id')::bigint,
                       (p->>'offer_id')::bigint, (p->>'seats')::integer,
                       p_policy, 'direct');
    res := booking_json(bk);
    IF k IS NOT NULL THEN
        INSERT INTO idempotency_keys (user_id, key, method, request, result)
        VALUES (u.id, k, 'booking.create', p - 'idempotency_key', res);
    END IF;
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

CREATE OR REPLACE FUNCTION api.booking_cancel(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    bk bookings := scope_booking(u, (p->>'booking_id')::bigint, false);
    o offers;
BEGIN
    -- offer first, then booking: the order every path takes
    SELECT * INTO o FROM offers WHERE id = bk.offer_id FOR UPDATE;
    SELECT * INTO bk FROM bookings WHERE id = bk.id FOR UPDATE;
    IF bk.status IN ('cancelled', 'cancelled_by_partner') THEN
        RETURN booking_json(bk);        -- already done: same answer
    END IF;
    IF bk.status IN ('attended', 'no_show') THEN
        PERFORM api_error('already_used', 'This ticket has already been used or closed.');
    END IF;
    IF now() > o.booking_deadline THEN
        PERFORM api_error('deadline_passed',
            'The booking deadline has passed; ask the venue directly.',
            jsonb_build_object('booking_deadline', ts(o.booking_deadline)));
    END IF;
    UPDATE bookings SET status = 'cancelled', cancelled_at = now()
     WHERE id = bk.id RETURNING * INTO bk;
    PERFORM waitlist_serve(o.id, p_policy);
    PERFORM emit('booking.cancelled', o.partner_id, bk.structure_id, booking_json(bk));
    PERFORM emit('offer.seats_changed', o.partner_id, NULL,
                 (SELECT offer_json(x) FROM offers x WHERE x.id = o.id));
    PERFORM audit(u, 'booking.cancel', 'booking', bk.id,
                  jsonb_build_object('offer_id', bk.offer_id, 'seats', bk.seats), p_addr);
    RETURN booking_json(bk);
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
    IF FOUND THEN
        SELECT * INTO o FROM offers WHERE id = bk.offer_id;
    END IF;
    IF NOT FOUND OR (u.role = 'partner' AND o.partner_id <> u.partner_id) THEN
        PERFORM not_found('ticket', 'code');
    END IF;
    IF bk.status = 'attended' THEN
        PERFORM api_error('already_used',
            format('This ticket was checked in at %s.', ts(bk.checked_in_at)),
            jsonb_build_object('checked_in_at', ts(bk.checked_in_at), 'booking_id', bk.id));
    ELSIF bk.status = 'cancelled_by_partner' THEN
        PERFORM api_error('offer_cancelled', 'This offer was cancelled.');
    ELSIF bk.status = 'cancelled' THEN
        PERFORM api_error('not_found', 'This ticket was cancelled.',
                          jsonb_build_object('field', 'code', 'status', bk.status));
    END IF;
    -- confirmed, or no_show arriving late after attendance was closed
    UPDATE bookings SET status = 'attended', checked_in_at = now()
     WHERE id = bk.id RETURNING * INTO bk;
    SELECT * INTO b FROM beneficiaries WHERE id = bk.beneficiary_id;
    UPDATE beneficiaries SET last_activity_at = now() WHERE id = b.id;
    PERFORM audit(u, 'ticket.check_in', 'booking', bk.id,
                  jsonb_build_object('offer_id', bk.offer_id), p_addr);
    RETURN jsonb_build_object('id', bk.id, 'offer_id', bk.offer_id,
        'offer_title', o.title, 'seats', bk.seats,
        'holder', coalesce(b.first_name || ' ' || left(b.last_name, 1) || '.', '(erased)'),
        'code', ticket_display(bk.code), 'status', bk.status,
        'checked_in_at', ts(bk.checked_in_at));
END $$;

CREATE OR REPLACE TRIGGER bookings_count_seats
    AFTER INSERT OR DELETE
       OR UPDATE OF status, seats, offer_id, permanence_id, block_seats ON bookings
    FOR EACH ROW EXECUTE FUNCTION core.bookings_count_seats();
