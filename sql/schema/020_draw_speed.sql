-- Schema file: DDL and data only, APPEND-ONLY. Once this file is in a
-- release, never edit it: `strapontind --migrate` records its SHA-256 and
-- refuses to run when an applied file changed. A change of schema is a new
-- file with the next number. Functions, triggers and views are not here:
-- they live in sql/api/ (docs/operations.md, "The sql/ tree").
--
-- strapontin schema 20: the draw's answer as json text (docs/draw.md).
--
-- The draw of schema 15 built its answer (a 4 MB object for 10,000
-- wishes) in jsonb, object by object, read it back from the rows it had
-- just written, and the server then printed that jsonb as text for the
-- daemon: together about a third of the draw's time. It now writes the
-- answer once as json text, from the values it already holds, returns
-- that text as it is (the daemon passes a json result through untouched)
-- and stores the same text in permanences.draw_result.
-- CREATE OR REPLACE cannot change a function's result type: the old
-- function goes here, sql/api/60_permanences.sql defines the new one.
DROP FUNCTION IF EXISTS api.permanence_draw(text, jsonb, text, jsonb);

-- The stored answer as the draw wrote it: json (text, checked once), not
-- jsonb. Making a jsonb of a 4 MB answer costs as much as writing it;
-- permanence.draw answers the stored text again as it is, and
-- permanence.get, which embeds it in a jsonb object, converts it there.
ALTER TABLE permanences ALTER COLUMN draw_result TYPE json
    USING draw_result::json;
-- lz4 where the server has it, as schema 15 set for the jsonb column.
DO $$
BEGIN
    ALTER TABLE permanences ALTER COLUMN draw_result SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END $$;

-- The draw writes each wish once more (position, score, key, outcome):
-- room left on the wish's page lets that new version stay there (a HOT
-- update: no new entry in the three indexes of wishes). Pages filled at
-- half leave that room to about half of the wishes (5,503 of the bench's
-- 10,000, against none at 100); the table is small, a few hundred bytes
-- a wish. Only pages written from now on are filled at half.
ALTER TABLE wishes SET (fillfactor = 50);
