-- strapontin schema 16: the booking path near the floor
-- (docs/booking-rules.md, "Group commit"; docs/BENCHMARKS.md).
--
-- The daemon gathers the booking.create requests that arrive together
-- and hands them to booking_create_batch() in one call: one transaction,
-- one WAL flush, each offer's row taken once for all its requests, the
-- bookings inserted by one statement (so the report counters are added up
-- once), one audit statement, one offer.seats_changed event per offer.
-- Every rule of booking.create holds for each request as if it had come
-- alone, in the order given; a refusal is that request's answer and never
-- aborts the others.
--
-- The JSON shapes come as pairs: an inlinable SQL expression of the rows
-- (offer_json_of, booking_json_of) for queries over many rows, and a
-- PL/pgSQL function of one row (offer_json, booking_json) whose plans stay
-- cached in the session. SQL functions that cannot be inlined (a FROM
-- clause, a sub-select, a volatility label stricter than their body) are
-- parsed and planned again at every call, which cost a booking more than
-- all its real work.

-- to_char() of a timestamp is STABLE: declared IMMUTABLE, ts() was never
-- inlined.
CREATE OR REPLACE FUNCTION ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

CREATE OR REPLACE FUNCTION offer_json_of(o offers, p_partner_name text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', o.id, 'partner_id', o.partner_id,
        'partner_name', p_partner_name,
        'title', o.title, 'category', o.category, 'venue', o.venue,
        'city', o.city, 'starts_at', ts(o.starts_at),
        'ends_at', ts(o.ends_at), 'seats_total', o.seats_total,
        'seats_taken', o.seats_taken, 'seats_held', o.seats_held,
        'seats_available', o.seats_total - o.seats_taken - o.seats_held,
        'max_per_booking', o.max_per_booking,
        'booking_deadline', ts(o.booking_deadline),
        'delivery', o.delivery, 'description', o.description,
        'accessibility', o.accessibility, 'status', o.status,
        'cancel_reason', o.cancel_reason, 'cancelled_at', ts(o.cancelled_at),
        'attendance_closed_at', ts(o.attendance_closed_at),
        'created_at', ts(o.created_at), 'updated_at', ts(o.updated_at))
$$;

CREATE OR REPLACE FUNCTION offer_json(o offers) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    pname text;
BEGIN
    SELECT name INTO pname FROM partners WHERE id = o.partner_id;
    RETURN offer_json_of(o, pname);
END $$;

CREATE OR REPLACE FUNCTION booking_json_of(bk bookings, o offers)
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
        'checked_in_at', ts(bk.checked_in_at))
$$;

CREATE OR REPLACE FUNCTION booking_json(bk bookings) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o offers;
BEGIN
    SELECT * INTO o FROM offers WHERE id = bk.offer_id;
    RETURN booking_json_of(bk, o);
END $$;

