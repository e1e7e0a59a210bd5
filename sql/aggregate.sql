-- coherence_aggregate: an aggregate's state folded from its patches.
DROP EXTENSION coherence;
CREATE EXTENSION coherence;

-- Appends one action with the given patch on book/<id>.
CREATE FUNCTION pg_temp.patch(id text, patch jsonb) RETURNS bigint LANGUAGE sql AS $$
	SELECT (coherence_rebase(coherence_seq_no() + 1, jsonb_build_array(jsonb_build_object(
		'source', 'test', 'action', jsonb_build_object('reason', 'r', 'actor', '["user", "u"]'::jsonb,
		'aggregate', jsonb_build_array('book', id), 'patch', patch)))) #>> '{events,0,seq_no}')::bigint
$$;

-- No actions: NULL.
SELECT coherence_aggregate('book', 'nothing') IS NULL AS unknown_is_null;

SELECT pg_temp.patch('n', '{"assoc": {"title": "Neuromancer", "genre": "SciFi"}}');        -- 1
SELECT pg_temp.patch('n', '{"assoc": [[["meta", "isbn"], "978-0441569595"], ["year", 1984]]}'); -- 2
SELECT pg_temp.patch('other', '{"assoc": {"title": "Count Zero"}}');                         -- 3
SELECT pg_temp.patch('n', '{"assoc": [[["meta", "rating", "stars"], 5]], "dissoc": ["genre"]}'); -- 4
SELECT pg_temp.patch('n', '{"dissoc": [["meta", "isbn"], "missing", ["meta", "missing", "deeper"]]}'); -- 5
SELECT pg_temp.patch('n', '{"assoc": [[["year", "first"], 1984]]}');                         -- 6
SELECT pg_temp.patch('n', '{"dissoc": [["year", "first"]], "assoc": {"year": {"first": 1984}}}'); -- 7
SELECT pg_temp.patch('n', '{"assoc": {"tags": ["cyberpunk", "sprawl"]}}');                   -- 8
SELECT pg_temp.patch('n', '{"dissoc": [["tags", "0"]]}');                                    -- 9

-- assoc sets top-level keys and nested paths, creating objects on the way.
SELECT coherence_aggregate('book', 'n', 1) AS at_1;
SELECT coherence_aggregate('book', 'n', 2) AS at_2;
-- Another aggregate's actions do not count; at_seq_no between actions.
SELECT coherence_aggregate('book', 'n', 3) = coherence_aggregate('book', 'n', 2) AS unchanged_by_3;
SELECT coherence_aggregate('book', 'other') AS other;
-- dissoc removes keys and paths; missing ones are no error.
SELECT coherence_aggregate('book', 'n', 4) AS at_4;
SELECT coherence_aggregate('book', 'n', 5) AS at_5;
-- A value standing in the way of a nested path is replaced by an object.
SELECT coherence_aggregate('book', 'n', 6) AS at_6;
-- Within a patch dissoc comes first, so dissoc then assoc of a key resets it.
SELECT coherence_aggregate('book', 'n', 7) -> 'year' AS year_at_7;
-- Paths are keys: a dissoc path through an array removes nothing.
SELECT coherence_aggregate('book', 'n') -> 'tags' AS tags;
-- Before the first action: NULL.
SELECT coherence_aggregate('book', 'n', 0) IS NULL AS before_first, coherence_aggregate('book', 'other', 2) IS NULL AS other_before;

-- Numeric ids: the aggregate is found by the text form.
SELECT coherence_rebase(10, '[{"source": "test", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["receipt", 1], "patch": {"assoc": {"total": 100}}}}]')->>'result';
SELECT coherence_aggregate('receipt', '1');

-- State and base read in one statement agree.
SELECT coherence_aggregate('book', 'n') -> 'title' AS title, coherence_seq_no() + 1 AS base;

-- Bad arguments.
SELECT coherence_aggregate(NULL, 'n');
SELECT coherence_aggregate('book', NULL);
SELECT coherence_aggregate('book', 'n', -1);
