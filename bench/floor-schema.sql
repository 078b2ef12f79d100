-- The floor's own tables (bench/compare-pgbench, docs/BENCHMARKS.md):
-- copies of offers and bookings with the same columns, defaults, CHECK
-- constraints and indexes (LIKE ... INCLUDING ALL), and the foreign keys
-- a booking row is checked against, but none of the application's
-- triggers: the seat counter is kept by the floor's own UPDATE
-- (bench/floor-book.sql). The floor's fixture offers are copied here
-- with their ids, so the daemon's tables and the invariant checks of
-- strapontin-bench --db are never touched by the floor.
--
-- Run by psql with search_path set to the schema of the application's
-- tables.
CREATE SCHEMA IF NOT EXISTS floor;
CREATE TABLE floor.offers (LIKE offers INCLUDING ALL);
CREATE TABLE floor.bookings (LIKE bookings INCLUDING ALL);
ALTER TABLE floor.bookings
    ADD FOREIGN KEY (offer_id) REFERENCES floor.offers,
    ADD FOREIGN KEY (beneficiary_id) REFERENCES beneficiaries,
    ADD FOREIGN KEY (structure_id) REFERENCES structures,
    ADD FOREIGN KEY (created_by) REFERENCES users;
