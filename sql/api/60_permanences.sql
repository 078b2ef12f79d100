-- strapontin API, permanences: permanences, blocks, wishes, the draw.
--
-- Code, not history: every `strapontind --migrate` re-applies all of
-- sql/api/ (in file name order) in one transaction, so each function has
-- exactly one definition, here. CREATE OR REPLACE only; helpers in schema
-- core, the daemon's entry points in schema api (docs/operations.md,
-- "The sql/ tree"). Generated once by the conversion of the numbered
-- migrations; edit freely from now on.

-- What a block counts in offers.seats_taken (see the top of this file).
CREATE OR REPLACE FUNCTION core.block_counted(k permanence_blocks) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN k.returned_at IS NULL THEN k.seats ELSE k.claimed END
$$;

CREATE OR REPLACE FUNCTION core.blocks_count_seats() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    was integer := 0;
    now_ integer := 0;
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.offer_id <> NEW.offer_id
       OR (OLD.returned_at IS NOT NULL AND NEW.returned_at IS NULL)) THEN
        RAISE EXCEPTION 'a block never moves, and a returned block stays returned';
    END IF;
    IF TG_OP <> 'INSERT' THEN
        was := block_counted(OLD);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        now_ := block_counted(NEW);
    END IF;
    IF now_ <> was THEN
        UPDATE offers SET seats_taken = seats_taken + now_ - was
         WHERE id = coalesce(NEW.offer_id, OLD.offer_id);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER blocks_count_seats
    AFTER INSERT OR DELETE
       OR UPDATE OF seats, claimed, returned_at, offer_id ON permanence_blocks
    FOR EACH ROW EXECUTE FUNCTION core.blocks_count_seats();

------------------------------------------------------------- JSON shapes

CREATE OR REPLACE FUNCTION core.block_remaining(k permanence_blocks) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN k.returned_at IS NULL THEN k.seats - k.claimed ELSE 0 END
$$;

CREATE OR REPLACE FUNCTION core.permanence_block_json(k permanence_blocks) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT jsonb_build_object('offer_id', k.offer_id, 'offer_title', o.title,
            'offer_starts_at', ts(o.starts_at), 'venue', o.venue,
            'offer_status', o.status, 'max_per_booking', o.max_per_booking,
            'seats', k.seats, 'claimed', k.claimed,
            'remaining', block_remaining(k),
            'returned_at', ts(k.returned_at),
            'pool_available', o.seats_total - o.seats_taken - o.seats_held)
          FROM offers o WHERE o.id = k.offer_id);
END $$;

-- Claims at the desk (permanence.claim) are taken while the permanence is
-- open, and after its draw if it was opened before it and is not closed:
-- walk-ins take what is left of its blocks, then the pool (docs/draw.md).
CREATE OR REPLACE FUNCTION core.permanence_claims_open(pm permanences) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT pm.state = 'open' OR (pm.state = 'drawn' AND pm.opened_at IS NOT NULL)
$$;

-- As schema 4's, plus seed_sha256; `seed` stays the revealed one, null
-- until the draw. draw_secret itself appears in no answer.
CREATE OR REPLACE FUNCTION core.permanence_json(pm permanences) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT jsonb_build_object('id', pm.id, 'structure_id', pm.structure_id,
            'series_id', pm.series_id, 'title', pm.title,
            'location', pm.location, 'notes', pm.notes,
            'starts_at', ts(pm.starts_at), 'ends_at', ts(pm.ends_at),
            'timezone', s.timezone,
            'local_starts_at', to_char(pm.starts_at AT TIME ZONE s.timezone,
                                       'YYYY-MM-DD"T"HH24:MI'),
            'local_ends_at', to_char(pm.ends_at AT TIME ZONE s.timezone,
                                     'YYYY-MM-DD"T"HH24:MI'),
            'state', pm.state, 'opened_at', ts(pm.opened_at),
            'claims_open', permanence_claims_open(pm),
            'drawn_at', ts(pm.drawn_at), 'closed_at', ts(pm.closed_at),
            'seed_sha256', seed_sha256(pm.draw_secret),
            'seed', pm.draw_seed,
            'blocks', coalesce(bl.items, '[]'::jsonb),
            'seats_set_aside', coalesce(bl.seats, 0),
            'seats_claimed', coalesce(bl.claimed, 0),
            'seats_remaining', coalesce(bl.remaining, 0),
            'wishes_count', (SELECT count(*) FROM wishes w
                               JOIN beneficiaries b ON b.id = w.beneficiary_id
                              WHERE w.permanence_id = pm.id AND w.replaced_at IS NULL
                                AND b.erased_at IS NULL),
            'created_at', ts(pm.created_at))
          FROM structures s,
               LATERAL (SELECT jsonb_agg(permanence_block_json(k)
                                         ORDER BY o.starts_at, k.offer_id) AS items,
                               sum(k.seats) AS seats, sum(k.claimed) AS claimed,
                               sum(block_remaining(k)) AS remaining
                          FROM permanence_blocks k JOIN offers o ON o.id = k.offer_id
                         WHERE k.permanence_id = pm.id) bl
         WHERE s.id = pm.structure_id);
END $$;

CREATE OR REPLACE FUNCTION core.wish_json(w wishes) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', w.id, 'permanence_id', w.permanence_id,
        'beneficiary_id', w.beneficiary_id, 'choices', to_jsonb(w.choices),
        'seats', w.seats, 'waitlist_all', w.waitlist_all,
        'created_at', ts(w.created_at), 'replaced_at', ts(w.replaced_at),
        'rank', w.granted_rank, 'booking_id', w.booking_id, 'reason', w.reason)
$$;

-- permanence.get: the live state of the desk in one answer. Wishes of
-- people erased since are left out, as the draw leaves them out.
CREATE OR REPLACE FUNCTION core.permanence_detail_json(pm permanences) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT permanence_json(pm) || jsonb_build_object(
            'wishes', coalesce((
                SELECT jsonb_agg(wish_json(w) || jsonb_build_object('holder',
                           b.first_name || ' ' || b.last_name)
                           ORDER BY w.created_at, w.id)
                  FROM wishes w JOIN beneficiaries b ON b.id = w.beneficiary_id
                 WHERE w.permanence_id = pm.id AND w.replaced_at IS NULL
                   AND b.erased_at IS NULL),
                '[]'::jsonb),
            'draw', pm.draw_result::jsonb));
END $$;

CREATE OR REPLACE FUNCTION core.permanence_refuse_state(pm permanences, p_doing text)
RETURNS void LANGUAGE sql AS $$
    SELECT api_error('permanence_state',
        format('This permanence is %s: %s is not possible now.', pm.state, p_doing),
        jsonb_build_object('state', pm.state));
$$;

-- A beneficiary of the permanence's own structure, locked.
CREATE OR REPLACE FUNCTION core.permanence_beneficiary(u users, pm permanences, p_id bigint)
RETURNS beneficiaries LANGUAGE plpgsql AS $$
DECLARE
    b beneficiaries := scope_beneficiary(u, p_id, true);
BEGIN
    IF b.structure_id <> pm.structure_id THEN
        PERFORM not_found('beneficiary', 'beneficiary_id');
    END IF;
    RETURN b;
END $$;

