-- strapontin schema 17: report.activity under 300 ms for any range up to a
-- year (docs/BENCHMARKS.md, "report.activity on the largest network").
--
-- A range that is not one whole calendar year or month of the admin (a
-- quarter, 45 days, a partner's or a referent's year) is counted from the
-- live bookings of the range: up to 350,000 rows for a year of the largest
-- network. Schema 5 took 0.4 to 0.8 s for an admin's quarter, most of it
-- not in reading the rows but in what was done per row: a month key built
-- as text per booking (a time zone conversion and a to_char), the rows
-- copied into a CTE, then sorted twice for count(DISTINCT).
--
-- Now, per booking, only what cannot be avoided:
--   * the group key keeps its own type (structure, partner: bigint); a
--     month is the number of its month in the range, found by a binary
--     search of the months' starts (width_bucket), and is written as
--     'YYYY-MM' once per group, not once per booking;
--   * seats are summed per group in one hashed pass over the live bookings;
--   * the people of a group are the distinct (group, person) pairs of its
--     attended bookings, and those of the whole range the distinct persons,
--     both in one hashed pass (grouping sets) over an index of the attended
--     bookings holding just what it needs (bookings_report_people): no sort.
-- A booking's offer, for the partner and category keys, is joined among
-- the offers of the range only (a booking's offer_starts_at is its
-- offer's start: report_check() says so), not among all of them.
--
-- The calendar zone comes from report_zone() alone.

-- The attended bookings of a time range, with the person, for counting
-- people with an index-only scan (bookings_report holds every live booking
-- and more columns).
CREATE INDEX bookings_report_people ON bookings (offer_starts_at)
    INCLUDE (beneficiary_id, structure_id, offer_id)
    WHERE status = 'attended';

CREATE OR REPLACE FUNCTION report_activity_unchecked(p_token text, p jsonb, p_addr text, p_policy jsonb)
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
                       sum(%3$s) AS pe, sum(people_%2$s) AS pt, sum(first_timers) AS ft
                  FROM report_offers ro
                 WHERE ro.starts_at >= $1 AND ro.starts_at < $2
                 GROUP BY 1
            )
            SELECT %4$s AS k, so AS seats_offered, sb AS seats_booked,
                   sa AS seats_attended, ns AS no_shows, pe AS beneficiaries,
                   ft AS first_timers
              FROM g WHERE so > 0 OR sb > 0
            UNION ALL
            SELECT '', sum(so), sum(sb), sum(sa), sum(ns), sum(pt), sum(ft) FROM g
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
                   sum(r.people_%2$s) AS beneficiaries, sum(r.first_timers) AS first_timers
              FROM report_structure_months r%3$s
             WHERE r.month >= report_month($1) AND r.month < report_month($2)
             GROUP BY %1$s
            UNION ALL
            SELECT '', sum(seats_offered), sum(seats_booked), sum(seats_attended),
                   sum(no_shows), sum(people_%2$s), sum(first_timers)
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
                           sum(first_timers) AS ft
                      FROM report_offers ro
                     WHERE ro.starts_at >= $1 AND ro.starts_at < $2%2$s
                     GROUP BY 1
                ), %3$s
                SELECT %4$s AS k, so AS seats_offered, sb AS seats_booked,
                       sa AS seats_attended, ns AS no_shows, beneficiaries,
                       ft AS first_timers
                  FROM g LEFT JOIN p ON whole = 0 AND pk = k0
                 WHERE so > 0 OR sb > 0
                UNION ALL
                SELECT '', sum(so), sum(sb), sum(sa), sum(ns),
                       (SELECT beneficiaries FROM p WHERE whole = 1), sum(ft)
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
                    SELECT %1$s AS k0, sum(bk.seats) AS seats_booked,
                           sum(bk.seats) FILTER (WHERE bk.status = 'attended') AS seats_attended,
                           sum(bk.seats) FILTER (WHERE bk.status = 'no_show') AS no_shows,
                           count(*) FILTER (WHERE bk.status = 'attended'
                                              AND bk.report_flags & 64 <> 0) AS first_timers
                      FROM %2$s
                     WHERE bk.status IN ('confirmed', 'attended', 'no_show')
                       AND bk.offer_starts_at >= $1 AND bk.offer_starts_at < $2%3$s
                     GROUP BY 1
                ), %5$s, b AS (
                    SELECT %7$s AS k, seats_booked, seats_attended, no_shows,
                           beneficiaries, first_timers
                      FROM sums LEFT JOIN p ON whole = 0 AND pk = k0
                    UNION ALL
                    SELECT '', sum(seats_booked), sum(seats_attended), sum(no_shows),
                           (SELECT beneficiaries FROM p WHERE whole = 1), sum(first_timers)
                      FROM sums
                ), o AS (%4$s
                )
                SELECT coalesce(o.k, b.k) AS k,
                       CASE WHEN %6$L OR coalesce(o.k, b.k) = '' THEN coalesce(o.seats_offered, 0) END AS seats_offered,
                       b.seats_booked, b.seats_attended, b.no_shows, b.beneficiaries, b.first_timers
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
                'first_timers', coalesce(r.first_timers, 0))$q$,
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
        WITH r AS MATERIALIZED (%1$s)
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
                          'first_timers', coalesce(r.first_timers, 0))
                        FROM r WHERE r.k = ''))
        $q$, rows_sql, g, item,
        CASE WHEN g IN ('partner', 'structure') THEN 'n.name, n.id'
             WHEN g = 'month' THEN 'keys.k' ELSE 'r.k' END,
        items_from,
        CASE WHEN g = 'month' THEN 'keys.k' ELSE 'r.k' END,
        zone)
    INTO answer USING t_from, t_to, scope_id, m0, months;
    RETURN answer;
END $$;
