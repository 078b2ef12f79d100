-- strapontin API, reports: activity reports.
--
-- Code, not history: every `strapontind --migrate` re-applies all of
-- sql/api/ (in file name order) in one transaction, so each function has
-- exactly one definition, here. CREATE OR REPLACE only; helpers in schema
-- core, the daemon's entry points in schema api (docs/operations.md,
-- "The sql/ tree"). Generated once by the conversion of the numbered
-- migrations; edit freely from now on.

------------------------------------------------------------------ basics

-- The zone of calendar months and years. The network's offers take place
-- in metropolitan France; a network elsewhere changes this one line (and
-- runs report_rebuild()). Every other use of the zone calls this function:
-- the literal appears nowhere else.
CREATE OR REPLACE FUNCTION core.report_zone() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 'Europe/Paris' $$;

CREATE OR REPLACE FUNCTION core.report_month(t timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT date_trunc('month', t AT TIME ZONE report_zone())::date
$$;

--------------------------------------------------- computed from scratch

-- The flags every attended booking should have, for report_rebuild() and
-- report_check(); report_refresh_person() computes one person's another way.
CREATE OR REPLACE VIEW public.report_flags_computed AS
SELECT id, beneficiary_id,
       (  (row_number() OVER (PARTITION BY beneficiary_id, m ORDER BY s, id) = 1)::int
        + (row_number() OVER (PARTITION BY beneficiary_id, m, partner_id ORDER BY s, id) = 1)::int * 2
        + (row_number() OVER (PARTITION BY beneficiary_id, m, category ORDER BY s, id) = 1)::int * 4
        + (row_number() OVER (PARTITION BY beneficiary_id, y ORDER BY s, id) = 1)::int * 8
        + (row_number() OVER (PARTITION BY beneficiary_id, y, partner_id ORDER BY s, id) = 1)::int * 16
        + (row_number() OVER (PARTITION BY beneficiary_id, y, category ORDER BY s, id) = 1)::int * 32
        + (row_number() OVER (PARTITION BY beneficiary_id ORDER BY s, id) = 1)::int * 64
       )::smallint AS flags
  FROM (SELECT bk.id, bk.beneficiary_id, bk.offer_starts_at AS s,
               o.partner_id, o.category, report_month(bk.offer_starts_at) AS m,
               date_trunc('year', bk.offer_starts_at AT TIME ZONE report_zone()) AS y
          FROM bookings bk JOIN offers o ON o.id = bk.offer_id
         WHERE bk.status = 'attended') a;

CREATE OR REPLACE VIEW public.report_offers_computed AS
SELECT o.id AS offer_id, o.starts_at, o.partner_id, o.category,
       CASE WHEN o.status = 'cancelled' THEN 0 ELSE o.seats_total END AS seats_offered,
       coalesce(b.seats_booked, 0) AS seats_booked,
       coalesce(b.seats_attended, 0) AS seats_attended,
       coalesce(b.no_shows, 0) AS no_shows,
       coalesce(b.first_timers, 0) AS first_timers,
       coalesce(b.people_m, 0) AS people_m,
       coalesce(b.people_m_partner, 0) AS people_m_partner,
       coalesce(b.people_m_category, 0) AS people_m_category,
       coalesce(b.people_y, 0) AS people_y,
       coalesce(b.people_y_partner, 0) AS people_y_partner,
       coalesce(b.people_y_category, 0) AS people_y_category,
       coalesce(b.withdrawn_late, 0) AS withdrawn_late
  FROM offers o
  LEFT JOIN (
    SELECT offer_id, sum(seats) FILTER (WHERE status <> 'withdrawn_late') AS seats_booked,
           sum(seats) FILTER (WHERE status = 'attended') AS seats_attended,
           sum(seats) FILTER (WHERE status = 'no_show') AS no_shows,
           count(*) FILTER (WHERE status = 'attended' AND report_flags & 64 <> 0) AS first_timers,
           count(*) FILTER (WHERE status = 'attended' AND report_flags & 1 <> 0) AS people_m,
           count(*) FILTER (WHERE status = 'attended' AND report_flags & 2 <> 0) AS people_m_partner,
           count(*) FILTER (WHERE status = 'attended' AND report_flags & 4 <> 0) AS people_m_category,
           count(*) FILTER (WHERE status = 'attended' AND report_flags & 8 <> 0) AS people_y,
           count(*) FILTER (WHERE status = 'attended' AND report_flags & 16 <> 0) AS people_y_partner,
           count(*) FILTER (WHERE status = 'attended' AND report_flags & 32 <> 0) AS people_y_category,
           sum(seats) FILTER (WHERE status = 'withdrawn_late') AS withdrawn_late
      FROM bookings
     WHERE status IN ('confirmed', 'attended', 'no_show', 'withdrawn_late')
     GROUP BY offer_id) b ON b.offer_id = o.id;

CREATE OR REPLACE VIEW public.report_structure_months_computed AS
SELECT structure_id, report_month(offer_starts_at) AS month,
       coalesce(sum(seats) FILTER (WHERE status <> 'withdrawn_late'), 0) AS seats_booked,
       coalesce(sum(seats) FILTER (WHERE status = 'attended'), 0) AS seats_attended,
       coalesce(sum(seats) FILTER (WHERE status = 'no_show'), 0) AS no_shows,
       count(*) FILTER (WHERE status = 'attended' AND report_flags & 64 <> 0) AS first_timers,
       count(*) FILTER (WHERE status = 'attended' AND report_flags & 1 <> 0) AS people_m,
       count(*) FILTER (WHERE status = 'attended' AND report_flags & 8 <> 0) AS people_y,
       coalesce(sum(seats) FILTER (WHERE status = 'withdrawn_late'), 0) AS withdrawn_late
  FROM bookings
 WHERE status IN ('confirmed', 'attended', 'no_show', 'withdrawn_late')
 GROUP BY 1, 2;

------------------------------------------------------- kept current

-- Set (for the rest of the transaction, or until unset) by code that
-- accounts for its own changes to bookings: report_rebuild(), which
-- recomputes everything, and report_refresh_person(), which answers the
-- shares of the flags it changes. The triggers then stand aside.
CREATE OR REPLACE FUNCTION core.report_quiet() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('strapontin.report_quiet', true), '') = 'on'
$$;

