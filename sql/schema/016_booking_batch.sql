-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 16: the booking path near the floor
-- (docs/booking-rules.md, "Group commit"; docs/BENCHMARKS.md).
--
-- The daemon gathers the booking.create requests that arrive together
-- and hands them to booking_create_batch() in one call: one transaction,
-- one WAL flush, each offer's row taken once for all its requests, the
-- bookings inserted by one statement (so the report counters are added up
-- once), one audit statement, one offer.seats_changed event per offer.
-- Every rule of booking.create holds for each request as if it had come
-- alone, in the order given; a refusal is that request's answer and never
-- aborts the others.
--
-- The JSON shapes come as pairs: an inlinable SQL expression of the rows
-- (offer_json_of, booking_json_of) for queries over many rows, and a
-- PL/pgSQL function of one row (offer_json, booking_json) whose plans stay
-- cached in the session. SQL functions that cannot be inlined (a FROM
-- clause, a sub-select, a volatility label stricter than their body) are
-- parsed and planned again at every call, which cost a booking more than
-- all its real work.

INSERT INTO api_entry_points (name) VALUES ('booking_create_batch')
ON CONFLICT DO NOTHING;
