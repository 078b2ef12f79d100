-- strapontin API, offers: offers.
--
-- Code, not history: every `strapontind --migrate` re-applies all of
-- sql/api/ (in file name order) in one transaction, so each function has
-- exactly one definition, here. CREATE OR REPLACE only; helpers in schema
-- core, the daemon's entry points in schema api (docs/operations.md,
-- "The sql/ tree"). Generated once by the conversion of the numbered
-- migrations; edit freely from now on.

CREATE OR REPLACE FUNCTION core.offer_json(o offers) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    pname text;
BEGIN
    SELECT name INTO pname FROM partners WHERE id = o.partner_id;
    RETURN offer_json_of(o, pname);
END $$;

------------------------------------------------------------ targeted offers

-- docs/booking-rules.md, "Targeted offers". An offer with no target is for
-- everyone; a targeted one is for its target structures and the
-- structures of its target territories, and for everyone from
-- opens_to_all_at on. Admins and partners see every offer; the rule is for
-- referents, and for bookings, by the beneficiary's structure.
CREATE OR REPLACE FUNCTION core.offer_open_to_all(o offers) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT (cardinality(o.target_structure_ids) = 0
            AND cardinality(o.target_territories) = 0)
        OR coalesce(o.opens_to_all_at <= now(), false)
$$;