-- What each share puts in the counters: seats for live bookings, flags for
-- attended ones only (a booking that stops being attended takes its flags
-- out at once, before its person's flags are recomputed).
CREATE OR REPLACE FUNCTION core.report_values(p_shares report_share[])
RETURNS TABLE (offer_id bigint, structure_id bigint, month date,
               seats_booked integer, seats_attended integer, no_shows integer,
               first_timers integer, people_m integer, people_m_partner integer,
               people_m_category integer, people_y integer,
               people_y_partner integer, people_y_category integer,
               withdrawn_late integer)
LANGUAGE sql IMMUTABLE AS $$
    SELECT x.offer_id, x.structure_id, report_month(x.offer_starts_at),
           CASE WHEN x.status <> 'withdrawn_late' THEN x.sign * x.seats ELSE 0 END,
           CASE WHEN x.status = 'attended' THEN x.sign * x.seats ELSE 0 END,
           CASE WHEN x.status = 'no_show' THEN x.sign * x.seats ELSE 0 END,
           x.sign * (f & 64 <> 0)::int, x.sign * (f & 1 <> 0)::int,
           x.sign * (f & 2 <> 0)::int, x.sign * (f & 4 <> 0)::int,
           x.sign * (f & 8 <> 0)::int, x.sign * (f & 16 <> 0)::int,
           x.sign * (f & 32 <> 0)::int,
           CASE WHEN x.status = 'withdrawn_late' THEN x.sign * x.seats ELSE 0 END
      FROM unnest(p_shares) x,
           LATERAL (SELECT CASE WHEN x.status = 'attended'
                                THEN x.report_flags ELSE 0 END AS f) y
     WHERE x.status IN ('confirmed', 'attended', 'no_show', 'withdrawn_late')
$$;

-- Adds shares to the counters. report_offers rows are locked in key order,
-- so that two transactions touching the same offers never deadlock on
-- them (a booking holds its offer's row anyway). report_structure_months
-- rows are taken without waiting, except in the rare case where the slot
-- of this backend's pid is held by another transaction.
CREATE OR REPLACE FUNCTION core.report_add(p_shares report_share[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d record;
    s integer;
BEGIN
    FOR d IN
        SELECT v.offer_id, sum(v.seats_booked) AS sb, sum(v.seats_attended) AS sa,
               sum(v.no_shows) AS ns, sum(v.first_timers) AS ft,
               sum(v.people_m) AS pm, sum(v.people_m_partner) AS pmp,
               sum(v.people_m_category) AS pmc, sum(v.people_y) AS py,
               sum(v.people_y_partner) AS pyp, sum(v.people_y_category) AS pyc,
               sum(v.withdrawn_late) AS wl
          FROM report_values(p_shares) v
         GROUP BY v.offer_id
        HAVING (sum(v.seats_booked), sum(v.seats_attended), sum(v.no_shows),
                sum(v.first_timers), sum(v.people_m), sum(v.people_m_partner),
                sum(v.people_m_category), sum(v.people_y), sum(v.people_y_partner),
                sum(v.people_y_category), sum(v.withdrawn_late))
               <> (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
         ORDER BY v.offer_id
    LOOP
        UPDATE report_offers SET
            seats_booked = seats_booked + d.sb, seats_attended = seats_attended + d.sa,
            no_shows = no_shows + d.ns, first_timers = first_timers + d.ft,
            people_m = people_m + d.pm, people_m_partner = people_m_partner + d.pmp,
            people_m_category = people_m_category + d.pmc, people_y = people_y + d.py,
            people_y_partner = people_y_partner + d.pyp,
            people_y_category = people_y_category + d.pyc,
            withdrawn_late = withdrawn_late + d.wl
         WHERE offer_id = d.offer_id;
    END LOOP;

    FOR d IN
        SELECT v.structure_id, v.month, sum(v.seats_booked) AS sb,
               sum(v.seats_attended) AS sa, sum(v.no_shows) AS ns,
               sum(v.first_timers) AS ft, sum(v.people_m) AS pm, sum(v.people_y) AS py,
               sum(v.withdrawn_late) AS wl
          FROM report_values(p_shares) v
         GROUP BY v.structure_id, v.month
        HAVING (sum(v.seats_booked), sum(v.seats_attended), sum(v.no_shows),
                sum(v.first_timers), sum(v.people_m), sum(v.people_y),
                sum(v.withdrawn_late))
               <> (0, 0, 0, 0, 0, 0, 0)
         ORDER BY v.structure_id, v.month
    LOOP
        SELECT r.slot INTO s FROM report_structure_months r
         WHERE r.structure_id = d.structure_id AND r.month = d.month
         ORDER BY r.slot LIMIT 1
           FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            -- Our own slot, also for a key nobody has written yet: a
            -- shared first slot would make two first writers wait.
            -- report_rebuild() folds the slots back into slot 0.
            s := pg_backend_pid();
        END IF;
        INSERT INTO report_structure_months AS r (structure_id, month, slot,
            seats_booked, seats_attended, no_shows, first_timers, people_m, people_y,
            withdrawn_late)
        VALUES (d.structure_id, d.month, s, d.sb, d.sa, d.ns, d.ft, d.pm, d.py, d.wl)
        ON CONFLICT (structure_id, month, slot) DO UPDATE SET
            seats_booked = r.seats_booked + excluded.seats_booked,
            seats_attended = r.seats_attended + excluded.seats_attended,
            no_shows = r.no_shows + excluded.no_shows,
            first_timers = r.first_timers + excluded.first_timers,
            people_m = r.people_m + excluded.people_m,
            people_y = r.people_y + excluded.people_y,
            withdrawn_late = r.withdrawn_late + excluded.withdrawn_late;
    END LOOP;
END $$;

-- Recomputes one person's flags from their bookings and answers the shares
-- of the flags it changed (the old value taken out, the new one added), for
-- report_apply to add with everything else. The caller holds the person's
-- lock; this statement's snapshot is taken after it, so it sees every other
-- change to the person's outings committed. (The bookings trigger ignores
-- a change of report_flags alone: whoever changes flags accounts for them,
-- here or in report_rebuild().)
CREATE OR REPLACE FUNCTION core.report_refresh_person(p_beneficiary_id bigint)
RETURNS report_share[] LANGUAGE plpgsql AS $$
DECLARE
    shares report_share[];
BEGIN
    -- (plpgsql, not sql: its plan is then kept from one call to the next)
    PERFORM set_config('strapontin.report_quiet', 'on', true);
    -- The flags as report_flags_computed defines them, written for one
    -- person: "no earlier attended outing in the same month (at the same
    -- partner, ...)" over a self-join of their few dozen outings costs a
    -- quarter of the seven sorts the windows take. (report_check() compares
    -- the two.)
    WITH a AS MATERIALIZED (
        SELECT bk.id, bk.offer_starts_at AS s, o.partner_id, o.category,
               report_month(bk.offer_starts_at) AS m,
               date_trunc('year', bk.offer_starts_at AT TIME ZONE report_zone()) AS y
          FROM bookings bk JOIN offers o ON o.id = bk.offer_id
         WHERE bk.beneficiary_id = p_beneficiary_id AND bk.status = 'attended'
    ), c AS (
        SELECT a.id,
               (  (count(b.id) FILTER (WHERE b.m = a.m) = 0)::int
                + (count(b.id) FILTER (WHERE b.m = a.m AND b.partner_id = a.partner_id) = 0)::int * 2
                + (count(b.id) FILTER (WHERE b.m = a.m AND b.category = a.category) = 0)::int * 4
                + (count(b.id) FILTER (WHERE b.y = a.y) = 0)::int * 8
                + (count(b.id) FILTER (WHERE b.y = a.y AND b.partner_id = a.partner_id) = 0)::int * 16
                + (count(b.id) FILTER (WHERE b.y = a.y AND b.category = a.category) = 0)::int * 32
                + (count(b.id) = 0)::int * 64)::smallint AS flags
          FROM a LEFT JOIN a b ON (b.s, b.id) < (a.s, a.id)
         GROUP BY a.id
    ), changed AS (
        UPDATE bookings bk SET report_flags = x.flags
          FROM (SELECT b.id, b.report_flags AS old_flags,
                       coalesce(c.flags, 0)::smallint AS flags
                  FROM bookings b LEFT JOIN c ON c.id = b.id
                 WHERE b.beneficiary_id = p_beneficiary_id) x
         WHERE bk.id = x.id AND bk.report_flags <> x.flags
        RETURNING bk.offer_id, bk.structure_id, bk.offer_starts_at, bk.status,
                  bk.seats, x.old_flags, bk.report_flags
    )
    SELECT array_agg(ROW(-1, offer_id, structure_id, offer_starts_at, status,
                         seats, old_flags)::report_share)
           || array_agg(ROW(1, offer_id, structure_id, offer_starts_at, status,
                            seats, report_flags)::report_share)
      INTO shares FROM changed;
    PERFORM set_config('strapontin.report_quiet', 'off', true);
    RETURN shares;
END $$;

-- The one entry of the triggers. Lock order, the same on every path: the
-- rows the statement changed, then people's locks (in id order), then
-- their other bookings (flags), then counter rows, all in one batch in key
-- order (report_add): two transactions never wait for each other in a
-- circle over them.
CREATE OR REPLACE FUNCTION core.report_apply(p_shares report_share[], p_people bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    pid bigint;
    shares report_share[] := p_shares;
BEGIN
    IF p_people IS NOT NULL THEN
        FOR pid IN SELECT DISTINCT x FROM unnest(p_people) x ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock(hashtextextended('strapontin.report:' || pid, 0));
        END LOOP;
        FOR pid IN SELECT DISTINCT x FROM unnest(p_people) x ORDER BY 1 LOOP
            shares := shares || report_refresh_person(pid);
        END LOOP;
    END IF;
    IF shares IS NOT NULL THEN
        PERFORM report_add(shares);
    END IF;
END $$;

-- A new booking copies its offer's start. Every path that inserts a booking
-- holds the offer's row lock, and so does every change of starts_at.
CREATE OR REPLACE FUNCTION core.report_booking_starts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT starts_at INTO NEW.offer_starts_at FROM offers WHERE id = NEW.offer_id;
    RETURN NEW;
END $$;

-- Statement-level, with the statement's rows: a statement changing many
-- bookings (offer.cancel, offer.close_attendance) adds up its shares once.
CREATE OR REPLACE FUNCTION core.report_bookings_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    shares report_share[];
    people bigint[];
BEGIN
    IF report_quiet() THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(ROW(1, offer_id, structure_id, offer_starts_at, status,
                         seats, report_flags)::report_share),
           array_agg(beneficiary_id) FILTER (WHERE status = 'attended')
      INTO shares, people FROM new_rows;
    PERFORM report_apply(shares, people);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER report_bookings_inserted AFTER INSERT ON bookings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION core.report_bookings_inserted();

CREATE OR REPLACE FUNCTION core.report_bookings_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    shares report_share[];
    people bigint[];
BEGIN
    IF report_quiet() THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(ROW(-1, offer_id, structure_id, offer_starts_at, status,
                         seats, report_flags)::report_share),
           array_agg(beneficiary_id) FILTER (WHERE status = 'attended')
      INTO shares, people FROM old_rows;
    PERFORM report_apply(shares, people);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER report_bookings_deleted AFTER DELETE ON bookings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION core.report_bookings_deleted();

-- Only rows whose share changed count, report_flags aside (see
-- report_refresh_person); a person's flags are recomputed when one of their
-- bookings becomes or stops being attended, or an attended one moves in
-- time.
CREATE OR REPLACE FUNCTION core.report_bookings_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    shares report_share[];
    people bigint[];
BEGIN
    IF report_quiet() THEN
        RETURN NULL;
    END IF;
    WITH c AS (
        SELECT o.beneficiary_id AS old_person, n.beneficiary_id AS person,
               ROW(-1, o.offer_id, o.structure_id, o.offer_starts_at, o.status,
                   o.seats, o.report_flags)::report_share AS was,
               ROW(1, n.offer_id, n.structure_id, n.offer_starts_at, n.status,
                   n.seats, n.report_flags)::report_share AS is_,
               (o.status = 'attended') <> (n.status = 'attended')
               OR (n.status = 'attended'
                   AND (o.offer_starts_at, o.offer_id, o.beneficiary_id)
                       <> (n.offer_starts_at, n.offer_id, n.beneficiary_id)) AS refresh
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE (o.status, o.seats, o.offer_starts_at, o.offer_id,
                o.structure_id, o.beneficiary_id)
               IS DISTINCT FROM (n.status, n.seats, n.offer_starts_at,
                n.offer_id, n.structure_id, n.beneficiary_id)
    )
    SELECT array_agg(was) || array_agg(is_),
           array_agg(person) FILTER (WHERE refresh)
           || array_agg(old_person) FILTER (WHERE refresh AND old_person <> person)
      INTO shares, people FROM c;
    IF shares IS NOT NULL THEN
        PERFORM report_apply(shares, people);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER report_bookings_updated AFTER UPDATE ON bookings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION core.report_bookings_updated();

CREATE OR REPLACE FUNCTION core.report_offer_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF report_quiet() THEN
        RETURN NULL;
    END IF;
    INSERT INTO report_offers (offer_id, starts_at, partner_id, category, seats_offered)
    VALUES (NEW.id, NEW.starts_at, NEW.partner_id, NEW.category,
            CASE WHEN NEW.status = 'cancelled' THEN 0 ELSE NEW.seats_total END);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER report_offer_inserted AFTER INSERT ON offers
    FOR EACH ROW EXECUTE FUNCTION core.report_offer_inserted();

-- An offer changed what a report groups it by. Its bookings follow a move
-- in time (the bookings trigger then moves their seats between months and
-- recomputes the flags of the people who attended); a new partner or
-- category changes those people's flags too.
CREATE OR REPLACE FUNCTION core.report_offer_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF report_quiet() THEN
        RETURN NULL;
    END IF;
    UPDATE report_offers SET starts_at = NEW.starts_at,
           partner_id = NEW.partner_id, category = NEW.category,
           seats_offered = CASE WHEN NEW.status = 'cancelled' THEN 0
                                ELSE NEW.seats_total END
     WHERE offer_id = NEW.id;
    IF NEW.starts_at <> OLD.starts_at THEN
        UPDATE bookings SET offer_starts_at = NEW.starts_at WHERE offer_id = NEW.id;
    END IF;
    IF (NEW.partner_id, NEW.category) <> (OLD.partner_id, OLD.category) THEN
        PERFORM report_apply(NULL, ARRAY(SELECT beneficiary_id FROM bookings
                                          WHERE offer_id = NEW.id AND status = 'attended'));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER report_offer_updated
    AFTER UPDATE OF starts_at, partner_id, category, seats_total, status ON offers
    FOR EACH ROW
    WHEN ((OLD.starts_at, OLD.partner_id, OLD.category, OLD.seats_total, OLD.status)
          IS DISTINCT FROM
          (NEW.starts_at, NEW.partner_id, NEW.category, NEW.seats_total, NEW.status))
    EXECUTE FUNCTION core.report_offer_updated();

------------------------------------------------------ rebuild and check

-- Recomputes everything kept for reports from the offers and bookings; for
-- this migration, a bulk load made with triggers off, or a repair. With
-- p_bookings false, only the summary tables (from the bookings' own
-- offer_starts_at and report_flags, trusted as they are). Writers of offers
-- and bookings wait meanwhile. Answers how many bookings it changed.
CREATE OR REPLACE FUNCTION core.report_rebuild(p_bookings boolean DEFAULT true) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    n_starts bigint := 0;
    n_flags bigint := 0;
BEGIN
    LOCK TABLE offers, bookings IN SHARE ROW EXCLUSIVE MODE;
    PERFORM set_config('strapontin.report_quiet', 'on', true);
    IF p_bookings THEN
        UPDATE bookings bk SET offer_starts_at = o.starts_at
          FROM offers o
         WHERE o.id = bk.offer_id AND bk.offer_starts_at IS DISTINCT FROM o.starts_at;
        GET DIAGNOSTICS n_starts = ROW_COUNT;
        UPDATE bookings bk SET report_flags = x.flags
          FROM (SELECT b.id, coalesce(c.flags, 0)::smallint AS flags
                  FROM bookings b LEFT JOIN report_flags_computed c ON c.id = b.id) x
         WHERE bk.id = x.id AND bk.report_flags <> x.flags;
        GET DIAGNOSTICS n_flags = ROW_COUNT;
    END IF;
    -- In time order: a year's rows are then neighbours on disk.
    DELETE FROM report_offers;
    INSERT INTO report_offers
    SELECT * FROM report_offers_computed ORDER BY starts_at, offer_id;
    DELETE FROM report_structure_months;
    INSERT INTO report_structure_months (structure_id, month, seats_booked,
        seats_attended, no_shows, first_timers, people_m, people_y, withdrawn_late)
    SELECT structure_id, month, seats_booked, seats_attended, no_shows,
           first_timers, people_m, people_y, withdrawn_late
      FROM report_structure_months_computed ORDER BY month, structure_id;
    PERFORM set_config('strapontin.report_quiet', 'off', true);
    RETURN jsonb_build_object('offer_starts_at', n_starts, 'report_flags', n_flags);
END $$;

-- As in schema 5, the slots of a key summed before comparing.
CREATE OR REPLACE FUNCTION core.report_check() RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (WITH kept AS (
            SELECT structure_id, month, sum(seats_booked) AS seats_booked,
                   sum(seats_attended) AS seats_attended, sum(no_shows) AS no_shows,
                   sum(first_timers) AS first_timers, sum(people_m) AS people_m,
                   sum(people_y) AS people_y, sum(withdrawn_late) AS withdrawn_late
              FROM report_structure_months
             GROUP BY structure_id, month
        )
        SELECT jsonb_build_object(
            'offer_starts_at', (SELECT count(*) FROM bookings bk JOIN offers o ON o.id = bk.offer_id
                                 WHERE bk.offer_starts_at <> o.starts_at),
            'report_flags', (SELECT count(*) FROM bookings b
                               LEFT JOIN report_flags_computed c ON c.id = b.id
                              WHERE b.report_flags <> coalesce(c.flags, 0)),
            'report_offers', (SELECT count(*) FROM
                               ((SELECT * FROM report_offers EXCEPT ALL
                                 SELECT * FROM report_offers_computed)
                                UNION ALL
                                (SELECT * FROM report_offers_computed EXCEPT ALL
                                 SELECT * FROM report_offers)) x),
            'report_structure_months', (SELECT count(*) FROM
                               ((SELECT * FROM kept
                                  WHERE (seats_booked, seats_attended, no_shows, first_timers,
                                         people_m, people_y, withdrawn_late)
                                        <> (0, 0, 0, 0, 0, 0, 0)
                                 EXCEPT ALL SELECT * FROM report_structure_months_computed)
                                UNION ALL
                                (SELECT * FROM report_structure_months_computed EXCEPT ALL
                                 SELECT * FROM kept)) x)));
END $$;

CREATE OR REPLACE FUNCTION core.report_activity_unchecked(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS json LANGUAGE plpgsql STABLE
SET work_mem = '64MB'
AS $$
DECLARE
    u users := auth_user(p_token);
    t_from timestamptz := (p->>'from')::timestamptz;
    t_to timestamptz := (p->>'to')::timestamptz;
    g text := p->>'group_by';
    zone text := report_zone();
    y0 timestamp := date_trunc('year', t_from AT TIME ZONE zone);
    m0 timestamp := date_trunc('month', t_from AT TIME ZONE zone);
    months timestamptz[];   -- the starts of the range's months ($5)
    period text;        -- 'y' or 'm': a whole calendar year or month
    scope_id bigint;
    okey text;          -- the group key of an offer (report_offers ro)
    bkey text;          -- of a booking (bookings bk, report_offers ro, structures s)
    ktext text;         -- a key k0 as the answer's text
    bfrom text;
    bscope text := '';
    oscope text;
    osql text;          -- seats offered per group (o)
    pairs text;         -- people per group and in all (p)
    rows_sql text;
    item text;
    items_from text;
    answer json;
BEGIN
    IF g IS NULL OR g NOT IN ('month', 'structure', 'partner', 'category', 'territory') THEN
        PERFORM bad_param('group_by', 'group_by must be month, structure, partner, category or territory');
    END IF;
    IF t_to <= t_from THEN
        PERFORM bad_param('to', 'to must be after from');
    END IF;
    IF u.role = 'admin' THEN
        IF t_from = y0 AT TIME ZONE zone
           AND t_to = (y0 + interval '1 year') AT TIME ZONE zone THEN
            period := 'y';
        ELSIF t_from = m0 AT TIME ZONE zone
              AND t_to = (m0 + interval '1 month') AT TIME ZONE zone THEN
            period := 'm';
        END IF;
    ELSE
        scope_id := CASE u.role WHEN 'partner' THEN u.partner_id ELSE u.structure_id END;
    END IF;
    months := ARRAY(SELECT m AT TIME ZONE zone
                      FROM generate_series(m0, (t_to - interval '1 microsecond') AT TIME ZONE zone,
                                           interval '1 month') m);

    okey := CASE g WHEN 'month' THEN 'width_bucket(ro.starts_at, $5)'
                   WHEN 'partner' THEN 'ro.partner_id'
                   WHEN 'category' THEN 'ro.category' END;
    ktext := CASE g WHEN 'month' THEN format('to_char(($5)[k0] AT TIME ZONE %L, ''YYYY-MM'')', zone)
                    ELSE 'k0::text' END;

    IF period IS NOT NULL AND okey IS NOT NULL THEN
        -- Summaries per offer. A month's people are those of the month
        -- (flag 1); otherwise those of the period at the partner, in the
        -- category, or at all (the total). Offers only cancelled make no
        -- row.
        rows_sql := format($q$
            WITH g AS (
                SELECT %1$s AS k0, sum(seats_offered) AS so, sum(seats_booked) AS sb,
                       sum(seats_attended) AS sa, sum(no_shows) AS ns,
                       sum(%3$s) AS pe, sum(people_%2$s) AS pt, sum(first_timers) AS ft,
                       sum(withdrawn_late) AS wl
                  FROM report_offers ro
                 WHERE ro.starts_at >= $1 AND ro.starts_at < $2
                 GROUP BY 1
            )
            SELECT %4$s AS k, so AS seats_offered, sb AS seats_booked,
                   sa AS seats_attended, ns AS no_shows, pe AS beneficiaries,
                   ft AS first_timers, wl AS withdrawn_late
              FROM g WHERE so > 0 OR sb > 0 OR wl > 0
            UNION ALL
            SELECT '', sum(so), sum(sb), sum(sa), sum(ns), sum(pt), sum(ft), sum(wl) FROM g
            $q$, okey, period,
            CASE g WHEN 'month' THEN 'people_m'
                   WHEN 'partner' THEN 'people_' || period || '_partner'
                   ELSE 'people_' || period || '_category' END,
            ktext);
    ELSIF period IS NOT NULL THEN
        -- Summaries per structure and month; seats offered, in total only,
        -- and the total from the offers'.
        rows_sql := format($q$
            SELECT %1$s::text AS k, NULL::bigint AS seats_offered,
                   sum(r.seats_booked) AS seats_booked,
                   sum(r.seats_attended) AS seats_attended, sum(r.no_shows) AS no_shows,
                   sum(r.people_%2$s) AS beneficiaries, sum(r.first_timers) AS first_timers,
                   sum(r.withdrawn_late) AS withdrawn_late
              FROM report_structure_months r%3$s
             WHERE r.month >= report_month($1) AND r.month < report_month($2)
             GROUP BY %1$s
            UNION ALL
            SELECT '', sum(seats_offered), sum(seats_booked), sum(seats_attended),
                   sum(no_shows), sum(people_%2$s), sum(first_timers), sum(withdrawn_late)
              FROM report_offers ro
             WHERE ro.starts_at >= $1 AND ro.starts_at < $2
            $q$, CASE g WHEN 'structure' THEN 'r.structure_id' ELSE 's.territory' END,
            period,
            CASE g WHEN 'territory' THEN ' JOIN structures s ON s.id = r.structure_id' ELSE '' END);
    ELSE
        -- From the bookings: the live bookings of the range in scope, each
        -- with its group key: sums per group (sums); people per group and over
        -- the whole range (p), from the attended ones. Seats offered from
        -- the offers of the range (a partner's own), per group when offers
        -- have the group's key.
        bkey := CASE g WHEN 'month' THEN 'width_bucket(bk.offer_starts_at, $5)'
                       WHEN 'structure' THEN 'bk.structure_id'
                       WHEN 'territory' THEN 's.territory'
                       ELSE okey END;
        IF u.role = 'partner' THEN
            bfrom := 'report_offers ro JOIN bookings bk ON bk.offer_id = ro.offer_id';
            bscope := ' AND ro.partner_id = $3 AND ro.starts_at >= $1 AND ro.starts_at < $2';
        ELSIF g IN ('partner', 'category') THEN
            -- ro.starts_at = bk.offer_starts_at: only the range's offers
            -- are read and joined.
            bfrom := 'bookings bk JOIN report_offers ro ON ro.offer_id = bk.offer_id';
            bscope := ' AND ro.starts_at >= $1 AND ro.starts_at < $2';
        ELSE
            bfrom := 'bookings bk';
        END IF;
        IF g = 'territory' THEN
            bfrom := bfrom || ' JOIN structures s ON s.id = bk.structure_id';
        END IF;
        IF u.role = 'referent' THEN
            bscope := bscope || ' AND bk.structure_id = $3';
        END IF;
        oscope := CASE WHEN u.role = 'partner' THEN ' AND ro.partner_id = $3' ELSE '' END;
        pairs := format($q$
            pairs AS (
                SELECT %1$s AS k0, GROUPING(%1$s) AS whole
                  FROM %2$s
                 WHERE bk.status = 'attended'
                   AND bk.offer_starts_at >= $1 AND bk.offer_starts_at < $2%3$s
                 GROUP BY GROUPING SETS ((%1$s, bk.beneficiary_id), (bk.beneficiary_id))
            ), p AS (
                SELECT k0 AS pk, whole, count(*) AS beneficiaries
                  FROM pairs GROUP BY k0, whole
            )$q$, bkey, bfrom, bscope);
        IF okey IS NOT NULL AND u.role <> 'referent' THEN
            -- Everything in scope is on the offers of the range (the admin's,
            -- or the partner's own): seats from their summaries, as for a
            -- period; only the people from the bookings.
            rows_sql := format($q$
                WITH g AS (
                    SELECT %1$s AS k0, sum(seats_offered) AS so, sum(seats_booked) AS sb,
                           sum(seats_attended) AS sa, sum(no_shows) AS ns,
                           sum(first_timers) AS ft, sum(withdrawn_late) AS wl
                      FROM report_offers ro
                     WHERE ro.starts_at >= $1 AND ro.starts_at < $2%2$s
                     GROUP BY 1
                ), %3$s
                SELECT %4$s AS k, so AS seats_offered, sb AS seats_booked,
                       sa AS seats_attended, ns AS no_shows, beneficiaries,
                       ft AS first_timers, wl AS withdrawn_late
                  FROM g LEFT JOIN p ON whole = 0 AND pk = k0
                 WHERE so > 0 OR sb > 0 OR wl > 0
                UNION ALL
                SELECT '', sum(so), sum(sb), sum(sa), sum(ns),
                       (SELECT beneficiaries FROM p WHERE whole = 1), sum(ft), sum(wl)
                  FROM g
                $q$, okey, oscope, pairs, ktext);
        ELSE
            -- Bookings of a structure (a referent's), or grouped by their
            -- structure: seats summed from the bookings too.
            IF okey IS NOT NULL THEN
                osql := format($q$
                    SELECT CASE WHEN GROUPING(k0) = 0 THEN %1$s ELSE '' END AS k,
                           sum(seats_offered) AS seats_offered
                      FROM (SELECT %2$s AS k0, ro.seats_offered
                              FROM report_offers ro
                             WHERE ro.starts_at >= $1 AND ro.starts_at < $2%3$s) x
                     GROUP BY GROUPING SETS ((k0), ())
                    HAVING sum(seats_offered) > 0 OR GROUPING(k0) = 1$q$,
                    ktext, okey, oscope);
            ELSE
                osql := format($q$
                    SELECT ''::text AS k, sum(ro.seats_offered) AS seats_offered
                      FROM report_offers ro
                     WHERE ro.starts_at >= $1 AND ro.starts_at < $2%1$s$q$, oscope);
            END IF;
            rows_sql := format($q$
                WITH sums AS (
                    -- live bookings and late withdrawals, each read
                    -- through its own partial index
                    SELECT k0, sum(seats) FILTER (WHERE status <> 'withdrawn_late') AS seats_booked,
                           sum(seats) FILTER (WHERE status = 'attended') AS seats_attended,
                           sum(seats) FILTER (WHERE status = 'no_show') AS no_shows,
                           count(*) FILTER (WHERE status = 'attended'
                                              AND report_flags & 64 <> 0) AS first_timers,
                           sum(seats) FILTER (WHERE status = 'withdrawn_late') AS withdrawn_late
                      FROM (SELECT %1$s AS k0, bk.status, bk.seats, bk.report_flags
                              FROM %2$s
                             WHERE bk.status IN ('confirmed', 'attended', 'no_show')
                               AND bk.offer_starts_at >= $1 AND bk.offer_starts_at < $2%3$s
                            UNION ALL
                            SELECT %1$s, bk.status, bk.seats, bk.report_flags
                              FROM %2$s
                             WHERE bk.status = 'withdrawn_late'
                               AND bk.offer_starts_at >= $1 AND bk.offer_starts_at < $2%3$s) x
                     GROUP BY 1
                ), %5$s, b AS (
                    SELECT %7$s AS k, seats_booked, seats_attended, no_shows,
                           beneficiaries, first_timers, withdrawn_late
                      FROM sums LEFT JOIN p ON whole = 0 AND pk = k0
                    UNION ALL
                    SELECT '', sum(seats_booked), sum(seats_attended), sum(no_shows),
                           (SELECT beneficiaries FROM p WHERE whole = 1), sum(first_timers),
                           sum(withdrawn_late)
                      FROM sums
                ), o AS (%4$s
                )
                SELECT coalesce(o.k, b.k) AS k,
                       CASE WHEN %6$L OR coalesce(o.k, b.k) = '' THEN coalesce(o.seats_offered, 0) END AS seats_offered,
                       b.seats_booked, b.seats_attended, b.no_shows, b.beneficiaries, b.first_timers,
                       b.withdrawn_late
                  FROM o FULL JOIN b ON b.k = o.k
                 WHERE %6$L OR b.k IS NOT NULL
                $q$, bkey, bfrom, bscope, osql, pairs, okey IS NOT NULL, ktext);
        END IF;
    END IF;

    -- The answer: one item per group with offers or bookings in scope (for
    -- months, every month of the range, even an empty one); partners and
    -- structures are keyed by id, with their name.
    item := format($q$json_build_object(%1$s
                'seats_offered', %2$s,
                'seats_booked', coalesce(r.seats_booked, 0),
                'seats_attended', coalesce(r.seats_attended, 0),
                'no_shows', coalesce(r.no_shows, 0),
                'beneficiaries', coalesce(r.beneficiaries, 0),
                'first_timers', coalesce(r.first_timers, 0),
                'withdrawn_late', coalesce(r.withdrawn_late, 0),
                'demand', coalesce(r.demand, 0))$q$,
        CASE WHEN g IN ('partner', 'structure') THEN '''key'', n.id, ''name'', n.name,'
             WHEN g = 'month' THEN '''key'', keys.k,'
             ELSE '''key'', r.k,' END,
        CASE WHEN okey IS NOT NULL THEN 'coalesce(r.seats_offered, 0)' ELSE 'NULL' END);
    items_from := CASE
        WHEN g = 'month' THEN
            format('(SELECT to_char(m AT TIME ZONE %L, ''YYYY-MM'') AS k
                       FROM unnest($5) m) keys
                     LEFT JOIN r ON r.k = keys.k', zone)
        WHEN g IN ('partner', 'structure') THEN
            format('r JOIN %I n ON n.id = r.k::bigint',
                   CASE g WHEN 'partner' THEN 'partners' ELSE 'structures' END)
        ELSE 'r' END;
    EXECUTE format($q$
        WITH r0 AS MATERIALIZED (%1$s),
        d AS MATERIALIZED (SELECT * FROM report_demand($6, $1, $2, %2$L, $5)),
        r AS (
            -- a group may have unmet demand and nothing else in the range
            SELECT coalesce(r0.k, d.k) AS k, r0.seats_offered, r0.seats_booked,
                   r0.seats_attended, r0.no_shows, r0.beneficiaries,
                   r0.first_timers, r0.withdrawn_late, d.demand
              FROM r0 FULL JOIN d ON d.k = r0.k
        )
        SELECT json_build_object('from', ts($1), 'to', ts($2),
            'group_by', %2$L, 'timezone', %7$L,
            'items', coalesce((SELECT json_agg(%3$s ORDER BY %4$s)
                                 FROM %5$s WHERE %6$s <> ''), '[]'),
            'total', (SELECT json_build_object(
                          'seats_offered', coalesce(r.seats_offered, 0),
                          'seats_booked', coalesce(r.seats_booked, 0),
                          'seats_attended', coalesce(r.seats_attended, 0),
                          'no_shows', coalesce(r.no_shows, 0),
                          'beneficiaries', coalesce(r.beneficiaries, 0),
                          'first_timers', coalesce(r.first_timers, 0),
                          'withdrawn_late', coalesce(r.withdrawn_late, 0),
                          'demand', coalesce(r.demand, 0))
                        FROM r WHERE r.k = ''))
        $q$, rows_sql, g, item,
        CASE WHEN g IN ('partner', 'structure') THEN 'n.name, n.id'
             WHEN g = 'month' THEN 'keys.k' ELSE 'r.k' END,
        items_from,
        CASE WHEN g = 'month' THEN 'keys.k' ELSE 'r.k' END,
        zone)
    INTO answer USING t_from, t_to, scope_id, m0, months, u;
    RETURN answer;
END $$;

-- report.activity: a range of at most policy.report_max_days days, so that
-- one call cannot read the whole history of the service. The report itself
-- is report_activity_unchecked (schema 5).
CREATE OR REPLACE FUNCTION api.report_activity(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    max_days integer := coalesce((p_policy->>'report_max_days')::integer, 400);
    u users := auth_user(p_token);
BEGIN
    IF extract(epoch FROM (p->>'to')::timestamptz - (p->>'from')::timestamptz)
       > max_days * 86400.0 THEN
        PERFORM bad_param('to', format('to may be at most %s days after from', max_days));
    END IF;
    RETURN report_add_staff(report_activity_unchecked(p_token, p, p_addr, p_policy)::jsonb,
                            report_staff_seats(u, (p->>'from')::timestamptz,
                                               (p->>'to')::timestamptz, p->>'group_by'))::json;
END $$;

-- Staff seats of group outings (docs/reports.md, `staff_seats`): the staff
-- seats of the groups still confirmed on the offers of the range, in the
-- caller's scope, per row key (as the answer writes it) and in all (key
-- ''). Read from the groups themselves, whatever the range: they are a
-- few per offer at most, and nobody's outing, so the summaries kept for
-- people and seats booked do not hold them. A confirmed group always has a
-- live booking on its offer (sql/api/40_bookings.sql,
-- booking_groups_member_gone), so its row is in the answer.
CREATE OR REPLACE FUNCTION core.report_staff_seats(u users, p_from timestamptz,
                                                   p_to timestamptz, p_group_by text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    r jsonb;
BEGIN
    SELECT jsonb_object_agg(k, n) INTO r
      FROM (SELECT CASE WHEN GROUPING(k0) = 1 THEN '' ELSE k0 END AS k,
                   sum(staff) AS n
              FROM (SELECT CASE p_group_by
                             WHEN 'month' THEN to_char(o.starts_at AT TIME ZONE report_zone(), 'YYYY-MM')
                             WHEN 'structure' THEN g.structure_id::text
                             WHEN 'partner' THEN o.partner_id::text
                             WHEN 'category' THEN o.category
                             ELSE s.territory END AS k0,
                           g.staff_seats AS staff
                      FROM booking_groups g
                      JOIN offers o ON o.id = g.offer_id
                      JOIN structures s ON s.id = g.structure_id
                     WHERE g.status = 'confirmed' AND g.staff_seats > 0
                       AND o.starts_at >= p_from AND o.starts_at < p_to
                       AND (u.role = 'admin'
                            OR (u.role = 'partner' AND o.partner_id = u.partner_id)
                            OR (u.role = 'referent' AND g.structure_id = u.structure_id))) x
             GROUP BY GROUPING SETS ((k0), ())) y
     WHERE n IS NOT NULL;
    RETURN coalesce(r, '{}');
END $$;

-- The answer of report_activity_unchecked with `staff_seats` in each row
-- and in the total.
CREATE OR REPLACE FUNCTION core.report_add_staff(p_answer jsonb, p_staff jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN p_answer || jsonb_build_object(
        'items', coalesce((SELECT jsonb_agg(it || jsonb_build_object('staff_seats',
                                     coalesce((p_staff->>(it->>'key'))::integer, 0))
                                     ORDER BY ord)
                             FROM jsonb_array_elements(p_answer->'items')
                                  WITH ORDINALITY AS t(it, ord)), '[]'),
        'total', coalesce(p_answer->'total', '{}')
                 || jsonb_build_object('staff_seats', coalesce((p_staff->>'')::integer, 0)));
END $$;

CREATE OR REPLACE TRIGGER report_booking_starts BEFORE INSERT ON bookings
    FOR EACH ROW WHEN (NEW.offer_starts_at IS NULL)
    EXECUTE FUNCTION core.report_booking_starts();

------------------------------------------------------------------ demand

-- Unmet demand (docs/reports.md, "Demand"): per person and offer, the
-- seats asked for and not granted, as of now. A person asked for an
-- offer when a draw left their wish without seats (the wish counts for its
-- first choice) or when they joined its waiting list. The request was
-- granted when seats were offered to them from the list (taken or not),
-- when they hold a live booking of the offer, however it came, or when
-- they withdrew late from one (the seats were theirs and went back).
-- Asking twice (a lost wish, then the waiting list) is one request: the
-- larger number of seats. A person is their records sharing an identity
-- key (docs/privacy.md, "One person, several structures"): asking through
-- two structures is one request (counted for the lower structure id when
-- both are in scope), and seats granted or offered through either record
-- grant it, whatever the scope. Offers cancelled by their partner count no
-- demand, as they count no seats offered.
-- Scope: p_partner_id, p_structure_id and p_offer_id narrow when not NULL.
CREATE OR REPLACE FUNCTION core.unmet_demand(p_from timestamptz,
        p_to timestamptz, p_partner_id bigint, p_structure_id bigint,
        p_offer_id bigint)
RETURNS TABLE (offer_id bigint, beneficiary_id bigint, structure_id bigint,
               seats integer)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    WITH o AS (
        SELECT x.id FROM offers x
         WHERE x.starts_at >= p_from AND x.starts_at < p_to
           AND x.status = 'published'
           AND (p_partner_id IS NULL OR x.partner_id = p_partner_id)
           AND (p_offer_id IS NULL OR x.id = p_offer_id)
    ), asked AS (
        SELECT w.choices[1] AS offer_id, w.beneficiary_id, b.structure_id,
               b.identity_key, w.seats, false AS offered
          FROM o JOIN wishes w ON w.choices[1] = o.id
                 AND w.replaced_at IS NULL AND w.draw_position IS NOT NULL
                 AND w.granted_rank IS NULL
          JOIN beneficiaries b ON b.id = w.beneficiary_id
        UNION ALL
        SELECT e.offer_id, e.beneficiary_id, e.structure_id, b.identity_key,
               e.seats, e.offered_at IS NOT NULL
          FROM o JOIN waitlist_entries e ON e.offer_id = o.id
          JOIN beneficiaries b ON b.id = e.beneficiary_id
    ), keyed AS (
        SELECT a.*, coalesce(encode(a.identity_key, 'hex'),
                             a.beneficiary_id::text) AS person
          FROM asked a
    ), served AS (
        -- offered seats through any of the person's records, in any scope
        SELECT k.offer_id, k.person FROM keyed k
         GROUP BY k.offer_id, k.person HAVING bool_or(k.offered)
    )
    SELECT a.offer_id, min(a.beneficiary_id), min(a.structure_id),
           max(a.seats)::integer
      FROM keyed a
     WHERE (p_structure_id IS NULL OR a.structure_id = p_structure_id)
       AND NOT EXISTS (SELECT 1 FROM served v
                        WHERE v.offer_id = a.offer_id AND v.person = a.person)
       AND NOT EXISTS (SELECT 1 FROM bookings bk
                        WHERE bk.offer_id = a.offer_id
                          AND bk.beneficiary_id = a.beneficiary_id
                          AND bk.status IN ('confirmed', 'attended', 'no_show',
                                            'withdrawn_late'))
       -- apart, so that a record without a key costs what it did
       AND (a.identity_key IS NULL OR NOT EXISTS (
                SELECT 1 FROM beneficiaries bb
                  JOIN bookings bk ON bk.beneficiary_id = bb.id
                 WHERE bb.identity_key = a.identity_key
                   AND bk.offer_id = a.offer_id
                   AND bk.status IN ('confirmed', 'attended', 'no_show',
                                     'withdrawn_late')))
     GROUP BY a.offer_id, a.person;
END $$;

-- The report's demand per group, keyed as report_activity_unchecked keys
-- its rows (the same text), with the total under ''.
CREATE OR REPLACE FUNCTION core.report_demand(u users, p_from timestamptz,
        p_to timestamptz, p_group text, p_months timestamptz[])
RETURNS TABLE (k text, demand bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    zone text := report_zone();
BEGIN
    RETURN QUERY
    SELECT CASE WHEN GROUPING(g.k0) = 1 THEN '' ELSE g.k0 END,
           sum(g.seats)::bigint
      FROM (SELECT CASE p_group
                   WHEN 'month' THEN to_char(p_months[width_bucket(o.starts_at, p_months)]
                                             AT TIME ZONE zone, 'YYYY-MM')
                   WHEN 'partner' THEN o.partner_id::text
                   WHEN 'category' THEN o.category
                   WHEN 'structure' THEN d.structure_id::text
                   ELSE s.territory END AS k0,
                   d.seats
              FROM unmet_demand(p_from, p_to,
                       CASE WHEN u.role = 'partner' THEN u.partner_id END,
                       CASE WHEN u.role = 'referent' THEN u.structure_id END,
                       NULL) d
              JOIN offers o ON o.id = d.offer_id
              JOIN structures s ON s.id = d.structure_id) g
     GROUP BY GROUPING SETS ((g.k0), ());
END $$;

-- offer.demand: what was asked of a partner's offers, without a name.
CREATE OR REPLACE FUNCTION core.offer_demand_json(o offers) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r jsonb;
BEGIN
    SELECT jsonb_build_object(
        'offer_id', o.id, 'title', o.title, 'starts_at', ts(o.starts_at),
        'status', o.status, 'seats_total', o.seats_total,
        'wishes', wi.n, 'wishes_first_choice', wi.first,
        'seats_wished', wi.pending_seats,
        'waiting', wa.n, 'seats_waiting', wa.seats,
        'seats_booked', bk.booked,
        'seats_requested', bk.booked + wa.seats + wi.pending_seats,
        'unmet_seats', (SELECT coalesce(sum(d.seats), 0)
                          FROM unmet_demand(o.starts_at, o.starts_at + interval '1 microsecond',
                                            NULL, NULL, o.id) d),
        'no_shows', CASE WHEN o.attendance_closed_at IS NOT NULL
                         OR o.starts_at < now() THEN bk.no_shows END)
      INTO r
      FROM (SELECT count(*) AS n,
                   count(*) FILTER (WHERE w.choices[1] = o.id) AS first,
                   coalesce(sum(w.seats) FILTER (WHERE w.choices[1] = o.id
                                                   AND w.draw_position IS NULL), 0) AS pending_seats
              FROM wishes w
             WHERE w.choices @> ARRAY[o.id] AND w.replaced_at IS NULL) wi,
           (SELECT count(*) AS n, coalesce(sum(e.seats), 0) AS seats
              FROM waitlist_entries e
             WHERE e.offer_id = o.id AND e.status IN ('waiting', 'offered')) wa,
           (SELECT coalesce(sum(b.seats), 0) AS booked,
                   coalesce(sum(b.seats) FILTER (WHERE b.status = 'no_show'), 0) AS no_shows
              FROM bookings b
             WHERE b.offer_id = o.id
               AND b.status IN ('confirmed', 'attended', 'no_show')) bk;
    RETURN r;
END $$;

CREATE OR REPLACE FUNCTION api.offer_demand(p_token text, p jsonb, p_addr text, p_policy jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    u users := auth_user(p_token);
    lim integer := page_limit(p);
    c record := time_cursor(p);
    pid bigint;
    o offers;
    items jsonb;
BEGIN
    IF p ? 'offer_id' THEN
        -- as scope_own_offer, without its lock: this only reads
        SELECT * INTO o FROM offers WHERE id = (p->>'offer_id')::bigint;
        IF NOT FOUND OR (u.role <> 'admin' AND o.partner_id <> u.partner_id) THEN
            PERFORM not_found('offer', 'offer_id');
        END IF;
        RETURN jsonb_build_object('items', jsonb_build_array(offer_demand_json(o)),
                                  'next_cursor', NULL);
    END IF;
    pid := CASE WHEN u.role = 'partner' THEN u.partner_id
                ELSE (p->>'partner_id')::bigint END;
    IF u.role = 'partner' AND p ? 'partner_id' AND (p->>'partner_id')::bigint <> pid THEN
        PERFORM not_found('partner', 'partner_id');
    END IF;
    SELECT jsonb_agg(offer_demand_json(x) ORDER BY x.starts_at, x.id) INTO items
      FROM (SELECT * FROM offers f
             WHERE (f.starts_at, f.id) > (c.after_ts, c.after_id)
               AND f.starts_at >= coalesce((p->>'from')::timestamptz, '-infinity')
               AND f.starts_at < coalesce((p->>'to')::timestamptz, 'infinity')
               AND (pid IS NULL OR f.partner_id = pid)
             ORDER BY f.starts_at, f.id LIMIT lim) x;
    RETURN page(items, lim,
        (extract(epoch FROM (items->-1->>'starts_at')::timestamptz) * 1000000)::bigint
        || ':' || (items->-1->>'offer_id'));
END $$;
