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

-- The updated extension's objects and privileges equal a fresh install's.
CREATE TEMP VIEW members AS
	SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object,
	       coalesce((SELECT p.proacl::text FROM pg_proc p
	                 WHERE d.classid = 'pg_proc'::regclass AND p.oid = d.objid), '') AS acl
	FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
	WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'coherence';
CREATE TEMP TABLE upgraded AS SELECT * FROM members;
DROP EXTENSION coherence;
CREATE EXTENSION coherence;
CREATE TEMP TABLE fresh AS SELECT * FROM members;
SELECT count(*) AS objects FROM fresh;
(SELECT 'only upgraded' AS side, * FROM upgraded EXCEPT SELECT 'only upgraded', * FROM fresh)
UNION ALL
(SELECT 'only fresh', * FROM fresh EXCEPT SELECT 'only fresh', * FROM upgraded);
