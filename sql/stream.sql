-- coherence_stream: windows, the kinds filter, replay rows; ids and paths.
DROP EXTENSION coherence;
CREATE EXTENSION coherence;

\i sql/include/helpers.sql
-- The stream as one line per row.
CREATE FUNCTION pg_temp.rows(from_seq_no bigint, to_seq_no bigint DEFAULT NULL,
                             kinds text[] DEFAULT NULL) RETURNS SETOF text LANGUAGE sql AS $$
	SELECT format('%s %s/%s %s%s', seq_no, aggregate_kind, aggregate_id, triggers,
	              CASE WHEN replayed THEN ' replayed' ELSE '' END)
	FROM coherence_stream(from_seq_no, to_seq_no, kinds)
$$;

SELECT * FROM coherence_stream();
SELECT coherence_seq_no();

--  1 receipt/1 -> key/1, key/2    2 receipt/2 -> key/2    3 book/1
--  4 receipt/1 (no triggers)      5 effect key/9 (unlinked)
--  6 receipt/3 -> key/1           7 effect key/1          8 book/2
--  9 effect key/2                10 receipt/2
SELECT coherence_rebase(1, jsonb_build_array(
	pg_temp.act('receipt', '1', '[["key", "2"], ["key", "1"]]'),
	pg_temp.act('receipt', '2', '[["key", "2"]]'),
	pg_temp.act('book', '1'),
	pg_temp.act('receipt', '1'),
	pg_temp.eff('key', '9'),
	pg_temp.act('receipt', '3', '[["key", "1"]]'),
	pg_temp.eff('key', '1'),
	pg_temp.act('book', '2'),
	pg_temp.eff('key', '2'),
	pg_temp.act('receipt', '2')))->>'result';

-- Everything, in order; effects are not rows; triggers sorted by (kind, id).
SELECT pg_temp.rows(0);
-- A window [from, to].
SELECT pg_temp.rows(3, 6);
-- Effect 7 (key/1) in the window: receipt/1 and receipt/3 are affected; their
-- earlier actions come first, replayed; receipt/1 is affected through its
-- action 1 even though action 4 has no trigger.
SELECT pg_temp.rows(7, 8);
-- Effect 9 (key/2) affects receipt/1 and receipt/2; each action appears once.
SELECT pg_temp.rows(9);
-- Effects 7 and 9 together; the window's own actions are not replayed.
SELECT pg_temp.rows(5);
-- An effect on a trigger nobody links (5) replays nothing.
SELECT pg_temp.rows(5, 5);
-- from 0 and 1 are the same; to before from, or a window past the end, is empty.
SELECT count(*) FROM coherence_stream(1);
SELECT count(*) FROM coherence_stream(6, 5);
SELECT count(*) FROM coherence_stream(11);
-- The kinds filter applies to replayed rows as well.
SELECT pg_temp.rows(7, NULL, '{book}');
SELECT pg_temp.rows(7, NULL, '{receipt}');
SELECT pg_temp.rows(0, NULL, '{}');

-- Read in one statement, the stream and coherence_seq_no share a snapshot.
SELECT coherence_seq_no() AS head, count(*) AS rows FROM coherence_stream(0);

-- Numeric ids are stored as their integer text and name the same aggregate.
SELECT coherence_rebase(11, '[{"source": "test", "action": {"reason": "r", "actor": ["user", 42],
	"aggregate": ["receipt", 3], "patch": {"assoc": {"x": 2}}}, "triggers": [["key", 7.00]]}]')->>'result';
SELECT seq_no, actor_id, aggregate_id, triggers FROM coherence_stream(11);
SELECT coherence_rebase(11, '[{"source": "test", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["receipt", "3"], "patch": {"assoc": {"x": 3}}}}]') #>> '{conflict,theirs,seq_no}'
	AS theirs;

-- Nested paths, in both assoc forms and in dissoc, are kept as given.
SELECT coherence_rebase(12, jsonb_build_array(pg_temp.act('book', '3', '[]',
	'{"assoc": [[["meta", "isbn"], "978-0441569595"], ["title", "Neuromancer"], [["a", "b", "c"], {"d": [1, 2]}]],
	  "dissoc": ["draft", ["meta", "old"]]}')))->>'result';
SELECT patch FROM coherence_stream(12);
SELECT coherence_event(12)->'action'->'patch' = patch AS same_patch FROM coherence_stream(12);

-- Memory stays flat however many rows: the stream fills a tuplestore that
-- spills past work_mem. 20,000 rows (two histories of the longest allowed)
-- with work_mem at its minimum.
SELECT coherence_rebase(13, (SELECT jsonb_agg(pg_temp.act('bulk', i::text)) FROM generate_series(1, 10000) i))->>'result';
SELECT coherence_rebase(10013, (SELECT jsonb_agg(pg_temp.act('bulk', i::text)) FROM generate_series(10001, 20000) i))->>'result';
SET work_mem = '64kB';
SELECT count(*), min(seq_no), max(seq_no), bool_and(NOT replayed) FROM coherence_stream(13);
RESET work_mem;