-- Seats of this permanence's block on this offer that can still be handed
-- out (0 without a block). Caller holds the offer's row lock.
CREATE OR REPLACE FUNCTION core.permanence_block_left(p_permanence_id bigint, p_offer_id bigint)
RETURNS integer LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce((SELECT block_remaining(k) FROM permanence_blocks k
                          WHERE k.permanence_id = p_permanence_id
                            AND k.offer_id = p_offer_id), 0));
END $$;

-- A booking made at a permanence: p_from_block of its seats come from the
-- block (the bookings trigger moves them), the rest from the pool.
CREATE OR REPLACE FUNCTION core.permanence_book(u users, b beneficiaries, o offers,
                                p_seats integer, p_permanence_id bigint,
                                p_from_block integer, p_source text)
RETURNS bookings LANGUAGE plpgsql AS $$
DECLARE
    bk bookings;
BEGIN
    INSERT INTO bookings (offer_id, beneficiary_id, structure_id, seats, code,
                          source, created_by, permanence_id, block_seats)
    VALUES (o.id, b.id, b.structure_id, p_seats, ticket_code(), p_source,
            u.id, p_permanence_id, p_from_block)
    RETURNING * INTO bk;
    -- Activity is kept to the day (booking_insert(), docs/privacy.md).
    UPDATE beneficiaries SET last_activity_at = now()
     WHERE id = b.id AND last_activity_at < now() - interval '1 day';
    PERFORM emit('booking.created', o.partner_id, b.structure_id, booking_json(bk));
    RETURN bk;
END $$;

-------------------------------------------------------------- scheduling

