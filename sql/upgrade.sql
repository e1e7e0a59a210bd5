-- Upgrades: install the oldest version, use it, and update step by step; the
-- result matches a fresh install of the newest version.
DROP EXTENSION coherence;
CREATE EXTENSION coherence VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'coherence';

-- The library serves only the current version: an older installation is
-- refused with a clear error until it is updated.
SELECT coherence_seq_no();

-- Events that the 1.0 library wrote.
INSERT INTO coherence_events VALUES (1, '2026-11-22 10:00:00+00', 's'), (2, '2026-11-22 10:01:00+00', 's');
INSERT INTO coherence_actions VALUES
	(1, 'r', 'user', 'u', 'book', 'a', '{"assoc": {"title": "Neuromancer"}}'),
	(2, 'r', 'user', 'u', 'book', 'a', '{"assoc": {"year": 1984}}');

ALTER EXTENSION coherence UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'coherence';
SELECT coherence_rebase(3, '[{"source": "s", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["book", "a"], "patch": {"dissoc": ["year"]}}}]');

-- A snapshot and a checkpoint that the 1.1 library wrote.
INSERT INTO coherence_snapshots VALUES ('book', 'a', 2, '{"title": "Neuromancer", "year": 1984}');
INSERT INTO coherence_checkpoints (name, seq_no) VALUES ('upgraded', 2);
-- A reader role granted the stream keeps its grant through the update.
CREATE ROLE coherence_upgrade_reader;
GRANT EXECUTE ON FUNCTION coherence_stream(bigint, bigint, text[]) TO coherence_upgrade_reader;

ALTER EXTENSION coherence UPDATE TO '1.2';
SELECT extversion FROM pg_extension WHERE extname = 'coherence';

-- Everything from before is kept; appends and reads go on.
SELECT coherence_seq_no(), coherence_aggregate('book', 'a'), coherence_checkpoint('upgraded');
SELECT coherence_rebase(3, '[{"source": "s", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["book", "a"], "patch": {"dissoc": ["year"]}}}]')->>'result';
SELECT coherence_aggregate('book', 'a'), coherence_aggregate('book', 'a', 2);
SELECT coherence_advance('upgraded', 3);
SELECT has_function_privilege('coherence_upgrade_reader',
	'coherence_stream(bigint, bigint, text[])', 'EXECUTE') AS reader_keeps_stream;
SET ROLE coherence_upgrade_reader;
SELECT seq_no, aggregate_id, id FROM coherence_stream(0);
RESET ROLE;
-- PostgreSQL 17 records the grant in the initial privileges too.
DROP OWNED BY coherence_upgrade_reader;
DROP ROLE coherence_upgrade_reader;

-- The updated extension's objects and privileges equal a fresh install's.
CREATE TEMP VIEW members AS
	SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object,
	       coalesce((SELECT p.proacl::text FROM pg_proc p
	                 WHERE d.classid = 'pg_proc'::regclass AND p.oid = d.objid), '') AS acl
	FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
	WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'coherence'
	  -- PostgreSQL 17 also records the tables' row types as members.
	  AND d.classid <> 'pg_type'::regclass
	UNION ALL
	SELECT 'dumped by pg_dump: ' || c::regclass::text, ''
	FROM pg_extension e, unnest(e.extconfig) c WHERE e.extname = 'coherence'
	UNION ALL
	SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text, t.tgenabled::text
	FROM pg_trigger t WHERE NOT t.tgisinternal AND t.tgrelid::regclass::text LIKE 'coherence%';
CREATE TEMP TABLE upgraded AS SELECT * FROM members;
DROP EXTENSION coherence;
CREATE EXTENSION coherence;
CREATE TEMP TABLE fresh AS SELECT * FROM members;
SELECT count(*) AS objects FROM fresh;
(SELECT 'only upgraded' AS side, * FROM upgraded EXCEPT SELECT 'only upgraded', * FROM fresh)
UNION ALL
(SELECT 'only fresh', * FROM fresh EXCEPT SELECT 'only fresh', * FROM upgraded);
