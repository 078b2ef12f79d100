-- pgbench script: the floor of one booking (bench/compare-pgbench,
-- docs/BENCHMARKS.md). One statement, so one round trip and one
-- transaction: the capacity-checked UPDATE of the offer's counter (seats
-- held for the waitlist count too, as in the offers_no_overbooking
-- constraint) and the INSERT of the booking row with what its NOT NULL
-- columns need: a ticket code of the required form (16 characters of the
-- ticket alphabet; hexadecimal digits are in it) and the offer's start.
-- A sold-out offer inserts nothing; compare-pgbench checks that every
-- transaction booked.
--
-- Runs with search_path = floor, <the application's schema>
-- (bench/floor-schema.sql). Variables from pgbench -D: iter (0), nclients,
-- npairs, stride, noffers, first_offer, first_ben, structure, user.
-- The k-th transaction of a client is request client_id + nclients * k,
-- mapped to the (offer, beneficiary) pair strapontin-bench gives its
-- request of that number (client/bench.h); hot: noffers = 1, stride = 1.
\set k :client_id + :nclients * :iter
\set iter :iter + 1
\set idx (:k % :npairs) * :stride % :npairs
\set offer :first_offer + :idx % :noffers
\set ben :first_ben + :idx / :noffers
WITH o AS (
    UPDATE offers SET seats_taken = seats_taken + 1
     WHERE id = :offer AND seats_taken + seats_held + 1 <= seats_total
    RETURNING id, starts_at)
INSERT INTO bookings (offer_id, beneficiary_id, structure_id, seats, code,
                      offer_starts_at, created_by)
SELECT o.id, :ben::bigint, :structure::bigint, 1,
       upper(substr(replace(gen_random_uuid()::text, '-', ''), 1, 16)),
       o.starts_at, :user::bigint
  FROM o;
