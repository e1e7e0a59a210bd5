-- Strict timestamps, canonical numeric ids and input limits: each refusal
-- is a class-22 error naming the field, the same for dry runs and appends,
-- and writes nothing.
DROP EXTENSION coherence;
CREATE EXTENSION coherence;
\i sql/include/helpers.sql

-- Stores a timestamp given in an event and returns it as UTC text.
CREATE FUNCTION pg_temp.stamp(ts text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	answer jsonb;
BEGIN
	answer := coherence_rebase(coherence_seq_no() + 1,
		pg_temp.bad('{timestamp}', to_jsonb(ts)));
	RETURN (SELECT to_char(e."timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')
	        FROM coherence_events e WHERE e.seq_no = (answer #>> '{events,0,seq_no}')::bigint);
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ' ' || SQLERRM;
END $$;

-- Timestamps: ISO 8601 with a date, a time and an explicit offset only.
SELECT ts, pg_temp.stamp(ts) FROM unnest(ARRAY[
	'2026-11-22T10:00:00Z', '2026-11-22t10:00:00z', '2026-11-22 10:00:00Z',
	'2026-11-22T11:30:00+01:30', '2026-11-22T11:30:00+0130', '2026-11-22T05:00:00-05',
	'2026-11-22T10:00:00.123456Z', '2026-11-22T10:00:00.1234565Z', '2026-11-22T10:00:00.5Z',
	'2028-02-29T00:00:00Z', '0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999999Z',
	'2026-11-22T23:59:59-15:59']) AS ts;
SELECT ts, pg_temp.stamp(ts) FROM unnest(ARRAY[
	'epoch', 'yesterday', 'now', 'infinity', '01/02/2026 10:00', '2026-11-22T10:00:00',
	'2026-11-22', '2026-11-22T10:00Z', '2026-02-30T10:00:00Z', '2027-02-29T10:00:00Z',
	'2026-11-22T24:00:00Z', '2026-11-22T10:60:00Z', '2026-11-22T10:00:60Z',
	'0000-01-01T00:00:00Z', '2026-11-22T10:00:00+16:00', '2026-11-22T10:00:00+01:60',
	'2026-11-22T10:00:00.Z', '2026-11-22T10:00:00 Z', '2026-11-22T10:00:00Z ',
	' 2026-11-22T10:00:00Z', '2026-11-22T10:00:00 Europe/Paris', '+2026-11-22T10:00:00Z',
	'26-11-22T10:00:00Z', '2026-1-22T10:00:00Z', '2026-11-22T10:00:00+1']) AS ts;

-- The same text is the same instant under every DateStyle and TimeZone.
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'Pacific/Kiritimati';
SELECT pg_temp.stamp('2026-01-02T10:00:00+01:00');
SET DateStyle = 'German, MDY';
SET TimeZone = 'America/Anchorage';
SELECT pg_temp.stamp('2026-01-02T10:00:00+01:00');
RESET DateStyle;
RESET TimeZone;

-- Numeric ids are canonical: 1, 1.0, 1e0 and "1" are one aggregate, so a
-- stale base on one conflicts with an append on another.
SELECT coherence_seq_no() + 1 AS base \gset
SELECT pg_temp.summary(coherence_rebase(:base, '[{"source": "s", "action": {"reason": "r",
	"actor": ["user", 7.0], "aggregate": ["receipt", 1.0], "patch": {"assoc": {"k": 1}}},
	"triggers": [["key", 1e2]]}]'));
SELECT actor_id, aggregate_id, triggers FROM coherence_stream(:base);
SELECT id, pg_temp.summary(coherence_rebase(:base, jsonb_build_array(jsonb_set(
	pg_temp.act('receipt', 'x'), '{action,aggregate,1}', id)), '{}', true)) AS answer
FROM unnest(ARRAY['1'::jsonb, '1.0', '1e0', '"1"', '10e-1', '0.1e1', '2']) AS id;
SELECT id, pg_temp.try(1, pg_temp.bad('{action,aggregate,1}', id))
FROM unnest(ARRAY['1.5'::jsonb, '1e-1', '0.0001', '-2.25']) AS id;
SELECT pg_temp.try(coherence_seq_no() + 1, pg_temp.bad('{action,aggregate}',
	'["big", 12345678901234567890123e2]'));
SELECT pg_temp.try(coherence_seq_no() + 1, pg_temp.bad('{action,aggregate}', '["big", -0.0]'));
SELECT aggregate_id FROM coherence_stream(0) WHERE aggregate_kind = 'big';

-- Limits: sizes are refused with the field and the limit, before any work.
SELECT pg_temp.try(1, pg_temp.bad('{action,aggregate}', to_jsonb(ARRAY['book', repeat('x', 1024)])), dry => true) AS id_at_limit;
SELECT pg_temp.try(1, pg_temp.bad('{action,aggregate}', to_jsonb(ARRAY['book', repeat('x', 1025)])));
SELECT pg_temp.try(1, pg_temp.bad('{action,aggregate}', to_jsonb(ARRAY['book', repeat('é', 513)])));
SELECT pg_temp.try(1, pg_temp.bad('{action,aggregate}', to_jsonb(ARRAY['book', repeat('x', 3000)])), dry => true);
SELECT pg_temp.try(1, pg_temp.bad('{action,aggregate}', to_jsonb(ARRAY[repeat('k', 257), 'b'])));
SELECT pg_temp.try(1, pg_temp.bad('{action,actor}', to_jsonb(ARRAY[repeat('k', 257), 'u'])));
SELECT pg_temp.try(1, pg_temp.bad('{triggers}', jsonb_build_array(to_jsonb(ARRAY['key', repeat('x', 1025)]))));
SELECT pg_temp.try(1, pg_temp.bad('{action,aggregate}', ('["book", 1' || repeat('0', 1024) || ']')::jsonb));
SELECT pg_temp.try(1, pg_temp.bad('{source}', to_jsonb(repeat('s', 1025))));
SELECT pg_temp.try(1, pg_temp.bad('{action,reason}', to_jsonb(repeat('r', 1025))));
SELECT pg_temp.try(1, ('[{"source": "s", "effect": {"reason": "' || repeat('r', 1025) || '", "trigger": ["k", "1"]}}]')::jsonb);
SELECT pg_temp.try(coherence_seq_no() + 1, pg_temp.bad('{action,patch}', jsonb_build_object('assoc',
	jsonb_build_array(jsonb_build_array((SELECT jsonb_agg('k' || i) FROM generate_series(1, 32) i), 1)))),
	dry => true) AS path_at_limit;
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', jsonb_build_object('assoc',
	jsonb_build_array(jsonb_build_array((SELECT jsonb_agg('k' || i) FROM generate_series(1, 33) i), 1)))));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', jsonb_build_object('dissoc',
	jsonb_build_array((SELECT jsonb_agg('k' || i) FROM generate_series(1, 10000) i)))));
