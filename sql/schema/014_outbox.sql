-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 14: events through an outbox table instead of NOTIFY
-- in the changing transaction (docs/protocol.md, Events; the reasoning is
-- in docs/architecture.md, "Events: the outbox").
--
-- NOTIFY takes a database-wide lock at commit and holds it through the
-- commit's WAL flush: every notifying commit waited for the one before,
-- so bookings of different offers could not share a flush. emit() now
-- inserts a row, which commits or rolls back with the change; each daemon
-- reads the table by position on its listener connection, woken by a
-- NOTIFY strapontin_outbox sent outside any booking transaction, or by
-- polling.
--
-- Ordering. Ids come from a sequence, so they are handed out in insertion
-- order, not commit order: a row may commit after rows with higher ids,
-- and a reader that moved past its id would never see it. A reader reads
-- only up to a fence, a pair (the sequence's last id s, an xid x the
-- reader took after reading s): every row with id <= s belongs to a
-- transaction whose xid is below x (emit() takes its xid before its id),
-- so once the oldest running xid is x or above, all of them have ended and
-- the rows up to s are final. Two changes of one offer serialise on the
-- offer's row lock, so the later one inserts its row, and takes its id,
-- after the earlier committed: reading by id gives commit order per offer.

CREATE TABLE event_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic text NOT NULL,
    partner_id bigint,
    structure_id bigint,
    data jsonb NOT NULL,
    -- clock time at insertion, so that it grows with id (pruning walks
    -- the primary key)
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The highest id pruned: a reader whose position is below it may have
-- missed rows and tells its subscribers to resync.
CREATE TABLE event_outbox_pruned (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    upto bigint NOT NULL
);
INSERT INTO event_outbox_pruned (upto) VALUES (0);

-- Statements of the daemon's own that the runtime role may execute
-- (schema 11).
INSERT INTO api_entry_points (name)
VALUES ('events_read'), ('events_prune')
ON CONFLICT DO NOTHING;
