-- Snapshots are a cache: over 10,000 random patches on 200 aggregates, the
-- state read with snapshots equals the state without them, equals an
-- independent fold written in PL/pgSQL, at the end and at random points.
DROP EXTENSION coherence;
CREATE EXTENSION coherence;
SET coherence.snapshot_interval = 4;
SELECT setseed(0.42);

-- A random path of 1 to 3 keys out of a, b, c: as a key or an array.
CREATE FUNCTION pg_temp.random_path() RETURNS jsonb LANGUAGE sql AS $$
	SELECT CASE WHEN random() < 0.3 THEN to_jsonb(keys[1]) ELSE to_jsonb(keys) END
	FROM (SELECT array_agg(substr('abc', 1 + floor(random() * 3)::int, 1)) AS keys
	      FROM generate_series(1, 1 + floor(random() * 3)::int)) k
$$;
-- A random patch: assoc as an object or as [path, value] pairs, dissoc, or both.
CREATE FUNCTION pg_temp.random_patch() RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_strip_nulls(jsonb_build_object(
		'assoc', CASE WHEN r < 0.35 THEN jsonb_build_object(substr('abc', 1 + floor(random() * 3)::int, 1), floor(random() * 100))
		              WHEN r < 0.8 THEN (SELECT jsonb_agg(jsonb_build_array(pg_temp.random_path(), floor(random() * 100)))
		                                 FROM generate_series(1, 1 + floor(random() * 2)::int)) END,
		'dissoc', CASE WHEN r >= 0.6 THEN (SELECT jsonb_agg(pg_temp.random_path())
		                                  FROM generate_series(1, 1 + floor(random() * 2)::int)) END))
	FROM (SELECT random() AS r) x
$$;
-- The reference: the same rules, written independently in PL/pgSQL.
CREATE FUNCTION pg_temp.keys(path jsonb) RETURNS text[] LANGUAGE sql AS $$
	SELECT CASE WHEN jsonb_typeof(path) = 'string' THEN ARRAY[path #>> '{}']
	            ELSE ARRAY(SELECT jsonb_array_elements_text(path)) END
$$;
CREATE FUNCTION pg_temp.reference(kind text, id text, at bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	state jsonb;
	p jsonb;
	path jsonb;
	pair jsonb;
	k text[];
BEGIN
	FOR p IN SELECT a.patch FROM coherence_actions a
	          WHERE a.aggregate_kind = kind AND a.aggregate_id = id AND a.seq_no <= at ORDER BY a.seq_no LOOP
		state := coalesce(state, '{}');
		FOR path IN SELECT jsonb_array_elements(coalesce(p->'dissoc', '[]')) LOOP
			k := pg_temp.keys(path);
			IF jsonb_typeof(state #> k[1:cardinality(k) - 1]) = 'object' THEN
				state := state #- k;
			END IF;
		END LOOP;
		IF jsonb_typeof(p->'assoc') = 'object' THEN
			state := state || (p->'assoc');
		ELSIF p ? 'assoc' THEN
			FOR pair IN SELECT jsonb_array_elements(p->'assoc') LOOP
				k := pg_temp.keys(pair->0);
				FOR depth IN 1 .. cardinality(k) - 1 LOOP
					IF jsonb_typeof(state #> k[1:depth]) IS DISTINCT FROM 'object' THEN
						state := jsonb_set(state, k[1:depth], '{}');
					END IF;
				END LOOP;
				state := jsonb_set(state, k, pair->1);
			END LOOP;
		END IF;
	END LOOP;
	RETURN state;
END $$;

-- 100 histories of 100 actions on random aggregates among 200.
DO $$
BEGIN
	FOR i IN 1 .. 100 LOOP
		PERFORM coherence_rebase(coherence_seq_no() + 1, (
			SELECT jsonb_agg(jsonb_build_object('source', 'random', 'action', jsonb_build_object(
				'reason', 'r', 'actor', '["user", "u"]'::jsonb,
				'aggregate', jsonb_build_array('r', floor(random() * 200)::int),
				'patch', pg_temp.random_patch())))
			FROM generate_series(1, 100)));
	END LOOP;
END $$;
SELECT coherence_seq_no(), count(DISTINCT aggregate_id) AS aggregates FROM coherence_actions;
SELECT count(*) > 1000 AS many_snapshots FROM coherence_snapshots;

-- Reads: every aggregate at the end and at 5 random points each.
CREATE TEMP TABLE reads AS
	SELECT id::text, NULL::bigint AS at FROM generate_series(0, 199) id
	UNION ALL
	SELECT id::text, floor(random() * 10001)::bigint FROM generate_series(0, 199) id, generate_series(1, 5);
CREATE TEMP TABLE with_snapshots AS
	SELECT id, at, coherence_aggregate('r', id, at) AS state FROM reads;
TRUNCATE coherence_snapshots;
SELECT count(*) AS reads,
       count(*) FILTER (WHERE w.state IS DISTINCT FROM coherence_aggregate('r', w.id, w.at)) AS differ_without_snapshots,
       count(*) FILTER (WHERE w.state IS DISTINCT FROM pg_temp.reference('r', w.id, coalesce(w.at, 10000))) AS differ_from_reference,
       count(*) FILTER (WHERE w.state IS NULL) AS null_states
FROM with_snapshots w;

-- With snapshots off nothing new is written; the answers stay the same.
SET coherence.snapshot_interval = 0;
SELECT coherence_rebase(coherence_seq_no() + 1, (SELECT jsonb_agg(jsonb_build_object('source', 'random',
	'action', jsonb_build_object('reason', 'r', 'actor', '["user", "u"]'::jsonb,
	'aggregate', '["r", "7"]'::jsonb, 'patch', pg_temp.random_patch()))) FROM generate_series(1, 50)))->>'result';
SELECT count(*) AS snapshots FROM coherence_snapshots;
SELECT coherence_aggregate('r', '7') = pg_temp.reference('r', '7', 10050) AS same;
RESET coherence.snapshot_interval;