-- The same, for a structure whose territory the caller read already (the
-- catalogue's query: inlined there).
CREATE OR REPLACE FUNCTION core.offer_in_target(o offers, p_structure_id bigint,
                                                p_territory text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT offer_open_to_all(o)
        OR coalesce(p_structure_id = ANY (o.target_structure_ids), false)
        OR coalesce(p_territory = ANY (o.target_territories), false)
$$;

-- Whether the structure may see and book the offer now.
CREATE OR REPLACE FUNCTION core.offer_open_to(o offers, p_structure_id bigint)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF offer_open_to_all(o) THEN
        RETURN true;
    END IF;
    RETURN offer_in_target(o, p_structure_id,
        (SELECT territory FROM structures WHERE id = p_structure_id));
END $$;

-- Whether the caller may see the offer now.
CREATE OR REPLACE FUNCTION core.offer_visible(u users, o offers)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN u.role <> 'referent' OR offer_open_to(o, u.structure_id);
END $$;

-- The structures that may see the offer now, for its events (NULL: all).
CREATE OR REPLACE FUNCTION core.offer_audience(o offers)
RETURNS bigint[] LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF o.id IS NULL OR offer_open_to_all(o) THEN
        RETURN NULL;
    END IF;
    RETURN coalesce((SELECT array_agg(s.id ORDER BY s.id) FROM structures s
                      WHERE s.id = ANY (o.target_structure_ids)
                         OR s.territory = ANY (o.target_territories)),
                    '{}');
END $$;

-- The targets of offer.publish and offer.update (null or [] for none),
-- checked: structures that exist, territories some structure is in, an
-- opening only for a targeted offer and no later than its booking
-- deadline. Sets the row's fields; o carries the offer's starts_at and
-- booking_deadline as they will be.
CREATE OR REPLACE FUNCTION core.offer_targets_set(o offers, p jsonb)
RETURNS offers LANGUAGE plpgsql STABLE AS $$
DECLARE
    bad text;
BEGIN
    IF p ? 'target_structure_ids' THEN
        o.target_structure_ids := ARRAY(SELECT DISTINCT x::bigint
            FROM jsonb_array_elements_text(nullif(p->'target_structure_ids', 'null'))
                 x ORDER BY 1);
        SELECT x INTO bad FROM unnest(o.target_structure_ids) x
         WHERE NOT EXISTS (SELECT 1 FROM structures s WHERE s.id = x) LIMIT 1;
        IF FOUND THEN
            PERFORM api_error('not_found', format('No such structure: %s.', bad),
                              jsonb_build_object('field', 'target_structure_ids',
                                                 'structure_id', bad::bigint));
        END IF;
    END IF;
    IF p ? 'target_territories' THEN
        o.target_territories := ARRAY(SELECT DISTINCT x
            FROM jsonb_array_elements_text(nullif(p->'target_territories', 'null'))
                 x ORDER BY 1);
        SELECT x INTO bad FROM unnest(o.target_territories) x
         WHERE NOT EXISTS (SELECT 1 FROM structures s WHERE s.territory = x) LIMIT 1;
        IF FOUND THEN
            PERFORM bad_param('target_territories',
                format('no structure is in the territory "%s"', bad));
        END IF;
    END IF;
    o := offer_opening_set(o, p);
    IF cardinality(o.target_structure_ids) + cardinality(o.target_territories) = 0 THEN
        IF p->>'opens_to_all_hours' IS NOT NULL THEN
            PERFORM bad_param('opens_to_all_hours',
                'opens_to_all_hours needs target_structure_ids or target_territories');
        END IF;
        IF p->>'opens_to_all_at' IS NOT NULL THEN
            PERFORM bad_param('opens_to_all_at',
                'opens_to_all_at needs target_structure_ids or target_territories');
        END IF;
        o.opens_to_all_at := NULL;
        o.opens_to_all_hours := NULL;
    ELSIF o.opens_to_all_at > o.booking_deadline AND o.opens_to_all_hours IS NOT NULL THEN
        PERFORM bad_param('opens_to_all_hours', format(
            'opening %s hours before the show would be after the booking deadline (%s hours before)',
            o.opens_to_all_hours,
            round(extract(epoch FROM o.starts_at - o.booking_deadline) / 3600)));
    ELSIF o.opens_to_all_at > o.booking_deadline THEN
        PERFORM bad_param('opens_to_all_at',
            'opens_to_all_at must not be after the booking deadline');
    END IF;
    RETURN o;
END $$;

-- When a targeted offer opens: an instant (opens_to_all_at) or a lead
-- before its show (opens_to_all_hours), one or the other; setting one
-- clears the other. With a lead the instant is starts_at - lead, computed
-- again on every write, so a show moved takes its opening with it (and
-- the constraint offers_opens_hours_instant holds). A null lead clears
-- the opening it gave: the offer is then kept to the end.
CREATE OR REPLACE FUNCTION core.offer_opening_set(o offers, p jsonb)
RETURNS offers LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p->>'opens_to_all_at' IS NOT NULL AND p->>'opens_to_all_hours' IS NOT NULL THEN
        PERFORM bad_param('opens_to_all_hours',
            'give opens_to_all_at or opens_to_all_hours, not both');
    END IF;
    IF p->>'opens_to_all_hours' IS NOT NULL THEN
        o.opens_to_all_hours := (p->>'opens_to_all_hours')::integer;
    ELSIF p ? 'opens_to_all_at' THEN
        o.opens_to_all_at := (p->>'opens_to_all_at')::timestamptz;
        o.opens_to_all_hours := NULL;
    ELSIF p ? 'opens_to_all_hours' AND o.opens_to_all_hours IS NOT NULL THEN
        o.opens_to_all_at := NULL;
        o.opens_to_all_hours := NULL;
    END IF;
    IF o.opens_to_all_hours IS NOT NULL THEN
        o.opens_to_all_at := o.starts_at - make_interval(hours => o.opens_to_all_hours);
    END IF;
    RETURN o;
END $$;

-- Run by every daemon from waitlist_sweep(), each second: offers whose
-- opening time has come are marked opened, and those still bookable with
-- seats free are announced (offer.opened) to everyone. The row lock
-- (SKIP LOCKED) and opened_at make each opening announced once whatever
-- the number of daemons. Returns how many were announced.
CREATE OR REPLACE FUNCTION core.offer_open_sweep() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    o offers;
    n integer := 0;
BEGIN
    FOR o IN
        UPDATE offers SET opened_at = now()
         WHERE id IN (SELECT id FROM offers
                       WHERE opened_at IS NULL AND opens_to_all_at <= now()
                       ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED)
           AND opened_at IS NULL
        RETURNING *
    LOOP
        CONTINUE WHEN o.status <> 'published' OR o.booking_deadline <= now()
                   OR o.seats_total - o.seats_taken - o.seats_held <= 0;
        PERFORM emit('offer.opened', o.partner_id, NULL, offer_json(o));
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

------------------------------------------------------------------ offers

-- Whose offer a publication is: a partner's own, or the one an admin names.
CREATE OR REPLACE FUNCTION core.offer_owner(u users, p jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    pid bigint := (p->>'partner_id')::bigint;
BEGIN
    IF u.role = 'partner' THEN
        IF pid IS NOT NULL AND pid <> u.partner_id THEN
            PERFORM not_found('partner', 'partner_id');
        END IF;
        RETURN u.partner_id;
    ELSIF pid IS NULL THEN
        PERFORM bad_param('partner_id', 'partner_id is required for an admin');
    ELSIF NOT EXISTS (SELECT 1 FROM partners WHERE id = pid) THEN
        PERFORM not_found('partner', 'partner_id');
    END IF;
    RETURN pid;
END $$;

-- One offer published from the params of offer.publish: its checks, its
-- row and its event. offer.publish_series calls it once per date with the
-- same params plus that date's starts_at, ends_at and booking_deadline, so
-- that a field offer.publish learns is learnt by series too.
CREATE OR REPLACE FUNCTION core.offer_insert(u users, pid bigint, p jsonb,
                                             p_series_id bigint)
RETURNS offers LANGUAGE plpgsql AS $$
DECLARE
    starts timestamptz := (p->>'starts_at')::timestamptz;
    deadline timestamptz := coalesce((p->>'booking_deadline')::timestamptz,
                                     starts - interval '48 hours');
    o offers;
BEGIN
    IF starts <= now() THEN
        PERFORM bad_param('starts_at', 'starts_at must be in the future');
    END IF;
    IF (p->>'ends_at')::timestamptz <= starts THEN
        PERFORM bad_param('ends_at', 'ends_at must be after starts_at');
    END IF;
    IF deadline > starts THEN
        PERFORM bad_param('booking_deadline', 'booking_deadline must not be after starts_at');
    END IF;
    o.starts_at := starts;
    o.booking_deadline := deadline;
    o.target_structure_ids := '{}';
    o.target_territories := '{}';
    o := offer_targets_set(o, p);
    INSERT INTO offers (partner_id, title, category, venue, city, starts_at,
                        ends_at, seats_total, max_per_booking,
                        booking_deadline, delivery, description,
                        accessibility, address, group_codes, created_by, series_id,
                        target_structure_ids, target_territories,
                        opens_to_all_at, opens_to_all_hours, opened_at)
    VALUES (pid, p->>'title', p->>'category', p->>'venue', p->>'city', starts,
            (p->>'ends_at')::timestamptz, (p->>'seats')::integer,
            coalesce((p->>'max_per_booking')::integer, 4), deadline,
            coalesce(p->>'delivery', 'guest_list'), p->>'description',
            p->>'accessibility', p->>'address',
            coalesce(p->>'group_codes', 'person'), u.id, p_series_id,
            o.target_structure_ids, o.target_territories, o.opens_to_all_at,
            o.opens_to_all_hours,
            -- open already: nothing left to announce
            CASE WHEN o.opens_to_all_at <= now() THEN now() END)
    RETURNING * INTO o;
    PERFORM emit('offer.published', o.partner_id, NULL, offer_json(o));
    RETURN o;
END $$;

CREATE OR REPLACE FUNCTION api.offer_publish(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    o offers := offer_insert(u, offer_owner(u, p), p, NULL);
BEGIN
    PERFORM audit(u, 'offer.publish', 'offer', o.id,
                  jsonb_build_object('seats', o.seats_total), p_addr);
    RETURN offer_json(o);
END $$;

-- The dates of a series (docs/series.md): every week (nth NULL) or the nth
-- weekday of each month (-1: the last), on or after p_from, until p_count
-- dates or p_until (inclusive). A month without the asked day (no 5th
-- Wednesday) is skipped and named in p_skipped. At most 120 dates.
CREATE OR REPLACE FUNCTION core.series_dates(p_weekday text, p_nth integer,
        p_from date, p_count integer, p_until date,
        OUT dates date[], OUT skipped text[])
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    dow integer := array_position(ARRAY['monday', 'tuesday', 'wednesday',
                       'thursday', 'friday', 'saturday', 'sunday'], p_weekday);
    month date := date_trunc('month', p_from)::date;
    d date;
BEGIN
    dates := '{}';
    skipped := '{}';
    LOOP
        EXIT WHEN cardinality(dates) = p_count;
        IF p_nth IS NULL THEN
            d := coalesce(d + 7, p_from + (dow - extract(isodow FROM p_from)::integer + 7) % 7);
        ELSE
            EXIT WHEN month > p_until;
            d := nth_weekday(month, dow, p_nth);
            IF d IS NULL THEN
                skipped := skipped || to_char(month, 'YYYY-MM');
            END IF;
            month := (month + interval '1 month')::date;
        END IF;
        EXIT WHEN d > p_until;
        IF d >= p_from THEN
            IF cardinality(dates) = 120 THEN
                PERFORM bad_param('until_date', 'a series has at most 120 dates');
            END IF;
            dates := dates || d;
        END IF;
    END LOOP;
END $$;

-- "Every Wednesday, 14:00-16:00, from 2027-03-03, 10 times". The fields of
-- offer.publish without starts_at, ends_at and booking_deadline, plus the
-- rule; each date is published by core.offer_insert(), as offer.publish
-- does. Times are wall-clock times in the series' timezone (Europe/Paris),
-- turned into instants date by date, so a 14:00 workshop stays at 14:00
-- across daylight-saving changes (a wall-clock time that does not exist, in
-- the spring-forward gap, is read as PostgreSQL reads it: 02:30 becomes
-- 03:30; the end then keeps the length asked). An end_time before the
-- start_time ends the next day (a concert until 01:00). Each offer's
-- booking deadline is deadline_hours (48) before its start.
CREATE OR REPLACE FUNCTION api.offer_publish_series(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    pid bigint := offer_owner(u, p);
    v_start time := (p->>'start_time')::time;
    v_end time := (p->>'end_time')::time;
    v_hours integer := coalesce((p->>'deadline_hours')::integer, 48);
    fields jsonb := p - ARRAY['weekday', 'nth', 'start_time', 'end_time',
                              'from_date', 'count', 'until_date',
                              'deadline_hours'];
    r record;
    se offer_series;
    d date;
    v_starts timestamptz;
    o offers;
    items jsonb[] := '{}';
BEGIN
    IF (p->>'nth')::integer = 0 THEN
        PERFORM bad_param('nth', 'nth must be 1 to 5, or -1 for the last');
    END IF;
    IF (p ? 'count') = (p ? 'until_date') THEN
        PERFORM bad_param('count', 'give either count or until_date');
    END IF;
    IF (p->>'until_date')::date < (p->>'from_date')::date THEN
        PERFORM bad_param('until_date', 'until_date must not be before from_date');
    END IF;
    IF v_end = v_start THEN
        PERFORM bad_param('end_time', 'end_time must differ from start_time');
    END IF;
    -- said once for the series rather than by its first date's offer
    IF (p->>'opens_to_all_hours')::integer < v_hours THEN
        PERFORM bad_param('opens_to_all_hours', format(
            'opens_to_all_hours (%s) must be at least deadline_hours (%s): each date would open after its booking deadline',
            p->>'opens_to_all_hours', v_hours));
    END IF;
    r := series_dates(p->>'weekday', (p->>'nth')::integer,
                      (p->>'from_date')::date, (p->>'count')::integer,
                      (p->>'until_date')::date);
    IF cardinality(r.dates) = 0 THEN
        PERFORM bad_param('until_date', 'no date of the series falls before until_date');
    END IF;
    INSERT INTO offer_series (partner_id, weekday, nth, start_time, end_time,
                              from_date, count, until_date, created_by)
    VALUES (pid, p->>'weekday', (p->>'nth')::integer, v_start, v_end,
            (p->>'from_date')::date, (p->>'count')::integer,
            (p->>'until_date')::date, u.id)
    RETURNING * INTO se;
    FOREACH d IN ARRAY r.dates LOOP
        v_starts := (d + v_start) AT TIME ZONE se.timezone;
        IF v_starts <= now() THEN
            PERFORM bad_param('from_date', format(
                'the first date, %s at %s, is already past', d,
                to_char(v_start, 'HH24:MI')));
        END IF;
        o := offer_insert(u, pid, fields || jsonb_build_object(
                 'starts_at', v_starts,
                 'ends_at', series_end(d, v_starts, v_start, v_end, se.timezone),
                 'booking_deadline', v_starts - make_interval(hours => v_hours)),
             se.id);
        items := items || offer_json(o);
    END LOOP;
    PERFORM audit(u, 'offer.publish_series', 'offer_series', se.id,
                  jsonb_build_object('offers', cardinality(items),
                                     'seats', (p->>'seats')::integer), p_addr);
    RETURN jsonb_build_object('series_id', se.id, 'items', to_jsonb(items),
                              'skipped_months', to_jsonb(r.skipped));
END $$;

-- The end of a date d of a series starting at p_starts (p_start wall
-- clock): p_end wall clock, the next day if not after the start (a concert
-- until 01:00), or the start plus the length asked if daylight saving
-- swallowed the range. NULL without an end time.
CREATE OR REPLACE FUNCTION core.series_end(d date, p_starts timestamptz,
        p_start time, p_end time, p_tz text)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
DECLARE
    len interval := p_end - p_start;
    e timestamptz;
BEGIN
    IF p_end IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_end <= p_start THEN
        d := d + 1;
        len := len + interval '24 hours';
    END IF;
    e := (d + p_end) AT TIME ZONE p_tz;
    IF e <= p_starts THEN
        e := p_starts + len;
    END IF;
    RETURN e;
END $$;

-- One offer changed by the fields of offer.update in p.
CREATE OR REPLACE FUNCTION core.offer_update_one(u users, o offers, p jsonb, p_addr text)
RETURNS offers LANGUAGE plpgsql AS $$
DECLARE
    t offers;
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
    t := o;
    t.starts_at := starts;
    t.booking_deadline := deadline;
    t := offer_targets_set(t, p);
    UPDATE offers SET
        title = coalesce(p->>'title', title),
        category = coalesce(p->>'category', category),
        venue = coalesce(p->>'venue', venue),
        city = coalesce(p->>'city', city),
        starts_at = starts, ends_at = ends, booking_deadline = deadline,
        max_per_booking = coalesce((p->>'max_per_booking')::integer, max_per_booking),
        delivery = coalesce(p->>'delivery', delivery),
        group_codes = coalesce(p->>'group_codes', group_codes),
        description = CASE WHEN p ? 'description' THEN p->>'description' ELSE description END,
        accessibility = CASE WHEN p ? 'accessibility' THEN p->>'accessibility' ELSE accessibility END,
        address = CASE WHEN p ? 'address' THEN p->>'address' ELSE address END,
        target_structure_ids = t.target_structure_ids,
        target_territories = t.target_territories,
        opens_to_all_at = t.opens_to_all_at,
        opens_to_all_hours = t.opens_to_all_hours,
        -- An offer that was kept for its targets and opens now, or will
        -- open later, is announced when it opens (offer_open_sweep()).
        -- So is one that had opened and is kept again until a later
        -- opening (its show moved later with a lead, a new instant): each
        -- opening is announced once.
        opened_at = CASE WHEN offer_open_to_all(o) AND offer_open_to_all(t)
                         THEN coalesce(opened_at, now()) END,
        updated_at = now()
     WHERE id = o.id RETURNING * INTO o;
    PERFORM audit(u, 'offer.update', 'offer', o.id,
                  jsonb_build_object('fields', (SELECT jsonb_agg(k) FROM jsonb_object_keys(p - 'offer_id') k)),
                  p_addr);
    RETURN o;
END $$;

-- scope "this" (the default) changes the offer named; "following" changes
-- it and the published offers of its series that start after it, each
-- through core.offer_update_one() (docs/series.md). An instant
-- (starts_at, ends_at, booking_deadline) names one offer; for the
-- following ones the times are wall clock, start_time and end_time, and
-- the deadline deadline_hours before each start.
CREATE OR REPLACE FUNCTION api.offer_update(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    o offers := scope_own_offer(u, (p->>'offer_id')::bigint);
    clock text[] := ARRAY['start_time', 'end_time', 'deadline_hours'];
    k text;
    x offers;
    q jsonb;
    items jsonb[] := '{}';
    this jsonb;
BEGIN
    IF coalesce(p->>'scope', 'this') = 'this' THEN
        FOREACH k IN ARRAY clock LOOP
            IF p ? k THEN
                PERFORM bad_param(k, k || ' applies with scope following; give starts_at, ends_at or booking_deadline for one offer');
            END IF;
        END LOOP;
        RETURN offer_json(offer_update_one(u, o, p - 'scope', p_addr));
    END IF;
    FOREACH k IN ARRAY ARRAY['starts_at', 'ends_at', 'booking_deadline'] LOOP
        IF p ? k THEN
            PERFORM bad_param(k, k || ' names one offer; with scope following give start_time, end_time or deadline_hours');
        END IF;
    END LOOP;
    IF o.series_id IS NULL THEN
        PERFORM bad_param('scope', 'this offer is not part of a series');
    END IF;
    IF o.status = 'cancelled' THEN
        PERFORM api_error('offer_cancelled', 'This offer was cancelled.');
    END IF;
    FOR x IN
        SELECT * FROM offers
         WHERE series_id = o.series_id AND status = 'published'
           AND (starts_at, id) >= (o.starts_at, o.id)
         ORDER BY starts_at, id FOR UPDATE
    LOOP
        q := series_times(x, p) || (p - 'scope' - 'offer_id' - clock);
        x := offer_update_one(u, x, q, p_addr);
        items := items || offer_json(x);
        IF x.id = o.id THEN
            this := offer_json(x);
        END IF;
    END LOOP;
    RETURN this || jsonb_build_object('items', to_jsonb(items));
END $$;

-- The new instants of an offer x of a series moved by offer.update's
-- start_time, end_time, deadline_hours (docs/series.md): on the offer's own
-- date in the series' timezone; what is not given keeps its length (the
-- show's, the deadline's lead). {} when none of the three is given.
CREATE OR REPLACE FUNCTION core.series_times(x offers, p jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    tz text := (SELECT timezone FROM offer_series WHERE id = x.series_id);
    d date := (x.starts_at AT TIME ZONE tz)::date;
    st time := coalesce((p->>'start_time')::time, (x.starts_at AT TIME ZONE tz)::time);
    starts timestamptz := (d + st) AT TIME ZONE tz;
    q jsonb := '{}';
BEGIN
    IF NOT p ?| ARRAY['start_time', 'end_time', 'deadline_hours'] THEN
        RETURN q;
    END IF;
    IF p ? 'start_time' THEN
        q := jsonb_build_object('starts_at', starts);
    END IF;
    q := q || jsonb_build_object('ends_at',
        CASE WHEN p ? 'end_time'
             THEN series_end(d, starts, st, (p->>'end_time')::time, tz)
             ELSE starts + (x.ends_at - x.starts_at) END);
    RETURN q || jsonb_build_object('booking_deadline',
        starts - coalesce(make_interval(hours => (p->>'deadline_hours')::integer),
                          x.starts_at - x.booking_deadline));
END $$;

CREATE OR REPLACE FUNCTION api.offer_get(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    o offers;
BEGIN
    SELECT * INTO o FROM offers WHERE id = (p->>'offer_id')::bigint;
    IF NOT FOUND OR NOT offer_visible(u, o) THEN
        PERFORM not_found('offer', 'offer_id');
    END IF;
    RETURN offer_json(o);
END $$;

-- One query for the page, the partner's name joined rather than looked up
-- per offer, the JSON built by an expression PostgreSQL inlines.
CREATE OR REPLACE FUNCTION api.offer_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    u users := auth_user(p_token);
    lim integer := page_limit(p);
    c record := time_cursor(p);
    -- referents see a targeted offer once open, or if theirs (a NULL
    -- structure: everything, for admins and partners)
    v_sid bigint := CASE WHEN u.role = 'referent' THEN u.structure_id END;
    v_terr text := (SELECT territory FROM structures WHERE id = v_sid);
    items jsonb;
BEGIN
    SELECT jsonb_agg(offer_json_of(x.o, x.partner_name)
                     ORDER BY (x.o).starts_at, (x.o).id) INTO items
      FROM (SELECT o, pa.name AS partner_name
              FROM offers o JOIN partners pa ON pa.id = o.partner_id
             WHERE (o.starts_at, o.id) > (c.after_ts, c.after_id)
               AND o.starts_at >= coalesce((p->>'from')::timestamptz, '-infinity')
               AND o.starts_at < coalesce((p->>'to')::timestamptz, 'infinity')
               AND (p->>'category' IS NULL OR o.category = p->>'category')
               AND (p->>'city' IS NULL OR lower(o.city) = lower(p->>'city'))
               AND (p->>'partner_id' IS NULL OR o.partner_id = (p->>'partner_id')::bigint)
               AND (v_sid IS NULL OR offer_in_target(o, v_sid, v_terr))
               AND (coalesce((p->>'available_only')::boolean, false) = false
                    OR (o.status = 'published' AND o.booking_deadline > now()
                        AND o.seats_total - o.seats_taken - o.seats_held > 0))
             ORDER BY o.starts_at, o.id LIMIT lim) x;
    RETURN time_page(items, lim, 'starts_at');
END $$;

CREATE OR REPLACE FUNCTION api.offer_set_seats(p_token text, p jsonb, p_addr text, p_policy jsonb)
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

-- One offer cancelled with its bookings and waiting list; the offer and
-- what it ended.
CREATE OR REPLACE FUNCTION core.offer_cancel_one(u users, o offers, p_reason text, p_addr text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
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
    UPDATE offers SET status = 'cancelled', cancel_reason = p_reason,
           cancelled_at = now(), updated_at = now()
     WHERE id = o.id RETURNING * INTO o;
    PERFORM audit(u, 'offer.cancel', 'offer', o.id,
                  jsonb_build_object('bookings', nb, 'waitlist', nw), p_addr);
    PERFORM emit('offer.cancelled', o.partner_id, NULL, offer_json(o));
    RETURN offer_json(o) || jsonb_build_object('bookings_cancelled', nb,
                                               'waitlist_ended', nw);
END $$;

-- scope "this" (the default) cancels the offer named; "following" cancels
-- it and the published offers of its series that start after it
-- (docs/series.md), each through core.offer_cancel_one(): the answer is
-- the offer named, the sums of what was ended, and every offer cancelled.
CREATE OR REPLACE FUNCTION api.offer_cancel(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    o offers := scope_own_offer(u, (p->>'offer_id')::bigint);
    x offers;
    r jsonb;
    this jsonb;
    items jsonb[] := '{}';
    nb integer := 0;
    nw integer := 0;
BEGIN
    IF coalesce(p->>'scope', 'this') = 'this' THEN
        RETURN offer_cancel_one(u, o, p->>'reason', p_addr);
    END IF;
    IF o.series_id IS NULL THEN
        PERFORM bad_param('scope', 'this offer is not part of a series');
    END IF;
    IF o.status = 'cancelled' THEN
        PERFORM api_error('offer_cancelled', 'This offer is already cancelled.');
    END IF;
    FOR x IN
        SELECT * FROM offers
         WHERE series_id = o.series_id AND status = 'published'
           AND (starts_at, id) >= (o.starts_at, o.id)
         ORDER BY starts_at, id FOR UPDATE
    LOOP
        r := offer_cancel_one(u, x, p->>'reason', p_addr);
        nb := nb + (r->>'bookings_cancelled')::integer;
        nw := nw + (r->>'waitlist_ended')::integer;
        items := items || (r - 'bookings_cancelled' - 'waitlist_ended');
        IF x.id = o.id THEN
            this := r - 'bookings_cancelled' - 'waitlist_ended';
        END IF;
    END LOOP;
    RETURN this || jsonb_build_object('bookings_cancelled', nb,
                                      'waitlist_ended', nw,
                                      'items', to_jsonb(items));
END $$;

-- What the venue needs at the door and nothing more: first name, initial.
CREATE OR REPLACE FUNCTION api.offer_guest_list(p_token text, p jsonb, p_addr text, p_policy jsonb)
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
           AND bk.status IN ('confirmed', 'attended', 'no_show')), '[]'::jsonb),
        'groups', group_guest_items(o.id));
END $$;

CREATE OR REPLACE FUNCTION api.offer_close_attendance(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    u users := auth_user(p_token);
    o offers := scope_own_offer(u, (p->>'offer_id')::bigint);
    n integer;
    v_late integer := 0;
BEGIN
    IF o.starts_at > now() THEN
        PERFORM bad_param('offer_id', 'attendance can be closed once the offer has started');
    END IF;
    -- People the venue saw come in late, without a scan: attended (a late
    -- arrival is an outing, not a no-show). Each must be a live booking of
    -- this offer; one already checked in stays as it was.
    IF p ? 'arrived_late' THEN
        IF EXISTS (SELECT 1 FROM jsonb_array_elements_text(p->'arrived_late') x(id)
                    WHERE NOT EXISTS (SELECT 1 FROM bookings bk
                                       WHERE bk.id = x.id::bigint AND bk.offer_id = o.id
                                         AND bk.status IN ('confirmed', 'attended', 'no_show'))) THEN
            PERFORM bad_param('arrived_late',
                'arrived_late must name live bookings of this offer (offer.guest_list)');
        END IF;
        UPDATE bookings SET status = 'attended', checked_in_at = now(), arrived_late = true
         WHERE offer_id = o.id AND status IN ('confirmed', 'no_show')
           AND id IN (SELECT x::bigint FROM jsonb_array_elements_text(p->'arrived_late') x);
        GET DIAGNOSTICS v_late = ROW_COUNT;
    END IF;
    UPDATE bookings SET status = 'no_show'
     WHERE offer_id = o.id AND status = 'confirmed';
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE offers SET attendance_closed_at = now(), updated_at = now()
     WHERE id = o.id;
    PERFORM audit(u, 'offer.close_attendance', 'offer', o.id,
                  jsonb_build_object('no_show', n, 'arrived_late', v_late), p_addr);
    RETURN jsonb_build_object('offer_id', o.id, 'marked_no_show', n,
        'marked_arrived_late', v_late,
        'arrived_late', (SELECT count(*) FROM bookings WHERE offer_id = o.id AND arrived_late),
        'no_show', (SELECT count(*) FROM bookings WHERE offer_id = o.id AND status = 'no_show'),
        'attended', (SELECT count(*) FROM bookings WHERE offer_id = o.id AND status = 'attended'),
        'attended_seats', (SELECT coalesce(sum(seats), 0) FROM bookings WHERE offer_id = o.id AND status = 'attended'),
        'no_show_seats', (SELECT coalesce(sum(seats), 0) FROM bookings WHERE offer_id = o.id AND status = 'no_show'));
END $$;

CREATE OR REPLACE FUNCTION core.offer_json_of(o offers, p_partner_name text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', o.id, 'partner_id', o.partner_id,
        'partner_name', p_partner_name,
        'title', o.title, 'category', o.category, 'venue', o.venue,
        'city', o.city, 'address', o.address, 'starts_at', ts(o.starts_at),
        'ends_at', ts(o.ends_at), 'seats_total', o.seats_total,
        'seats_taken', o.seats_taken, 'seats_held', o.seats_held,
        'seats_available', o.seats_total - o.seats_taken - o.seats_held,
        'max_per_booking', o.max_per_booking,
        'booking_deadline', ts(o.booking_deadline),
        'delivery', o.delivery, 'description', o.description,
        'accessibility', o.accessibility, 'status', o.status,
        'group_codes', o.group_codes,
        'cancel_reason', o.cancel_reason, 'cancelled_at', ts(o.cancelled_at),
        'attendance_closed_at', ts(o.attendance_closed_at),
        'series_id', o.series_id,
        'target_structure_ids', to_jsonb(o.target_structure_ids),
        'target_territories', to_jsonb(o.target_territories),
        'opens_to_all_at', ts(o.opens_to_all_at),
        'opens_to_all_hours', o.opens_to_all_hours,
        'open_to_all', offer_open_to_all(o),
        'created_at', ts(o.created_at), 'updated_at', ts(o.updated_at))
$$;
