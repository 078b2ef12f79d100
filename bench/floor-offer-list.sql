-- pgbench script: the floor of offer.list (bench/compare-pgbench,
-- docs/BENCHMARKS.md): the first page of upcoming offers, as JSON, in
-- one statement on the application's offers table. Variable from
-- pgbench -D: limit (the page size).
SELECT jsonb_agg(to_jsonb(o))
  FROM (SELECT * FROM offers WHERE starts_at > now()
         ORDER BY starts_at, id LIMIT :limit) o;
