-- strapontin schema 10: a draw seed nobody can choose, a cap on blocks, and
-- blocks that give their seats back by themselves.
--
-- The seed (docs/draw.md). Until now the caller of permanence.draw could
-- name the seed, and so try seeds offline until one favoured a person.
-- Now the server draws the seed when the permanence is scheduled, keeps it
-- in permanences.draw_secret, which no API function returns before the
-- draw, and publishes its SHA-256 at once (seed_sha256 in permanence.get
-- and permanence.list). The draw uses that seed and reveals it (`seed`);
-- anyone can then check that its SHA-256 is the one published before, and
-- replay the draw. permanence.draw takes no seed any more.
--
-- Blocks (docs/booking-rules.md). One structure may hold in blocks at most
-- policy.max_block_share percent of an offer's seats (default 50), counted
-- over its permanences' blocks not yet returned, under the offer's row
-- lock like every other change of the offer's seats. A block's unclaimed
-- seats go back to the common pool by themselves at the permanence's end
-- or the offer's booking deadline, whichever comes first: the waitlist
-- sweep every daemon runs does it (permanence_block_sweep below).

------------------------------------------------------------------ seeds

-- The seed as the draw will use it, and its public fingerprint: lowercase
-- hex SHA-256 of the seed's text (UTF-8), what `printf %s SEED | sha256sum`
-- prints.
CREATE FUNCTION seed_sha256(p_seed text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(p_seed, 'UTF8')), 'hex')
$$;

-- A volatile default is computed row by row, so every existing permanence
-- gets its own seed here, and every new one (permanence.schedule and
-- permanence.schedule_series alike) gets one at insertion.
ALTER TABLE permanences
    ADD COLUMN draw_secret text NOT NULL DEFAULT draw_random_seed();
-- A permanence already drawn keeps the seed it revealed.
UPDATE permanences SET draw_secret = draw_seed WHERE draw_seed IS NOT NULL;
ALTER TABLE permanences
    ADD CONSTRAINT permanences_seed_revealed
        CHECK (draw_seed IS NULL OR draw_seed = draw_secret);

-- As schema 4's, plus seed_sha256; `seed` stays the revealed one, null
-- until the draw. draw_secret itself appears in no answer.
CREATE OR REPLACE FUNCTION permanence_json(pm permanences) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', pm.id, 'structure_id', pm.structure_id,
        'series_id', pm.series_id, 'title', pm.title,
        'location', pm.location,
        'starts_at', ts(pm.starts_at), 'ends_at', ts(pm.ends_at),
        'timezone', s.timezone,
        'local_starts_at', to_char(pm.starts_at AT TIME ZONE s.timezone,
                                   'YYYY-MM-DD"T"HH24:MI'),
        'local_ends_at', to_char(pm.ends_at AT TIME ZONE s.timezone,
                                 'YYYY-MM-DD"T"HH24:MI'),
        'state', pm.state, 'opened_at', ts(pm.opened_at),
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
     WHERE s.id = pm.structure_id
$$;

-- The draw takes the seed drawn at scheduling, whatever p says (the
-- method's schema refuses a `seed` anyway). The rest is schema 4's
-- permanence_draw unchanged: renamed there, called here.
ALTER FUNCTION permanence_draw(text, jsonb, text, jsonb)
    RENAME TO permanence_draw_with_seed;

CREATE FUNCTION permanence_draw(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    pm permanences;
BEGIN
    SELECT * INTO pm FROM permanences
     WHERE id = (p->>'permanence_id')::bigint;
    -- Scope, state and locks are checked by the draw itself; a missing
    -- permanence gets no seed and answers not_found there.
    RETURN permanence_draw_with_seed(p_token,
        jsonb_build_object('permanence_id', p->'permanence_id',
                           'seed', pm.draw_secret),
        p_addr, p_policy);
END $$;

----------------------------------------------------------------- blocks

-- What the sweep looks at every second: the blocks not yet returned.
CREATE INDEX permanence_blocks_live ON permanence_blocks (permanence_id, offer_id)
    WHERE returned_at IS NULL;

-- A block returned by the sweep keeps the time it was returned when its
-- permanence is closed later (permanence_close marks every block).
CREATE FUNCTION blocks_keep_returned_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.returned_at := coalesce(OLD.returned_at, NEW.returned_at);
    RETURN NEW;
END $$;
CREATE TRIGGER blocks_keep_returned_at
    BEFORE UPDATE OF returned_at ON permanence_blocks
    FOR EACH ROW EXECUTE FUNCTION blocks_keep_returned_at();

-- Seats of the offer that the structure holds in blocks not yet returned,
-- claimed ones included. Caller holds the offer's row lock.
CREATE FUNCTION structure_block_seats(p_structure_id bigint, p_offer_id bigint)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(k.seats), 0)::integer
      FROM permanence_blocks k JOIN permanences p ON p.id = k.permanence_id
     WHERE k.offer_id = p_offer_id AND p.structure_id = p_structure_id
       AND k.returned_at IS NULL
$$;

-- As schema 4's, with two more refusals: the structure's share of the
-- offer (policy.max_block_share percent of its seats, rounded down), and
-- a block already returned (its permanence is over, or the offer's
-- booking deadline passed): seats added to it would not count.
CREATE OR REPLACE FUNCTION permanence_reserve_block(p_token text, p jsonb, p_addr text, p_policy jsonb)
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
    IF NOT FOUND THEN
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
CREATE FUNCTION permanence_block_sweep(p_policy jsonb) RETURNS integer
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

-- As schema 3's, returning blocks that are due first.
CREATE OR REPLACE FUNCTION waitlist_sweep(p_policy jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    oid_ bigint;
    n integer := 0;
    k integer;
BEGIN
    PERFORM permanence_block_sweep(p_policy);
    FOR oid_ IN
        SELECT DISTINCT e.offer_id FROM waitlist_entries e JOIN offers o ON o.id = e.offer_id
         WHERE (e.status = 'offered' AND e.expires_at <= now())
            OR (e.status = 'waiting' AND o.booking_deadline <= now())
         ORDER BY 1 LIMIT 100
    LOOP
        PERFORM 1 FROM offers WHERE id = oid_ FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        UPDATE waitlist_entries SET status = 'expired', ended_at = now(), expires_at = NULL
         WHERE offer_id = oid_
           AND ((status = 'offered' AND expires_at <= now())
                OR (status = 'waiting' AND (SELECT booking_deadline FROM offers WHERE id = oid_) <= now()));
        GET DIAGNOSTICS k = ROW_COUNT;
        n := n + k;
        PERFORM waitlist_serve(oid_, p_policy);
    END LOOP;
    RETURN n;
END $$;