SELECT pg_temp.try(1, pg_temp.bad('{triggers}', (SELECT jsonb_agg(jsonb_build_array('key', i)) FROM generate_series(1, 1001) i)));
SELECT pg_temp.try(1, (SELECT jsonb_agg(pg_temp.act('book', 'b')) FROM generate_series(1, 10001)));
-- A dry run refuses exactly what an append refuses.
SELECT pg_temp.try(1, (SELECT jsonb_agg(pg_temp.act('book', 'b')) FROM generate_series(1, 10001)), dry => true);
SELECT pg_temp.try(1, pg_temp.bad('{action,aggregate}', to_jsonb(ARRAY['book', repeat('x', 3000)])));

-- A long patch folds in one pass: 20,000 keys, a 32-key path, and dissocs.
SELECT coherence_seq_no() + 1 AS base \gset
SELECT pg_temp.summary(coherence_rebase(:base, jsonb_build_array(
	pg_temp.act('wide', 'w', '[]', jsonb_build_object('assoc',
		(SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 20000) i))),
	pg_temp.act('wide', 'w', '[]', jsonb_build_object('assoc',
		(SELECT jsonb_agg(jsonb_build_array(jsonb_build_array('n' || i, 'x'), i)) FROM generate_series(1, 20000) i),
		'dissoc', (SELECT jsonb_agg('k' || i) FROM generate_series(1, 10000) i))),
	pg_temp.act('wide', 'w', '[]', jsonb_build_object('assoc', jsonb_build_array(jsonb_build_array(
		(SELECT jsonb_agg('d' || i) FROM generate_series(1, 32) i), 'deep'))))))) AS answer \gset
SELECT :'answer' LIKE 'ok events=[%' AS appended;
SELECT (SELECT count(*) FROM jsonb_object_keys(s) k WHERE k LIKE 'k%') AS k_keys,
       (SELECT count(*) FROM jsonb_object_keys(s) k WHERE k LIKE 'n%') AS n_keys,
       s->'k10001' AS k10001, s->'k1' AS k1, s #> '{n20000,x}' AS n20000,
       s #>> (SELECT array_agg('d' || i) FROM generate_series(1, 32) i) AS deep
FROM coherence_aggregate('wide', 'w') AS s;

-- Nothing was written by a refused call.
SELECT count(*) AS events, count(*) FILTER (WHERE source <> 's' AND source <> 'test') AS odd
FROM coherence_events;