CREATE OR REPLACE FUNCTION audit(u users, p_method text, p_type text, p_id bigint,
                                 p_summary jsonb, p_addr text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (user_id, method, object_type, object_id, summary,
                           client_addr)
    VALUES (u.id, p_method, p_type, p_id, coalesce(p_summary, '{}'), p_addr);
END $$;

-- The error a refusal gets, as api_error() would raise it:
-- {reason, message, data}. p_avail is what the person could still take.
CREATE OR REPLACE FUNCTION booking_refusal_error(p_reason text, p_cap text,
                                                 o offers, p_avail integer,
                                                 p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    CASE p_reason
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

-- The single-request path raises the same texts.
CREATE OR REPLACE FUNCTION booking_refuse(p_reason text, b beneficiaries, o offers,
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

-- Idempotency (docs/protocol.md, "Retries"), written once for every
-- method that takes an idempotency_key. idem_replay() serialises the
-- retries of one key (a transaction-scoped advisory lock: the second
-- waits, then finds the first one's answer) and returns the stored answer
-- of the same request, NULL when there is none; a key used for another
-- request is refused. idem_store() keeps an answer.
CREATE OR REPLACE FUNCTION idem_replay(u users, p_key text, p_method text,
                                       p_request jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    prev jsonb;
    prev_method text;
    prev_request jsonb;
BEGIN
    IF p_key IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('idem:' || u.id || ':' || p_key, 0));
    SELECT result, method, request INTO prev, prev_method, prev_request
      FROM idempotency_keys WHERE user_id = u.id AND key = p_key;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF prev_method = p_method AND prev_request = p_request THEN
        RETURN prev;
    END IF;
    PERFORM bad_param('idempotency_key',
        'this idempotency_key was used for another request');
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION idem_store(u users, p_key text, p_method text,
                                      p_request jsonb, p_result jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (user_id, key, method, request, result)
        VALUES (u.id, p_key, p_method, p_request, p_result);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION booking_create(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

-- One query for the page, the partner's name joined rather than looked up
-- per offer, the JSON built by an expression PostgreSQL inlines.
CREATE OR REPLACE FUNCTION offer_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    lim integer := page_limit(p);
    c_ts timestamptz := '-infinity';
    c_id bigint := 0;
    items jsonb;
    last jsonb;
BEGIN
    IF p ? 'cursor' THEN
        IF p->>'cursor' !~ '^-?[0-9]{1,20}:[0-9]{1,18}$' THEN
            PERFORM bad_param('cursor', 'cursor is not one this server gave');
        END IF;
        c_ts := to_timestamp(split_part(p->>'cursor', ':', 1)::numeric / 1000000);
        c_id := split_part(p->>'cursor', ':', 2)::bigint;
    END IF;
    SELECT jsonb_agg(offer_json_of(x.o, x.partner_name)
                     ORDER BY (x.o).starts_at, (x.o).id) INTO items
      FROM (SELECT o, pa.name AS partner_name
              FROM offers o JOIN partners pa ON pa.id = o.partner_id
             WHERE (o.starts_at, o.id) > (c_ts, c_id)
               AND o.starts_at >= coalesce((p->>'from')::timestamptz, '-infinity')
               AND o.starts_at < coalesce((p->>'to')::timestamptz, 'infinity')
               AND (p->>'category' IS NULL OR o.category = p->>'category')
               AND (p->>'city' IS NULL OR lower(o.city) = lower(p->>'city'))
               AND (p->>'partner_id' IS NULL OR o.partner_id = (p->>'partner_id')::bigint)
               AND (coalesce((p->>'available_only')::boolean, false) = false
                    OR (o.status = 'published' AND o.booking_deadline > now()
                        AND o.seats_total - o.seats_taken - o.seats_held > 0))
             ORDER BY o.starts_at, o.id LIMIT lim) x;
    last := items->-1;
    RETURN page(items, lim,
        (extract(epoch FROM (last->>'starts_at')::timestamptz) * 1000000)::bigint
        || ':' || (last->>'id'));
END $$;

-- The error of an api_error() caught in the batch, as {reason, message,
-- data}: what the daemon would have made of it had it come alone.
CREATE OR REPLACE FUNCTION api_error_json(p_reason text, p_hint text, p_detail text)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('reason', p_reason, 'message', p_hint,
                              'data', CASE WHEN p_detail IS NOT NULL AND p_detail <> ''
                                           THEN p_detail::jsonb END)
$$;

-- booking.create for many requests: p_items is an array of
-- {"token": token hash or null, "params": {...}, "addr": text}; the answer
-- an array of the same length, each {"result": booking} or {"error":
-- {reason, message, data}}. Locks: the idempotency keys' advisory locks,
-- then the beneficiaries, then the offers, each set in id order, so two
-- batches never wait on each other in a cycle, nor a batch and a single
-- booking (beneficiary, then offer).
CREATE OR REPLACE FUNCTION booking_create_batch(p_items jsonb, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
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
                IF NOT FOUND THEN
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
        why := NULL;
        cap := NULL;
        mon := date_trunc('month', o.starts_at AT TIME ZONE tzs[bi])::date;
        IF o.status = 'cancelled' THEN
            why := 'offer_cancelled';
        ELSIF now() > o.booking_deadline THEN
            why := 'deadline_passed';
        ELSIF EXISTS (SELECT 1 FROM bookings WHERE offer_id = o.id
                         AND beneficiary_id = b.id
                         AND status IN ('confirmed', 'attended', 'no_show'))
              OR EXISTS (SELECT 1 FROM generate_subscripts(a_item, 1) g
                          WHERE a_ben[g] = b.id AND a_offer[g] = o.id) THEN
            why := 'duplicate';
        ELSE
            -- An accepted request of this batch is upcoming (its deadline
            -- has not passed, and a deadline is never after the show).
            SELECT count(*) FILTER (WHERE a_ben[g] = b.id),
                   count(*) FILTER (WHERE a_ben[g] = b.id AND a_month[g] = mon)
              INTO up_count, mon_count
              FROM generate_subscripts(a_item, 1) g;
            IF (SELECT count(*) FROM bookings bk2 JOIN offers x ON x.id = bk2.offer_id
                 WHERE bk2.beneficiary_id = b.id AND bk2.status = 'confirmed'
                   AND x.starts_at > now()) + up_count
               >= coalesce((p_policy->>'max_upcoming_per_beneficiary')::integer, 2) THEN
                why := 'limit_reached';
                cap := 'max_upcoming_per_beneficiary';
            ELSIF (SELECT count(*) FROM bookings bk2 JOIN offers x ON x.id = bk2.offer_id
                    WHERE bk2.beneficiary_id = b.id
                      AND bk2.status IN ('confirmed', 'attended', 'no_show')
                      AND date_trunc('month', x.starts_at AT TIME ZONE tzs[bi]) = mon)
                  + mon_count
               >= coalesce((p_policy->>'max_per_month')::integer, 2) THEN
                why := 'limit_reached';
                cap := 'max_per_month';
            ELSIF o.seats_total - o.seats_taken - o.seats_held - off_used[oi]
                  < v_seats[i] THEN
                why := 'sold_out';
            END IF;
        END IF;
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
    END LOOP;

    IF array_length(a_item, 1) IS NOT NULL THEN
        -- 4. One statement for all the bookings: the seat and report
        -- triggers run once for them; the offers' CHECK and the unique
        -- index on live bookings still stand behind the counts above.
        FOR bk IN
            INSERT INTO bookings (offer_id, beneficiary_id, structure_id, seats,
                                  code, source, created_by)
            SELECT v_offer[g.k], v_ben[g.k], (bens[array_position(ben_ids, v_ben[g.k])]).structure_id,
                   v_seats[g.k], ticket_code(), 'direct', (v_user[g.k]).id
              FROM unnest(a_item) WITH ORDINALITY AS g(k, ord)
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
        UPDATE beneficiaries SET last_activity_at = now()
         WHERE id = ANY (a_ben);
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

INSERT INTO api_entry_points (name) VALUES ('booking_create_batch')
ON CONFLICT DO NOTHING;

-- Seats counted once per statement for inserted bookings: a call of
-- booking_create_batch() (or a draw) inserting many bookings of one offer
-- updates its row once, not once per booking, which made a hot offer's
-- row a chain of versions. Updates and deletes stay counted per row.
CREATE OR REPLACE FUNCTION bookings_count_seats_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    blocks integer;
    updated integer;
BEGIN
    SELECT count(*) INTO blocks FROM (
        SELECT DISTINCT permanence_id, offer_id FROM new_rows
         WHERE status IN ('confirmed', 'attended', 'no_show') AND block_seats > 0) x;
    IF blocks > 0 THEN
        UPDATE permanence_blocks k
           SET claimed = k.claimed + n.seats, updated_at = now()
          FROM (SELECT permanence_id, offer_id, sum(block_seats) AS seats
                  FROM new_rows
                 WHERE status IN ('confirmed', 'attended', 'no_show')
                   AND block_seats > 0
                 GROUP BY permanence_id, offer_id) n
         WHERE k.permanence_id = n.permanence_id AND k.offer_id = n.offer_id;
        GET DIAGNOSTICS updated = ROW_COUNT;
        IF updated <> blocks THEN
            RAISE EXCEPTION 'bookings took seats from a block that is gone';
        END IF;
    END IF;
    UPDATE offers o SET seats_taken = o.seats_taken + n.seats
      FROM (SELECT offer_id, sum(seats - block_seats) AS seats FROM new_rows
             WHERE status IN ('confirmed', 'attended', 'no_show')
             GROUP BY offer_id HAVING sum(seats - block_seats) <> 0) n
     WHERE o.id = n.offer_id;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS bookings_count_seats ON bookings;
CREATE TRIGGER bookings_count_seats
    AFTER DELETE
       OR UPDATE OF status, seats, offer_id, permanence_id, block_seats ON bookings
    FOR EACH ROW EXECUTE FUNCTION bookings_count_seats();
DROP TRIGGER IF EXISTS bookings_count_seats_inserted ON bookings;
CREATE TRIGGER bookings_count_seats_inserted
    AFTER INSERT ON bookings REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_count_seats_inserted();
