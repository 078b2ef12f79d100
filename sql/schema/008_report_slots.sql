-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
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
