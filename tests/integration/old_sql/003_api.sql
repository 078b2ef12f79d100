-- strapontin schema 3: the API of the ticket pool.
--
-- Every method function has the signature
--     fn(p_token text, p jsonb, p_addr text, p_policy jsonb) RETURNS jsonb
-- p_token is the caller's token hash (checked by auth_user()), p the params
-- the daemon already validated for type and range, p_addr the client's
-- address (for the audit), p_policy the [policy] section of the daemon's
-- configuration. Roles are checked by the daemon's method table; scope
-- (which partner, which structure) is checked here, and an object out of
-- scope answers not_found exactly like an unknown id.

------------------------------------------------------------------ helpers

CREATE FUNCTION audit(u users, p_method text, p_type text, p_id bigint,
                      p_summary jsonb, p_addr text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO audit_log (user_id, method, object_type, object_id, summary,
                           client_addr)
    VALUES (u.id, p_method, p_type, p_id, coalesce(p_summary, '{}'), p_addr);
$$;

CREATE FUNCTION not_found(p_what text, p_field text) RETURNS void
LANGUAGE sql AS $$
    SELECT api_error('not_found', 'No such ' || p_what || '.',
                     jsonb_build_object('field', p_field));
$$;

CREATE FUNCTION bad_param(p_field text, p_message text) RETURNS void
LANGUAGE sql AS $$
    SELECT api_error('invalid_params', p_message,
                     jsonb_build_object('field', p_field));
$$;

CREATE FUNCTION page_limit(p jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce((p->>'limit')::integer, 50)
$$;

-- Cursors are the last id seen (lists in id order) or "epoch:id" (lists
-- in time order); anything else is refused as a bad cursor.
CREATE FUNCTION cursor_id(p jsonb) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p->>'cursor' IS NULL THEN
        RETURN 0;
    END IF;
    IF p->>'cursor' !~ '^[0-9]{1,18}$' THEN
        PERFORM bad_param('cursor', 'cursor is not one this server gave');
    END IF;
    RETURN (p->>'cursor')::bigint;
END $$;

CREATE FUNCTION page(p_items jsonb, p_limit integer, p_next text)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('items', coalesce(p_items, '[]'::jsonb),
        'next_cursor', CASE WHEN jsonb_array_length(coalesce(p_items, '[]'))
                             >= p_limit THEN p_next END)
$$;

-- Ticket codes: 75 random bits (gen_random_uuid() draws from
-- pg_strong_random, OpenSSL's CSPRNG in Debian's PostgreSQL) written in
-- Crockford's base32 (no I, L, O, U: easy to read aloud over a counter),
-- plus a check character (weighted sum mod 31) that catches a misread or
-- swapped character. Stored as 16 characters, shown as XXXX-XXXX-XXXX-XXXX.
CREATE FUNCTION ticket_alphabet() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0123456789ABCDEFGHJKMNPQRSTVWXYZ' $$;

CREATE FUNCTION ticket_check_char(p_body text) RETURNS text
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

CREATE FUNCTION ticket_code() RETURNS text
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

CREATE FUNCTION ticket_display(p_code text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT substr(p_code, 1, 4) || '-' || substr(p_code, 5, 4) || '-' ||
           substr(p_code, 9, 4) || '-' || substr(p_code, 13, 4)
$$;

-- What a person typed or read: case, dashes and spaces do not matter, and
-- the letters Crockford folds (O as 0, I and L as 1) are folded.
CREATE FUNCTION ticket_normalize(p_input text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT translate(upper(regexp_replace(p_input, '[\s-]', '', 'g')),
                     'OIL', '011')
$$;

-- Events for subscribers (docs/protocol.md, events.subscribe), sent at commit to every
-- daemon through LISTEN/NOTIFY; partner_id and structure_id let each daemon
-- show an event only to whom may see its object.
CREATE FUNCTION emit(p_topic text, p_partner_id bigint, p_structure_id bigint,
                     p_data jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    -- free text stays out of events: NOTIFY payloads stop at 8000 bytes
    d jsonb := p_data - 'description' - 'accessibility';
    msg text := jsonb_build_object('topic', p_topic, 'partner_id', p_partner_id,
                                   'structure_id', p_structure_id, 'data', d)::text;
BEGIN
    IF octet_length(msg) > 7900 THEN
        msg := jsonb_build_object('topic', p_topic, 'partner_id', p_partner_id,
                                  'structure_id', p_structure_id,
                                  'data', jsonb_build_object('id', d->'id',
                                                             'truncated', true))::text;
    END IF;
    PERFORM pg_notify('strapontin_events', msg);
END $$;

------------------------------------------------------------- JSON shapes

CREATE FUNCTION partner_json(r partners) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', r.id, 'name', r.name, 'kind', r.kind,
        'city', r.city, 'contact_email', r.contact_email,
        'created_at', ts(r.created_at))
$$;

CREATE FUNCTION structure_json(r structures) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', r.id, 'name', r.name, 'kind', r.kind,
        'territory', r.territory, 'city', r.city, 'timezone', r.timezone,
        'created_at', ts(r.created_at))
$$;

CREATE FUNCTION offer_json(o offers) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', o.id, 'partner_id', o.partner_id,
        'partner_name', (SELECT name FROM partners WHERE id = o.partner_id),
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

CREATE FUNCTION beneficiary_json(b beneficiaries) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', b.id, 'structure_id', b.structure_id,
        'first_name', b.first_name, 'last_name', b.last_name,
        'birth_year', b.birth_year, 'household_size', b.household_size,
        'postal_code', b.postal_code, 'consent', true,
        'consent_at', ts(b.consent_at), 'created_at', ts(b.created_at),
        'updated_at', ts(b.updated_at), 'erased_at', ts(b.erased_at))
$$;

CREATE FUNCTION booking_json(bk bookings) RETURNS jsonb
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

CREATE FUNCTION waitlist_json(e waitlist_entries) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', e.id, 'offer_id', e.offer_id,
        'beneficiary_id', e.beneficiary_id, 'structure_id', e.structure_id,
        'seats', e.seats, 'status', e.status,
        'position', CASE WHEN e.status = 'waiting' THEN
            (SELECT count(*) FROM waitlist_entries w
              WHERE w.offer_id = e.offer_id AND w.status = 'waiting'
                AND w.id <= e.id) END,
        'created_at', ts(e.created_at), 'offered_at', ts(e.offered_at),
        'expires_at', ts(e.expires_at), 'ended_at', ts(e.ended_at),
        'booking_id', e.booking_id)
$$;

------------------------------------------------------------------- scope

CREATE FUNCTION scope_beneficiary(u users, p_id bigint, p_lock boolean)
RETURNS beneficiaries LANGUAGE plpgsql AS $$
DECLARE
    b beneficiaries;
BEGIN
    IF p_lock THEN
        SELECT * INTO b FROM beneficiaries WHERE id = p_id FOR UPDATE;
    ELSE
        SELECT * INTO b FROM beneficiaries WHERE id = p_id;
    END IF;
    IF NOT FOUND OR b.erased_at IS NOT NULL
       OR (u.role = 'referent' AND b.structure_id <> u.structure_id)
       OR u.role = 'partner' THEN
        PERFORM not_found('beneficiary', 'beneficiary_id');
    END IF;
    RETURN b;
END $$;

-- An offer the caller may change: its partner's staff, or an admin.
CREATE FUNCTION scope_own_offer(u users, p_id bigint) RETURNS offers
LANGUAGE plpgsql AS $$
DECLARE
    o offers;
BEGIN
    SELECT * INTO o FROM offers WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR (u.role <> 'admin' AND
                     (u.role <> 'partner' OR o.partner_id <> u.partner_id)) THEN
        PERFORM not_found('offer', 'offer_id');
    END IF;
    RETURN o;
END $$;

CREATE FUNCTION scope_booking(u users, p_id bigint, p_lock boolean)
RETURNS bookings LANGUAGE plpgsql AS $$
DECLARE
    bk bookings;
BEGIN
    IF p_lock THEN
        SELECT * INTO bk FROM bookings WHERE id = p_id FOR UPDATE;
    ELSE
        SELECT * INTO bk FROM bookings WHERE id = p_id;
    END IF;
    IF NOT FOUND OR (u.role = 'referent' AND bk.structure_id <> u.structure_id)
       OR u.role = 'partner' THEN
        PERFORM not_found('booking', 'booking_id');
    END IF;
    RETURN bk;
END $$;

CREATE FUNCTION scope_entry(u users, p_id bigint) RETURNS waitlist_entries
LANGUAGE plpgsql AS $$
DECLARE
    e waitlist_entries;
BEGIN
    SELECT * INTO e FROM waitlist_entries WHERE id = p_id;
    IF NOT FOUND OR (u.role = 'referent' AND e.structure_id <> u.structure_id)
       OR u.role = 'partner' THEN
        PERFORM not_found('waitlist entry', 'entry_id');
    END IF;
    RETURN e;
END $$;

-- A structure an admin names, or the referent's own.
CREATE FUNCTION scope_structure_id(u users, p jsonb) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    sid bigint := (p->>'structure_id')::bigint;
BEGIN
    IF u.role = 'referent' THEN
        IF sid IS NOT NULL AND sid <> u.structure_id THEN
            PERFORM not_found('structure', 'structure_id');
        END IF;
        RETURN u.structure_id;
    END IF;
    IF sid IS NULL THEN
        PERFORM bad_param('structure_id', 'structure_id is required for an admin');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM structures WHERE id = sid) THEN
        PERFORM not_found('structure', 'structure_id');
    END IF;
    RETURN sid;
