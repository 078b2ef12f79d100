-- strapontin API, waitlist: the waiting lists.
--
-- Code, not history: every `strapontind --migrate` re-applies all of
-- sql/api/ (in file name order) in one transaction, so each function has
-- exactly one definition, here. CREATE OR REPLACE only; helpers in schema
-- core, the daemon's entry points in schema api (docs/operations.md,
-- "The sql/ tree"). Generated once by the conversion of the numbered
-- migrations; edit freely from now on.

-- Seats offered to a waitlist entry are held until accepted or expired.
CREATE OR REPLACE FUNCTION core.waitlist_count_held() RETURNS trigger
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

CREATE OR REPLACE TRIGGER waitlist_count_held
    AFTER INSERT OR DELETE OR UPDATE OF status, seats ON waitlist_entries
    FOR EACH ROW EXECUTE FUNCTION core.waitlist_count_held();

CREATE OR REPLACE FUNCTION core.waitlist_json(e waitlist_entries) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- position: the entry's place in the order the queue is served
    -- (docs/waitlist.md), by the scores last computed.
    RETURN (SELECT jsonb_build_object('id', e.id, 'offer_id', e.offer_id,
            'beneficiary_id', e.beneficiary_id, 'structure_id', e.structure_id,
            'seats', e.seats, 'status', e.status,
            'position', CASE WHEN e.status = 'waiting' THEN
                (SELECT count(*) FROM waitlist_entries w
                  WHERE w.offer_id = e.offer_id AND w.status = 'waiting'
                    AND (coalesce(w.score, 0), w.created_at, w.id)
                        <= (coalesce(e.score, 0), e.created_at, e.id)) END,
            'score', e.score, 'attended', e.attended,
            'no_shows', e.no_shows, 'withdrawn_late', e.withdrawn_late,
            'source', e.source, 'wish_id', e.wish_id,
            'created_at', ts(e.created_at), 'offered_at', ts(e.offered_at),
            'expires_at', ts(e.expires_at), 'ended_at', ts(e.ended_at),
            'booking_id', e.booking_id));
END $$;

-- What an event tells of an entry: its person's record stays with the
-- referents, who read it in waitlist.list.
CREATE OR REPLACE FUNCTION core.waitlist_event_json(e waitlist_entries) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT waitlist_json(e) - 'score' - 'attended' - 'no_shows' - 'withdrawn_late'
$$;

-- The start of the window an offer's waiting list is scored over
-- (docs/waitlist.md): history_window_days periods of 24 hours ending at
-- the offer's start, as the draw's window ends at the permanence's start.
CREATE OR REPLACE FUNCTION core.waitlist_window_from(o offers, p_policy jsonb)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT o.starts_at - make_interval(hours => 24
        * coalesce((p_policy->>'history_window_days')::integer, 365))
$$;

