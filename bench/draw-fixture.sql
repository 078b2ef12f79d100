-- The fixture of bench/draw-bench, written straight into the database (as
-- the schema's owner) for speed: only the draws go through the protocol.
--
--   psql -v offers=1000 -v wishes=10000 -v small=50 -f bench/draw-fixture.sql
--
-- One partner and one structure; :offers offers in the next two months of
-- 8 to 24 seats (at most 3 a booking); :wishes people with a history of
-- outings (a fifth of them attended or missed one of 20 past offers), each
-- wishing 1 to 3 of the offers for 1 to 3 seats at permanence "big", which
-- has a block of 1 to 4 seats on every third offer; :small other people
-- wishing at permanence "small", on the same offers. The random choices
-- come from setseed(): the same fixture every time; only the permanences'
-- seeds (drawn by the server at scheduling) differ from one run to the
-- next. One last person wishes nothing: the bench books for them during
-- the big draw. Prints the ids of the two permanences, of that person, of
-- the offer most wished for at the big one, and of four small permanences
-- "warm" drawn first, untimed.

\set ON_ERROR_STOP on
SELECT setseed(0.42);

BEGIN;
INSERT INTO partners (name, kind, city) VALUES ('Banc d''essai', 'theatre', 'Brest');
INSERT INTO structures (name, kind, territory, city)
VALUES ('MDS du banc d''essai', 'mds', 'Finistère', 'Brest');

-- The offers to come: from 10 days on, over two months.
INSERT INTO offers (partner_id, title, category, venue, city, starts_at,
                    seats_total, max_per_booking, booking_deadline)
SELECT (SELECT max(id) FROM partners), 'Offre ' || g, 'show', 'Salle', 'Brest',
       t, 8 + (random() * 16)::integer, 3, t - interval '1 hour'
  FROM generate_series(1, :offers) g,
       LATERAL (SELECT date_trunc('hour', now()) + interval '10 days'
                       + (g % 60) * interval '1 day' AS t) x;
CREATE TEMP TABLE bench_offers AS
    SELECT id, row_number() OVER (ORDER BY id) AS n FROM offers
     WHERE partner_id = (SELECT max(id) FROM partners) AND starts_at > now();

-- People: the :wishes of the big permanence, then the :small others.
INSERT INTO beneficiaries (structure_id, first_name, last_name, consent_at)
SELECT (SELECT max(id) FROM structures), 'P' || g, 'Banc', now()
  FROM generate_series(1, :wishes + :small + 1) g;
CREATE TEMP TABLE bench_people AS
    SELECT id, row_number() OVER (ORDER BY id) AS n FROM beneficiaries
     WHERE structure_id = (SELECT max(id) FROM structures);

-- History: 20 past offers, each attended or missed by 100 people.
INSERT INTO offers (partner_id, title, category, venue, city, starts_at,
                    seats_total, max_per_booking, booking_deadline)
SELECT (SELECT max(id) FROM partners), 'Passé ' || g, 'show', 'Salle', 'Brest',
       now() - g * interval '9 days', 200, 3, now() - g * interval '9 days'
  FROM generate_series(1, 20) g;
INSERT INTO bookings (offer_id, beneficiary_id, structure_id, seats, code,
                      status, checked_in_at)
SELECT o.id, p.id, (SELECT max(id) FROM structures), 1, ticket_code(),
       CASE WHEN p.n % 3 = 0 THEN 'no_show' ELSE 'attended' END,
       CASE WHEN p.n % 3 = 0 THEN NULL ELSE o.starts_at END
  FROM (SELECT id, starts_at, row_number() OVER (ORDER BY id) AS k
          FROM offers WHERE partner_id = (SELECT max(id) FROM partners)
           AND starts_at < now()) o
  JOIN bench_people p ON p.n <= :wishes / 5 AND p.n % 20 = o.k - 1;

-- Four small permanences to warm the daemon's database connections up
-- (plans and compiled functions) before the timed draws: two offers and
-- three people of their own each.
INSERT INTO offers (partner_id, title, category, venue, city, starts_at,
                    seats_total, max_per_booking, booking_deadline)
SELECT (SELECT max(id) FROM partners), 'Chauffe ' || g, 'show', 'Salle', 'Brest',
       date_trunc('hour', now()) + interval '30 days', 50, 3,
       date_trunc('hour', now()) + interval '29 days'
  FROM generate_series(1, 8) g;
INSERT INTO permanences (structure_id, title, starts_at, ends_at, state)
SELECT (SELECT max(id) FROM structures), 'warm',
       date_trunc('hour', now()) + interval '7 days',
       date_trunc('hour', now()) + interval '7 days 2 hours', 'open'
  FROM generate_series(1, 4);
INSERT INTO beneficiaries (structure_id, first_name, last_name, consent_at)
SELECT (SELECT max(id) FROM structures), 'W' || g, 'Banc', now()
  FROM generate_series(1, 12) g;
INSERT INTO wishes (permanence_id, beneficiary_id, choices, seats)
SELECT p.id, b.id, ARRAY[o.id, o.id + 1], 1
  FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM permanences
         WHERE title = 'warm') p
  JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM beneficiaries
         WHERE first_name LIKE 'W%' AND last_name = 'Banc') b
    ON (b.n - 1) / 3 + 1 = p.n
  JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM offers
         WHERE title LIKE 'Chauffe %') o
    ON o.n = 2 * p.n - 1;