-- A single permanence. Times in the past are accepted, as for series: a
-- structure may record a drop-in after the fact, and tests replay history.
CREATE OR REPLACE FUNCTION api.permanence_schedule(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    sid bigint := scope_structure_id(u, p);
    v_starts timestamptz := (p->>'starts_at')::timestamptz;
    v_ends timestamptz := (p->>'ends_at')::timestamptz;
    pm permanences;
BEGIN
    IF v_ends <= v_starts THEN
        PERFORM bad_param('ends_at', 'ends_at must be after starts_at');
    END IF;
    INSERT INTO permanences (structure_id, title, location, notes, starts_at,
                             ends_at, created_by)
    VALUES (sid, coalesce(p->>'title', 'Permanence'), p->>'location',
            p->>'notes', v_starts, v_ends, u.id)
    RETURNING * INTO pm;
    PERFORM audit(u, 'permanence.schedule', 'permanence', pm.id,
                  jsonb_build_object('structure_id', sid), p_addr);
    RETURN permanence_json(pm);
END $$;

-- The nth given weekday of the month that starts on p_month (nth -1: the
-- last), or NULL when that month has no such day (a 5th Tuesday, say).
CREATE OR REPLACE FUNCTION core.nth_weekday(p_month date, p_isodow integer, p_nth integer)
RETURNS date LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    next_month date := (p_month + interval '1 month')::date;
    d date;
BEGIN
    IF p_nth > 0 THEN
        d := p_month + (p_isodow - extract(isodow FROM p_month)::integer + 7) % 7
                     + (p_nth - 1) * 7;
        RETURN CASE WHEN d < next_month THEN d END;
    END IF;
    d := next_month - 1;
    RETURN d - (extract(isodow FROM d)::integer - p_isodow + 7) % 7;
END $$;

-- "3rd Tuesday, 10:00-12:00, from 2019-04-01, 4 times". Each date is the
-- nth weekday of a month, on or after from_date; its times are wall-clock
-- times in the structure's timezone, turned into instants date by date, so
-- they stay 10:00 local across daylight-saving changes. A month without
-- the asked day (no 5th Tuesday) is skipped and named in skipped_months;
-- the series still has `count` permanences. A wall-clock time that does not
-- exist on a day (inside a spring-forward gap) is read by PostgreSQL as the
-- instant it would be before the change (02:30 becomes 03:30 local); if the
-- end then falls at or before the start, the permanence keeps its length.
-- An ambiguous time (the repeated hour of autumn) is read as the later,
-- standard-time instant.
CREATE OR REPLACE FUNCTION api.permanence_schedule_series(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    sid bigint := scope_structure_id(u, p);
    tz text := (SELECT timezone FROM structures WHERE id = sid);
    v_nth integer := (p->>'nth')::integer;
    v_dow integer := array_position(ARRAY['monday', 'tuesday', 'wednesday',
                         'thursday', 'friday', 'saturday', 'sunday'], p->>'weekday');
    v_start time := (p->>'start_time')::time;
    v_end time := (p->>'end_time')::time;
    v_from date := (p->>'from_date')::date;
    v_count integer := (p->>'count')::integer;
    v_month date := date_trunc('month', v_from)::date;
    d date;
    v_starts timestamptz;
    v_ends timestamptz;
    made integer := 0;
    months integer := 0;
    skipped text[] := '{}';
    se permanence_series;
    pm permanences;
    items jsonb[] := '{}';
BEGIN
    IF v_nth = 0 OR v_nth NOT BETWEEN -1 AND 5 THEN
        PERFORM bad_param('nth', 'nth must be 1 to 5, or -1 for the last');
    END IF;
    IF v_dow IS NULL THEN
        PERFORM bad_param('weekday', 'weekday must be an English day name');
    END IF;
    IF v_end <= v_start THEN
        PERFORM bad_param('end_time', 'end_time must be after start_time');
    END IF;
    INSERT INTO permanence_series (structure_id, weekday, nth, start_time,
                                   end_time, from_date, count, timezone,
                                   created_by)
    VALUES (sid, p->>'weekday', v_nth, v_start, v_end, v_from, v_count, tz, u.id)
    RETURNING * INTO se;
    WHILE made < v_count LOOP
        -- A 5th weekday exists in at least 4 months a year: this ends.
        months := months + 1;
        IF months > 12 * v_count + 12 THEN
            RAISE EXCEPTION 'series computation did not end';
        END IF;
        d := nth_weekday(v_month, v_dow, v_nth);
        IF d IS NULL THEN
            skipped := array_append(skipped, to_char(v_month, 'YYYY-MM'));
        ELSIF d >= v_from THEN
            v_starts := (d + v_start) AT TIME ZONE tz;
            v_ends := (d + v_end) AT TIME ZONE tz;
            IF v_ends <= v_starts THEN
                -- a daylight-saving gap swallowed the range: keep its length
                v_ends := v_starts + (v_end - v_start);
            END IF;
            INSERT INTO permanences (structure_id, series_id, title, location,
                                     notes, starts_at, ends_at, created_by)
            VALUES (sid, se.id, coalesce(p->>'title', 'Permanence'),
                    p->>'location', p->>'notes', v_starts, v_ends, u.id)
            RETURNING * INTO pm;
            items := array_append(items, permanence_json(pm));
            made := made + 1;
        END IF;
        v_month := (v_month + interval '1 month')::date;
    END LOOP;
    PERFORM audit(u, 'permanence.schedule_series', 'permanence_series', se.id,
                  jsonb_build_object('structure_id', sid, 'count', v_count,
                                     'skipped_months', to_jsonb(skipped)), p_addr);
    RETURN jsonb_build_object('series_id', se.id, 'items', to_jsonb(items),
                              'skipped_months', to_jsonb(skipped));
END $$;

-- In time order; the cursor is "microseconds since the epoch:id".
CREATE OR REPLACE FUNCTION api.permanence_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    lim integer := page_limit(p);
    sid bigint := (p->>'structure_id')::bigint;
    c record := time_cursor(p);
    items jsonb;
BEGIN
    IF u.role = 'referent' THEN
        IF sid IS NOT NULL AND sid <> u.structure_id THEN
            PERFORM not_found('structure', 'structure_id');
        END IF;
        sid := u.structure_id;
    ELSIF sid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM structures WHERE id = sid) THEN
        PERFORM not_found('structure', 'structure_id');
    END IF;
    SELECT jsonb_agg(permanence_json(pm) ORDER BY pm.starts_at, pm.id) INTO items
      FROM (SELECT * FROM permanences pm
             WHERE (pm.starts_at, pm.id) > (c.after_ts, c.after_id)
               AND (sid IS NULL OR pm.structure_id = sid)
               AND pm.starts_at >= coalesce((p->>'from')::timestamptz, '-infinity')
               AND pm.starts_at < coalesce((p->>'to')::timestamptz, 'infinity')
               AND (p->>'state' IS NULL OR pm.state = p->>'state')
             ORDER BY pm.starts_at, pm.id LIMIT lim) pm;
    RETURN time_page(items, lim, 'starts_at');
END $$;

CREATE OR REPLACE FUNCTION api.permanence_get(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    pm permanences := scope_permanence(u, (p->>'permanence_id')::bigint, 'none');
BEGIN
    RETURN permanence_detail_json(pm);
END $$;

-- As schema 4's, with two more refusals: the structure's share of the
-- offer (policy.max_block_share percent of its seats, rounded down), and
-- a block already returned (its permanence is over, or the offer's
-- booking deadline passed): seats added to it would not count.
CREATE OR REPLACE FUNCTION api.permanence_reserve_block(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    pm permanences := scope_permanence(u, (p->>'permanence_id')::bigint, 'update');
    n integer := (p->>'seats')::integer;
    v_share integer := coalesce((p_policy->>'max_block_share')::integer, 50);
    o offers;
    k permanence_blocks;
    avail integer;
    held integer;
    cap integer;
BEGIN
    IF pm.state NOT IN ('scheduled', 'open') THEN
        PERFORM permanence_refuse_state(pm, 'setting seats aside');
    END IF;
    SELECT * INTO o FROM offers WHERE id = (p->>'offer_id')::bigint FOR UPDATE;
    IF NOT FOUND OR NOT offer_open_to(o, pm.structure_id) THEN
        PERFORM not_found('offer', 'offer_id');
    END IF;
    IF o.status = 'cancelled' THEN
        PERFORM api_error('offer_cancelled', 'This offer was cancelled.');
    END IF;
    IF now() > o.booking_deadline THEN
        PERFORM api_error('deadline_passed', 'The booking deadline has passed.',
                          jsonb_build_object('booking_deadline', ts(o.booking_deadline)));
    END IF;
    -- Seats set aside are claimed at the permanence: an offer whose
    -- booking closes before it starts would only lock them away.
    IF o.booking_deadline < pm.starts_at THEN
        PERFORM api_error('deadline_passed',
            'Bookings for this offer close before the permanence starts.',
            jsonb_build_object('field', 'offer_id',
                               'booking_deadline', ts(o.booking_deadline),
                               'permanence_starts_at', ts(pm.starts_at)));
    END IF;
    SELECT * INTO k FROM permanence_blocks
     WHERE permanence_id = pm.id AND offer_id = o.id FOR UPDATE;
    IF now() >= pm.ends_at OR k.returned_at IS NOT NULL THEN
        PERFORM api_error('deadline_passed',
            'This permanence is over: its block seats went back to everyone.',
            jsonb_build_object('field', 'permanence_id',
                               'permanence_ends_at', ts(pm.ends_at)));
    END IF;
    avail := o.seats_total - o.seats_taken - o.seats_held;
    IF n > avail THEN
        PERFORM api_error('sold_out', format('Only %s of %s seats are free.',
                                             greatest(avail, 0), o.seats_total),
                          jsonb_build_object('field', 'seats',
                                             'seats_available', greatest(avail, 0),
                                             'seats_total', o.seats_total));
    END IF;
    held := structure_block_seats(pm.structure_id, o.id);
    cap := o.seats_total * v_share / 100;
    IF held + n > cap THEN
        PERFORM api_error('limit_reached',
            format('A structure may set aside at most %s of the %s seats of this offer; it holds %s.',
                   cap, o.seats_total, held),
            jsonb_build_object('field', 'seats', 'max_block_share', v_share,
                               'max_block_seats', cap, 'block_seats_held', held));
    END IF;
    INSERT INTO permanence_blocks (permanence_id, offer_id, seats)
    VALUES (pm.id, o.id, n)
    ON CONFLICT (permanence_id, offer_id) DO UPDATE
       SET seats = permanence_blocks.seats + EXCLUDED.seats, updated_at = now()
    RETURNING * INTO k;
    PERFORM emit_seats_changed(o.id);
    PERFORM audit(u, 'permanence.reserve_block', 'permanence', pm.id,
                  jsonb_build_object('offer_id', o.id, 'seats', n), p_addr);
    RETURN permanence_json(pm) || jsonb_build_object('block', permanence_block_json(k));
END $$;

-- Gives unclaimed seats of a block back to the pool (all of them when
-- seats is left out) and serves the offer's waitlist with them.
CREATE OR REPLACE FUNCTION api.permanence_release_block(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    pm permanences := scope_permanence(u, (p->>'permanence_id')::bigint, 'update');
    o offers;
    k permanence_blocks;
    n integer;
BEGIN
    IF pm.state = 'closed' THEN
        PERFORM permanence_refuse_state(pm, 'releasing seats');
    END IF;
    SELECT * INTO o FROM offers WHERE id = (p->>'offer_id')::bigint FOR UPDATE;
    IF FOUND THEN
        SELECT * INTO k FROM permanence_blocks
         WHERE permanence_id = pm.id AND offer_id = o.id FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        PERFORM not_found('block of this permanence on this offer', 'offer_id');
    END IF;
    n := coalesce((p->>'seats')::integer, k.seats - k.claimed);
    IF n > k.seats - k.claimed THEN
        PERFORM api_error('seats_taken',
            format('Only %s seats of this block are unclaimed.', k.seats - k.claimed),
            jsonb_build_object('field', 'seats', 'unclaimed', k.seats - k.claimed,
                               'claimed', k.claimed));
    END IF;
    IF k.seats - n = 0 THEN
        -- claimed is 0 too; bookings that once came from it are all dead
        -- and never live again, so nothing will look for it.
        DELETE FROM permanence_blocks WHERE permanence_id = pm.id AND offer_id = o.id;
        k.seats := 0;
    ELSE
        UPDATE permanence_blocks SET seats = seats - n, updated_at = now()
         WHERE permanence_id = pm.id AND offer_id = o.id RETURNING * INTO k;
    END IF;
    IF n > 0 THEN
        PERFORM waitlist_serve(o.id, p_policy);
        PERFORM emit_seats_changed(o.id);
    END IF;
    PERFORM audit(u, 'permanence.release_block', 'permanence', pm.id,
                  jsonb_build_object('offer_id', o.id, 'seats', n), p_addr);
    RETURN permanence_json(pm) || jsonb_build_object('released', n,
        'block', CASE WHEN k.seats > 0 THEN permanence_block_json(k) END);
END $$;

------------------------------------------------------------------ states

CREATE OR REPLACE FUNCTION api.permanence_open(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    pm permanences := scope_permanence(u, (p->>'permanence_id')::bigint, 'update');
BEGIN
    -- already done: same answer (a desk opened before its draw stays
    -- open for claims after it)
    IF pm.state = 'open' OR (pm.state = 'drawn' AND pm.opened_at IS NOT NULL) THEN
        RETURN permanence_json(pm);
    END IF;
    IF pm.state <> 'scheduled' THEN
        PERFORM permanence_refuse_state(pm, 'opening');
    END IF;
    UPDATE permanences SET state = 'open', opened_at = now()
     WHERE id = pm.id RETURNING * INTO pm;
    PERFORM audit(u, 'permanence.open', 'permanence', pm.id, '{}', p_addr);
    RETURN permanence_json(pm);
END $$;

-- Every unclaimed block seat goes back to the common pool, and each offer's
-- waitlist is served with them. Closing a closed permanence answers it again.
CREATE OR REPLACE FUNCTION api.permanence_close(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    pm permanences := scope_permanence(u, (p->>'permanence_id')::bigint, 'update');
    oid_ bigint;
    returned integer;
    served integer := 0;
BEGIN
    IF pm.state = 'closed' THEN
        RETURN permanence_json(pm) || jsonb_build_object('seats_returned', 0,
                                                         'waitlist_served', 0);
    END IF;
    PERFORM 1 FROM offers
     WHERE id IN (SELECT offer_id FROM permanence_blocks WHERE permanence_id = pm.id)
     ORDER BY id FOR UPDATE;
    SELECT coalesce(sum(block_remaining(k)), 0) INTO returned
      FROM permanence_blocks k WHERE k.permanence_id = pm.id;
    UPDATE permanence_blocks SET returned_at = now(), updated_at = now()
     WHERE permanence_id = pm.id;
    UPDATE permanences SET state = 'closed', closed_at = now()
     WHERE id = pm.id RETURNING * INTO pm;
    FOR oid_ IN SELECT offer_id FROM permanence_blocks
                 WHERE permanence_id = pm.id ORDER BY offer_id LOOP
        served := served + waitlist_serve(oid_, p_policy);
        PERFORM emit_seats_changed(oid_);
    END LOOP;
    PERFORM audit(u, 'permanence.close', 'permanence', pm.id,
                  jsonb_build_object('seats_returned', returned,
                                     'waitlist_served', served), p_addr);
    RETURN permanence_json(pm) || jsonb_build_object('seats_returned', returned,
                                                     'waitlist_served', served);
END $$;

------------------------------------------------------------------ wishes

-- One live wish per beneficiary and permanence; a new one replaces it.
-- Offers must exist, not be cancelled, still take bookings, and allow the
-- party size; whether seats remain is the draw's business.
CREATE OR REPLACE FUNCTION api.permanence_wish(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    -- FOR SHARE: a draw (FOR UPDATE) waits for wishes in flight, and a wish
    -- after it sees the permanence drawn.
    pm permanences := scope_permanence(u, (p->>'permanence_id')::bigint, 'share');
    b beneficiaries;
    n integer := (p->>'seats')::integer;
    v_choices bigint[];
    o offers;
    c bigint;
    old_id bigint;
    w wishes;
BEGIN
    IF pm.state NOT IN ('scheduled', 'open') THEN
        PERFORM permanence_refuse_state(pm, 'making a wish');
    END IF;
    b := permanence_beneficiary(u, pm, (p->>'beneficiary_id')::bigint);
    SELECT array_agg(x::bigint ORDER BY i) INTO v_choices
      FROM jsonb_array_elements_text(p->'choices') WITH ORDINALITY AS t(x, i);
    IF (SELECT count(DISTINCT x) FROM unnest(v_choices) x) <> cardinality(v_choices) THEN
        PERFORM bad_param('choices', 'choices must name different offers');
    END IF;
    FOREACH c IN ARRAY v_choices LOOP
        SELECT * INTO o FROM offers WHERE id = c;
        IF NOT FOUND OR NOT offer_open_to(o, pm.structure_id) THEN
            PERFORM api_error('not_found', format('No such offer: %s.', c),
                              jsonb_build_object('field', 'choices', 'offer_id', c));
        END IF;
        IF o.status = 'cancelled' THEN
            PERFORM api_error('offer_cancelled', format('Offer %s was cancelled.', c),
                              jsonb_build_object('field', 'choices', 'offer_id', c));
        END IF;
        IF now() > o.booking_deadline THEN
            PERFORM api_error('deadline_passed',
                format('The booking deadline of offer %s has passed.', c),
                jsonb_build_object('field', 'choices', 'offer_id', c,
                                   'booking_deadline', ts(o.booking_deadline)));
        END IF;
        IF n > o.max_per_booking THEN
            PERFORM api_error('invalid_params',
                format('seats must be from 1 to %s for offer %s', o.max_per_booking, c),
                jsonb_build_object('field', 'seats', 'offer_id', c,
                                   'max_per_booking', o.max_per_booking));
        END IF;
    END LOOP;
    UPDATE wishes SET replaced_at = now()
     WHERE permanence_id = pm.id AND beneficiary_id = b.id AND replaced_at IS NULL
    RETURNING id INTO old_id;
    INSERT INTO wishes (permanence_id, beneficiary_id, choices, seats, created_by,
                        waitlist_all)
    VALUES (pm.id, b.id, v_choices, n, u.id,
            coalesce((p->>'waitlist_all')::boolean, false)) RETURNING * INTO w;
    PERFORM audit(u, 'permanence.wish', 'wish', w.id,
                  jsonb_build_object('permanence_id', pm.id, 'choices', to_jsonb(v_choices),
                                     'seats', n, 'replaces', old_id,
                                     'waitlist_all', w.waitlist_all), p_addr);
    RETURN wish_json(w) || jsonb_build_object('replaces_wish_id', old_id);
END $$;

-------------------------------------------------------------------- draw

-- The lottery key of docs/draw.md: lowercase hex SHA-256 of "seed:id".
CREATE OR REPLACE FUNCTION core.draw_key(p_seed text, p_beneficiary_id bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(p_seed || ':' || p_beneficiary_id::text, 'UTF8')), 'hex')
$$;

-- 32 random bytes in hex: three v4 UUIDs (366 random bits from
-- pg_strong_random) hashed down to 256 bits.
CREATE OR REPLACE FUNCTION core.draw_random_seed() RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT encode(sha256(decode(replace(gen_random_uuid()::text
        || gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')), 'hex')
$$;

------------------------------------------------------------------ claims

-- At the desk, while open (and after the draw, if it was opened: what the
-- draw left of the blocks): first come, first served, block first, then
-- the pool; the rules and errors of booking.create, idempotency key
-- included.
CREATE OR REPLACE FUNCTION api.permanence_claim(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    k text := p->>'idempotency_key';
    pm permanences;
    b beneficiaries;
    o offers;
    n integer := (p->>'seats')::integer;
    v_left integer;
    why text;
    bk bookings;
    res jsonb;
BEGIN
    res := idem_replay(u, k, 'permanence.claim', p - 'idempotency_key');
    IF res IS NOT NULL THEN
        RETURN res;
    END IF;
    -- FOR SHARE: claims run side by side; close and draw wait for them.
    pm := scope_permanence(u, (p->>'permanence_id')::bigint, 'share');
    IF NOT permanence_claims_open(pm) THEN
        PERFORM permanence_refuse_state(pm, 'claiming seats');
    END IF;
    b := permanence_beneficiary(u, pm, (p->>'beneficiary_id')::bigint);
    PERFORM person_lock(b);
    SELECT * INTO o FROM offers WHERE id = (p->>'offer_id')::bigint FOR UPDATE;
    IF FOUND THEN
        v_left := permanence_block_left(pm.id, o.id);
    END IF;
    IF NOT FOUND OR (v_left = 0 AND NOT offer_open_to(o, b.structure_id)) THEN
        PERFORM not_found('offer', 'offer_id');
    END IF;
    IF n > o.max_per_booking THEN
        PERFORM bad_param('seats', format('seats must be from 1 to %s for this offer',
                                          o.max_per_booking));
    END IF;
    why := booking_refusal(b, o, n, p_policy, v_left);
    IF why IS NOT NULL THEN
        PERFORM booking_refuse(why, b, o, p_policy, v_left);
    END IF;
    bk := permanence_book(u, b, o, n, pm.id, least(n, v_left), 'claim');
    PERFORM emit_seats_changed(o.id);
    res := booking_json(bk) || jsonb_build_object('permanence_id', pm.id,
                                                  'from_block', bk.block_seats);
    PERFORM idem_store(u, k, 'permanence.claim', p - 'idempotency_key', res);
    PERFORM audit(u, 'permanence.claim', 'booking', bk.id,
                  jsonb_build_object('permanence_id', pm.id, 'offer_id', o.id,
                                     'seats', n, 'from_block', bk.block_seats), p_addr);
    RETURN res;
END $$;

------------------------------------------------------------------ seeds

-- The seed as the draw will use it, and its public fingerprint: lowercase
-- hex SHA-256 of the seed's text (UTF-8), what `printf %s SEED | sha256sum`
-- prints.
CREATE OR REPLACE FUNCTION core.seed_sha256(p_seed text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(p_seed, 'UTF8')), 'hex')
$$;

-- A block returned by the sweep keeps the time it was returned when its
-- permanence is closed later (permanence_close marks every block).
CREATE OR REPLACE FUNCTION core.blocks_keep_returned_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.returned_at := coalesce(OLD.returned_at, NEW.returned_at);
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER blocks_keep_returned_at
    BEFORE UPDATE OF returned_at ON permanence_blocks
    FOR EACH ROW EXECUTE FUNCTION core.blocks_keep_returned_at();

-- Seats of the offer that the structure holds in blocks not yet returned,
-- claimed ones included. Caller holds the offer's row lock.
CREATE OR REPLACE FUNCTION core.structure_block_seats(p_structure_id bigint, p_offer_id bigint)
RETURNS integer LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(sum(k.seats), 0)::integer
          FROM permanence_blocks k JOIN permanences p ON p.id = k.permanence_id
         WHERE k.offer_id = p_offer_id AND p.structure_id = p_structure_id
           AND k.returned_at IS NULL);
END $$;

-- Unclaimed seats of blocks whose permanence has ended, or whose offer's
-- booking deadline has passed, go back to the common pool; the offer's
-- waitlist is served with them and offer.seats_changed tells the venue.
-- The block keeps only its claimed seats (seats = claimed), so that
-- permanence.release_block, still possible on a permanence not closed,
-- finds nothing left to release. Claimed seats stay with their bookings,
-- and a booking from the block cancelled later frees its seats into the
-- pool, as after permanence.close.
-- Run by every daemon from waitlist_sweep(). The permanence, then the
-- offer, are taken with SKIP LOCKED: a block another transaction is
-- working on waits for the next sweep, nobody waits here, and a block is
-- returned once (returned_at is checked under both locks). Audited as
-- 'permanence.block_return', with no user.
CREATE OR REPLACE FUNCTION core.permanence_block_sweep(p_policy jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    k permanence_blocks;
    n integer := 0;
    served integer;
BEGIN
    FOR r IN
        SELECT k2.permanence_id, k2.offer_id,
               CASE WHEN p.ends_at <= o.booking_deadline THEN 'permanence_ended'
                    ELSE 'booking_deadline' END AS why
          FROM permanence_blocks k2
          JOIN permanences p ON p.id = k2.permanence_id
          JOIN offers o ON o.id = k2.offer_id
         WHERE k2.returned_at IS NULL
           AND least(p.ends_at, o.booking_deadline) <= now()
         ORDER BY k2.permanence_id, k2.offer_id LIMIT 100
    LOOP
        PERFORM 1 FROM permanences WHERE id = r.permanence_id
           FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        PERFORM 1 FROM offers WHERE id = r.offer_id FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        SELECT * INTO k FROM permanence_blocks
         WHERE permanence_id = r.permanence_id AND offer_id = r.offer_id
           AND returned_at IS NULL
           FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        UPDATE permanence_blocks SET returned_at = now(), seats = claimed,
               updated_at = now()
         WHERE permanence_id = k.permanence_id AND offer_id = k.offer_id;
        served := waitlist_serve(k.offer_id, p_policy);
        PERFORM emit_seats_changed(k.offer_id);
        INSERT INTO audit_log (user_id, method, object_type, object_id, summary)
        VALUES (NULL, 'permanence.block_return', 'permanence', k.permanence_id,
                jsonb_build_object('offer_id', k.offer_id, 'reason', r.why,
                                   'seats_returned', block_remaining(k),
                                   'waitlist_served', served));
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- The answer is json, not jsonb (sql/020): written once as text, from the
-- values the draw holds, passed on by the daemon as it is and stored as it
-- is; a replay answers the same text.
CREATE OR REPLACE FUNCTION api.permanence_draw(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    pm permanences := scope_permanence(u, (p->>'permanence_id')::bigint, 'update');
    v_seed text := pm.draw_secret;
    v_weight numeric := coalesce((p_policy->>'no_show_weight')::numeric, 2);
    v_wl_weight numeric := coalesce((p_policy->>'withdrawn_late_weight')::numeric, 0.5);
    v_days integer := coalesce((p_policy->>'history_window_days')::integer, 365);
    v_max_upcoming integer :=
        coalesce((p_policy->>'max_upcoming_per_beneficiary')::integer, 2);
    v_max_month integer := coalesce((p_policy->>'max_per_month')::integer, 2);
    v_from timestamptz;
    v_offers json;
    v_results json;
    -- The offers concerned, in id order; an offer's index is its place.
    v_ids bigint[];
    v_block integer[];          -- block seats left
    v_pool integer[];           -- common pool seats left
    r record;
    v_pos integer := 0;
    v_granted integer := 0;
    v_i integer;
    v_x integer;
    v_take integer;
    v_why text;
    -- Per wish, in draw order: what step 3 writes.
    a_wish bigint[] := '{}';
    a_ben bigint[] := '{}';
    a_att integer[] := '{}';
    a_ns integer[] := '{}';
    a_wl integer[] := '{}';
    a_score numeric[] := '{}';
    a_key text[] := '{}';
    a_rank integer[] := '{}';
    a_offer bigint[] := '{}';
    a_seats integer[] := '{}';
    a_from integer[] := '{}';
    a_reason text[] := '{}';
    -- The waiting lists the wishes that got nothing join: (position, offer).
    wl_pos integer[] := '{}';
    wl_offer bigint[] := '{}';
    v_waitlisted integer := 0;
    v_o offers;
    res json;
BEGIN
    IF pm.draw_result IS NOT NULL THEN
        RETURN pm.draw_result;              -- drawn once: the same answer
    END IF;
    IF pm.state NOT IN ('scheduled', 'open') THEN
        PERFORM permanence_refuse_state(pm, 'a draw');
    END IF;
    -- No JIT for the rest of this transaction: each statement of the draw
    -- runs once over rows that cost little each, and where the planner's
    -- estimates pass jit_above_cost (large tables), compiling them would
    -- cost more than it saves. Local: the daemon runs each call in a
    -- transaction of its own. (A SET clause on the function would do the
    -- same, but the entry points carry only their search_path.)
    PERFORM set_config('jit', 'off', true);
    v_from := pm.starts_at - make_interval(hours => 24 * v_days);

    -- Lock order: beneficiaries, then offers, each in id order.
    PERFORM 1 FROM beneficiaries
     WHERE id IN (SELECT beneficiary_id FROM wishes
                   WHERE permanence_id = pm.id AND replaced_at IS NULL)
     ORDER BY id FOR UPDATE;
    -- then the persons' (person_lock()), in key order
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT person_lock_key(b.identity_key) AS k
               FROM wishes w JOIN beneficiaries b ON b.id = w.beneficiary_id
              WHERE w.permanence_id = pm.id AND w.replaced_at IS NULL
                AND b.identity_key IS NOT NULL
              ORDER BY 1) pk;
    PERFORM 1 FROM offers
     WHERE id IN (SELECT unnest(choices) FROM wishes
                   WHERE permanence_id = pm.id AND replaced_at IS NULL
                  UNION SELECT offer_id FROM permanence_blocks
                   WHERE permanence_id = pm.id)
     ORDER BY id FOR UPDATE;

    -- What each offer had to give when the draw started.
    SELECT array_agg(o.id ORDER BY o.id),
           array_agg(coalesce(block_remaining(k), 0) ORDER BY o.id),
           array_agg(o.seats_total - o.seats_taken - o.seats_held ORDER BY o.id),
           json_agg(json_build_object('offer_id', o.id,
               'block_remaining', coalesce(block_remaining(k), 0),
               'pool_available', o.seats_total - o.seats_taken - o.seats_held)
               ORDER BY o.id)
      INTO v_ids, v_block, v_pool, v_offers
      FROM offers o
      LEFT JOIN permanence_blocks k ON k.permanence_id = pm.id AND k.offer_id = o.id
     WHERE o.id IN (SELECT unnest(choices) FROM wishes
                     WHERE permanence_id = pm.id AND replaced_at IS NULL
                    UNION SELECT offer_id FROM permanence_blocks
                     WHERE permanence_id = pm.id);

    -- Steps 1 and 2. `idx` and `why` are per choice, in the wish's order:
    -- the offer's index, and the refusal that does not depend on seats.
    FOR r IN
        WITH w AS (
            SELECT w.id, w.beneficiary_id, w.choices, w.seats, w.waitlist_all,
                   s.timezone AS tz, bb.identity_key
              FROM wishes w
              JOIN beneficiaries bb ON bb.id = w.beneficiary_id
              JOIN structures s ON s.id = bb.structure_id
             WHERE w.permanence_id = pm.id AND w.replaced_at IS NULL
               AND bb.erased_at IS NULL
        ), rec AS (
            -- each wisher's records: their own, and those of other
            -- structures with the same identity key (docs/privacy.md)
            SELECT w.beneficiary_id, w.beneficiary_id AS rec_id, w.tz FROM w
            UNION ALL
            SELECT w.beneficiary_id, x.id, w.tz
              FROM w JOIN beneficiaries x ON x.identity_key = w.identity_key
             WHERE w.identity_key IS NOT NULL AND x.id <> w.beneficiary_id
        ), mine AS (
            -- the live bookings of those people (of all their records),
            -- with what the caps need, and their late withdrawals, which
            -- only the score counts
            SELECT rec.beneficiary_id, bk.offer_id, bk.status, x.starts_at,
                   date_trunc('month', x.starts_at AT TIME ZONE rec.tz) AS month
              FROM rec
              JOIN bookings bk ON bk.beneficiary_id = rec.rec_id
              JOIN offers x ON x.id = bk.offer_id
             WHERE bk.status IN ('confirmed', 'attended', 'no_show', 'withdrawn_late')
        ), live AS (
            SELECT * FROM mine WHERE status <> 'withdrawn_late'
        ), upcoming AS (
            SELECT beneficiary_id, count(*) AS n FROM live
             WHERE status = 'confirmed' AND starts_at > now()
             GROUP BY beneficiary_id
        ), months AS (
            SELECT beneficiary_id, month, count(*) AS n FROM live
             GROUP BY beneficiary_id, month
        ), held AS (
            SELECT DISTINCT beneficiary_id, offer_id FROM live
        ), ix AS (
            SELECT * FROM unnest(v_ids) WITH ORDINALITY AS ix(offer_id, idx)
        ), c AS (
            SELECT w.id AS wish_id, c.choice_no, ix.idx,
                   CASE
                   WHEN w.seats > o.max_per_booking THEN 'limit_reached'
                   WHEN o.status = 'cancelled' THEN 'offer_cancelled'
                   WHEN now() > o.booking_deadline THEN 'deadline_passed'
                   WHEN held.offer_id IS NOT NULL THEN 'duplicate'
                   WHEN coalesce(up.n, 0) >= v_max_upcoming
                     OR coalesce(mo.n, 0) >= v_max_month THEN 'limit_reached'
                   END AS why
              FROM w
              CROSS JOIN LATERAL unnest(w.choices) WITH ORDINALITY AS c(offer_id, choice_no)
              JOIN offers o ON o.id = c.offer_id
              JOIN ix ON ix.offer_id = o.id
              LEFT JOIN held ON held.beneficiary_id = w.beneficiary_id
                            AND held.offer_id = o.id
              LEFT JOIN upcoming up ON up.beneficiary_id = w.beneficiary_id
              LEFT JOIN months mo ON mo.beneficiary_id = w.beneficiary_id
                  AND mo.month = date_trunc('month', o.starts_at AT TIME ZONE w.tz)
        ), cc AS (
            SELECT c.wish_id, array_agg(c.idx ORDER BY c.choice_no) AS idx,
                   array_agg(c.why ORDER BY c.choice_no) AS why
              FROM c GROUP BY c.wish_id
        ), h AS (
            -- the history of rule 1, from the same rows: reading it
            -- from the offers of the window instead read every booking
            -- of the last year, however few the people who wished
            SELECT w.id AS wish_id,
                   count(*) FILTER (WHERE live.status = 'attended')::integer AS attended,
                   count(*) FILTER (WHERE live.status = 'no_show')::integer AS no_shows,
                   count(*) FILTER (WHERE live.status = 'withdrawn_late')::integer AS withdrawn_late
              FROM w
              JOIN mine live ON live.beneficiary_id = w.beneficiary_id
             WHERE live.status IN ('attended', 'no_show', 'withdrawn_late')
               AND live.starts_at >= v_from AND live.starts_at < pm.starts_at
             GROUP BY w.id
        )
        SELECT w.id, w.beneficiary_id, w.seats, w.waitlist_all,
               coalesce(h.attended, 0) AS n_att, coalesce(h.no_shows, 0) AS n_ns,
               coalesce(h.withdrawn_late, 0) AS n_wl,
               trim_scale(coalesce(h.attended, 0) + v_weight * coalesce(h.no_shows, 0)
                          + v_wl_weight * coalesce(h.withdrawn_late, 0)) AS v_score,
               draw_key(v_seed, w.beneficiary_id) COLLATE "C" AS v_key,
               cc.idx, cc.why
          FROM w
          JOIN cc ON cc.wish_id = w.id
          LEFT JOIN h ON h.wish_id = w.id
         ORDER BY v_score, v_key, w.beneficiary_id
    LOOP
        v_pos := v_pos + 1;
        a_wish[v_pos] := r.id;
        a_ben[v_pos] := r.beneficiary_id;
        a_att[v_pos] := r.n_att;
        a_ns[v_pos] := r.n_ns;
        a_wl[v_pos] := r.n_wl;
        a_score[v_pos] := r.v_score;
        a_key[v_pos] := r.v_key;
        a_seats[v_pos] := r.seats;
        a_rank[v_pos] := NULL;
        a_offer[v_pos] := NULL;
        a_from[v_pos] := NULL;
        a_reason[v_pos] := NULL;
        FOR v_i IN 1 .. cardinality(r.idx) LOOP
            v_why := r.why[v_i];
            v_x := r.idx[v_i];
            IF v_why IS NULL AND v_block[v_x] + v_pool[v_x] < r.seats THEN
                v_why := 'sold_out';
            END IF;
            IF v_why IS NULL THEN
                v_take := least(r.seats, v_block[v_x]);
                v_block[v_x] := v_block[v_x] - v_take;
                v_pool[v_x] := v_pool[v_x] - (r.seats - v_take);
                a_rank[v_pos] := v_i;
                a_offer[v_pos] := v_ids[v_x];
                a_from[v_pos] := v_take;
                a_reason[v_pos] := NULL;
                v_granted := v_granted + 1;
                EXIT;
            END IF;
            a_reason[v_pos] := coalesce(a_reason[v_pos], v_why);
        END LOOP;
        -- Nothing granted: the wish joins the waiting list of its first
        -- choice, and with waitlist_all of its other choices, each one
        -- refused only for want of seats (docs/waitlist.md), unless the
        -- person waits there already as another record. Nothing was
        -- taken since its choices were tried, so a choice with no other
        -- refusal was sold out.
        IF a_offer[v_pos] IS NULL THEN
            FOR v_i IN 1 .. cardinality(r.idx) LOOP
                IF r.why[v_i] IS NULL AND (v_i = 1 OR r.waitlist_all)
                   AND NOT waits_as_other_record(a_ben[v_pos], v_ids[r.idx[v_i]]) THEN
                    wl_pos := wl_pos || v_pos;
                    wl_offer := wl_offer || v_ids[r.idx[v_i]];
                END IF;
            END LOOP;
        END IF;
    END LOOP;

    -- Step 3, in one statement: the bookings, in draw order (their ids
    -- follow it), the outcome on each wish, and the answer's results,
    -- written from the same rows (not read back from the tables).
    WITH d AS (
        SELECT * FROM unnest(a_wish, a_ben, a_att, a_ns, a_wl, a_score, a_key,
                             a_rank, a_offer, a_seats, a_from, a_reason)
                 WITH ORDINALITY
                 AS d(wish_id, ben, att, ns, wl, score, key, rank, offer_id,
                      seats, from_block, reason, pos)
    ), g AS (
        SELECT d.*, row_number() OVER (ORDER BY d.pos) AS n
          FROM d WHERE d.offer_id IS NOT NULL
    ), codes AS (
        SELECT code, row_number() OVER () AS n FROM ticket_codes(v_granted) code
    ), ins AS (
        INSERT INTO bookings (offer_id, beneficiary_id, structure_id, seats,
                              code, source, created_by, permanence_id,
                              block_seats, offer_starts_at)
        SELECT g.offer_id, g.ben, b.structure_id, g.seats, codes.code, 'draw',
               u.id, pm.id, g.from_block, o.starts_at
          FROM g
          JOIN codes ON codes.n = g.n
          JOIN beneficiaries b ON b.id = g.ben
          JOIN offers o ON o.id = g.offer_id
         ORDER BY g.pos
        RETURNING id, beneficiary_id, code
    ), wl AS (
        SELECT x.pos, json_agg(x.offer_id ORDER BY x.n) AS offers
          FROM unnest(wl_pos, wl_offer) WITH ORDINALITY AS x(pos, offer_id, n)
         GROUP BY x.pos
    ), dx AS (
        SELECT d.*, ins.id AS booking_id, ins.code, wl.offers AS waitlist
          FROM d LEFT JOIN ins ON ins.beneficiary_id = d.ben
          LEFT JOIN wl ON wl.pos = d.pos
    ), upd AS (
        UPDATE wishes w SET draw_position = dx.pos, attended = dx.att,
               no_shows = dx.ns, withdrawn_late = dx.wl,
               score = dx.score, lottery_key = dx.key,
               granted_rank = dx.rank, booking_id = dx.booking_id,
               reason = dx.reason
          FROM dx
         WHERE w.id = dx.wish_id
    )
    SELECT json_agg(json_build_object('position', dx.pos,
               'wish_id', dx.wish_id, 'beneficiary_id', dx.ben,
               'choices', to_json(w.choices), 'seats', dx.seats,
               'attended', dx.att, 'no_shows', dx.ns, 'withdrawn_late', dx.wl,
               'score', dx.score, 'lottery_key', dx.key,
               'rank', dx.rank, 'offer_id', dx.offer_id,
               'booking_id', dx.booking_id,
               'code', ticket_display(dx.code),
               'from_block', dx.from_block, 'reason', dx.reason,
               'waitlist', coalesce(dx.waitlist, '[]'::json))
               ORDER BY dx.pos)
      INTO v_results
      FROM dx JOIN wishes w ON w.id = dx.wish_id;

    -- Activity is kept to the day, as for every booking (docs/privacy.md).
    UPDATE beneficiaries SET last_activity_at = now()
     WHERE id IN (SELECT beneficiary_id FROM bookings
                   WHERE permanence_id = pm.id AND source = 'draw')
       AND last_activity_at < now() - interval '1 day';

    -- The waiting lists, in draw order: the entries' ids follow it, and
    -- with the same created_at, so does their waiting time. A person
    -- already on one of those lists keeps their entry (under another of
    -- their records, the loop above left that list out: one place per
    -- person, docs/privacy.md).
    INSERT INTO waitlist_entries (offer_id, beneficiary_id, structure_id, seats,
                                  created_by, source, wish_id)
    SELECT x.offer_id, a_ben[x.pos], b.structure_id, a_seats[x.pos], u.id,
           'draw', a_wish[x.pos]
      FROM unnest(wl_pos, wl_offer) WITH ORDINALITY AS x(pos, offer_id, n)
      JOIN beneficiaries b ON b.id = a_ben[x.pos]
     ORDER BY x.n
        ON CONFLICT (offer_id, beneficiary_id)
           WHERE status IN ('waiting', 'offered') DO NOTHING;
    GET DIAGNOSTICS v_waitlisted = ROW_COUNT;
    FOR v_o IN SELECT * FROM offers
                WHERE id IN (SELECT unnest(wl_offer)) ORDER BY id LOOP
        PERFORM waitlist_rescore(v_o, p_policy);
    END LOOP;

    res := json_build_object('permanence_id', pm.id, 'seed', v_seed,
        'drawn_at', ts(now()), 'no_show_weight', trim_scale(v_weight),
        'withdrawn_late_weight', trim_scale(v_wl_weight),
        'history_window_days', v_days,
        'window_from', ts(v_from), 'window_to', ts(pm.starts_at),
        'wishes', v_pos, 'granted', v_granted, 'waitlisted', v_waitlisted,
        'offers', coalesce(v_offers, '[]'::json),
        'results', coalesce(v_results, '[]'::json));
    UPDATE permanences SET state = 'drawn', draw_seed = v_seed,
           drawn_at = now(), draw_result = res
     WHERE id = pm.id;

    -- One offer.seats_changed and one booking.created per offer that got
    -- bookings, in offer id order, by one INSERT into the outbox: what
    -- emit_seats_changed() and emit() write for each (the xid taken
    -- before the rows' ids, the offer's free text left out), without two
    -- function calls and two statements per offer.
    PERFORM pg_current_xact_id();
    INSERT INTO event_outbox (topic, partner_id, structure_id, data)
    SELECT e.topic, o.partner_id, e.structure_id, e.data
      FROM (SELECT bk.offer_id, count(*) AS n, sum(bk.seats) AS seats,
                   sum(bk.block_seats) AS from_block,
                   jsonb_agg(bk.id ORDER BY bk.id) AS ids
              FROM bookings bk
             WHERE bk.permanence_id = pm.id AND bk.source = 'draw'
             GROUP BY bk.offer_id) g
      JOIN offers o ON o.id = g.offer_id
      JOIN partners pa ON pa.id = o.partner_id
     CROSS JOIN LATERAL (VALUES
           (1, 'offer.seats_changed', NULL::bigint,
            offer_json_of(o, pa.name) - 'description' - 'accessibility'),
           (2, 'booking.created', pm.structure_id,
            jsonb_build_object('offer_id', o.id, 'permanence_id', pm.id,
                'source', 'draw', 'bookings', g.n, 'seats', g.seats,
                'from_block', g.from_block,
                -- an event's text stops at 8000 bytes (emit())
                'booking_ids', CASE WHEN g.n <= 500 THEN g.ids END)))
           AS e(k, topic, structure_id, data)
     ORDER BY o.id, e.k;
    PERFORM audit(u, 'permanence.draw', 'permanence', pm.id,
                  jsonb_build_object('seed', v_seed, 'wishes', v_pos,
                                     'granted', v_granted,
                                     'waitlisted', v_waitlisted), p_addr);
    RETURN res;
END $$;

------------------------------------------------------------- public page

-- A structure's upcoming permanences, for anyone (docs/protocol.md,
-- "public"): those not closed that have not ended, the next 100 at most,
-- in time order. Places, times and notes only: nothing about people,
-- blocks or draws.
CREATE OR REPLACE FUNCTION core.permanences_upcoming(p_structure_id bigint)
RETURNS SETOF permanences LANGUAGE sql STABLE AS $$
    SELECT * FROM permanences
     WHERE structure_id = p_structure_id AND state <> 'closed'
       AND ends_at > now()
     ORDER BY starts_at, id LIMIT 100
$$;

CREATE OR REPLACE FUNCTION api.permanence_public_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    s structures;
BEGIN
    SELECT * INTO s FROM structures WHERE id = (p->>'structure_id')::bigint;
    IF NOT FOUND THEN
        PERFORM not_found('structure', 'structure_id');
    END IF;
    RETURN jsonb_build_object(
        'structure', jsonb_build_object('id', s.id, 'name', s.name,
                                        'town', s.city),
        'items', coalesce((
            SELECT jsonb_agg(jsonb_build_object('id', pm.id,
                       'starts_at', ts(pm.starts_at), 'ends_at', ts(pm.ends_at),
                       'place', pm.location, 'notes', pm.notes)
                       ORDER BY pm.starts_at, pm.id)
              FROM permanences_upcoming(s.id) pm), '[]'::jsonb));
END $$;

-- iCalendar (RFC 5545) text: the characters a TEXT value escapes.
CREATE OR REPLACE FUNCTION core.ics_text(p text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT replace(replace(replace(replace(replace(replace(p,
        '\', '\\'), ';', '\;'), ',', '\,'), E'\r\n', E'\n'), E'\r', E'\n'),
        E'\n', '\n')
$$;

-- One content line, folded: no line longer than 75 octets, a UTF-8
-- character never cut, each continuation starting with a space; CRLF ends
-- every line.
CREATE OR REPLACE FUNCTION core.ics_line(p text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out text := '';
    n integer := 0;
    c text;
    w integer;
BEGIN
    FOR i IN 1..length(p) LOOP
        c := substr(p, i, 1);
        w := octet_length(c);
        IF n + w > 75 THEN
            out := out || E'\r\n ';
            n := 1;
        END IF;
        out := out || c;
        n := n + w;
    END LOOP;
    RETURN out || E'\r\n';
END $$;

CREATE OR REPLACE FUNCTION core.ics_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"')
$$;

-- The calendar of a structure's upcoming permanences, served at
-- /p/ID.ics (docs/http.md); NULL for an unknown structure. Not a method:
-- the daemon calls it with the id alone.
CREATE OR REPLACE FUNCTION api.permanence_ics(p_structure_id bigint)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    s structures;
    pm permanences;
    stamp text := ics_time(now());
    out text;
BEGIN
    SELECT * INTO s FROM structures WHERE id = p_structure_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    out := ics_line('BEGIN:VCALENDAR') || ics_line('VERSION:2.0')
        || ics_line('PRODID:-//strapontin//permanences//FR')
        || ics_line('CALSCALE:GREGORIAN') || ics_line('METHOD:PUBLISH')
        || ics_line('X-WR-CALNAME:' || ics_text('Permanences – ' || s.name));
    FOR pm IN SELECT * FROM permanences_upcoming(s.id) LOOP
        out := out || ics_line('BEGIN:VEVENT')
            || ics_line('UID:permanence-' || pm.id || '@strapontin')
            || ics_line('DTSTAMP:' || stamp)
            || ics_line('DTSTART:' || ics_time(pm.starts_at))
            || ics_line('DTEND:' || ics_time(pm.ends_at))
            || ics_line('SUMMARY:' || ics_text(pm.title || ' – ' || s.name))
            || ics_line('LOCATION:' || ics_text(coalesce(pm.location, s.city)))
            || ics_line('DESCRIPTION:' || ics_text(
                   'Permanence de ' || s.name || ' (' || s.city || ') : '
                   || 'places gratuites pour des sorties culturelles.'
                   || coalesce(E'\nÀ savoir : ' || pm.notes, '')))
            || ics_line('END:VEVENT');
    END LOOP;
    RETURN out || ics_line('END:VCALENDAR');
END $$;
