-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 27: demand (docs/reports.md, "Demand").
--
-- Unmet demand is read from the wishes a draw left without seats and the
-- waiting-list entries, per offer: two indexes reach them from the offers
-- of a range without reading every wish or entry.
CREATE INDEX wishes_lost_first_choice ON wishes ((choices[1]))
    WHERE replaced_at IS NULL AND draw_position IS NOT NULL
      AND granted_rank IS NULL;
CREATE INDEX waitlist_offer ON waitlist_entries (offer_id);
-- wishes naming an offer at any rank, for the partner's view
CREATE INDEX wishes_choices ON wishes USING gin (choices)
    WHERE replaced_at IS NULL;