-- The two permanences, in a week.
INSERT INTO permanences (structure_id, title, starts_at, ends_at, state)
VALUES ((SELECT max(id) FROM structures), 'big',
        date_trunc('hour', now()) + interval '7 days',
        date_trunc('hour', now()) + interval '7 days 2 hours', 'open'),
       ((SELECT max(id) FROM structures), 'small',
        date_trunc('hour', now()) + interval '7 days',
        date_trunc('hour', now()) + interval '7 days 2 hours', 'open');

INSERT INTO permanence_blocks (permanence_id, offer_id, seats)
SELECT (SELECT max(id) FROM permanences WHERE title = 'big'), o.id,
       1 + (random() * 3)::integer
  FROM bench_offers o WHERE o.n % 3 = 0;

-- Wishes: 1 to 3 different offers, 1 to 3 seats.
INSERT INTO wishes (permanence_id, beneficiary_id, choices, seats)
SELECT CASE WHEN p.n <= :wishes
            THEN (SELECT max(id) FROM permanences WHERE title = 'big')
            ELSE (SELECT max(id) FROM permanences WHERE title = 'small') END,
       p.id, ch.choices, 1 + (random() * 2)::integer
  FROM bench_people p
  CROSS JOIN LATERAL (
      SELECT array_agg(o.id ORDER BY r.k) AS choices
        FROM (SELECT DISTINCT ON (x) x, k
                FROM (SELECT 1 + (random() * (:offers - 1))::integer AS x, k
                        FROM generate_series(1, 1 + (random() * 2)::integer
                                                + 0 * p.id) k) y
               ORDER BY x, k) r
        JOIN bench_offers o ON o.n = r.x) ch
 WHERE p.n <= :wishes + :small;
COMMIT;

ANALYZE;
SELECT (SELECT max(id) FROM permanences WHERE title = 'big'),
       (SELECT max(id) FROM permanences WHERE title = 'small'),
       (SELECT max(id) FROM bench_people),
       (SELECT c FROM wishes, unnest(choices) c
         WHERE permanence_id = (SELECT max(id) FROM permanences WHERE title = 'big')
         GROUP BY c ORDER BY count(*) DESC, c LIMIT 1),
       (SELECT string_agg(id::text, ' ' ORDER BY id) FROM permanences
         WHERE title = 'warm');
