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

------------------------------------------------------------ seat counting

-- The seats of inserted bookings are counted once per statement: the
-- draw's single INSERT of thousands of bookings makes one UPDATE of each
-- block and of each offer concerned instead of one per booking. Updates
-- and deletions stay counted row by row by bookings_count_seats (sql/004).
-- Every path that inserts bookings holds the offers' row locks.
CREATE FUNCTION bookings_count_inserted() RETURNS trigger
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

DROP TRIGGER bookings_count_seats ON bookings;
CREATE TRIGGER bookings_count_seats
    AFTER DELETE
       OR UPDATE OF status, seats, offer_id, permanence_id, block_seats ON bookings
    FOR EACH ROW EXECUTE FUNCTION bookings_count_seats();
CREATE TRIGGER bookings_count_inserted AFTER INSERT ON bookings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_count_inserted();

-- A path that inserts many bookings copies their offer's start itself,
-- from the offers it holds locked (the draw): no query per booking. The
-- others leave it to this trigger.
DROP TRIGGER report_booking_starts ON bookings;
CREATE TRIGGER report_booking_starts BEFORE INSERT ON bookings
    FOR EACH ROW WHEN (NEW.offer_starts_at IS NULL)
    EXECUTE FUNCTION report_booking_starts();

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

-- Ticket codes for n bookings at once, as ticket_code() (sql/003) makes
-- them one by one, without a loop per character: 75 random bits of a v4
-- UUID (its version and variant nibbles skipped), as a 60-bit and a 16-bit
-- number, written 5 bits a character in Crockford's base32, plus the check
-- character (the i-th character's value weighted by i, mod 31).
CREATE FUNCTION ticket_char(v bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT substr(ticket_alphabet(), v::integer + 1, 1)
$$;

CREATE FUNCTION ticket_codes(n integer) RETURNS SETOF text
LANGUAGE sql VOLATILE AS $$
    SELECT ticket_char((a >> 55) & 31) ||
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
                    OFFSET 0) x) y
$$;

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
DROP FUNCTION permanence_draw(text, jsonb, text, jsonb);
DROP FUNCTION permanence_draw_with_seed(text, jsonb, text, jsonb);

