-- strapontin schema 8: bookings of one structure no longer queue on its
-- month's report counter.
--
-- Every booking adds to report_structure_months (structure, month) in its
-- AFTER INSERT trigger and held that one row until commit, through the
-- events and the audit that follow: two bookings for people of the same
-- structure, for shows of the same month, ran one after the other in the
-- database, whichever daemons sent them (docs/BENCHMARKS.md found 5 to 7
-- of 8 backends waiting on it). A key may now have several rows (slots):
-- a transaction adds to any slot nobody holds (SKIP LOCKED), and opens a
-- slot of its own, numbered by its backend's pid, only when all are held.
-- Slots therefore multiply only under contention (at most one per
-- concurrent writer), and every reader already sums the rows of a key.

ALTER TABLE report_structure_months ADD COLUMN slot integer NOT NULL DEFAULT 0;
ALTER TABLE report_structure_months DROP CONSTRAINT report_structure_months_pkey;
ALTER TABLE report_structure_months ADD PRIMARY KEY (structure_id, month, slot);

-- Adds shares to the counters. report_offers rows are locked in key order,
-- so that two transactions touching the same offers never deadlock on
-- them (a booking holds its offer's row anyway). report_structure_months
-- rows are taken without waiting, except in the rare case where the slot
-- of this backend's pid is held by another transaction.
CREATE OR REPLACE FUNCTION report_add(p_shares report_share[]) RETURNS void
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
               sum(v.people_y_partner) AS pyp, sum(v.people_y_category) AS pyc
          FROM report_values(p_shares) v
         GROUP BY v.offer_id
        HAVING (sum(v.seats_booked), sum(v.seats_attended), sum(v.no_shows),
                sum(v.first_timers), sum(v.people_m), sum(v.people_m_partner),
                sum(v.people_m_category), sum(v.people_y), sum(v.people_y_partner),
                sum(v.people_y_category)) <> (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
         ORDER BY v.offer_id
    LOOP
        UPDATE report_offers SET
            seats_booked = seats_booked + d.sb, seats_attended = seats_attended + d.sa,
            no_shows = no_shows + d.ns, first_timers = first_timers + d.ft,
            people_m = people_m + d.pm, people_m_partner = people_m_partner + d.pmp,
            people_m_category = people_m_category + d.pmc, people_y = people_y + d.py,
            people_y_partner = people_y_partner + d.pyp,
            people_y_category = people_y_category + d.pyc
         WHERE offer_id = d.offer_id;
    END LOOP;

    FOR d IN
        SELECT v.structure_id, v.month, sum(v.seats_booked) AS sb,
               sum(v.seats_attended) AS sa, sum(v.no_shows) AS ns,
               sum(v.first_timers) AS ft, sum(v.people_m) AS pm, sum(v.people_y) AS py
          FROM report_values(p_shares) v
         GROUP BY v.structure_id, v.month
        HAVING (sum(v.seats_booked), sum(v.seats_attended), sum(v.no_shows),
                sum(v.first_timers), sum(v.people_m), sum(v.people_y))
               <> (0, 0, 0, 0, 0, 0)
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
            seats_booked, seats_attended, no_shows, first_timers, people_m, people_y)
        VALUES (d.structure_id, d.month, s, d.sb, d.sa, d.ns, d.ft, d.pm, d.py)
        ON CONFLICT (structure_id, month, slot) DO UPDATE SET
            seats_booked = r.seats_booked + excluded.seats_booked,
            seats_attended = r.seats_attended + excluded.seats_attended,
            no_shows = r.no_shows + excluded.no_shows,
            first_timers = r.first_timers + excluded.first_timers,
            people_m = r.people_m + excluded.people_m,
            people_y = r.people_y + excluded.people_y;
    END LOOP;
END $$;

-- As in schema 5, the slots of a key summed before comparing.
CREATE OR REPLACE FUNCTION report_check() RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH kept AS (
        SELECT structure_id, month, sum(seats_booked) AS seats_booked,
               sum(seats_attended) AS seats_attended, sum(no_shows) AS no_shows,
               sum(first_timers) AS first_timers, sum(people_m) AS people_m,
               sum(people_y) AS people_y
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
                                     people_m, people_y) <> (0, 0, 0, 0, 0, 0)
                             EXCEPT ALL SELECT * FROM report_structure_months_computed)
                            UNION ALL
                            (SELECT * FROM report_structure_months_computed EXCEPT ALL
                             SELECT * FROM kept)) x))
$$;
