-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 10: a draw seed nobody can choose, a cap on blocks, and
-- blocks that give their seats back by themselves.
--
-- The seed (docs/draw.md). Until now the caller of permanence.draw could
-- name the seed, and so try seeds offline until one favoured a person.
-- Now the server draws the seed when the permanence is scheduled, keeps it
-- in permanences.draw_secret, which no API function returns before the
-- draw, and publishes its SHA-256 at once (seed_sha256 in permanence.get
-- and permanence.list). The draw uses that seed and reveals it (`seed`);
-- anyone can then check that its SHA-256 is the one published before, and
-- replay the draw. permanence.draw takes no seed any more.
--
-- Blocks (docs/booking-rules.md). One structure may hold in blocks at most
-- policy.max_block_share percent of an offer's seats (default 50), counted
-- over its permanences' blocks not yet returned, under the offer's row
-- lock like every other change of the offer's seats. A block's unclaimed
-- seats go back to the common pool by themselves at the permanence's end
-- or the offer's booking deadline, whichever comes first: the waitlist
-- sweep every daemon runs does it (permanence_block_sweep below).

-- A volatile default is computed row by row, so every existing permanence
-- gets its own seed here, and every new one (permanence.schedule and
-- permanence.schedule_series alike) gets one at insertion. It is
-- draw_random_seed() (schema 4) written out with built-ins only, so the
-- table needs none of our functions.
ALTER TABLE permanences
    ADD COLUMN draw_secret text NOT NULL DEFAULT
        encode(sha256(decode(replace(gen_random_uuid()::text
            || gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
            'hex')), 'hex');
-- A permanence already drawn keeps the seed it revealed.
UPDATE permanences SET draw_secret = draw_seed WHERE draw_seed IS NOT NULL;
ALTER TABLE permanences
    ADD CONSTRAINT permanences_seed_revealed
        CHECK (draw_seed IS NULL OR draw_seed = draw_secret);

----------------------------------------------------------------- blocks

-- What the sweep looks at every second: the blocks not yet returned.
CREATE INDEX permanence_blocks_live ON permanence_blocks (permanence_id, offer_id)
    WHERE returned_at IS NULL;
