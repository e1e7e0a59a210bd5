-- Prints what every coherence read function answers about the store, in a
-- fixed order and form, so that two stores can be compared with diff.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET TimeZone = 'UTC';
\echo -- coherence_seq_no
SELECT coherence_seq_no();
\echo -- coherence_stream()
SELECT s::text FROM coherence_stream() s;
\echo -- coherence_stream(7), (200), (300, 350) replays
SELECT s::text FROM coherence_stream(7) s;
SELECT s::text FROM coherence_stream(200) s;
SELECT s::text FROM coherence_stream(300, 350) s;
\echo -- coherence_stream(0, NULL, {receipt})
SELECT s::text FROM coherence_stream(0, NULL, '{receipt}') s;
\echo -- coherence_event(0 .. seq_no + 1)
SELECT n, coherence_event(n) FROM generate_series(0, coherence_seq_no() + 1) n;
\echo -- coherence_aggregate of every aggregate, now and at every 50th seq_no
SELECT kind, id, at, coherence_aggregate(kind, id, at)
  FROM (SELECT DISTINCT aggregate_kind AS kind, aggregate_id AS id FROM coherence_stream()) aggregates,
       LATERAL (SELECT NULL::bigint UNION ALL SELECT generate_series(0, coherence_seq_no(), 50)) ats (at)
 ORDER BY kind, id, at NULLS FIRST;
\echo -- coherence_checkpoint
SELECT name, coherence_checkpoint(name) FROM unnest(ARRAY['projector', 'mailer', 'never-advanced']) name;
