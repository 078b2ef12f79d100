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
    RETURN (SELECT jsonb_build_object('id', e.id, 'offer_id', e.offer_id,
            'beneficiary_id', e.beneficiary_id, 'structure_id', e.structure_id,
            'seats', e.seats, 'status', e.status,
            'position', CASE WHEN e.status = 'waiting' THEN
                (SELECT count(*) FROM waitlist_entries w
                  WHERE w.offer_id = e.offer_id AND w.status = 'waiting'
                    AND w.id <= e.id) END,
            'created_at', ts(e.created_at), 'offered_at', ts(e.offered_at),
            'expires_at', ts(e.expires_at), 'ended_at', ts(e.ended_at),
            'booking_id', e.booking_id));
END $$;

-- Seats freed on an offer go to the oldest waiting entry that fits, then
-- the next, while seats remain. Caller holds the offer's row lock.
-- Seats freed on an offer go to the oldest waiting entry that fits and
-- whose person could accept them (no live booking of this offer, within
-- the caps), then the next, while seats remain. Caller holds the offer's
-- row lock.
CREATE OR REPLACE FUNCTION core.waitlist_serve(p_offer_id bigint, p_policy jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    o offers;
    e waitlist_entries;
    b beneficiaries;
    served integer := 0;
    hold interval := make_interval(secs => coalesce((p_policy->>'waitlist_hold')::integer, 86400));
    found_one boolean;
BEGIN
    LOOP
        SELECT * INTO o FROM offers WHERE id = p_offer_id;
        EXIT WHEN o.status <> 'published' OR o.booking_deadline <= now();
        found_one := false;
        FOR e IN SELECT * FROM waitlist_entries
                  WHERE offer_id = p_offer_id AND status = 'waiting'
                    AND seats <= o.seats_total - o.seats_taken - o.seats_held
                  ORDER BY id
        LOOP
            SELECT * INTO b FROM beneficiaries WHERE id = e.beneficiary_id;
            CONTINUE WHEN b.erased_at IS NOT NULL
                OR booking_cap_hit(b, o, p_policy) IS NOT NULL
                OR EXISTS (SELECT 1 FROM bookings WHERE offer_id = o.id
                             AND beneficiary_id = ANY (person_ids(b))
                             AND status IN ('confirmed', 'attended', 'no_show'));
            UPDATE waitlist_entries
               SET status = 'offered', offered_at = now(),
                   expires_at = least(now() + hold, o.booking_deadline)
             WHERE id = e.id RETURNING * INTO e;
            PERFORM emit('waitlist.offered', o.partner_id, e.structure_id,
                         waitlist_json(e));
            served := served + 1;
            found_one := true;
            EXIT;
        END LOOP;
        EXIT WHEN NOT found_one;
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
    IF NOT FOUND THEN
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
    -- The entry's own held seats count as available to it.
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
