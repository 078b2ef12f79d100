-- bench/gen-network.sql: a network the size of the largest real one, for
-- the report benchmark (bench/report-bench, docs/BENCHMARKS.md).
--
--   psql -X -v ON_ERROR_STOP=1 -f bench/gen-network.sql "... dbname=X"
--
-- on a freshly migrated, empty database (strapontind --migrate), as a
-- superuser: the bulk load runs with session_replication_role = replica, so
-- no trigger fires per row; the seat counters are written directly and the
-- report's derived data is rebuilt once at the end (report_rebuild()).
--
-- psql variables (-v name=value), with their defaults:
--   years          10        years of offers, ending with the current year
--   per_year       350000    bookings per year (all statuses)
--   structures     4000
--   partners       6000
--   beneficiaries  100000    over the whole period (see below)
--   seed           0.42      for setseed(): the same network every time
--
-- The shape, deterministic for a given seed and current year:
--   * offers: about one per 7 bookings, spread uniformly over the period,
--     starting between 10:00 and 21:30 UTC, 2 h long; partners chosen with
--     a skew (a few big venues publish a lot); categories skewed too;
--     1% cancelled by their partner.
--   * beneficiaries: person i enters at a time spread from two years before
--     the period to its end, and goes out for three years; an offer's
--     bookings go to distinct people active when it starts. Person i
--     belongs to structure 1 + (i - 1) mod structures.
--   * a booking holds 1 to 3 seats (mean 1.5); 8% are cancelled by the
--     referent; of the rest, past offers' bookings are attended (85%) or
--     no_show (15%), future ones confirmed.
--   * seats_total = the live seats + 0 to 9 seats nobody took.
--   * people whose outings ended over two years ago are erased (names
--     gone), as the daemon's retention would have done; their bookings stay.
\set ON_ERROR_STOP 1
\if :{?years}
\else
\set years 10
\endif
\if :{?per_year}
\else
\set per_year 350000
\endif
\if :{?structures}
\else
\set structures 4000
\endif
\if :{?partners}
\else
\set partners 6000
\endif
\if :{?beneficiaries}
\else
\set beneficiaries 100000
\endif
\if :{?seed}
\else
\set seed 0.42
\endif
\timing on

SET session_replication_role = replica;
SET synchronous_commit = off;
SET work_mem = '256MB';
SET maintenance_work_mem = '512MB';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM offers) OR EXISTS (SELECT 1 FROM bookings)
       OR EXISTS (SELECT 1 FROM partners) OR EXISTS (SELECT 1 FROM structures) THEN
        RAISE EXCEPTION 'gen-network: the database is not empty';
    END IF;
END $$;

CREATE TEMP TABLE gen_params AS
SELECT :years::int AS years, :per_year::int AS per_year,
       :structures::int AS n_structures, :partners::int AS n_partners,
       :beneficiaries::int AS n_people,
       (date_trunc('year', now() AT TIME ZONE 'UTC')
          - make_interval(years => :years - 1)) AT TIME ZONE 'UTC' AS t0,
       (date_trunc('year', now() AT TIME ZONE 'UTC')
          + interval '1 year') AT TIME ZONE 'UTC' AS t1;
SELECT setseed(:seed);

BEGIN;

INSERT INTO partners (id, name, kind, city, created_at)
OVERRIDING SYSTEM VALUE
SELECT i, 'Partenaire ' || i,
       (ARRAY['theatre', 'cinema', 'museum', 'heritage', 'concert_hall',
              'festival', 'sport', 'library', 'other'])[1 + i % 9],
       'Ville ' || (1 + i % 500), p.t0 - interval '1 year'
  FROM gen_params p, generate_series(1, p.n_partners) i;

INSERT INTO structures (id, name, kind, territory, city, created_at)
OVERRIDING SYSTEM VALUE
SELECT i, 'Structure ' || i,
       (ARRAY['mds', 'centre_social', 'ccas', 'association', 'housing',
              'other'])[1 + i % 6],
       'Territoire ' || lpad((1 + i % 101)::text, 3, '0'),
       'Ville ' || (1 + i % 700), p.t0 - interval '1 year'
  FROM gen_params p, generate_series(1, p.n_structures) i;

-- Person i: entry time e(i), active for three years after it.
CREATE TEMP TABLE gen_people AS
SELECT i AS id, 1 + (i - 1) % p.n_structures AS structure_id,
       p.t0 - interval '2 years'
         + (p.t1 - p.t0 + interval '2 years') * ((i - 1)::float8 / p.n_people) AS entry
  FROM gen_params p, generate_series(1, p.n_people) i;

INSERT INTO beneficiaries (id, structure_id, first_name, last_name, birth_year,
                           household_size, postal_code, consent_at, created_at,
                           updated_at, last_activity_at, erased_at)
