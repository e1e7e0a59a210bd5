-- Random inputs for coherence_rebase, drawn with random() so that setseed
-- makes a run reproducible. Every function is VOLATILE (the default).
CREATE SCHEMA fuzz;

-- A random integer in [lo, hi].
CREATE FUNCTION fuzz.rint(lo bigint, hi bigint) RETURNS bigint LANGUAGE sql
AS $$ SELECT lo + floor(random() * (hi - lo + 1))::bigint $$;

-- One of the choices at random.
CREATE FUNCTION fuzz.pick(VARIADIC choices text[]) RETURNS text LANGUAGE sql
AS $$ SELECT choices[fuzz.rint(1, cardinality(choices))] $$;

-- A string: plain, empty, unicode (combining, zero-width, right-to-left,
-- emoji), control characters, quotes, look-alikes of other types, and long
-- ones just under, at and over the documented limits, up to a megabyte.
CREATE FUNCTION fuzz.rstring() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r int := fuzz.rint(1, 1000);
BEGIN
	RETURN CASE
		WHEN r <= 400 THEN fuzz.pick('a', 'book', 'user', 'key', '1', '2', 'alice', 'title', 'create',
			'assoc', 'dissoc', 'action', 'effect', 'source', 'id', 'seq_no')
		WHEN r <= 480 THEN ''
		WHEN r <= 600 THEN fuzz.pick('ü', '✓', '漢字', '🙂🙃', E'\u200b', E'\u202eevil', E'e\u0301', E'\t\n\r', ' ',
			'"', '\', E'\x01\x1f', '🏳️‍🌈', E'\uffff', E'\U0010ffff', 'Ω≈ç√')
		WHEN r <= 700 THEN md5(random()::text)
		WHEN r <= 800 THEN fuzz.pick('1', '1.0', '-1', '1e0', 'null', 'true', '[]', '{}', '2026-11-22T10:00:00Z',
			'epoch', 'infinity', 'NaN', '0x10', '00000000-0000-0000-0000-000000000000')
		WHEN r <= 900 THEN repeat(fuzz.pick('x', 'ü', '🙂'), fuzz.rint(200, 1100)::int)
		WHEN r <= 990 THEN repeat('y', fuzz.rint(1000, 5000)::int)
		WHEN r <= 999 THEN repeat('z', 100000)
		ELSE repeat('w', 1000000)
	END;
END
$$;

-- A number: integral in several spellings, fractions, huge, tiny, negative zero.
CREATE FUNCTION fuzz.rnumber() RETURNS jsonb LANGUAGE sql AS $$
	SELECT fuzz.pick('0', '1', '-1', '1.0', '1e0', '10E-1', '1.5', '-0', '0.0', '1e308', '1e1000', '-1e1000',
		'1e-300', '9223372036854775807', '9223372036854775808', '-9223372036854775809',
		'123456789012345678901234567890', '3.14159', fuzz.rint(-1000, 100000)::text)::jsonb
$$;

-- Values too costly to build on every call: nesting 100, 1000 and 3000 deep,
-- arrays of 1000 to 200,000 items.
CREATE TABLE fuzz.pool (id int PRIMARY KEY, value jsonb NOT NULL);
INSERT INTO fuzz.pool
SELECT row_number() OVER (), value FROM (
	SELECT (repeat('[', n) || '"deep"' || repeat(']', n))::jsonb FROM unnest(ARRAY[100, 1000, 3000]) n
	UNION ALL
	SELECT (repeat('{"a": ', n) || '"deep"' || repeat('}', n))::jsonb FROM unnest(ARRAY[100, 1000, 3000]) n
	UNION ALL
	SELECT (SELECT jsonb_agg(i) FROM generate_series(1, n) i) FROM unnest(ARRAY[1000, 20000, 200000]) n) values (value);

-- Any JSON value: scalars, small arrays and objects, deep nesting, huge arrays.
CREATE FUNCTION fuzz.rvalue(depth int DEFAULT 0) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	r int := fuzz.rint(1, 1000);
	n int;
	value jsonb;
BEGIN
	IF depth > 1 AND r > 600 THEN
		r := fuzz.rint(1, 600);
	END IF;
	IF r <= 100 THEN
		RETURN 'null';
	ELSIF r <= 180 THEN
		RETURN to_jsonb(random() < 0.5);
	ELSIF r <= 330 THEN
		RETURN fuzz.rnumber();
	ELSIF r <= 600 THEN
		RETURN to_jsonb(fuzz.rstring());
	ELSIF r <= 750 THEN
		SELECT coalesce(jsonb_agg(fuzz.rvalue(depth + 1)), '[]') INTO value FROM generate_series(1, fuzz.rint(0, 4));
		RETURN value;
	ELSIF r <= 990 THEN
		SELECT coalesce(jsonb_object_agg(fuzz.rstring(), fuzz.rvalue(depth + 1)), '{}') INTO value
		  FROM generate_series(1, fuzz.rint(0, 4));
		RETURN value;
	END IF;
	n := fuzz.rint(1, (SELECT count(*) FROM fuzz.pool));
	SELECT p.value INTO value FROM fuzz.pool p WHERE p.id = n;
	RETURN value;
END
$$;

-- An identity [kind, id]; ids as strings or as integral numbers in any spelling.
CREATE FUNCTION fuzz.identity(kind text, ids int) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_array(kind, CASE fuzz.rint(1, 4)
		WHEN 1 THEN to_jsonb(fuzz.rint(1, ids))
		WHEN 2 THEN (fuzz.rint(1, ids) || fuzz.pick('.0', 'e0', '.00', '0e-1'))::jsonb
		ELSE to_jsonb(fuzz.rint(1, ids)::text) END)
$$;

-- A valid event: an action on one of 5 books (object, path or dissoc patch,
-- sometimes triggers) or an effect on one of 5 keys; sometimes with a
-- timestamp, sometimes with an id.
CREATE FUNCTION fuzz.valid_event() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	event jsonb;
	patch jsonb;
BEGIN
	IF random() < 0.15 THEN
		event := jsonb_build_object('source', fuzz.pick('keystore', 'ü'),
			'effect', jsonb_build_object('reason', 'expired', 'trigger', fuzz.identity('key', 5)));
	ELSE
		patch := CASE fuzz.rint(1, 4)
			WHEN 1 THEN jsonb_build_object('assoc', jsonb_build_object(fuzz.pick('title', 'n', 'ü', ''), fuzz.rvalue(2)))
			WHEN 2 THEN jsonb_build_object('assoc', jsonb_build_array(jsonb_build_array(
				(SELECT jsonb_agg(fuzz.pick('a', 'b', 'c', '🙂')) FROM generate_series(1, fuzz.rint(1, 5))), fuzz.rvalue(2))))
			WHEN 3 THEN jsonb_build_object('dissoc', jsonb_build_array('title', jsonb_build_array('a', 'b')))
			ELSE jsonb_build_object('assoc', jsonb_build_object('x', fuzz.rint(1, 9)), 'dissoc', jsonb_build_array('y'))
		END;
		event := jsonb_build_object('source', fuzz.pick('fuzz', 'ü', 'a b'),
			'action', jsonb_build_object('reason', fuzz.pick('create', 'update'),
				'actor', fuzz.identity('user', 3), 'aggregate', fuzz.identity('book', 5), 'patch', patch));
		IF random() < 0.3 THEN
			event := event || jsonb_build_object('triggers', jsonb_build_array(fuzz.identity('key', 5)));
		END IF;
	END IF;
	IF random() < 0.3 THEN
		event := event || jsonb_build_object('timestamp', fuzz.pick('2026-11-22T10:00:00Z', '2026-11-22T10:00:00.123456+05:30',
			'1999-01-01T00:00:00-12:00', '2026-02-28T23:59:59.9Z'));
	END IF;
	IF random() < 0.2 THEN
		event := event || jsonb_build_object('id', gen_random_uuid());
	END IF;
	RETURN event;
END
$$;

-- A random change somewhere inside a value: descend to a random place, then
-- drop, add or duplicate a key or item, wrap it, or replace it by anything.
CREATE FUNCTION fuzz.mutate(value jsonb, depth int DEFAULT 0) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	kind text := jsonb_typeof(value);
	r int := fuzz.rint(1, 10);
	key text;
	i int;
BEGIN
	IF kind = 'object' AND value <> '{}' AND depth < 30 AND random() < 0.7 THEN
		SELECT k INTO key FROM jsonb_object_keys(value) k ORDER BY random() LIMIT 1;
		IF r <= 6 THEN
			RETURN jsonb_set(value, ARRAY[key], fuzz.mutate(value -> key, depth + 1));
		ELSIF r <= 8 THEN
			RETURN value - key;
		END IF;
		RETURN value || jsonb_build_object(fuzz.pick('source', 'action', 'effect', 'triggers', 'timestamp', 'id',
			'reason', 'actor', 'aggregate', 'patch', 'trigger', 'assoc', 'dissoc', 'seq_no', 'extra', fuzz.rstring()),
			fuzz.rvalue(1));
	ELSIF kind = 'array' AND value <> '[]' AND depth < 30 AND random() < 0.7 THEN
		i := fuzz.rint(0, jsonb_array_length(value) - 1);
		IF r <= 6 THEN
			RETURN jsonb_set(value, ARRAY[i::text], fuzz.mutate(value -> i, depth + 1));
		ELSIF r <= 7 THEN
			RETURN value - i;
		ELSIF r <= 8 THEN
			RETURN value || jsonb_build_array(value -> i);
		ELSIF r <= 9 THEN
			RETURN value || jsonb_build_array(fuzz.rvalue(1));
		END IF;
		RETURN jsonb_build_array(value);
	ELSIF kind = 'string' AND r <= 5 THEN
		RETURN to_jsonb(fuzz.rstring());
	ELSIF kind = 'number' AND r <= 5 THEN
		RETURN fuzz.rnumber();
	END IF;
	RETURN fuzz.rvalue(1);
END
$$;

-- Histories over the events limit, built once.
CREATE TABLE fuzz.huge_histories (id int PRIMARY KEY, history jsonb NOT NULL);
INSERT INTO fuzz.huge_histories
SELECT id, (SELECT jsonb_agg(copy.event) FROM generate_series(1, size), LATERAL (SELECT e.event) copy)
  FROM (VALUES (1, 10001), (2, 20000), (3, 100000)) sizes (id, size), LATERAL (SELECT fuzz.valid_event() AS event) e;

-- A history: mostly 1 to 4 events, each valid, mutated or anything; sometimes
-- mutated as a whole, not an array, empty, or far over the events limit.
CREATE FUNCTION fuzz.history() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	r int := fuzz.rint(1, 1000);
	history jsonb;
BEGIN
	IF r <= 20 THEN
		RETURN fuzz.rvalue(0);
	ELSIF r <= 30 THEN
		RETURN '[]';
	ELSIF r <= 33 THEN
		RETURN NULL;
	ELSIF r <= 36 THEN
		r := fuzz.rint(1, 3);
		SELECT h.history INTO history FROM fuzz.huge_histories h WHERE h.id = r;
		RETURN history;
	ELSIF r <= 41 THEN
		SELECT jsonb_agg(fuzz.valid_event()) INTO history FROM generate_series(1, fuzz.rint(20, 100));
		RETURN history;
	END IF;
	SELECT jsonb_agg(CASE WHEN x < 0.45 THEN fuzz.valid_event()
	                      WHEN x < 0.9 THEN fuzz.mutate(fuzz.valid_event())
	                      ELSE fuzz.rvalue(1) END)
	  INTO history FROM (SELECT random() AS x FROM generate_series(1, fuzz.rint(1, 4))) draws;
	IF random() < 0.2 THEN
		history := fuzz.mutate(history);
	END IF;
	RETURN history;
END
$$;

-- A base: mostly the next seq_no or an earlier one (conflicts), sometimes
-- past it (invalid-seq-no), below 1, extreme or NULL.
CREATE FUNCTION fuzz.base(head bigint) RETURNS bigint LANGUAGE sql AS $$
	SELECT CASE
		WHEN r <= 500 THEN head + 1
		WHEN r <= 800 THEN fuzz.rint(1, head + 1)
		WHEN r <= 880 THEN head + fuzz.rint(2, 5)
		WHEN r <= 910 THEN 0
		WHEN r <= 930 THEN -1
		WHEN r <= 950 THEN -9223372036854775808
		WHEN r <= 970 THEN 9223372036854775807
		WHEN r <= 980 THEN NULL
		ELSE head + 1 END
	FROM fuzz.rint(1, 1000) r
$$;

-- resolved: mostly empty or real seq_nos; sometimes NULLs, duplicates,
-- values below 1, two dimensions, huge, or NULL itself.
CREATE FUNCTION fuzz.resolved(head bigint) RETURNS bigint[] LANGUAGE sql AS $$
	SELECT CASE
		WHEN r <= 700 THEN '{}'
		WHEN r <= 850 THEN ARRAY(SELECT fuzz.rint(1, head + 1) FROM generate_series(1, fuzz.rint(1, 3)))
		WHEN r <= 880 THEN ARRAY[NULL::bigint]
		WHEN r <= 910 THEN ARRAY[1, 1]::bigint[]
		WHEN r <= 930 THEN ARRAY[0]::bigint[]
		WHEN r <= 950 THEN ARRAY[-5]::bigint[]
		WHEN r <= 970 THEN '{{1},{2}}'::bigint[]
		WHEN r <= 980 THEN ARRAY[9223372036854775807]
		WHEN r <= 990 THEN ARRAY(SELECT generate_series(1, 100000)::bigint)
		ELSE NULL END
	FROM fuzz.rint(1, 1000) r
$$;