CREATE FUNCTION permanence_draw(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    pm permanences := scope_permanence(u, (p->>'permanence_id')::bigint, 'update');
    v_seed text := pm.draw_secret;
    v_weight numeric := coalesce((p_policy->>'no_show_weight')::numeric, 2);
    v_days integer := coalesce((p_policy->>'history_window_days')::integer, 365);
    v_max_upcoming integer :=
        coalesce((p_policy->>'max_upcoming_per_beneficiary')::integer, 2);
    v_max_month integer := coalesce((p_policy->>'max_per_month')::integer, 2);
    v_from timestamptz;
    v_offers jsonb;
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
    a_score numeric[] := '{}';
    a_key text[] := '{}';
    a_rank integer[] := '{}';
    a_offer bigint[] := '{}';
    a_seats integer[] := '{}';
    a_from integer[] := '{}';
    a_reason text[] := '{}';
    res jsonb;
BEGIN
    IF pm.draw_result IS NOT NULL THEN
        RETURN pm.draw_result;              -- drawn once: the same answer
    END IF;
    IF pm.state NOT IN ('scheduled', 'open') THEN
        PERFORM permanence_refuse_state(pm, 'a draw');
    END IF;
    v_from := pm.starts_at - make_interval(hours => 24 * v_days);

    -- Lock order: beneficiaries, then offers, each in id order.
    PERFORM 1 FROM beneficiaries
     WHERE id IN (SELECT beneficiary_id FROM wishes
                   WHERE permanence_id = pm.id AND replaced_at IS NULL)
     ORDER BY id FOR UPDATE;
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
           jsonb_agg(jsonb_build_object('offer_id', o.id,
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
            SELECT w.id, w.beneficiary_id, w.choices, w.seats, s.timezone AS tz
              FROM wishes w
              JOIN beneficiaries bb ON bb.id = w.beneficiary_id
              JOIN structures s ON s.id = bb.structure_id
             WHERE w.permanence_id = pm.id AND w.replaced_at IS NULL
               AND bb.erased_at IS NULL
        ), live AS (
            -- the live bookings of those people, with what the caps need
            SELECT bk.beneficiary_id, bk.offer_id, bk.status, x.starts_at,
                   date_trunc('month', x.starts_at AT TIME ZONE w.tz) AS month
              FROM w
              JOIN bookings bk ON bk.beneficiary_id = w.beneficiary_id
              JOIN offers x ON x.id = bk.offer_id
             WHERE bk.status IN ('confirmed', 'attended', 'no_show')
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
            SELECT w.id AS wish_id,
                   count(*) FILTER (WHERE bk.status = 'attended')::integer AS attended,
                   count(*) FILTER (WHERE bk.status = 'no_show')::integer AS no_shows
              FROM w
              JOIN bookings bk ON bk.beneficiary_id = w.beneficiary_id
                              AND bk.status IN ('attended', 'no_show')
              JOIN offers x ON x.id = bk.offer_id
             WHERE x.starts_at >= v_from AND x.starts_at < pm.starts_at
             GROUP BY w.id
        )
        SELECT w.id, w.beneficiary_id, w.seats,
               coalesce(h.attended, 0) AS n_att, coalesce(h.no_shows, 0) AS n_ns,
               trim_scale(coalesce(h.attended, 0) + v_weight * coalesce(h.no_shows, 0)) AS v_score,
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
    END LOOP;

    -- Step 3: the bookings, in draw order (their ids follow it), and the
    -- outcome on each wish.
    WITH d AS (
        SELECT * FROM unnest(a_wish, a_ben, a_att, a_ns, a_score, a_key,
                             a_rank, a_offer, a_seats, a_from, a_reason)
                 WITH ORDINALITY
                 AS d(wish_id, ben, att, ns, score, key, rank, offer_id,
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
        RETURNING id, beneficiary_id
    )
    UPDATE wishes w SET draw_position = d.pos, attended = d.att,
           no_shows = d.ns, score = d.score, lottery_key = d.key,
           granted_rank = d.rank, booking_id = ins.id, reason = d.reason
      FROM d LEFT JOIN ins ON ins.beneficiary_id = d.ben
     WHERE w.id = d.wish_id;

    UPDATE beneficiaries SET last_activity_at = now()
     WHERE id IN (SELECT beneficiary_id FROM bookings
                   WHERE permanence_id = pm.id AND source = 'draw');

    res := jsonb_build_object('permanence_id', pm.id, 'seed', v_seed,
        'drawn_at', ts(now()), 'no_show_weight', trim_scale(v_weight),
        'history_window_days', v_days,
        'window_from', ts(v_from), 'window_to', ts(pm.starts_at),
        'wishes', v_pos, 'granted', v_granted,
        'offers', coalesce(v_offers, '[]'::jsonb),
        'results', coalesce((
            SELECT jsonb_agg(jsonb_build_object('position', w.draw_position,
                       'wish_id', w.id, 'beneficiary_id', w.beneficiary_id,
                       'choices', to_jsonb(w.choices), 'seats', w.seats,
                       'attended', w.attended, 'no_shows', w.no_shows,
                       'score', w.score, 'lottery_key', w.lottery_key,
                       'rank', w.granted_rank, 'offer_id', x.offer_id,
                       'booking_id', w.booking_id,
                       'code', CASE WHEN x.code IS NOT NULL THEN ticket_display(x.code) END,
                       'from_block', x.block_seats, 'reason', w.reason)
                       ORDER BY w.draw_position)
              FROM wishes w LEFT JOIN bookings x ON x.id = w.booking_id
             WHERE w.permanence_id = pm.id AND w.draw_position IS NOT NULL),
            '[]'::jsonb));
    UPDATE permanences SET state = 'drawn', draw_seed = v_seed,
           drawn_at = now(), draw_result = res
     WHERE id = pm.id;

    -- One offer.seats_changed and one booking.created per offer that got
    -- bookings, in offer id order.
    PERFORM emit_seats_changed(o.id),
            emit('booking.created', o.partner_id, pm.structure_id,
                 jsonb_build_object('offer_id', o.id, 'permanence_id', pm.id,
                     'source', 'draw', 'bookings', g.n, 'seats', g.seats,
                     'from_block', g.from_block,
                     -- an event's text stops at 8000 bytes (emit())
                     'booking_ids', CASE WHEN g.n <= 500 THEN g.ids END))
       FROM (SELECT bk.offer_id, count(*) AS n, sum(bk.seats) AS seats,
                    sum(bk.block_seats) AS from_block,
                    jsonb_agg(bk.id ORDER BY bk.id) AS ids
               FROM bookings bk
              WHERE bk.permanence_id = pm.id AND bk.source = 'draw'
              GROUP BY bk.offer_id) g
       JOIN offers o ON o.id = g.offer_id
      ORDER BY o.id;
    PERFORM audit(u, 'permanence.draw', 'permanence', pm.id,
                  jsonb_build_object('seed', v_seed, 'wishes', v_pos,
                                     'granted', v_granted), p_addr);
    RETURN res;
END $$;
