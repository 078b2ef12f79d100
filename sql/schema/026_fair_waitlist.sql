-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 26: fair waiting lists (docs/waitlist.md).
--
-- A waiting list is served by the draw's fairness score (who went out
-- least first), then by waiting time, instead of first come first served.
-- Each entry keeps the record its score was last computed from; each time
-- seats are offered to an entry, the queue as it stood is kept in
-- waitlist_rounds, so that anyone can replay who came before whom.

ALTER TABLE waitlist_entries
    -- the person's record and score over the window, as last computed
    -- (core.person_history); null until the first computation
    ADD COLUMN attended       integer,
    ADD COLUMN no_shows       integer,
    ADD COLUMN withdrawn_late integer,
    ADD COLUMN score          numeric,
    ADD COLUMN scored_at      timestamptz,
    -- 'join': waitlist.join; 'draw': a wish that got nothing at a draw
    ADD COLUMN source         text NOT NULL DEFAULT 'join'
                              CHECK (source IN ('join', 'draw')),
    ADD COLUMN wish_id        bigint REFERENCES wishes;

-- The queue in the order it is served.
CREATE INDEX waitlist_fair_queue
    ON waitlist_entries (offer_id, score, created_at, id)
    WHERE status = 'waiting';

-- A wish that gets nothing at the draw joins the waiting list of its first
-- choice; with waitlist_all, of each of its choices refused as sold out.
ALTER TABLE wishes
    ADD COLUMN waitlist_all boolean NOT NULL DEFAULT false;

-- One row per entry offered seats: the queue of the offer at that moment,
-- in order, with each entry's record and score and what became of it
-- ('offered', or why it was passed over: 'too_many_seats', 'limit_reached',
-- 'duplicate', 'erased'; 'behind' for the entries after the one offered).
-- Entry ids only: the people are in waitlist_entries, under its rules.
CREATE TABLE waitlist_rounds (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    offer_id              bigint NOT NULL REFERENCES offers,
    entry_id              bigint NOT NULL REFERENCES waitlist_entries,
    at                    timestamptz NOT NULL DEFAULT now(),
    window_from           timestamptz NOT NULL,
    window_to             timestamptz NOT NULL,
    no_show_weight        numeric NOT NULL,
    withdrawn_late_weight numeric NOT NULL,
    seats_free            integer NOT NULL,
    queue                 jsonb NOT NULL
);
CREATE INDEX waitlist_rounds_offer ON waitlist_rounds (offer_id, id);
CREATE INDEX waitlist_rounds_entry ON waitlist_rounds (entry_id);