OVERRIDING SYSTEM VALUE
SELECT g.id, g.structure_id,
       CASE WHEN NOT gone THEN 'Prénom' || g.id END,
       CASE WHEN NOT gone THEN 'Nom' || g.id END,
       CASE WHEN NOT gone THEN 1940 + g.id % 65 END,
       CASE WHEN NOT gone THEN 1 + g.id % 5 END,
       CASE WHEN NOT gone THEN lpad((1000 + g.id % 95000)::text, 5, '0') END,
       least(g.entry, now()), least(g.entry, now()), least(g.entry, now()),
       least(g.entry + interval '3 years', now()),
       CASE WHEN gone THEN g.entry + interval '5 years' END
  FROM (SELECT *, entry + interval '5 years' < now() AS gone FROM gen_people) g;

-- Offers: n_bookings of each drawn so that the total is about per_year a
-- year; people_lo/people_n: the people active when it starts.
CREATE TEMP TABLE gen_offers AS
SELECT x.*,
       greatest(1, ceil((extract(epoch FROM x.starts_at - p.t0 + interval '2 years') / 86400 - 1095)
                * p.n_people / (extract(epoch FROM p.t1 - p.t0 + interval '2 years') / 86400)))::int AS people_lo,
       floor((extract(epoch FROM x.starts_at - p.t0 + interval '2 years') / 86400)
                * p.n_people / (extract(epoch FROM p.t1 - p.t0 + interval '2 years') / 86400))::int AS people_hi
  FROM gen_params p,
       LATERAL (SELECT j AS id,
                       1 + floor(p.n_partners * random() ^ 2)::int AS partner_id,
                       (ARRAY['show', 'show', 'show', 'concert', 'concert',
                              'cinema', 'cinema', 'cinema', 'heritage',
                              'museum', 'museum', 'sport', 'festival',
                              'workshop', 'other'])[1 + floor(random() * 15)::int] AS category,
                       date_trunc('day', p.t0 + (p.t1 - p.t0) * random())
                         + interval '10 hours' + interval '30 minutes' * floor(random() * 24) AS starts_at,
                       1 + floor(random() * 13)::int AS n_bookings,
                       random() < 0.01 AS cancelled
                  FROM generate_series(1, (p.per_year::bigint * p.years / 7)::int) j) x;
-- Start-ordered ids, as a real network's would roughly be.
CREATE TEMP TABLE gen_offers2 AS
SELECT row_number() OVER (ORDER BY starts_at, id) AS oid, *,
       least(people_hi, (SELECT n_people FROM gen_params)) - people_lo + 1 AS people_n
  FROM gen_offers;

CREATE TEMP TABLE gen_bookings AS
SELECT o.oid AS offer_id, o.starts_at,
       o.people_lo + ((o.off + k) % o.people_n) AS beneficiary_id,
       1 + (r1 < 0.35)::int + (r1 < 0.12)::int AS seats,
       CASE WHEN o.cancelled THEN 'cancelled_by_partner'
            WHEN r2 < 0.08 THEN 'cancelled'
            WHEN o.starts_at > now() THEN 'confirmed'
            WHEN r2 < 0.08 + 0.92 * 0.15 THEN 'no_show'
            ELSE 'attended' END AS status,
       o.starts_at - interval '1 day' * (2 + floor(r1 * 40)) AS created_at
  FROM (SELECT *, floor(random() * people_n)::int AS off FROM gen_offers2
         WHERE people_n >= 13) o,
       LATERAL (SELECT k, random() AS r1, random() AS r2
                  FROM generate_series(0, o.n_bookings - 1) k) b;

