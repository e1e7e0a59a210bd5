-- Idempotent appends: a history whose events carry ids, sent again, is
-- answered with the stored events and written once; any other reuse of a
-- stored id is 23505, naming history[i].id; malformed ids are 22023.
DROP EXTENSION coherence;
CREATE EXTENSION coherence;
\i sql/include/helpers.sql

-- An event with the given id (NULL for none).
CREATE FUNCTION pg_temp.with_id(event jsonb, id text) RETURNS jsonb LANGUAGE sql AS $$
	SELECT CASE WHEN id IS NULL THEN event ELSE event || jsonb_build_object('id', id) END
$$;
CREATE TEMP VIEW counts AS
	SELECT (SELECT count(*) FROM coherence_events) AS events,
	       (SELECT count(*) FROM coherence_actions) AS actions,
	       (SELECT count(*) FROM coherence_triggers) AS triggers;

\set history '(SELECT jsonb_build_array(pg_temp.with_id(pg_temp.act(''book'', ''a'', ''[["key", "1"]]''), ''5F0E7C1A-93B2-4D6E-8A41-2C9F6B3D7E10''), pg_temp.with_id(pg_temp.eff(''key'', ''9''), ''a7c2e9d43b1f4e8a9c6d0b5e2f1a3c4d'')))'

-- The first call stores both events; ids come back lowercase and hyphenated.
SELECT coherence_rebase(1, :history) AS first \gset
SELECT :'first'::jsonb->>'result' AS result, :'first'::jsonb ? 'duplicate' AS duplicate,
       jsonb_path_query_array(:'first'::jsonb, '$.events[*].id') AS ids;
SELECT * FROM counts;

-- The same history again: the same answer, marked duplicate, nothing written.
SELECT coherence_rebase(1, :history) AS second \gset
SELECT :'second'::jsonb->>'result' AS result, :'second'::jsonb->'duplicate' AS duplicate,
       (:'second'::jsonb - 'duplicate') = :'first'::jsonb AS same_answer;
SELECT * FROM counts;

-- Still a duplicate after other appends landed in between, even on the
-- same aggregate (a retry never conflicts with itself), and as a dry run.
SELECT pg_temp.summary(coherence_rebase(3, jsonb_build_array(pg_temp.act('book', 'a'))));
SELECT pg_temp.summary(r), r->'duplicate' AS duplicate
FROM coherence_rebase(1, :history) r;
SELECT pg_temp.summary(r), r->'duplicate' AS duplicate
FROM coherence_rebase(1, :history, dry => true) r;
-- A retry that leaves the timestamp out matches the one stored; the ids
-- may be written in any case, with or without hyphens.
SELECT pg_temp.summary(coherence_rebase(1, jsonb_build_array(
	pg_temp.with_id(pg_temp.act('book', 'a', '[["key", "1"]]'), '5f0e7c1a93b24d6e8a412c9f6b3d7e10'),
	pg_temp.with_id(pg_temp.eff('key', '9'), 'A7C2E9D4-3B1F-4E8A-9C6D-0B5E2F1A3C4D')))) AS retried;
SELECT coherence_event(1)->>'id' AS id_of_1, coherence_event(3) ? 'id' AS event_3_has_id;
SELECT seq_no, id FROM coherence_stream(0) ORDER BY seq_no;
SELECT * FROM counts;

-- Stored events at consecutive seq_nos with the same content are a retry,
-- whatever call stored them: here the first event alone.
SELECT pg_temp.summary(r), r->'duplicate' AS duplicate
FROM coherence_rebase(4, jsonb_build_array((:history)->0)) r;

-- Anything else is 23505 and writes nothing: a partial overlap, more events,
-- another order, changed content, a stated timestamp that differs.
SELECT pg_temp.try(4, :history || jsonb_build_array(pg_temp.with_id(pg_temp.act('book', 'c'),
	'00000000-0000-4000-8000-000000000001')));
SELECT pg_temp.try(4, jsonb_build_array(pg_temp.with_id(pg_temp.act('book', 'new'),
	'00000000-0000-4000-8000-000000000002'), (:history)->0, (:history)->1));
SELECT pg_temp.try(4, jsonb_build_array((:history)->1, (:history)->0));
SELECT pg_temp.try(4, jsonb_build_array(jsonb_set((:history)->0, '{action,patch}', '{"assoc": {"x": 2}}'),
	(:history)->1));
SELECT pg_temp.try(4, jsonb_build_array(jsonb_set((:history)->0, '{triggers}', '[]'), (:history)->1));
SELECT pg_temp.try(4, jsonb_build_array((:history)->0,
	jsonb_set((:history)->1, '{effect,trigger}', '["key", "10"]')));
SELECT pg_temp.try(4, jsonb_build_array((:history)->0 || '{"timestamp": "2020-01-01T00:00:00Z"}',
	(:history)->1));
SELECT pg_temp.try(4, jsonb_build_array((:history)->0, pg_temp.act('book', 'no-id')));
SELECT pg_temp.try(4, jsonb_build_array((:history)->0, pg_temp.act('book', 'no-id')), dry => true);
-- Outside a handler the error carries its detail and hint.
SELECT coherence_rebase(4, jsonb_build_array((:history)->0, pg_temp.act('book', 'no-id')));
SELECT * FROM counts;

-- Malformed ids, and the same id twice in one history, are 22023.
SELECT id, pg_temp.try(4, jsonb_build_array(pg_temp.act('book', 'x') || jsonb_build_object('id', id)))
FROM unnest(ARRAY['"not-a-uuid"'::jsonb, '"5f0e7c1a-93b2-4d6e-8a41-2c9f6b3d7e1"',
	'"5f0e7c1a-93b2-4d6e-8a41-2c9f6b3d7e10-"', '"5f0e7c1a93b2-4d6e-8a41-2c9f6b3d7e10"',
	'"{5f0e7c1a-93b2-4d6e-8a41-2c9f6b3d7e10}"', '"5g0e7c1a-93b2-4d6e-8a41-2c9f6b3d7e10"',
	'12345', 'null', '""']) AS id;
SELECT pg_temp.try(4, jsonb_build_array(
	pg_temp.with_id(pg_temp.act('book', 'x'), '00000000-0000-4000-8000-0000000000aa'),
	pg_temp.with_id(pg_temp.act('book', 'y'), '00000000-0000-4000-8000-0000000000AA')));
SELECT * FROM counts;