END $$;

---------------------------------------------------------------- accounts

CREATE FUNCTION partner_create(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

CREATE FUNCTION partner_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

CREATE FUNCTION structure_create(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    tz text := coalesce(p->>'timezone', 'Europe/Paris');
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

CREATE FUNCTION structure_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

-- p carries password_hash (hashed by the daemon on its worker pool), never
-- the password.
CREATE FUNCTION user_create(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    role text := p->>'role';
    pid bigint := (p->>'partner_id')::bigint;
    sid bigint := (p->>'structure_id')::bigint;
    r users;
BEGIN
    IF role = 'partner' THEN
        IF pid IS NULL THEN
            PERFORM bad_param('partner_id', 'a partner account needs partner_id');
        END IF;
        IF NOT EXISTS (SELECT 1 FROM partners WHERE id = pid) THEN
            PERFORM not_found('partner', 'partner_id');
        END IF;
    ELSIF pid IS NOT NULL THEN
        PERFORM bad_param('partner_id', 'only a partner account has partner_id');
    END IF;
    IF role = 'referent' THEN
        IF sid IS NULL THEN
            PERFORM bad_param('structure_id', 'a referent account needs structure_id');
        END IF;
        IF NOT EXISTS (SELECT 1 FROM structures WHERE id = sid) THEN
            PERFORM not_found('structure', 'structure_id');
        END IF;
    ELSIF sid IS NOT NULL THEN
        PERFORM bad_param('structure_id', 'only a referent account has structure_id');
    END IF;
    IF EXISTS (SELECT 1 FROM users WHERE email = lower(p->>'email')) THEN
        PERFORM api_error('duplicate', 'An account with this e-mail exists.',
                          '{"field": "email"}');
    END IF;
    INSERT INTO users (email, display_name, role, partner_id, structure_id,
                       password_hash)
    VALUES (lower(p->>'email'), p->>'display_name', role, pid, sid,
            p->>'password_hash')
    RETURNING * INTO r;
    PERFORM audit(u, 'user.create', 'user', r.id,
                  jsonb_build_object('role', role), p_addr);
    RETURN user_json(r);
END $$;

CREATE FUNCTION user_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    lim integer := page_limit(p);
    items jsonb;
BEGIN
    SELECT jsonb_agg(user_json(r) ORDER BY r.id) INTO items
      FROM (SELECT * FROM users
             WHERE id > cursor_id(p)
               AND (p->>'role' IS NULL OR role = p->>'role')
             ORDER BY id LIMIT lim) r;
    RETURN page(items, lim, items->-1->>'id');
END $$;

CREATE FUNCTION user_disable(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    r users;
BEGIN
    UPDATE users SET enabled = false, updated_at = now()
     WHERE id = (p->>'user_id')::bigint RETURNING * INTO r;
    IF NOT FOUND THEN
        PERFORM not_found('user', 'user_id');
    END IF;
    -- Every session ends now; each daemon sees it on the next request.
    UPDATE tokens SET revoked_at = now()
     WHERE user_id = r.id AND revoked_at IS NULL;
    PERFORM audit(u, 'user.disable', 'user', r.id, '{}', p_addr);
    RETURN user_json(r);
END $$;

-- auth.change_password, step 1: the stored hash, for the daemon to verify
-- the old password on its worker pool.
CREATE FUNCTION auth_password_hash(p_token text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('password_hash', (auth_user(p_token)).password_hash)
$$;

-- Step 2: store the new hash; other sessions of the user end.
CREATE FUNCTION auth_set_password(p_token text, p_old_hash text,
                                  p_new_hash text, p_addr text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
BEGIN
    UPDATE users SET password_hash = p_new_hash, updated_at = now()
     WHERE id = u.id AND password_hash = p_old_hash;
    IF NOT FOUND THEN   -- changed meanwhile by another session
        PERFORM api_error('unauthenticated', 'The old password is wrong.',
                          '{"field": "old_password"}');
    END IF;
    UPDATE tokens SET revoked_at = now()
     WHERE user_id = u.id AND revoked_at IS NULL AND token_hash <> p_token;
    PERFORM audit(u, 'auth.change_password', 'user', u.id, '{}', p_addr);
    RETURN '{}'::jsonb;
END $$;

------------------------------------------------------------------ offers

CREATE FUNCTION offer_publish(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    pid bigint := (p->>'partner_id')::bigint;
    starts timestamptz := (p->>'starts_at')::timestamptz;
    deadline timestamptz := coalesce((p->>'booking_deadline')::timestamptz,
                                     starts - interval '48 hours');
    o offers;
BEGIN
    IF u.role = 'partner' THEN
        IF pid IS NOT NULL AND pid <> u.partner_id THEN
            PERFORM not_found('partner', 'partner_id');
        END IF;
        pid := u.partner_id;
    ELSIF pid IS NULL THEN
        PERFORM bad_param('partner_id', 'partner_id is required for an admin');
    ELSIF NOT EXISTS (SELECT 1 FROM partners WHERE id = pid) THEN
        PERFORM not_found('partner', 'partner_id');
    END IF;
    IF starts <= now() THEN
        PERFORM bad_param('starts_at', 'starts_at must be in the future');
    END IF;
    IF (p->>'ends_at')::timestamptz <= starts THEN
        PERFORM bad_param('ends_at', 'ends_at must be after starts_at');
    END IF;
    IF deadline > starts THEN
        PERFORM bad_param('booking_deadline', 'booking_deadline must not be after starts_at');
    END IF;
    INSERT INTO offers (partner_id, title, category, venue, city, starts_at,
                        ends_at, seats_total, max_per_booking,
                        booking_deadline, delivery, description,
                        accessibility, created_by)
    VALUES (pid, p->>'title', p->>'category', p->>'venue', p->>'city', starts,
            (p->>'ends_at')::timestamptz, (p->>'seats')::integer,
            coalesce((p->>'max_per_booking')::integer, 4), deadline,
            coalesce(p->>'delivery', 'guest_list'), p->>'description',
            p->>'accessibility', u.id)
    RETURNING * INTO o;
    PERFORM audit(u, 'offer.publish', 'offer', o.id,
                  jsonb_build_object('seats', o.seats_total), p_addr);
    PERFORM emit('offer.published', o.partner_id, NULL, offer_json(o));
    RETURN offer_json(o);
END $$;

CREATE FUNCTION offer_update(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    o offers := scope_own_offer(u, (p->>'offer_id')::bigint);
    starts timestamptz;
    deadline timestamptz;
    ends timestamptz;
BEGIN
    IF o.status = 'cancelled' THEN
        PERFORM api_error('offer_cancelled', 'This offer was cancelled.');
    END IF;
    starts := coalesce((p->>'starts_at')::timestamptz, o.starts_at);
    ends := CASE WHEN p ? 'ends_at' THEN (p->>'ends_at')::timestamptz ELSE o.ends_at END;
    deadline := coalesce((p->>'booking_deadline')::timestamptz,
                         CASE WHEN p ? 'starts_at' AND o.booking_deadline > starts
                              THEN starts - interval '48 hours'
                              ELSE o.booking_deadline END);
    IF p ? 'starts_at' AND starts <= now() THEN
        PERFORM bad_param('starts_at', 'starts_at must be in the future');
    END IF;
    IF ends <= starts THEN
        PERFORM bad_param('ends_at', 'ends_at must be after starts_at');
    END IF;
    IF deadline > starts THEN
        PERFORM bad_param('booking_deadline', 'booking_deadline must not be after starts_at');
    END IF;
    UPDATE offers SET
        title = coalesce(p->>'title', title),
        category = coalesce(p->>'category', category),
        venue = coalesce(p->>'venue', venue),
        city = coalesce(p->>'city', city),
        starts_at = starts, ends_at = ends, booking_deadline = deadline,
        max_per_booking = coalesce((p->>'max_per_booking')::integer, max_per_booking),
        delivery = coalesce(p->>'delivery', delivery),
        description = CASE WHEN p ? 'description' THEN p->>'description' ELSE description END,
        accessibility = CASE WHEN p ? 'accessibility' THEN p->>'accessibility' ELSE accessibility END,
        updated_at = now()
     WHERE id = o.id RETURNING * INTO o;
    PERFORM audit(u, 'offer.update', 'offer', o.id,
                  jsonb_build_object('fields', (SELECT jsonb_agg(k) FROM jsonb_object_keys(p - 'offer_id') k)),
                  p_addr);
    RETURN offer_json(o);
END $$;

CREATE FUNCTION offer_get(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    o offers;
BEGIN
    SELECT * INTO o FROM offers WHERE id = (p->>'offer_id')::bigint;
    IF NOT FOUND THEN
        PERFORM not_found('offer', 'offer_id');
    END IF;
    RETURN offer_json(o);
END $$;

-- In time order; the cursor is "microseconds since the epoch:id".
CREATE FUNCTION offer_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
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
    SELECT jsonb_agg(offer_json(o) ORDER BY o.starts_at, o.id) INTO items
      FROM (SELECT * FROM offers o
             WHERE (o.starts_at, o.id) > (c_ts, c_id)
               AND o.starts_at >= coalesce((p->>'from')::timestamptz, '-infinity')
               AND o.starts_at < coalesce((p->>'to')::timestamptz, 'infinity')
               AND (p->>'category' IS NULL OR o.category = p->>'category')
               AND (p->>'city' IS NULL OR lower(o.city) = lower(p->>'city'))
               AND (p->>'partner_id' IS NULL OR o.partner_id = (p->>'partner_id')::bigint)
               AND (coalesce((p->>'available_only')::boolean, false) = false
                    OR (o.status = 'published' AND o.booking_deadline > now()
                        AND o.seats_total - o.seats_taken - o.seats_held > 0))
             ORDER BY o.starts_at, o.id LIMIT lim) o;
    last := items->-1;
    RETURN page(items, lim,
        (extract(epoch FROM (last->>'starts_at')::timestamptz) * 1000000)::bigint
        || ':' || (last->>'id'));
END $$;

-- Seats freed on an offer go to the oldest waiting entry that fits, then
-- the next, while seats remain. Caller holds the offer's row lock.
-- Seats freed on an offer go to the oldest waiting entry that fits and
-- whose person could accept them (no live booking of this offer, within
-- the caps), then the next, while seats remain. Caller holds the offer's
-- row lock.
CREATE FUNCTION waitlist_serve(p_offer_id bigint, p_policy jsonb)
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
                             AND beneficiary_id = b.id
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

CREATE FUNCTION offer_set_seats(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    o offers := scope_own_offer(u, (p->>'offer_id')::bigint);
    n integer := (p->>'seats')::integer;
    old_total integer := o.seats_total;
BEGIN
    IF o.status = 'cancelled' THEN
        PERFORM api_error('offer_cancelled', 'This offer was cancelled.');
    END IF;
    IF n < o.seats_taken + o.seats_held THEN
        PERFORM api_error('seats_taken',
            format('%s seats are already booked or set aside; the offer cannot go below that.',
                   o.seats_taken + o.seats_held),
            jsonb_build_object('field', 'seats', 'seats_taken', o.seats_taken,
                               'seats_held', o.seats_held));
    END IF;
    UPDATE offers SET seats_total = n, updated_at = now()
     WHERE id = o.id;
    IF n > old_total THEN
        PERFORM waitlist_serve(o.id, p_policy);
    END IF;
    SELECT * INTO o FROM offers WHERE id = o.id;
    PERFORM emit('offer.seats_changed', o.partner_id, NULL, offer_json(o));
    PERFORM audit(u, 'offer.set_seats', 'offer', o.id,
                  jsonb_build_object('from', old_total, 'to', n), p_addr);
    RETURN offer_json(o);
END $$;

CREATE FUNCTION offer_cancel(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    o offers := scope_own_offer(u, (p->>'offer_id')::bigint);
    nb integer;
    nw integer;
BEGIN
    IF o.status = 'cancelled' THEN
        PERFORM api_error('offer_cancelled', 'This offer is already cancelled.');
    END IF;
    UPDATE bookings SET status = 'cancelled_by_partner', cancelled_at = now()
     WHERE offer_id = o.id AND status = 'confirmed';
    GET DIAGNOSTICS nb = ROW_COUNT;
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

-- What the venue needs at the door and nothing more: first name, initial.
CREATE FUNCTION offer_guest_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    o offers;
BEGIN
    SELECT * INTO o FROM offers WHERE id = (p->>'offer_id')::bigint;
    IF NOT FOUND OR (u.role = 'partner' AND o.partner_id <> u.partner_id) THEN
        PERFORM not_found('offer', 'offer_id');
    END IF;
    RETURN jsonb_build_object('offer', offer_json(o), 'items', coalesce((
        SELECT jsonb_agg(jsonb_build_object('booking_id', bk.id,
                   'holder', coalesce(b.first_name || ' ' || left(b.last_name, 1) || '.',
                                      '(erased)'),
                   'seats', bk.seats, 'code', ticket_display(bk.code),
                   'structure', s.name, 'status', bk.status)
                   ORDER BY b.first_name, bk.id)
          FROM bookings bk
          JOIN beneficiaries b ON b.id = bk.beneficiary_id
          JOIN structures s ON s.id = bk.structure_id
         WHERE bk.offer_id = o.id
           AND bk.status IN ('confirmed', 'attended', 'no_show')), '[]'::jsonb));
END $$;

CREATE FUNCTION offer_close_attendance(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    o offers := scope_own_offer(u, (p->>'offer_id')::bigint);
    n integer;
BEGIN
    IF o.starts_at > now() THEN
        PERFORM bad_param('offer_id', 'attendance can be closed once the offer has started');
    END IF;
    UPDATE bookings SET status = 'no_show'
     WHERE offer_id = o.id AND status = 'confirmed';
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE offers SET attendance_closed_at = now(), updated_at = now()
     WHERE id = o.id;
    PERFORM audit(u, 'offer.close_attendance', 'offer', o.id,
                  jsonb_build_object('no_show', n), p_addr);
    RETURN jsonb_build_object('offer_id', o.id, 'marked_no_show', n,
        'no_show', (SELECT count(*) FROM bookings WHERE offer_id = o.id AND status = 'no_show'),
        'attended', (SELECT count(*) FROM bookings WHERE offer_id = o.id AND status = 'attended'),
        'attended_seats', (SELECT coalesce(sum(seats), 0) FROM bookings WHERE offer_id = o.id AND status = 'attended'),
        'no_show_seats', (SELECT coalesce(sum(seats), 0) FROM bookings WHERE offer_id = o.id AND status = 'no_show'));
END $$;

----------------------------------------------------------- beneficiaries

CREATE FUNCTION beneficiary_create(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    sid bigint := scope_structure_id(u, p);
    b beneficiaries;
BEGIN
    IF NOT coalesce((p->>'consent')::boolean, false) THEN
        PERFORM bad_param('consent', 'consent must be true: the person must agree to the processing of this data');
    END IF;
    INSERT INTO beneficiaries (structure_id, first_name, last_name, birth_year,
                               household_size, postal_code, consent_at,
                               created_by)
    VALUES (sid, p->>'first_name', p->>'last_name',
            (p->>'birth_year')::integer, (p->>'household_size')::integer,
            p->>'postal_code', now(), u.id)
    RETURNING * INTO b;
    PERFORM audit(u, 'beneficiary.create', 'beneficiary', b.id, '{}', p_addr);
    RETURN beneficiary_json(b);
END $$;

CREATE FUNCTION beneficiary_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

CREATE FUNCTION beneficiary_history(b beneficiaries) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'outings_12m', (SELECT count(*) FROM bookings bk JOIN offers o ON o.id = bk.offer_id
                         WHERE bk.beneficiary_id = b.id AND bk.status = 'attended'
                           AND o.starts_at > now() - interval '12 months'),
        'no_shows_12m', (SELECT count(*) FROM bookings bk JOIN offers o ON o.id = bk.offer_id
                          WHERE bk.beneficiary_id = b.id AND bk.status = 'no_show'
                            AND o.starts_at > now() - interval '12 months'),
        'upcoming', coalesce((SELECT jsonb_agg(booking_json(bk) ORDER BY o.starts_at)
                                FROM bookings bk JOIN offers o ON o.id = bk.offer_id
                               WHERE bk.beneficiary_id = b.id AND bk.status = 'confirmed'
                                 AND o.starts_at > now()), '[]'::jsonb))
$$;

CREATE FUNCTION beneficiary_get(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    b beneficiaries := scope_beneficiary(u, (p->>'beneficiary_id')::bigint, false);
BEGIN
    RETURN beneficiary_json(b) || beneficiary_history(b);
END $$;

CREATE FUNCTION beneficiary_update(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    b beneficiaries := scope_beneficiary(u, (p->>'beneficiary_id')::bigint, true);
BEGIN
    UPDATE beneficiaries SET
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

-- Cancels a beneficiary's upcoming bookings and active waitlist entries,
-- giving the seats back (and to the waitlist). Offers are locked in id
-- order so that two erasures cannot deadlock.
CREATE FUNCTION beneficiary_release(b beneficiaries, p_policy jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    oid_ bigint;
    n integer := 0;
    k integer;
BEGIN
    FOR oid_ IN
        SELECT DISTINCT offer_id FROM (
            SELECT bk.offer_id FROM bookings bk JOIN offers o ON o.id = bk.offer_id
             WHERE bk.beneficiary_id = b.id AND bk.status = 'confirmed'
               AND o.starts_at > now()
            UNION
            SELECT offer_id FROM waitlist_entries
             WHERE beneficiary_id = b.id AND status IN ('waiting', 'offered')) x
        ORDER BY offer_id
    LOOP
        PERFORM 1 FROM offers WHERE id = oid_ FOR UPDATE;
        UPDATE bookings SET status = 'cancelled', cancelled_at = now()
         WHERE beneficiary_id = b.id AND offer_id = oid_ AND status = 'confirmed';
        GET DIAGNOSTICS k = ROW_COUNT;
        n := n + k;
        UPDATE waitlist_entries SET status = 'left', ended_at = now(), expires_at = NULL
         WHERE beneficiary_id = b.id AND offer_id = oid_ AND status IN ('waiting', 'offered');
        PERFORM waitlist_serve(oid_, p_policy);
    END LOOP;
    RETURN n;
END $$;

-- Right to erasure: personal fields are wiped for good; past bookings stay,
-- anonymous, for the statistics.
CREATE FUNCTION beneficiary_wipe(b beneficiaries) RETURNS void
LANGUAGE sql AS $$
    UPDATE beneficiaries SET first_name = NULL, last_name = NULL,
           birth_year = NULL, household_size = NULL, postal_code = NULL,
           erased_at = now(), updated_at = now()
     WHERE id = b.id;
$$;

CREATE FUNCTION beneficiary_erase(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

CREATE FUNCTION beneficiary_export(p_token text, p jsonb, p_addr text, p_policy jsonb)
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
        'history', (SELECT jsonb_agg(jsonb_build_object('at', ts(a.at), 'method', a.method))
                      FROM audit_log a WHERE a.object_type = 'beneficiary' AND a.object_id = b.id));
END $$;

---------------------------------------------------------------- bookings

-- Policy caps (docs/booking-rules.md invariant 5). NULL when within them, else the cap's name.
-- Months are calendar months of the event in the structure's timezone.
CREATE FUNCTION booking_cap_hit(b beneficiaries, o offers, p_policy jsonb)
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
CREATE FUNCTION booking_refusal(b beneficiaries, o offers, p_seats integer,
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

CREATE FUNCTION booking_refuse(p_reason text, b beneficiaries, o offers,
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

CREATE FUNCTION booking_insert(u users, b beneficiaries, o offers,
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
CREATE FUNCTION booking_make(u users, p_beneficiary_id bigint, p_offer_id bigint,
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

CREATE FUNCTION booking_create(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

CREATE FUNCTION booking_get(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
BEGIN
    RETURN booking_json(scope_booking(u, (p->>'booking_id')::bigint, false));
END $$;

CREATE FUNCTION booking_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

CREATE FUNCTION booking_cancel(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

---------------------------------------------------------------- waitlist

CREATE FUNCTION waitlist_join(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    b beneficiaries := scope_beneficiary(u, (p->>'beneficiary_id')::bigint, true);
    n integer := (p->>'seats')::integer;
    o offers;
    e waitlist_entries;
    why text;
BEGIN
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
    IF EXISTS (SELECT 1 FROM waitlist_entries WHERE offer_id = o.id
                 AND beneficiary_id = b.id AND status IN ('waiting', 'offered')) THEN
        PERFORM api_error('duplicate', 'This person is already on the waitlist of this offer.');
    END IF;
    INSERT INTO waitlist_entries (offer_id, beneficiary_id, structure_id, seats, created_by)
    VALUES (o.id, b.id, b.structure_id, n, u.id) RETURNING * INTO e;
    PERFORM audit(u, 'waitlist.join', 'waitlist_entry', e.id,
                  jsonb_build_object('offer_id', o.id, 'seats', n), p_addr);
    RETURN waitlist_json(e);
END $$;

CREATE FUNCTION waitlist_leave(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

CREATE FUNCTION waitlist_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

CREATE FUNCTION waitlist_accept(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

-- Run by every daemon on a timer: offers of seats that ran out expire and
-- the next entries are served; waiting entries die with the deadline.
-- Offers being worked on by another daemon are skipped (SKIP LOCKED), so
-- each expiry happens once however many daemons run.
CREATE FUNCTION waitlist_sweep(p_policy jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    oid_ bigint;
    n integer := 0;
    k integer;
BEGIN
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

------------------------------------------------------------ the door

CREATE FUNCTION ticket_check_in(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

------------------------------------------------------------------- audit

CREATE FUNCTION audit_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    lim integer := page_limit(p);
    items jsonb;
BEGIN
    SELECT jsonb_agg(jsonb_build_object('id', a.id, 'at', ts(a.at),
               'user_id', a.user_id, 'method', a.method,
               'object_type', a.object_type, 'object_id', a.object_id,
               'summary', a.summary, 'client_addr', a.client_addr)
               ORDER BY a.id) INTO items
      FROM (SELECT * FROM audit_log a
             WHERE a.id > cursor_id(p)
               AND a.at >= coalesce((p->>'from')::timestamptz, '-infinity')
               AND a.at < coalesce((p->>'to')::timestamptz, 'infinity')
               AND (p->>'user_id' IS NULL OR a.user_id = (p->>'user_id')::bigint)
             ORDER BY a.id LIMIT lim) a;
    RETURN page(items, lim, items->-1->>'id');
END $$;