INSERT INTO offers (id, partner_id, title, category, venue, city, starts_at,
                    ends_at, seats_total, seats_taken, max_per_booking,
                    booking_deadline, status, cancel_reason, cancelled_at,
                    attendance_closed_at, created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT o.oid, o.partner_id, 'Offre ' || o.oid, o.category,
       'Salle ' || o.partner_id, 'Ville ' || (1 + o.partner_id % 500),
       o.starts_at, o.starts_at + interval '2 hours',
       coalesce(b.live, 0) + 1 + (o.oid % 10)::int, coalesce(b.live, 0), 4,
       o.starts_at - interval '48 hours',
       CASE WHEN o.cancelled THEN 'cancelled' ELSE 'published' END,
       CASE WHEN o.cancelled THEN 'Annulé' END,
       CASE WHEN o.cancelled THEN o.starts_at - interval '3 days' END,
       CASE WHEN o.starts_at < now() AND NOT o.cancelled THEN o.starts_at + interval '1 day' END,
       o.starts_at - interval '45 days', o.starts_at - interval '45 days'
  FROM gen_offers2 o
  LEFT JOIN (SELECT offer_id, sum(seats) FILTER (WHERE status IN
                    ('confirmed', 'attended', 'no_show')) AS live
               FROM gen_bookings GROUP BY offer_id) b ON b.offer_id = o.oid
 WHERE o.people_n >= 13;

-- report_flags as report_flags_computed (sql/api/70_reports.sql) defines them;
-- report_check() at the end of bench/report-bench compares.
CREATE TEMP TABLE gen_bookings2 AS
SELECT row_number() OVER (ORDER BY b.created_at, b.offer_id, b.beneficiary_id) AS n,
       b.*, o.partner_id, o.category,
       date_trunc('month', b.starts_at AT TIME ZONE core.report_zone()) AS m,
       date_trunc('year', b.starts_at AT TIME ZONE core.report_zone()) AS y
  FROM gen_bookings b JOIN gen_offers2 o ON o.oid = b.offer_id;
CREATE TEMP TABLE gen_flags AS
SELECT n, (  (row_number() OVER (PARTITION BY beneficiary_id, m ORDER BY starts_at, n) = 1)::int
           + (row_number() OVER (PARTITION BY beneficiary_id, m, partner_id ORDER BY starts_at, n) = 1)::int * 2
           + (row_number() OVER (PARTITION BY beneficiary_id, m, category ORDER BY starts_at, n) = 1)::int * 4
           + (row_number() OVER (PARTITION BY beneficiary_id, y ORDER BY starts_at, n) = 1)::int * 8
           + (row_number() OVER (PARTITION BY beneficiary_id, y, partner_id ORDER BY starts_at, n) = 1)::int * 16
           + (row_number() OVER (PARTITION BY beneficiary_id, y, category ORDER BY starts_at, n) = 1)::int * 32
           + (row_number() OVER (PARTITION BY beneficiary_id ORDER BY starts_at, n) = 1)::int * 64
          )::smallint AS flags
  FROM gen_bookings2 WHERE status = 'attended';
CREATE UNIQUE INDEX ON gen_flags (n);

-- Loading 3.5 million rows into bookings with its secondary indexes in
-- place costs minutes of random index writes; building them afterwards,
-- seconds. The definitions are kept and replayed as they are.
CREATE TEMP TABLE gen_indexes AS
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
  FROM pg_index i
 WHERE i.indrelid = 'bookings'::regclass
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid);
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM gen_indexes LOOP
        EXECUTE 'DROP INDEX ' || r.name;
    END LOOP;
END $$;

INSERT INTO bookings (id, offer_id, beneficiary_id, structure_id, seats, code,
                      status, source, created_at, cancelled_at, checked_in_at,
                      offer_starts_at, report_flags)
OVERRIDING SYSTEM VALUE
SELECT b.n, b.offer_id, b.beneficiary_id, 1 + (b.beneficiary_id - 1) % p.n_structures,
       b.seats, upper(lpad(to_hex(b.n), 16, '0')), b.status, 'direct',
       least(b.created_at, now()),
       CASE WHEN b.status LIKE 'cancelled%' THEN least(b.starts_at - interval '3 days', now()) END,
       CASE WHEN b.status = 'attended' THEN b.starts_at END,
       b.starts_at, coalesce(f.flags, 0)
  FROM gen_params p, gen_bookings2 b LEFT JOIN gen_flags f ON f.n = b.n
 ORDER BY b.n;

DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM gen_indexes LOOP
        EXECUTE r.def;
    END LOOP;
END $$;

SELECT setval(pg_get_serial_sequence('partners', 'id'), (SELECT max(id) FROM partners));
SELECT setval(pg_get_serial_sequence('structures', 'id'), (SELECT max(id) FROM structures));
SELECT setval(pg_get_serial_sequence('beneficiaries', 'id'), (SELECT max(id) FROM beneficiaries));
SELECT setval(pg_get_serial_sequence('offers', 'id'), (SELECT max(id) FROM offers));
SELECT setval(pg_get_serial_sequence('bookings', 'id'), (SELECT max(id) FROM bookings));

SET session_replication_role = origin;
COMMIT;

-- The summary tables, from the bookings just loaded (whose derived columns
-- are trusted: report_check() verifies them later). A helper of schema
-- core, whose body names the others unqualified.
SET search_path = core, api, public;
SELECT core.report_rebuild(false);
RESET search_path;

VACUUM (ANALYZE) partners, structures, beneficiaries, offers, bookings,
    report_offers, report_structure_months;

SELECT (SELECT count(*) FROM offers) AS offers,
       (SELECT count(*) FROM bookings) AS bookings,
       (SELECT count(*) FROM bookings WHERE status IN ('confirmed', 'attended', 'no_show')) AS live,
       (SELECT count(*) FROM bookings WHERE report_flags & 64 <> 0) AS first_outings,
       (SELECT pg_size_pretty(pg_total_relation_size('bookings'))) AS bookings_size;