-- Computes again the record and score (core.person_history) of every entry
-- waiting on the offer; only entries whose record changed are written.
-- Caller holds the offer's row lock.
CREATE OR REPLACE FUNCTION core.waitlist_rescore(o offers, p_policy jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_from timestamptz := waitlist_window_from(o, p_policy);
BEGIN
    UPDATE waitlist_entries e
       SET attended = h.attended, no_shows = h.no_shows,
           withdrawn_late = h.withdrawn_late, score = h.score,
           scored_at = now()
      FROM waitlist_entries w
     CROSS JOIN LATERAL person_history(w.beneficiary_id, v_from, o.starts_at,
                                       p_policy) h
     WHERE e.id = w.id AND w.offer_id = o.id AND w.status = 'waiting'
       AND (e.score, e.attended, e.no_shows, e.withdrawn_late)
           IS DISTINCT FROM (h.score, h.attended, h.no_shows, h.withdrawn_late);
END $$;

-- Seats freed on an offer go to the first waiting entry, in the order of
-- docs/waitlist.md (lowest score, then longest wait, then entry id), whose
-- seats fit and whose person could accept them (no live booking of this
-- offer, within the caps); then the next, while seats remain. Entries
-- passed over keep their place. Each entry offered seats gets a row of
-- waitlist_rounds: the queue as it stood, for replay. Caller holds the
-- offer's row lock.
CREATE OR REPLACE FUNCTION core.waitlist_serve(p_offer_id bigint, p_policy jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    o offers;
    e waitlist_entries;
    b beneficiaries;
    served integer := 0;
    hold interval := make_interval(secs => coalesce((p_policy->>'waitlist_hold')::integer, 86400));
    v_free integer;
    v_chosen bigint;
    v_outcome text;
    v_queue jsonb;
    v_scored boolean := false;
BEGIN
    LOOP
        SELECT * INTO o FROM offers WHERE id = p_offer_id;
        -- The list lives until the show: seats freed after the booking
        -- deadline (a late withdrawal, a block returned at the deadline)
        -- still go to the people waiting.
        EXIT WHEN o.status <> 'published' OR o.starts_at <= now();
        v_free := o.seats_total - o.seats_taken - o.seats_held;
        EXIT WHEN v_free <= 0;
        IF NOT v_scored THEN
            PERFORM waitlist_rescore(o, p_policy);
            v_scored := true;
        END IF;
        v_chosen := NULL;
        v_queue := '[]';
        FOR e IN SELECT * FROM waitlist_entries
                  WHERE offer_id = p_offer_id AND status = 'waiting'
                  ORDER BY score, created_at, id
        LOOP
            IF v_chosen IS NOT NULL THEN
                v_outcome := 'behind';
            ELSE
                SELECT * INTO b FROM beneficiaries WHERE id = e.beneficiary_id;
                v_outcome := CASE
                    WHEN b.erased_at IS NOT NULL THEN 'erased'
                    WHEN e.seats > v_free THEN 'too_many_seats'
                    WHEN EXISTS (SELECT 1 FROM bookings WHERE offer_id = o.id
                                   AND beneficiary_id = ANY (person_ids(b))
                                   AND status IN ('confirmed', 'attended', 'no_show'))
                        THEN 'duplicate'
                    WHEN booking_cap_hit(b, o, p_policy) IS NOT NULL
                        THEN 'limit_reached'
                    ELSE 'offered' END;
                IF v_outcome = 'offered' THEN
                    v_chosen := e.id;
                END IF;
            END IF;
            v_queue := v_queue || jsonb_build_object('entry_id', e.id,
                'seats', e.seats, 'attended', e.attended,
                'no_shows', e.no_shows, 'withdrawn_late', e.withdrawn_late,
                'score', e.score, 'waiting_since', ts(e.created_at),
                'outcome', v_outcome);
        END LOOP;
        EXIT WHEN v_chosen IS NULL;
        UPDATE waitlist_entries
           SET status = 'offered', offered_at = now(),
               expires_at = least(now() + hold, o.starts_at)
         WHERE id = v_chosen RETURNING * INTO e;
        INSERT INTO waitlist_rounds (offer_id, entry_id, window_from, window_to,
                                     no_show_weight, withdrawn_late_weight,
                                     seats_free, queue)
        VALUES (o.id, e.id, waitlist_window_from(o, p_policy), o.starts_at,
                coalesce((p_policy->>'no_show_weight')::numeric, 2),
                coalesce((p_policy->>'withdrawn_late_weight')::numeric, 0.5),
                v_free, v_queue);
        PERFORM emit('waitlist.offered', o.partner_id, e.structure_id,
                     waitlist_event_json(e));
        served := served + 1;
    END LOOP;
    RETURN served;
END $$;

---------------------------------------------------------------- waitlist

CREATE OR REPLACE FUNCTION api.waitlist_join(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    b beneficiaries := scope_beneficiary(u, (p->>'beneficiary_id')::bigint, true);
    n integer := (p->>'seats')::integer;
    o offers;
    e waitlist_entries;
    why text;
BEGIN
    PERFORM person_lock(b);
    SELECT * INTO o FROM offers WHERE id = (p->>'offer_id')::bigint FOR UPDATE;
    IF NOT FOUND OR NOT offer_open_to(o, b.structure_id) THEN
        PERFORM not_found('offer', 'offer_id');
    END IF;
    IF n > o.max_per_booking THEN
        PERFORM bad_param('seats', format('seats must be from 1 to %s for this offer',
                                          o.max_per_booking));
    END IF;
    why := booking_refusal(b, o, n, p_policy, 0);
    IF why IS NULL THEN
        PERFORM api_error('waitlist_state',
            'Seats are available: book them directly.',
            jsonb_build_object('seats_available', o.seats_total - o.seats_taken - o.seats_held));
    ELSIF why <> 'sold_out' THEN
        PERFORM booking_refuse(why, b, o, p_policy, 0);
    END IF;
    -- One place per person in a list, whichever of their structures
    -- asked first (docs/privacy.md): the same refusal as for one record.
    IF EXISTS (SELECT 1 FROM waitlist_entries WHERE offer_id = o.id
                 AND beneficiary_id = ANY (person_ids(b))
                 AND status IN ('waiting', 'offered')) THEN
        PERFORM api_error('duplicate', 'This person is already on the waitlist of this offer.');
    END IF;
    INSERT INTO waitlist_entries (offer_id, beneficiary_id, structure_id, seats, created_by)
    VALUES (o.id, b.id, b.structure_id, n, u.id) RETURNING * INTO e;
    -- The newcomer's score only: the whole queue is scored again when seats
    -- are served, not at every join (a hundred joins at once would each
    -- score the whole queue, one after the other, under the offer's lock).
    UPDATE waitlist_entries x
       SET attended = h.attended, no_shows = h.no_shows,
           withdrawn_late = h.withdrawn_late, score = h.score,
           scored_at = now()
      FROM person_history(b.id, waitlist_window_from(o, p_policy),
                          o.starts_at, p_policy) h
     WHERE x.id = e.id
    RETURNING x.* INTO e;
    PERFORM audit(u, 'waitlist.join', 'waitlist_entry', e.id,
                  jsonb_build_object('offer_id', o.id, 'seats', n), p_addr);
    RETURN waitlist_json(e);
END $$;

CREATE OR REPLACE FUNCTION api.waitlist_leave(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    e waitlist_entries := scope_entry(u, (p->>'entry_id')::bigint);
BEGIN
    PERFORM 1 FROM offers WHERE id = e.offer_id FOR UPDATE;
    SELECT * INTO e FROM waitlist_entries WHERE id = e.id FOR UPDATE;
    IF e.status NOT IN ('waiting', 'offered') THEN
        PERFORM api_error('waitlist_state', format('This entry is %s already.', e.status),
                          jsonb_build_object('status', e.status));
    END IF;
    UPDATE waitlist_entries SET status = 'left', ended_at = now(), expires_at = NULL
     WHERE id = e.id RETURNING * INTO e;
    PERFORM waitlist_serve(e.offer_id, p_policy);
    PERFORM audit(u, 'waitlist.leave', 'waitlist_entry', e.id, '{}', p_addr);
    RETURN waitlist_json(e);
END $$;

CREATE OR REPLACE FUNCTION api.waitlist_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    lim integer := page_limit(p);
    items jsonb;
BEGIN
    SELECT jsonb_agg(waitlist_json(e) ORDER BY e.id) INTO items
      FROM (SELECT * FROM waitlist_entries e
             WHERE e.id > cursor_id(p)
               AND (u.role = 'admin' OR e.structure_id = u.structure_id)
               AND (p->>'offer_id' IS NULL OR e.offer_id = (p->>'offer_id')::bigint)
               AND (p->>'beneficiary_id' IS NULL OR e.beneficiary_id = (p->>'beneficiary_id')::bigint)
               AND (p->>'status' IS NULL OR e.status = p->>'status')
             ORDER BY e.id LIMIT lim) e;
    RETURN page(items, lim, items->-1->>'id');
END $$;

CREATE OR REPLACE FUNCTION api.waitlist_accept(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    e waitlist_entries := scope_entry(u, (p->>'entry_id')::bigint);
    b beneficiaries;
    o offers;
    bk bookings;
    why text;
BEGIN
    SELECT * INTO b FROM beneficiaries WHERE id = e.beneficiary_id FOR UPDATE;
    PERFORM person_lock(b);
    SELECT * INTO o FROM offers WHERE id = e.offer_id FOR UPDATE;
    SELECT * INTO e FROM waitlist_entries WHERE id = e.id FOR UPDATE;
    IF e.status <> 'offered' OR e.expires_at <= now() THEN
        PERFORM api_error('waitlist_state',
            CASE WHEN e.status = 'offered' THEN 'This offer of seats has expired.'
                 ELSE format('This entry is %s, not offered.', e.status) END,
            jsonb_build_object('status', e.status));
    END IF;
    -- The entry's own held seats count as available to it; seats offered
    -- after the booking deadline (booking.withdraw) are taken until the
    -- show, which expires_at already bounds.
    IF o.booking_deadline < now() THEN
        o.booking_deadline := o.starts_at;
    END IF;
    why := booking_refusal(b, o, e.seats, p_policy, e.seats);
    IF why IS NOT NULL THEN
        PERFORM booking_refuse(why, b, o, p_policy, e.seats);
    END IF;
    UPDATE waitlist_entries SET status = 'accepted', ended_at = now(), expires_at = NULL
     WHERE id = e.id;
    SELECT * INTO o FROM offers WHERE id = o.id;
    bk := booking_insert(u, b, o, e.seats, 'waitlist');
    UPDATE waitlist_entries SET booking_id = bk.id WHERE id = e.id;
    PERFORM audit(u, 'waitlist.accept', 'booking', bk.id,
                  jsonb_build_object('entry_id', e.id, 'offer_id', o.id), p_addr);
    RETURN booking_json(bk);
END $$;

-- As schema 3's, returning blocks that are due first.
CREATE OR REPLACE FUNCTION api.waitlist_sweep(p_policy jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    oid_ bigint;
    n integer := 0;
    k integer;
BEGIN
    PERFORM permanence_block_sweep(p_policy);
    PERFORM offer_open_sweep();
    FOR oid_ IN
        SELECT DISTINCT e.offer_id FROM waitlist_entries e JOIN offers o ON o.id = e.offer_id
         WHERE (e.status = 'offered' AND e.expires_at <= now())
            OR (e.status = 'waiting' AND o.starts_at <= now())
         ORDER BY 1 LIMIT 100
    LOOP
        PERFORM 1 FROM offers WHERE id = oid_ FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        UPDATE waitlist_entries SET status = 'expired', ended_at = now(), expires_at = NULL
         WHERE offer_id = oid_
           AND ((status = 'offered' AND expires_at <= now())
                OR (status = 'waiting' AND (SELECT starts_at FROM offers WHERE id = oid_) <= now()));
        GET DIAGNOSTICS k = ROW_COUNT;
        n := n + k;
        PERFORM waitlist_serve(oid_, p_policy);
    END LOOP;
    RETURN n;
END $$;
