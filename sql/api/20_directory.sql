-- strapontin API, directory: partners, structures, beneficiaries.
--
-- Code, not history: every `strapontind --migrate` re-applies all of
-- sql/api/ (in file name order) in one transaction, so each function has
-- exactly one definition, here. CREATE OR REPLACE only; helpers in schema
-- core, the daemon's entry points in schema api (docs/operations.md,
-- "The sql/ tree"). Generated once by the conversion of the numbered
-- migrations; edit freely from now on.

------------------------------------------------------------- JSON shapes

CREATE OR REPLACE FUNCTION core.partner_json(r partners) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', r.id, 'name', r.name, 'kind', r.kind,
        'city', r.city, 'contact_email', r.contact_email,
        'created_at', ts(r.created_at))
$$;

CREATE OR REPLACE FUNCTION core.structure_json(r structures) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', r.id, 'name', r.name, 'kind', r.kind,
        'territory', r.territory, 'city', r.city, 'timezone', r.timezone,
        'created_at', ts(r.created_at))
$$;

CREATE OR REPLACE FUNCTION core.beneficiary_json(b beneficiaries) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', b.id, 'structure_id', b.structure_id,
        'first_name', b.first_name, 'last_name', b.last_name,
        'birth_year', b.birth_year, 'household_size', b.household_size,
        'postal_code', b.postal_code, 'consent', true,
        'consent_at', ts(b.consent_at), 'created_at', ts(b.created_at),
        'updated_at', ts(b.updated_at), 'erased_at', ts(b.erased_at),
        'email', b.email, 'reminders', b.reminders_consent_at IS NOT NULL,
        'reminders_consent_at', ts(b.reminders_consent_at),
        'identity_set_at', ts(b.identity_set_at))
$$;

---------------------------------------------------------------- accounts

