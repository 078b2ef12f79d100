-- strapontin schema 7: every cancelled booking is announced.
--
-- booking.cancel was the only path that sent `booking.cancelled`. A
-- referent watching their people's bookings most needs to hear of the
-- other two: the venue cancelling the show (offer.cancel, status
-- cancelled_by_partner) and an erasure giving the person's upcoming seats
-- back (beneficiary.erase; retention only anonymises people with nothing
-- upcoming). Both now send `booking.cancelled` for each booking, in the
-- same transaction; an erasure also sends `offer.seats_changed` for each
-- offer whose seats it freed. The functions are otherwise those of
-- schema 3.

CREATE OR REPLACE FUNCTION offer_cancel(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    o offers := scope_own_offer(u, (p->>'offer_id')::bigint);
    bk bookings;
    nb integer := 0;
    nw integer;
BEGIN
    IF o.status = 'cancelled' THEN
        PERFORM api_error('offer_cancelled', 'This offer is already cancelled.');
    END IF;
    -- One statement, so the report triggers add up its rows once.
    FOR bk IN
        UPDATE bookings SET status = 'cancelled_by_partner', cancelled_at = now()
         WHERE offer_id = o.id AND status = 'confirmed'
        RETURNING *
    LOOP
        nb := nb + 1;
        PERFORM emit('booking.cancelled', o.partner_id, bk.structure_id, booking_json(bk));
    END LOOP;
    UPDATE waitlist_entries SET status = 'cancelled', ended_at = now(),
           expires_at = NULL
     WHERE offer_id = o.id AND status IN ('waiting', 'offered');
    GET DIAGNOSTICS nw = ROW_COUNT;
    UPDATE offers SET status = 'cancelled', cancel_reason = p->>'reason',
           cancelled_at = now(), updated_at = now()
     WHERE id = o.id RETURNING * INTO o;
    PERFORM audit(u, 'offer.cancel', 'offer', o.id,
                  jsonb_build_object('bookings', nb, 'waitlist', nw), p_addr);
    PERFORM emit('offer.cancelled', o.partner_id, NULL, offer_json(o));
    RETURN offer_json(o) || jsonb_build_object('bookings_cancelled', nb,
                                               'waitlist_ended', nw);
END $$;

CREATE OR REPLACE FUNCTION beneficiary_release(b beneficiaries, p_policy jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    o offers;
    bk bookings;
    n integer := 0;
    k integer;
    w integer;
BEGIN
    FOR o IN
        SELECT * FROM offers WHERE id IN (
            SELECT xb.offer_id FROM bookings xb JOIN offers xo ON xo.id = xb.offer_id
             WHERE xb.beneficiary_id = b.id AND xb.status = 'confirmed'
               AND xo.starts_at > now()
            UNION
            SELECT offer_id FROM waitlist_entries
             WHERE beneficiary_id = b.id AND status IN ('waiting', 'offered'))
        ORDER BY id
        FOR UPDATE
    LOOP
        k := 0;
        FOR bk IN
            UPDATE bookings SET status = 'cancelled', cancelled_at = now()
             WHERE beneficiary_id = b.id AND offer_id = o.id AND status = 'confirmed'
            RETURNING *
        LOOP
            k := k + 1;
            PERFORM emit('booking.cancelled', o.partner_id, bk.structure_id,
                         booking_json(bk));
        END LOOP;
        n := n + k;
        UPDATE waitlist_entries SET status = 'left', ended_at = now(), expires_at = NULL
         WHERE beneficiary_id = b.id AND offer_id = o.id AND status IN ('waiting', 'offered');
        GET DIAGNOSTICS w = ROW_COUNT;
        PERFORM waitlist_serve(o.id, p_policy);
        IF k + w > 0 THEN
            PERFORM emit('offer.seats_changed', o.partner_id, NULL,
                         (SELECT offer_json(x) FROM offers x WHERE x.id = o.id));
        END IF;
    END LOOP;
    RETURN n;
END $$;
