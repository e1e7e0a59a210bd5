-- Upgrades: install the oldest version, use it, and update step by step; the
-- result matches a fresh install of the newest version.
DROP EXTENSION coherence;
CREATE EXTENSION coherence VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'coherence';

-- 1.0 works with the current library, even with snapshots asked for.
SET coherence.snapshot_interval = 1;
SELECT coherence_rebase(1, '[{"source": "s", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["book", "a"], "patch": {"assoc": {"title": "Neuromancer"}}}},
	{"source": "s", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["book", "a"], "patch": {"assoc": {"year": 1984}}}}]')->>'result';

ALTER EXTENSION coherence UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'coherence';

-- Events from before the update are kept and folded; appends go on.
SELECT coherence_seq_no(), coherence_aggregate('book', 'a');
SELECT coherence_rebase(3, '[{"source": "s", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["book", "a"], "patch": {"dissoc": ["year"]}}}]')->>'result';
SELECT coherence_aggregate('book', 'a');
SELECT coherence_advance('upgraded', 3);
SELECT coherence_checkpoint('upgraded');
RESET coherence.snapshot_interval;

ALTER EXTENSION coherence UPDATE TO '1.2';
SELECT extversion FROM pg_extension WHERE extname = 'coherence';

-- Everything from 1.1 is kept; appends and reads go on.
SELECT coherence_seq_no(), coherence_aggregate('book', 'a'), coherence_checkpoint('upgraded');
SELECT coherence_rebase(4, '[{"source": "s", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["book", "a"], "patch": {"assoc": {"year": 1986}}}}]')->>'result';
SELECT coherence_aggregate('book', 'a');

-- The updated extension's objects and privileges equal a fresh install's.
CREATE TEMP VIEW members AS
	SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object,
	       coalesce((SELECT p.proacl::text FROM pg_proc p
	                 WHERE d.classid = 'pg_proc'::regclass AND p.oid = d.objid), '') AS acl
	FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
	WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'coherence'
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