CREATE OR REPLACE FUNCTION core.partner_create_unchecked(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    r partners;
BEGIN
    INSERT INTO partners (name, kind, city, contact_email)
    VALUES (p->>'name', p->>'kind', p->>'city', lower(p->>'contact_email'))
    RETURNING * INTO r;
    PERFORM audit(u, 'partner.create', 'partner', r.id, '{}', p_addr);
    RETURN partner_json(r);
END $$;

CREATE OR REPLACE FUNCTION api.partner_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    lim integer := page_limit(p);
    items jsonb;
BEGIN
    SELECT jsonb_agg(partner_json(r) ORDER BY r.id) INTO items
      FROM (SELECT * FROM partners WHERE id > cursor_id(p)
             ORDER BY id LIMIT lim) r;
    RETURN page(items, lim, items->-1->>'id');
END $$;

CREATE OR REPLACE FUNCTION core.structure_create_unchecked(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    tz text := coalesce(p->>'timezone', report_zone());
    r structures;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = tz) THEN
        PERFORM bad_param('timezone', 'timezone must be an IANA zone such as Europe/Paris');
    END IF;
    INSERT INTO structures (name, kind, territory, city, timezone)
    VALUES (p->>'name', p->>'kind', p->>'territory', p->>'city', tz)
    RETURNING * INTO r;
    PERFORM audit(u, 'structure.create', 'structure', r.id, '{}', p_addr);
    RETURN structure_json(r);
END $$;

CREATE OR REPLACE FUNCTION api.structure_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    lim integer := page_limit(p);
    items jsonb;
BEGIN
    SELECT jsonb_agg(structure_json(r) ORDER BY r.id) INTO items
      FROM (SELECT * FROM structures WHERE id > cursor_id(p)
             ORDER BY id LIMIT lim) r;
    RETURN page(items, lim, items->-1->>'id');
END $$;

----------------------------------------------------------- beneficiaries

CREATE OR REPLACE FUNCTION api.beneficiary_create(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    sid bigint := scope_structure_id(u, p);
    b beneficiaries;
BEGIN
    IF NOT coalesce((p->>'consent')::boolean, false) THEN
        PERFORM bad_param('consent', 'consent must be true: the person must agree to the processing of this data');
    END IF;
    IF coalesce((p->>'reminders')::boolean, false) AND p->>'email' IS NULL THEN
        PERFORM bad_param('reminders', 'reminders need an e-mail address');
    END IF;
    INSERT INTO beneficiaries (structure_id, first_name, last_name, birth_year,
                               household_size, postal_code, consent_at,
                               created_by, email, reminders_consent_at)
    VALUES (sid, p->>'first_name', p->>'last_name',
            (p->>'birth_year')::integer, (p->>'household_size')::integer,
            p->>'postal_code', now(), u.id, lower(p->>'email'),
            CASE WHEN (p->>'reminders')::boolean THEN now() END)
    RETURNING * INTO b;
    PERFORM audit(u, 'beneficiary.create', 'beneficiary', b.id, '{}', p_addr);
    RETURN beneficiary_json(b);
END $$;

CREATE OR REPLACE FUNCTION api.beneficiary_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    lim integer := page_limit(p);
    q text := '%' || replace(replace(replace(lower(p->>'query'), '\', '\\'),
                                     '%', '\%'), '_', '\_') || '%';
    items jsonb;
BEGIN
    SELECT jsonb_agg(beneficiary_json(b) ORDER BY b.id) INTO items
      FROM (SELECT * FROM beneficiaries b
             WHERE b.id > cursor_id(p) AND b.erased_at IS NULL
               AND (u.role = 'admin' OR b.structure_id = u.structure_id)
               AND (p->>'structure_id' IS NULL OR b.structure_id = (p->>'structure_id')::bigint)
               AND (p->>'query' IS NULL
                    OR lower(b.first_name || ' ' || b.last_name) LIKE q
                    OR lower(b.last_name || ' ' || b.first_name) LIKE q)
             ORDER BY b.id LIMIT lim) b;
    RETURN page(items, lim, items->-1->>'id');
END $$;

CREATE OR REPLACE FUNCTION core.beneficiary_history(b beneficiaries) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT jsonb_build_object(
            'outings_12m', (SELECT count(*) FROM bookings bk JOIN offers o ON o.id = bk.offer_id
                             WHERE bk.beneficiary_id = b.id AND bk.status = 'attended'
                               AND o.starts_at > now() - interval '12 months'),
            'no_shows_12m', (SELECT count(*) FROM bookings bk JOIN offers o ON o.id = bk.offer_id
                              WHERE bk.beneficiary_id = b.id AND bk.status = 'no_show'
                                AND o.starts_at > now() - interval '12 months'),
            'withdrawn_late_12m', (SELECT count(*) FROM bookings bk JOIN offers o ON o.id = bk.offer_id
                                    WHERE bk.beneficiary_id = b.id AND bk.status = 'withdrawn_late'
                                      AND o.starts_at > now() - interval '12 months'),
            'upcoming', coalesce((SELECT jsonb_agg(booking_json(bk) ORDER BY o.starts_at)
                                    FROM bookings bk JOIN offers o ON o.id = bk.offer_id
                                   WHERE bk.beneficiary_id = b.id AND bk.status = 'confirmed'
                                     AND o.starts_at > now()), '[]'::jsonb)));
END $$;

CREATE OR REPLACE FUNCTION api.beneficiary_get(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    b beneficiaries := scope_beneficiary(u, (p->>'beneficiary_id')::bigint, false);
BEGIN
    RETURN beneficiary_json(b) || beneficiary_history(b);
END $$;

-- beneficiary.record: what the draw reads of a person (docs/draw.md, rule
-- 1), so that the referent can tell them why they come first or last: the
-- outings, no-shows and late withdrawals of the window that ends at `at`
-- (now by default; a permanence's start gives the score its draw would
-- use), each booking counted, and the score core.person_history() gives.
CREATE OR REPLACE FUNCTION api.beneficiary_record(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    b beneficiaries := scope_beneficiary(u, (p->>'beneficiary_id')::bigint, false);
    v_days integer := coalesce((p_policy->>'history_window_days')::integer, 365);
    v_to timestamptz := coalesce((p->>'at')::timestamptz, now());
    v_from timestamptz := v_to - make_interval(hours => 24 * v_days);
    h record;
BEGIN
    SELECT * INTO h FROM person_history(b.id, v_from, v_to, p_policy);
    RETURN jsonb_build_object('beneficiary_id', b.id,
        'window_from', ts(v_from), 'window_to', ts(v_to),
        'history_window_days', v_days,
        'no_show_weight', trim_scale(coalesce((p_policy->>'no_show_weight')::numeric, 2)),
        'withdrawn_late_weight',
            trim_scale(coalesce((p_policy->>'withdrawn_late_weight')::numeric, 0.5)),
        'attended', h.attended, 'no_shows', h.no_shows,
        'withdrawn_late', h.withdrawn_late, 'score', h.score,
        'items', coalesce((
            SELECT jsonb_agg(jsonb_build_object('booking_id', bk.id,
                       'offer_id', o.id, 'offer_title', o.title,
                       'starts_at', ts(bk.offer_starts_at), 'seats', bk.seats,
                       'status', bk.status, 'arrived_late', bk.arrived_late,
                       'withdraw_reason', bk.withdraw_reason)
                       ORDER BY bk.offer_starts_at, bk.id)
              FROM bookings bk JOIN offers o ON o.id = bk.offer_id
             WHERE bk.beneficiary_id = b.id
               AND bk.status IN ('attended', 'no_show', 'withdrawn_late')
               AND bk.offer_starts_at >= v_from AND bk.offer_starts_at < v_to),
            '[]'::jsonb));
END $$;

CREATE OR REPLACE FUNCTION api.beneficiary_update(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    b beneficiaries := scope_beneficiary(u, (p->>'beneficiary_id')::bigint, true);
    -- The address and the consent to reminders (docs/mail.md): a new or
    -- removed address ends a consent given for the old one, unless the
    -- same call gives it again.
    mail text := CASE WHEN p ? 'email' THEN lower(p->>'email') ELSE b.email END;
    consent timestamptz := CASE
        WHEN p ? 'reminders' AND NOT coalesce((p->>'reminders')::boolean, false) THEN NULL
        WHEN mail IS DISTINCT FROM b.email THEN
            CASE WHEN (p->>'reminders')::boolean THEN now() END
        WHEN (p->>'reminders')::boolean THEN coalesce(b.reminders_consent_at, now())
        ELSE b.reminders_consent_at END;
BEGIN
    IF consent IS NOT NULL AND mail IS NULL THEN
        PERFORM bad_param('reminders', 'reminders need an e-mail address');
    END IF;
    IF consent IS NULL OR mail IS DISTINCT FROM b.email THEN
        PERFORM mail_forget(b, false);
    END IF;
    UPDATE beneficiaries SET
        email = mail, reminders_consent_at = consent,
        first_name = coalesce(p->>'first_name', first_name),
        last_name = coalesce(p->>'last_name', last_name),
        birth_year = CASE WHEN p ? 'birth_year' THEN (p->>'birth_year')::integer ELSE birth_year END,
        household_size = CASE WHEN p ? 'household_size' THEN (p->>'household_size')::integer ELSE household_size END,
        postal_code = CASE WHEN p ? 'postal_code' THEN p->>'postal_code' ELSE postal_code END,
        updated_at = now()
     WHERE id = b.id RETURNING * INTO b;
    PERFORM audit(u, 'beneficiary.update', 'beneficiary', b.id,
                  jsonb_build_object('fields', (SELECT jsonb_agg(k) FROM jsonb_object_keys(p - 'beneficiary_id') k)),
                  p_addr);
    RETURN beneficiary_json(b);
END $$;

CREATE OR REPLACE FUNCTION core.beneficiary_release(b beneficiaries, p_policy jsonb)
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

-- Right to erasure: personal fields are wiped for good; past bookings stay,
-- anonymous, for the statistics.
CREATE OR REPLACE FUNCTION core.beneficiary_wipe(b beneficiaries) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mail_forget(b, true);
    UPDATE beneficiaries SET first_name = NULL, last_name = NULL,
               birth_year = NULL, household_size = NULL, postal_code = NULL,
               email = NULL, reminders_consent_at = NULL,
               identity_key = NULL, identity_secret_id = NULL,
               identity_set_at = NULL,
               erased_at = now(), updated_at = now()
         WHERE id = b.id;
END $$;

CREATE OR REPLACE FUNCTION api.beneficiary_erase(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    b beneficiaries := scope_beneficiary(u, (p->>'beneficiary_id')::bigint, true);
    n integer;
BEGIN
    n := beneficiary_release(b, p_policy);
    PERFORM beneficiary_wipe(b);
    PERFORM audit(u, 'beneficiary.erase', 'beneficiary', b.id,
                  jsonb_build_object('bookings_cancelled', n), p_addr);
    RETURN jsonb_build_object('id', b.id, 'erased', true,
                              'bookings_cancelled', n);
END $$;

-- Right of access: the export now includes the person's wishes.
CREATE OR REPLACE FUNCTION api.beneficiary_export(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    b beneficiaries := scope_beneficiary(u, (p->>'beneficiary_id')::bigint, false);
BEGIN
    PERFORM audit(u, 'beneficiary.export', 'beneficiary', b.id, '{}', p_addr);
    RETURN jsonb_build_object(
        'exported_at', ts(now()),
        'beneficiary', beneficiary_json(b),
        'structure', (SELECT structure_json(s) FROM structures s WHERE s.id = b.structure_id),
        'bookings', coalesce((SELECT jsonb_agg(booking_json(bk) ORDER BY bk.id)
                                FROM bookings bk WHERE bk.beneficiary_id = b.id), '[]'::jsonb),
        'waitlist', coalesce((SELECT jsonb_agg(waitlist_json(e) ORDER BY e.id)
                                FROM waitlist_entries e WHERE e.beneficiary_id = b.id), '[]'::jsonb),
        'wishes', coalesce((SELECT jsonb_agg(jsonb_build_object('id', w.id,
                                'permanence_id', w.permanence_id, 'choices', to_jsonb(w.choices),
                                'seats', w.seats, 'created_at', ts(w.created_at),
                                'replaced_at', ts(w.replaced_at), 'score', w.score)
                                ORDER BY w.id)
                              FROM wishes w WHERE w.beneficiary_id = b.id), '[]'::jsonb),
        'history', (SELECT jsonb_agg(jsonb_build_object('at', ts(a.at), 'method', a.method))
                      FROM audit_log a WHERE a.object_type = 'beneficiary' AND a.object_id = b.id));
END $$;

------------------------------------------------------------ identity keys

-- One person, several structures (docs/privacy.md). Records with the same
-- identity key are one person for the rules: the caps, the fairness
-- score, the waiting lists, one live booking per offer. These helpers
-- serve the rules only: no answer ever names, counts or hints at the
-- records of another structure.

-- The records of b's person, b included, in id order; b alone without a
-- key (erased records have none).
CREATE OR REPLACE FUNCTION core.person_ids(b beneficiaries) RETURNS bigint[]
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF b.identity_key IS NULL THEN
        RETURN ARRAY[b.id];
    END IF;
    RETURN ARRAY(SELECT x.id FROM beneficiaries x
                  WHERE x.identity_key = b.identity_key ORDER BY x.id);
END $$;

CREATE OR REPLACE FUNCTION core.person_ids_of(p_beneficiary_id bigint) RETURNS bigint[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    b beneficiaries;
BEGIN
    SELECT * INTO b FROM beneficiaries WHERE id = p_beneficiary_id;
    IF NOT FOUND THEN
        RETURN ARRAY[p_beneficiary_id];
    END IF;
    RETURN core.person_ids(b);
END $$;

-- Whether another record of the person already holds a place (waiting or
-- offered) in the offer's waiting list: the person keeps that one place.
CREATE OR REPLACE FUNCTION core.waits_as_other_record(p_beneficiary_id bigint,
        p_offer_id bigint) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM beneficiaries b
                     JOIN beneficiaries y ON y.identity_key = b.identity_key
                                         AND y.id <> b.id
                     JOIN waitlist_entries e ON e.beneficiary_id = y.id
                    WHERE b.id = p_beneficiary_id AND e.offer_id = p_offer_id
                      AND e.status IN ('waiting', 'offered'));
END $$;

-- The advisory lock of a person: two structures booking the same person
-- at once see each other's bookings for the caps. Taken after the rows of
-- the beneficiaries a transaction locks and before its offers' rows (the
-- lock order of docs/booking-rules.md), several in key order.
CREATE OR REPLACE FUNCTION core.person_lock_key(p_key bytea) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT hashtextextended('person:' || encode(p_key, 'hex'), 0)
$$;

CREATE OR REPLACE FUNCTION core.person_lock(b beneficiaries) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF b.identity_key IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(person_lock_key(b.identity_key));
    END IF;
END $$;

-- beneficiary.set_identity: the daemon made the key (daemon/idkey.c) from
-- what the referent typed; only the key reaches this function. The answer
-- is the same whether other structures follow the person or not. During a
-- rotation of the secret (previous_key given), the person's records still
-- under the previous secret take the new key: each person is re-keyed the
-- first time any of their structures gives their identity again. No
-- person lock: this makes no booking, and taking one while re-keying
-- rows that a booking holds (row, then person lock) could deadlock. A
-- booking made while two records are being linked is checked as they
-- stood, like the bookings made before.
CREATE OR REPLACE FUNCTION api.beneficiary_set_identity(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    b beneficiaries := scope_beneficiary(u, (p->>'beneficiary_id')::bigint, true);
    v_key bytea := decode(p->>'identity_key', 'hex');
    v_prev bytea := decode(p->>'previous_key', 'hex');
    other bigint;
BEGIN
    -- The structure's own duplicate: it sees both records already.
    SELECT x.id INTO other FROM beneficiaries x
     WHERE x.structure_id = b.structure_id AND x.id <> b.id
       AND (x.identity_key = v_key OR x.identity_key = v_prev)
     LIMIT 1;
    IF FOUND THEN
        PERFORM api_error('duplicate',
            'Another person of your structure has this identity: keep one record.',
            jsonb_build_object('field', 'beneficiary_id', 'beneficiary_id', other));
    END IF;
    IF v_prev IS NOT NULL THEN
        UPDATE beneficiaries x SET identity_key = v_key,
               identity_secret_id = p->>'identity_secret_id'
         WHERE x.identity_key = v_prev AND x.id <> b.id
           AND NOT EXISTS (SELECT 1 FROM beneficiaries y
                            WHERE y.structure_id = x.structure_id
                              AND y.identity_key = v_key);
    END IF;
    UPDATE beneficiaries SET identity_key = v_key,
           identity_secret_id = p->>'identity_secret_id',
           identity_set_at = now(), updated_at = now()
     WHERE id = b.id RETURNING * INTO b;
    PERFORM audit(u, 'beneficiary.set_identity', 'beneficiary', b.id, '{}', p_addr);
    RETURN beneficiary_json(b);
END $$;

-- The person withdrew their consent: the key is forgotten, the record is
-- on its own again.
CREATE OR REPLACE FUNCTION api.beneficiary_clear_identity(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    b beneficiaries := scope_beneficiary(u, (p->>'beneficiary_id')::bigint, true);
BEGIN
    IF b.identity_key IS NOT NULL THEN
        UPDATE beneficiaries SET identity_key = NULL, identity_secret_id = NULL,
               identity_set_at = NULL, updated_at = now()
         WHERE id = b.id RETURNING * INTO b;
        PERFORM audit(u, 'beneficiary.clear_identity', 'beneficiary', b.id, '{}', p_addr);
    END IF;
    RETURN beneficiary_json(b);
END $$;

-- identity.status, for the rotation of the secret: how many records hold
-- a key under each secret. The daemon adds the ids of the secrets it
-- holds; records under neither cannot be re-keyed until their identity is
-- given again.
CREATE OR REPLACE FUNCTION api.identity_status(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_cur text := p->>'current_secret_id';
    v_prev text := p->>'previous_secret_id';
BEGIN
    PERFORM auth_admin(p_token);
    RETURN (SELECT jsonb_build_object(
        'current_secret_id', v_cur, 'previous_secret_id', v_prev,
        'records', count(*),
        'current', count(*) FILTER (WHERE identity_secret_id = v_cur),
        'previous', count(*) FILTER (WHERE identity_secret_id = v_prev),
        'other', count(*) FILTER (WHERE identity_secret_id IS DISTINCT FROM v_cur
                                    AND identity_secret_id IS DISTINCT FROM v_prev))
      FROM beneficiaries WHERE identity_key IS NOT NULL);
END $$;

CREATE OR REPLACE FUNCTION api.partner_create(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM auth_admin(p_token);
    RETURN partner_create_unchecked(p_token, p, p_addr, p_policy);
END $$;

CREATE OR REPLACE FUNCTION api.structure_create(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM auth_admin(p_token);
    RETURN structure_create_unchecked(p_token, p, p_addr, p_policy);
END $$;
