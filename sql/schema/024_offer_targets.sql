-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 24: targeted offers and last-minute release
-- (docs/booking-rules.md, "Targeted offers").
--
-- A partner may keep an offer for some structures and/or the structures of
-- some territories (a theatre giving first to its neighbourhood's centres
-- sociaux), until an optional time at which it opens to everyone. Both
-- lists empty: the offer is for everyone, as before.

ALTER TABLE offers
    ADD COLUMN target_structure_ids bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN target_territories text[] NOT NULL DEFAULT '{}',
    ADD COLUMN opens_to_all_at timestamptz,
    -- when the opening sweep saw the offer open (and sent offer.opened if
    -- seats were still free): each opening is announced once
    ADD COLUMN opened_at timestamptz,
    ADD CONSTRAINT offers_opens_targeted
        CHECK (opens_to_all_at IS NULL
               OR cardinality(target_structure_ids)
                  + cardinality(target_territories) > 0);

-- The opening sweep reads only the offers still to open.
CREATE INDEX offers_opening ON offers (opens_to_all_at)
    WHERE opened_at IS NULL AND opens_to_all_at IS NOT NULL;

-- The structures an offer event may reach while its offer is kept for its
-- targets (NULL: every user, as for every other offer event).
ALTER TABLE event_outbox ADD COLUMN audience bigint[];
