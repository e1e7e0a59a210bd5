-- After a crash and restart: checks the store against what the clients
-- recorded, loaded by the caller into lines(file, line) (file: writer-*,
-- async-writer-*, stream-<round>-<first seq_no>.out, events-*). Prints one
-- line "name count" per check.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
-- Events in the answers of appends whose COMMIT returned, durable unless
-- the writer had turned synchronous_commit off (async-writer-*).
CREATE TEMP TABLE acked AS
SELECT (e ->> 'seq_no')::bigint AS seq_no, e AS event, a ->> 'result' AS result, file LIKE 'writer-%' AS durable
  FROM lines, jsonb_path_query(line::jsonb, '$') a LEFT JOIN jsonb_array_elements(a -> 'events') e ON a ->> 'result' = 'ok'
 WHERE file LIKE '%writer-%' AND line <> '';
-- Rows stream readers received, and events event readers received.
CREATE TEMP TABLE streamed AS
SELECT file, (line::jsonb ->> 'seq_no')::bigint AS seq_no, line::jsonb - 'replayed' AS row,
       (line::jsonb ->> 'replayed')::boolean AS replayed
  FROM lines WHERE file LIKE 'stream-%' AND line <> '';
CREATE INDEX ON streamed (file, seq_no) WHERE NOT replayed;
CREATE TEMP TABLE seen AS
SELECT (line::jsonb ->> 'seq_no')::bigint AS seq_no, line::jsonb AS event
  FROM lines WHERE file LIKE 'events-%' AND line LIKE '{%';
CREATE TEMP TABLE stream_now AS SELECT s.seq_no, to_jsonb(s) - 'replayed' AS row FROM coherence_stream() s;
CREATE UNIQUE INDEX ON stream_now (seq_no);
ANALYZE acked, streamed, seen, stream_now;

\pset format unaligned
\pset tuples_only on
\pset fieldsep ' '
SELECT 'acked_events', count(*) FROM acked WHERE result = 'ok' AND durable;
SELECT 'conflicts', count(*) FROM acked WHERE result = 'conflict';
SELECT 'streamed_rows', count(*) FROM streamed;
SELECT 'seen_events', count(*) FROM seen;
-- seq_nos are 1..max, each event exactly one of action and effect.
SELECT 'gaps', coalesce(max(seq_no), 0) - count(*) + (CASE WHEN coalesce(min(seq_no), 1) = 1 THEN 0 ELSE 1 END)
  FROM coherence_events;
SELECT 'neither_or_both', count(*) FROM coherence_events e
  LEFT JOIN coherence_actions a USING (seq_no) LEFT JOIN coherence_effects f USING (seq_no)
 WHERE (a.seq_no IS NULL) = (f.seq_no IS NULL);
-- Every durably acknowledged append is stored exactly as its answer said.
SELECT 'acked_lost_or_changed', count(*) FROM acked
 WHERE result = 'ok' AND durable AND coherence_event(seq_no) IS DISTINCT FROM event;
SELECT 'async_acked_lost', count(*) FROM acked
 WHERE result = 'ok' AND NOT durable AND coherence_event(seq_no) IS DISTINCT FROM event;
-- Every event a reader saw is stored exactly as it saw it.
SELECT 'streamed_lost_or_changed', count(*) FROM streamed r LEFT JOIN stream_now s USING (seq_no)
 WHERE s.row IS DISTINCT FROM r.row;
SELECT 'seen_lost_or_changed', count(*) FROM seen WHERE coherence_event(seq_no) IS DISTINCT FROM event;
-- A reader never saw seq_no n + 1 before n: the event reader found nothing
-- missing below the head it was told, and each stream reader saw every action
-- from where it started (stream-<round>-<first seq_no>) up to the highest one
-- it saw.
SELECT 'event_reader_missing', count(*) FROM lines WHERE file LIKE 'events-%' AND line LIKE 'MISSING %';
SELECT 'stream_reader_skipped', count(*)
  FROM (SELECT file, substring(file FROM '^stream-[0-9]+-([0-9]+)')::bigint AS first, max(seq_no) AS last FROM streamed GROUP BY file) reader
  JOIN stream_now s ON s.seq_no BETWEEN reader.first AND reader.last
 WHERE NOT EXISTS (SELECT FROM streamed r WHERE r.file = reader.file AND NOT r.replayed AND r.seq_no = s.seq_no);
-- Every index of the coherence tables is sound (heapallindexed), and so is every heap.
SELECT 'unchecked_indexes', count(*) - count(bt_index_check(i.indexrelid, true))
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relname LIKE 'coherence\_%';
SELECT 'heap_corruption', count(*) FROM pg_class c, verify_heapam(c.oid)
 WHERE c.relname LIKE 'coherence\_%' AND c.relkind = 'r';
