-- E-mail (docs/mail.md): the outbox every message goes through.
-- Composing messages (who gets what, when) and sending them (the daemon's
-- sender, daemon/mail.c) both go through mail_outbox (sql/schema/021).

-- Queues one message, in the caller's transaction. A message whose
-- dedup_key is already queued is not queued again: returns its id, or
-- NULL when it was a duplicate, or when an account of this address
-- turned this kind off. The composing queries already leave such
-- accounts out (docs/mail.md, "Turning notices off"); this is the
-- backstop for a path that forgets.
CREATE OR REPLACE FUNCTION core.mail_queue(p_kind text, p_recipient text,
        p_subject text, p_body text, p_dedup_key text,
        p_not_before timestamptz DEFAULT now())
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    -- A beneficiary's messages follow their consent alone: no lookup
    -- for the thousands of vouchers of a draw.
    IF p_kind NOT IN ('voucher', 'reminder') THEN
        IF EXISTS (SELECT 1 FROM users
                    WHERE email = p_recipient AND p_kind = ANY(mail_off)) THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO mail_outbox (kind, recipient, subject, body, dedup_key,
                             not_before, next_attempt_at)
    VALUES (p_kind, p_recipient, p_subject, p_body, p_dedup_key,
            p_not_before, greatest(p_not_before, now()))
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;

--------------------------------------------------------- what is written
-- What is queued, when and to whom (docs/mail.md, "What is sent"). Every
-- message is French first, then English, with times in the reader's zone
-- (a referent's or a beneficiary's structure, report_zone() for a
-- venue), and names a person by first name and last-name initial only.

-- A person, the way every message names them.
CREATE OR REPLACE FUNCTION core.mail_person(p_first text, p_last text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(p_first || ' ' || left(p_last, 1) || '.', '(-)')
$$;

-- "samedi 5 décembre 2026 à 20 h 30" / "Saturday 5 December 2026 at 20:30"
-- written here rather than by to_char's TM patterns, which follow the
-- server's lc_time.
CREATE OR REPLACE FUNCTION core.mail_when(t timestamptz, tz text, lang text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN lang = 'fr' THEN
        (ARRAY['lundi', 'mardi', 'mercredi', 'jeudi', 'vendredi', 'samedi',
               'dimanche'])[extract(isodow FROM t AT TIME ZONE tz)::integer]
        || ' ' || CASE WHEN extract(day FROM t AT TIME ZONE tz) = 1 THEN '1er'
                       ELSE extract(day FROM t AT TIME ZONE tz)::integer::text END
        || ' ' || (ARRAY['janvier', 'février', 'mars', 'avril', 'mai', 'juin',
                         'juillet', 'août', 'septembre', 'octobre', 'novembre',
                         'décembre'])[extract(month FROM t AT TIME ZONE tz)::integer]
        || ' ' || extract(year FROM t AT TIME ZONE tz)::integer
        || ' à ' || to_char(t AT TIME ZONE tz, 'FMHH24" h "MI')
    ELSE
        (ARRAY['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday',
               'Saturday', 'Sunday'])[extract(isodow FROM t AT TIME ZONE tz)::integer]
        || ' ' || extract(day FROM t AT TIME ZONE tz)::integer
        || ' ' || (ARRAY['January', 'February', 'March', 'April', 'May', 'June',
                         'July', 'August', 'September', 'October', 'November',
                         'December'])[extract(month FROM t AT TIME ZONE tz)::integer]
        || ' ' || extract(year FROM t AT TIME ZONE tz)::integer
        || ' at ' || to_char(t AT TIME ZONE tz, 'HH24:MI')
    END
$$;

CREATE OR REPLACE FUNCTION core.mail_seats(n integer, lang text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT n || CASE WHEN lang = 'fr' THEN CASE WHEN n = 1 THEN ' place' ELSE ' places' END
                     ELSE CASE WHEN n = 1 THEN ' seat' ELSE ' seats' END END
$$;

-- Where an offer takes place, on one line.
CREATE OR REPLACE FUNCTION core.mail_place(o offers) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT o.venue || coalesce(', ' || o.address, '') || ', ' || o.city
$$;

-- "« Cyrano », samedi 5 décembre 2026 à 20 h 30, Grande salle, Brest"
CREATE OR REPLACE FUNCTION core.mail_offer(o offers, tz text, lang text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN lang = 'fr' THEN '« ' || o.title || ' »' ELSE '"' || o.title || '"' END
        || ', ' || mail_when(o.starts_at, tz, lang) || ', ' || mail_place(o)
$$;

-- The whole text: the French, then the English. p_name greets a
-- beneficiary by first name; staff are greeted without one.
CREATE OR REPLACE FUNCTION core.mail_body(p_name text, p_fr text, p_en text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'Bonjour' || coalesce(' ' || p_name, '') || E',\n\n' || p_fr
        || E'\n\nMessage envoyé par strapontin ; merci de ne pas y répondre.\n'
        || E'\n' || repeat('-', 40) || E' English\n\n'
        || 'Hello' || coalesce(' ' || p_name, '') || E',\n\n' || p_en
        || E'\n\nSent by strapontin; please do not reply.\n'
$$;

-- A notice to staff: the text, then one line, French then English, on
-- how to stop this kind of message (docs/mail.md, "Turning notices
-- off"). No address of the desk: the configuration has none.
CREATE OR REPLACE FUNCTION core.mail_staff_body(p_kind text, p_fr text, p_en text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT mail_body(NULL, p_fr, p_en)
        || E'\nNe plus recevoir ces messages (' || p_kind || ') : « Mon compte » '
        || 'sur le guichet web, ou strapontin auth mail-preferences. / '
        || 'To stop them: "My account" on the web desk, or strapontin auth '
        || E'mail-preferences.\n'
$$;

-- Subjects hold an offer's title (up to 200 characters): cut to the
-- outbox's limit rather than refuse the change that queues them.
CREATE OR REPLACE FUNCTION core.mail_subject(p_fr text, p_en text, p_what text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT left(p_fr || ' / ' || p_en || coalesce(' : ' || p_what, ''), 400)
$$;

-- Who hears of a booking or a waiting-list entry of a structure: the
-- referent who made it, or, when they cannot (an admin made it, the
-- account is disabled or has moved), every enabled referent of the
-- structure.
CREATE OR REPLACE FUNCTION core.mail_referents(p_structure_id bigint, p_created_by bigint)
RETURNS SETOF users LANGUAGE sql STABLE AS $$
    SELECT u.* FROM users u
     WHERE u.role = 'referent' AND u.enabled AND u.structure_id = p_structure_id
       AND (u.id = p_created_by
            OR NOT EXISTS (SELECT 1 FROM users c
                            WHERE c.id = p_created_by AND c.role = 'referent'
                              AND c.enabled AND c.structure_id = p_structure_id))
$$;

-- A referent's daily digest: their people's outings from now to the end
-- of the policy.mail_digest_days-th day after today, queued once a day
-- from policy.mail_hour (the structure's local time), only when there is
-- something to tell.
-- Whether the day's messages may go in zone tz: from policy.mail_hour
-- (7) on, local time.
CREATE OR REPLACE FUNCTION core.mail_hour_passed(p_policy jsonb, p_now timestamptz,
        tz text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT extract(hour FROM p_now AT TIME ZONE tz)
           >= coalesce((p_policy->>'mail_hour')::integer, 7)
$$;

CREATE OR REPLACE FUNCTION core.mail_digests(p_policy jsonb, p_now timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_days integer := coalesce((p_policy->>'mail_digest_days')::integer, 2);
    r record;
    n integer := 0;
BEGIN
    FOR r IN
        SELECT d.user_id, d.email, d.key,
               string_agg('- ' || d.fr, E'\n' ORDER BY d.starts_at, d.booking_id) AS fr,
               string_agg('- ' || d.en, E'\n' ORDER BY d.starts_at, d.booking_id) AS en
          FROM (SELECT ru.id AS user_id, ru.email, o.starts_at, bk.id AS booking_id,
                       'referent_digest:' || ru.id || ':'
                           || (p_now AT TIME ZONE s.timezone)::date AS key,
                       mail_offer(o, s.timezone, 'fr') || ' : '
                           || mail_person(b.first_name, b.last_name) || ', '
                           || mail_seats(bk.seats, 'fr') AS fr,
                       mail_offer(o, s.timezone, 'en') || ': '
                           || mail_person(b.first_name, b.last_name) || ', '
                           || mail_seats(bk.seats, 'en') AS en
                  FROM offers o
                  JOIN bookings bk ON bk.offer_id = o.id AND bk.status = 'confirmed'
                  JOIN structures s ON s.id = bk.structure_id
                  JOIN beneficiaries b ON b.id = bk.beneficiary_id
                  CROSS JOIN LATERAL mail_referents(bk.structure_id, bk.created_by) ru
                 WHERE o.status = 'published'
                   AND NOT 'referent_digest' = ANY(ru.mail_off)
                   AND o.starts_at > p_now
                   AND o.starts_at < p_now + make_interval(days => v_days + 2)
                   AND o.starts_at < ((p_now AT TIME ZONE s.timezone)::date + v_days + 1)
                                     ::timestamp AT TIME ZONE s.timezone
                   AND mail_hour_passed(p_policy, p_now, s.timezone)) d
         WHERE NOT EXISTS (SELECT 1 FROM mail_outbox m WHERE m.dedup_key = d.key)
         GROUP BY d.user_id, d.email, d.key
         ORDER BY d.user_id
    LOOP
        IF mail_queue('referent_digest', r.email,
                mail_subject('Les sorties des prochains jours',
                             'Outings of the next days', NULL),
                mail_staff_body('referent_digest',
                    E'Voici les sorties prévues des personnes que vous suivez :\n\n'
                        || r.fr || E'\n\nLe détail de chaque réservation est dans strapontin.',
                    E'Here are the planned outings of the people you follow:\n\n'
                        || r.en || E'\n\nEach booking''s details are in strapontin.'),
                r.key) IS NOT NULL THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- To a venue's staff, the day before (report_zone()), from
-- policy.mail_hour: the guest list of each offer with live bookings, as
-- offer.guest_list gives it (first name and initial, seats, structure),
-- without the ticket codes, which are the guests' to show.
CREATE OR REPLACE FUNCTION core.mail_guest_lists(p_policy jsonb, p_now timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    tz text := report_zone();
    today date := (p_now AT TIME ZONE tz)::date;
    r record;
    n integer := 0;
BEGIN
    IF NOT mail_hour_passed(p_policy, p_now, tz) THEN
        RETURN 0;
    END IF;
    FOR r IN
        SELECT o AS offer, pu.email,
               'guest_list:' || o.id || ':' || pu.id || ':' || (today + 1) AS key,
               g.fr, g.en, g.seats
          FROM offers o
          JOIN users pu ON pu.partner_id = o.partner_id AND pu.role = 'partner' AND pu.enabled
                       AND NOT 'guest_list' = ANY(pu.mail_off)
          -- the list in both languages, from one pass over the bookings
          CROSS JOIN LATERAL (
                SELECT string_agg('- ' || mail_person(b.first_name, b.last_name)
                                  || ', ' || mail_seats(bk.seats, 'fr') || ' (' || s.name || ')',
                                  E'\n' ORDER BY b.first_name, bk.id) AS fr,
                       string_agg('- ' || mail_person(b.first_name, b.last_name)
                                  || ', ' || mail_seats(bk.seats, 'en') || ' (' || s.name || ')',
                                  E'\n' ORDER BY b.first_name, bk.id) AS en,
                       sum(bk.seats)::integer AS seats
                  FROM bookings bk JOIN beneficiaries b ON b.id = bk.beneficiary_id
                  JOIN structures s ON s.id = bk.structure_id
                 WHERE bk.offer_id = o.id AND bk.status = 'confirmed') g
         WHERE o.status = 'published'
           AND o.starts_at > p_now AND o.starts_at < p_now + interval '3 days'
           AND (o.starts_at AT TIME ZONE tz)::date = today + 1
           AND g.seats IS NOT NULL          -- someone is coming
           AND NOT EXISTS (SELECT 1 FROM mail_outbox m
                            WHERE m.dedup_key = 'guest_list:' || o.id || ':' || pu.id
                                                || ':' || (today + 1))
         ORDER BY o.id, pu.id
    LOOP
        IF mail_queue('guest_list', r.email,
                mail_subject('Liste des invités de demain', 'Tomorrow''s guest list',
                             (r.offer).title),
                mail_staff_body('guest_list',
                    'Les invités de ' || mail_offer(r.offer, tz, 'fr') || ' ('
                        || mail_seats(r.seats, 'fr') || E') :\n\n' || r.fr
                        || E'\n\nChacun présente son code à l''entrée ; la liste à jour '
                        || 'et le pointage sont dans strapontin.',
                    'The guests of ' || mail_offer(r.offer, tz, 'en') || ' ('
                        || mail_seats(r.seats, 'en') || E'):\n\n' || r.en
                        || E'\n\nEach shows their code at the door; the current list '
                        || 'and check-in are in strapontin.'),
                r.key) IS NOT NULL THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- To a venue's staff, the day after (report_zone()), from
-- policy.mail_hour: offers whose attendance is still open, with how many
-- bookings wait to be marked. No name: counts are enough to act on.
CREATE OR REPLACE FUNCTION core.mail_attendance(p_policy jsonb, p_now timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    tz text := report_zone();
    today date := (p_now AT TIME ZONE tz)::date;
    r record;
    n integer := 0;
BEGIN
    IF NOT mail_hour_passed(p_policy, p_now, tz) THEN
        RETURN 0;
    END IF;
    FOR r IN
        SELECT o AS offer, pu.email, 'attendance_to_close:' || o.id || ':' || pu.id AS key,
               k.bookings, k.seats
          FROM offers o
          JOIN users pu ON pu.partner_id = o.partner_id AND pu.role = 'partner' AND pu.enabled
                       AND NOT 'attendance_to_close' = ANY(pu.mail_off)
          CROSS JOIN LATERAL (SELECT count(*)::integer AS bookings,
                                     sum(bk.seats)::integer AS seats
                                FROM bookings bk
                               WHERE bk.offer_id = o.id AND bk.status = 'confirmed') k
         WHERE o.status = 'published' AND o.attendance_closed_at IS NULL
           AND o.starts_at < p_now AND o.starts_at > p_now - interval '3 days'
           AND (o.starts_at AT TIME ZONE tz)::date = today - 1
           AND k.bookings > 0
           AND NOT EXISTS (SELECT 1 FROM mail_outbox m
                            WHERE m.dedup_key = 'attendance_to_close:' || o.id || ':' || pu.id)
         ORDER BY o.id, pu.id
    LOOP
        IF mail_queue('attendance_to_close', r.email,
                mail_subject('Pointage à clore', 'Attendance to close', (r.offer).title),
                mail_staff_body('attendance_to_close',
                    mail_offer(r.offer, tz, 'fr') || ' a eu lieu hier. '
                        || r.bookings || ' réservation(s) (' || mail_seats(r.seats, 'fr')
                        || E') n''ont pas été pointées.\n\nIndiquez dans strapontin qui est '
                        || 'venu, puis clôturez le pointage : les réservations non pointées '
                        || 'comptent alors comme absences.',
                    mail_offer(r.offer, tz, 'en') || ' took place yesterday. '
                        || r.bookings || ' booking(s) (' || mail_seats(r.seats, 'en')
                        || E') were not checked in.\n\nMark in strapontin who came, then '
                        || 'close the attendance: bookings not checked in then count as '
                        || 'no-shows.'),
                r.key) IS NOT NULL THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- The text of a beneficiary's voucher: what, when, where, how many, the
-- code. p_intro_* says why it is sent.
CREATE OR REPLACE FUNCTION core.mail_voucher_body(o offers, p_seats integer, p_code text,
        p_first_name text, tz text, p_intro_fr text, p_intro_en text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT mail_body(p_first_name,
        p_intro_fr || E'\n\n'
            || 'Quoi : ' || o.title || E'\n'
            || 'Quand : ' || mail_when(o.starts_at, tz, 'fr') || E'\n'
            || 'Où : ' || mail_place(o) || E'\n'
            || 'Places : ' || p_seats || E'\n'
            || 'Code : ' || ticket_display(p_code) || E'\n\n'
            || 'Présentez ce code à l''entrée. Si vous ne pouvez pas venir, '
            || 'prévenez au plus tôt la personne qui vous a inscrit·e : '
            || 'la place ira à quelqu''un d''autre.',
        p_intro_en || E'\n\n'
            || 'What: ' || o.title || E'\n'
            || 'When: ' || mail_when(o.starts_at, tz, 'en') || E'\n'
            || 'Where: ' || mail_place(o) || E'\n'
            || 'Seats: ' || p_seats || E'\n'
            || 'Code: ' || ticket_display(p_code) || E'\n\n'
            || 'Show this code at the door. If you cannot come, tell the person '
            || 'who booked for you as soon as you can: the seat will go to '
            || 'someone else.')
$$;

-- To a beneficiary who gave an address and consented to reminders, the
-- day before (their structure's zone), from policy.mail_hour.
CREATE OR REPLACE FUNCTION core.mail_reminders(p_policy jsonb, p_now timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN
        SELECT o AS offer, bk.seats, bk.code, b.first_name, b.email, s.timezone AS tz,
               'reminder:' || bk.id || ':' || (o.starts_at AT TIME ZONE s.timezone)::date AS key
          FROM offers o
          JOIN bookings bk ON bk.offer_id = o.id AND bk.status = 'confirmed'
          JOIN beneficiaries b ON b.id = bk.beneficiary_id
          JOIN structures s ON s.id = bk.structure_id
         WHERE o.status = 'published'
           AND o.starts_at > p_now AND o.starts_at < p_now + interval '3 days'
           AND b.email IS NOT NULL AND b.reminders_consent_at IS NOT NULL
           AND b.erased_at IS NULL
           AND (o.starts_at AT TIME ZONE s.timezone)::date
               = (p_now AT TIME ZONE s.timezone)::date + 1
           AND mail_hour_passed(p_policy, p_now, s.timezone)
           AND NOT EXISTS (SELECT 1 FROM mail_outbox m
                            WHERE m.dedup_key = 'reminder:' || bk.id || ':'
                                  || (o.starts_at AT TIME ZONE s.timezone)::date)
         ORDER BY bk.id
    LOOP
        IF mail_queue('reminder', r.email,
                mail_subject('C''est demain', 'It is tomorrow', (r.offer).title),
                mail_voucher_body(r.offer, r.seats, r.code, r.first_name, r.tz,
                    'Petit rappel : votre sortie, c''est demain.',
                    'A reminder: your outing is tomorrow.'),
                r.key) IS NOT NULL THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- To the referents of people holding seats offered from a waiting list
-- that expire within policy.mail_hold_notice: accept them in time, or
-- they go to the next person.
CREATE OR REPLACE FUNCTION core.mail_holds(p_policy jsonb, p_now timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    notice interval := make_interval(secs =>
        coalesce((p_policy->>'mail_hold_notice')::double precision, 7200));
    r record;
    n integer := 0;
BEGIN
    FOR r IN
        SELECT o AS offer, e.seats, e.expires_at, ru.email, s.timezone AS tz,
               mail_person(b.first_name, b.last_name) AS person,
               'hold_expiring:' || e.id || ':' || ru.id AS key
          FROM waitlist_entries e
          JOIN offers o ON o.id = e.offer_id
          JOIN beneficiaries b ON b.id = e.beneficiary_id
          JOIN structures s ON s.id = e.structure_id
          CROSS JOIN LATERAL mail_referents(e.structure_id, e.created_by) ru
         WHERE e.status = 'offered'
           AND NOT 'hold_expiring' = ANY(ru.mail_off)
           AND e.expires_at > p_now AND e.expires_at <= p_now + notice
           AND NOT EXISTS (SELECT 1 FROM mail_outbox m
                            WHERE m.dedup_key = 'hold_expiring:' || e.id || ':' || ru.id)
         ORDER BY e.id, ru.id
    LOOP
        IF mail_queue('hold_expiring', r.email,
                mail_subject('Places en attente d''acceptation',
                             'Seats waiting to be accepted', (r.offer).title),
                mail_staff_body('hold_expiring',
                    'Des places de la liste d''attente sont retenues pour '
                        || r.person || ' (' || mail_seats(r.seats, 'fr') || ') : '
                        || mail_offer(r.offer, r.tz, 'fr') || E'.\n\n'
                        || 'Acceptez-les dans strapontin avant le '
                        || mail_when(r.expires_at, r.tz, 'fr')
                        || ', sinon elles iront à la personne suivante.',
                    'Seats from the waiting list are held for '
                        || r.person || ' (' || mail_seats(r.seats, 'en') || '): '
                        || mail_offer(r.offer, r.tz, 'en') || E'.\n\n'
                        || 'Accept them in strapontin before '
                        || mail_when(r.expires_at, r.tz, 'en')
                        || ', or they go to the next person.'),
                r.key) IS NOT NULL THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- Everything that is due at p_now: run by every daemon's janitor every
-- policy.mail_interval (api.mail_sweep), and by tests with a time of
-- their choosing. Each message has its dedup_key, so two daemons, or a
-- run again after a crash, queue it once.
CREATE OR REPLACE FUNCTION core.mail_compose(p_policy jsonb, p_now timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RETURN mail_digests(p_policy, p_now) + mail_guest_lists(p_policy, p_now)
         + mail_attendance(p_policy, p_now) + mail_reminders(p_policy, p_now)
         + mail_holds(p_policy, p_now);
END $$;

CREATE OR REPLACE FUNCTION api.mail_sweep(p_policy jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    RETURN mail_compose(p_policy, now());
END $$;

-- A booking's voucher, at once, to a beneficiary who consented: whatever
-- made the booking (booking.create, a waiting list, a draw, a claim at the
-- desk), in the same transaction. One statement per insert, so a draw's
-- thousands of bookings cost one query here.
CREATE OR REPLACE FUNCTION core.bookings_mail_voucher() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mail_queue('voucher', b.email,
                mail_subject('Votre place est réservée', 'Your seat is booked', o.title),
                mail_voucher_body(o, n.seats, n.code, b.first_name, s.timezone,
                    'Votre place est réservée.', 'Your seat is booked.'),
                'voucher:' || n.id)
       FROM new_rows n
       JOIN beneficiaries b ON b.id = n.beneficiary_id
       JOIN offers o ON o.id = n.offer_id
       JOIN structures s ON s.id = n.structure_id
      WHERE n.status = 'confirmed' AND b.reminders_consent_at IS NOT NULL
        AND b.email IS NOT NULL AND o.starts_at > now();
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER bookings_mail_voucher AFTER INSERT ON bookings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION core.bookings_mail_voucher();

-- A partner cancels or moves an offer (its time or its place): the
-- referents of the people booked hear of it in the same transaction,
-- one message each listing their people. Whatever path changes the
-- offer (offer.cancel, offer.update, a series' "this and the following")
-- goes through here; a cancellation must mark the bookings
-- cancelled_by_partner before the offer (as offer.cancel does).
CREATE OR REPLACE FUNCTION core.offers_mail_notice() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cancelled boolean := NEW.status = 'cancelled' AND OLD.status <> 'cancelled';
    r record;
BEGIN
    IF NOT cancelled AND (NEW.status <> 'published' OR NEW.starts_at <= now()
                          OR (OLD.starts_at = NEW.starts_at AND OLD.venue = NEW.venue
                              AND OLD.city = NEW.city
                              AND OLD.address IS NOT DISTINCT FROM NEW.address)) THEN
        RETURN NULL;
    END IF;
    FOR r IN
        SELECT ru.id AS user_id, ru.email, s.timezone AS tz,
               string_agg('- ' || mail_person(b.first_name, b.last_name) || ', '
                          || mail_seats(bk.seats, 'fr'), E'\n' ORDER BY bk.id) AS fr,
               string_agg('- ' || mail_person(b.first_name, b.last_name) || ', '
                          || mail_seats(bk.seats, 'en'), E'\n' ORDER BY bk.id) AS en
          FROM bookings bk
          JOIN beneficiaries b ON b.id = bk.beneficiary_id
          JOIN structures s ON s.id = bk.structure_id
          CROSS JOIN LATERAL mail_referents(bk.structure_id, bk.created_by) ru
         WHERE bk.offer_id = NEW.id
           AND bk.status = CASE WHEN cancelled THEN 'cancelled_by_partner' ELSE 'confirmed' END
           AND NOT CASE WHEN cancelled THEN 'offer_cancelled' ELSE 'offer_moved' END
                   = ANY(ru.mail_off)
         GROUP BY ru.id, ru.email, s.timezone
         ORDER BY ru.id
    LOOP
        IF cancelled THEN
            PERFORM mail_queue('offer_cancelled', r.email,
                mail_subject('Sortie annulée', 'Outing cancelled', NEW.title),
                mail_staff_body('offer_cancelled',
                    'Le partenaire a annulé ' || mail_offer(OLD, r.tz, 'fr') || '.'
                        || coalesce(E'\nMotif : ' || NEW.cancel_reason, '')
                        || E'\n\nLes réservations de ces personnes sont annulées :\n\n'
                        || r.fr || E'\n\nPensez à les prévenir.',
                    'The partner cancelled ' || mail_offer(OLD, r.tz, 'en') || '.'
                        || coalesce(E'\nReason: ' || NEW.cancel_reason, '')
                        || E'\n\nThe bookings of these people are cancelled:\n\n'
                        || r.en || E'\n\nPlease let them know.'),
                'offer_cancelled:' || NEW.id || ':' || r.user_id);
        ELSE
            PERFORM mail_queue('offer_moved', r.email,
                mail_subject('Sortie modifiée', 'Outing changed', NEW.title),
                mail_staff_body('offer_moved',
                    'Le partenaire a modifié une sortie.' || E'\n\n'
                        || 'Désormais : ' || mail_offer(NEW, r.tz, 'fr') || E'\n'
                        || 'Auparavant : ' || mail_offer(OLD, r.tz, 'fr') || E'\n\n'
                        || E'Les réservations restent valables :\n\n' || r.fr
                        || E'\n\nPrévenez ces personnes, et annulez les réservations '
                        || 'qui ne leur conviennent plus : la place ira à quelqu''un d''autre.',
                    'The partner changed an outing.' || E'\n\n'
                        || 'Now: ' || mail_offer(NEW, r.tz, 'en') || E'\n'
                        || 'Before: ' || mail_offer(OLD, r.tz, 'en') || E'\n\n'
                        || E'The bookings stay valid:\n\n' || r.en
                        || E'\n\nPlease tell these people, and cancel the bookings '
                        || 'that no longer suit them: the seats will go to someone else.'),
                'offer_moved:' || NEW.id || ':' || r.user_id || ':'
                    || pg_current_xact_id() || ':' || extract(epoch FROM NEW.starts_at));
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER offers_mail_notice
    AFTER UPDATE OF status, starts_at, venue, address, city ON offers
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.starts_at IS DISTINCT FROM NEW.starts_at
          OR OLD.venue IS DISTINCT FROM NEW.venue
          OR OLD.address IS DISTINCT FROM NEW.address
          OR OLD.city IS DISTINCT FROM NEW.city)
    EXECUTE FUNCTION core.offers_mail_notice();

-- The messages to one person's own address (voucher, reminder) leave the
-- outbox when the person is erased (p_all: sent ones too) or takes back
-- the address or the consent (those not sent yet). Several people may
-- share an address: only this person's bookings' messages go.
CREATE OR REPLACE FUNCTION core.mail_forget(b beneficiaries, p_all boolean)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    IF b.email IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM mail_outbox m
     WHERE m.recipient = b.email AND m.kind IN ('voucher', 'reminder')
       AND (p_all OR m.sent_at IS NULL)
       AND split_part(m.dedup_key, ':', 2) IN (SELECT bk.id::text FROM bookings bk
                                                WHERE bk.beneficiary_id = b.id);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- ---- The sender (daemon/mail.c; docs/mail.md, "Transport") -------------
--
-- A daemon takes due rows under a lease: the claim moves next_attempt_at
-- to the end of the lease, so no other daemon takes them while it holds
-- them (SKIP LOCKED: two claims at once take different rows), and a
-- daemon that dies holding them only delays them by the lease. The
-- attempt is counted at the claim, so a crash mid-send is an attempt.
-- Answers {items: [{id, kind, recipient, subject, body, created_at,
-- attempts}], backlog: messages neither sent nor given up}.
CREATE OR REPLACE FUNCTION api.mail_claim(p_owner text, p_limit integer,
        p_lease_s integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_items jsonb;
    v_backlog bigint;
BEGIN
    WITH due AS (
        SELECT id FROM mail_outbox
         WHERE sent_at IS NULL AND given_up_at IS NULL
           AND next_attempt_at <= now()
         ORDER BY next_attempt_at, id
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED),
    taken AS (
        UPDATE mail_outbox m
           SET lease_owner = p_owner,
               lease_until = now() + make_interval(secs => p_lease_s),
               next_attempt_at = now() + make_interval(secs => p_lease_s),
               attempts = m.attempts + 1
          FROM due
         WHERE m.id = due.id
        RETURNING m.id, m.kind, m.recipient, m.subject, m.body,
                  m.created_at, m.attempts)
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', id, 'kind', kind, 'recipient', recipient,
               'subject', subject,
               'body', body,
               'created_at', extract(epoch FROM created_at)::bigint,
               'attempts', attempts) ORDER BY id), '[]'::jsonb)
      INTO v_items FROM taken;
    SELECT count(*) INTO v_backlog FROM mail_outbox
     WHERE sent_at IS NULL AND given_up_at IS NULL;
    RETURN jsonb_build_object('items', v_items, 'backlog', v_backlog);
END $$;

-- Records what became of claimed messages: p_results is
-- [{id, ok, permanent, error}]. A message sent is marked sent whoever
-- holds its lease now (it was sent: no one must send it again);
-- lease_owner then says which daemon sent it. A failure
-- is recorded only while the lease is still the caller's: retried after
-- an exponential backoff (retry_min, doubling, at most retry_max), or
-- given up when the relay refused its recipient for good (p_results says
-- permanent: a 5xx answer to RCPT, or an address no relay takes) or when it
-- has waited give_up_after since it was due. Answers the number of
-- messages given up; safe to call again with the same results.
CREATE OR REPLACE FUNCTION api.mail_settle(p_owner text, p_results jsonb,
        p_retry_min_s integer, p_retry_max_s integer,
        p_give_up_after_s integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n_given_up integer;
BEGIN
    UPDATE mail_outbox m
       SET sent_at = now(), lease_owner = p_owner, lease_until = NULL,
           last_error = NULL
      FROM jsonb_array_elements(p_results) r
     WHERE m.id = (r->>'id')::bigint AND (r->>'ok')::boolean
       AND m.sent_at IS NULL;
    WITH failed AS (
    UPDATE mail_outbox m
       SET lease_owner = NULL, lease_until = NULL,
           last_error = left(r->>'error', 500),
           next_attempt_at = now() + make_interval(secs =>
               least(p_retry_max_s::double precision,
                     p_retry_min_s * power(2, least(m.attempts - 1, 30)))),
           given_up_at = CASE
               WHEN coalesce((r->>'permanent')::boolean, false)
                 OR now() >= greatest(m.created_at, m.not_before)
                             + make_interval(secs => p_give_up_after_s)
               THEN now() END
      FROM jsonb_array_elements(p_results) r
     WHERE m.id = (r->>'id')::bigint AND NOT (r->>'ok')::boolean
       AND m.sent_at IS NULL AND m.given_up_at IS NULL
       AND m.lease_owner = p_owner
    RETURNING m.given_up_at)
    SELECT count(*) FILTER (WHERE given_up_at IS NOT NULL)
      INTO n_given_up FROM failed;
    RETURN n_given_up;
END $$;
