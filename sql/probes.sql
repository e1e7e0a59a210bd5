-- The conflict check reads the head of the log and each aggregate's actions
-- straight from the extension's btree indexes. Whatever a DBA does to those
-- indexes, the answers stay the same: an index that no longer fits
-- (descending, partial, dropped) is not used, and SQL answers instead.
DROP EXTENSION coherence;
CREATE EXTENSION coherence;
\i sql/include/helpers.sql

-- 1-2, 4: account/1; 3: account/2; 5: account/3 linked to key/k; 6: effect on key/k.
SELECT pg_temp.summary(coherence_rebase(1, jsonb_build_array(
	pg_temp.act('account', '1'), pg_temp.act('account', '1'), pg_temp.act('account', '2'),
	pg_temp.act('account', '1'), pg_temp.act('account', '3', '[["key", "k"]]'),
	pg_temp.eff('key', 'k'))));

-- The same dry runs after each change below: every answer must be the same.
CREATE FUNCTION answers() RETURNS SETOF text LANGUAGE sql AS $$
	SELECT pg_temp.summary(coherence_rebase(2, jsonb_build_array(pg_temp.act('account', '1')), dry => true))
	UNION ALL
	SELECT pg_temp.summary(coherence_rebase(2, jsonb_build_array(pg_temp.act('account', '1')), '{2}', true))
	UNION ALL
	SELECT pg_temp.summary(coherence_rebase(2, jsonb_build_array(pg_temp.act('account', '1')), '{4,2}', true))
	UNION ALL
	SELECT pg_temp.summary(coherence_rebase(4, jsonb_build_array(
		pg_temp.act('account', '9'), pg_temp.act('account', '2'), pg_temp.act('account', '1')), dry => true))
	UNION ALL
	SELECT pg_temp.summary(coherence_rebase(3, jsonb_build_array(
		pg_temp.act('account', '9'), pg_temp.act('account', '2'), pg_temp.act('account', '1')), dry => true))
	UNION ALL
	SELECT pg_temp.summary(coherence_rebase(6, jsonb_build_array(pg_temp.act('account', '3')), dry => true))
	UNION ALL
	SELECT pg_temp.summary(coherence_rebase(7, jsonb_build_array(pg_temp.act('account', '3')), dry => true))
	UNION ALL
	SELECT pg_temp.summary(coherence_rebase(8, jsonb_build_array(pg_temp.act('account', '1')), dry => true))
$$;

-- A writer reads with a fresh snapshot that includes its own earlier append.
CREATE FUNCTION writes() RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
	RETURN NEXT pg_temp.summary(coherence_rebase(2, jsonb_build_array(pg_temp.act('account', '1')), '{2,4}'));
	RETURN NEXT pg_temp.summary(coherence_rebase(7, jsonb_build_array(pg_temp.act('account', '1'))));
	RETURN NEXT pg_temp.summary(coherence_rebase(8, jsonb_build_array(pg_temp.act('account', '1'))));
	RAISE EXCEPTION 'undo';
EXCEPTION WHEN raise_exception THEN
	RETURN;
END $$;

-- Whether a dry run read the named index. Called first thing in a new
-- session, it keeps the planner off indexes, so coherence's statements are
-- planned without index scans and only the probes touch it.
CREATE FUNCTION probed(index_name text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	before bigint := pg_stat_get_xact_numscans(index_name::regclass);
BEGIN
	SET LOCAL enable_indexscan = off;
	SET LOCAL enable_indexonlyscan = off;
	SET LOCAL enable_bitmapscan = off;
	PERFORM coherence_rebase(2, '[{"source": "test", "action": {"reason": "r",
		"actor": ["user", "u"], "aggregate": ["account", "1"], "patch": {"assoc": {"x": 1}}}}]', dry => true);
	RETURN pg_stat_get_xact_numscans(index_name::regclass) > before;
END $$;

-- As installed: the probes read the extension's indexes.
SELECT answers();
SELECT writes();
\c
SELECT probed('coherence_actions_aggregate_idx') AS aggregate_index_probed;
\i sql/include/helpers.sql

-- A descending index would hand out the newest action first: not used.
DROP INDEX coherence_actions_aggregate_idx;
CREATE INDEX actions_desc ON coherence_actions (aggregate_kind, aggregate_id, seq_no DESC);
SELECT answers();
SELECT writes();
\c
SELECT probed('actions_desc') AS desc_index_probed;
\i sql/include/helpers.sql

-- Neither is a partial index, nor an index that leads with other columns.
DROP INDEX actions_desc;
CREATE INDEX actions_partial ON coherence_actions (aggregate_kind, aggregate_id, seq_no)
	WHERE seq_no > 0;
CREATE INDEX actions_by_id ON coherence_actions (aggregate_id, aggregate_kind, seq_no);
SELECT answers();
SELECT writes();
\c
SELECT probed('actions_partial') OR probed('actions_by_id') AS other_indexes_probed;
\i sql/include/helpers.sql

-- No index at all on the aggregate, nor on the effects' seq_no.
DROP INDEX actions_partial, actions_by_id;
ALTER TABLE coherence_effects DROP CONSTRAINT coherence_effects_pkey;
SELECT answers();
SELECT writes();

-- Recreated, concurrently, and rebuilt: the probes use them again.
CREATE INDEX CONCURRENTLY coherence_actions_aggregate_idx
	ON coherence_actions (aggregate_kind, aggregate_id, seq_no);
ALTER TABLE coherence_effects ADD PRIMARY KEY (seq_no);
REINDEX INDEX CONCURRENTLY coherence_actions_aggregate_idx;
REINDEX INDEX CONCURRENTLY coherence_events_pkey;
SELECT answers();
SELECT writes();
\c
SELECT probed('coherence_actions_aggregate_idx') AS aggregate_index_probed;
\i sql/include/helpers.sql

-- An index marked invalid (as a failed CREATE INDEX CONCURRENTLY leaves
-- it) is not used either.
UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'coherence_effects_pkey'::regclass;
SELECT answers();
\c
SELECT probed('coherence_actions_aggregate_idx') AS aggregate_index_probed;
\i sql/include/helpers.sql
UPDATE pg_index SET indisvalid = true WHERE indexrelid = 'coherence_effects_pkey'::regclass;
\c
SELECT probed('coherence_actions_aggregate_idx') AS aggregate_index_probed;
\i sql/include/helpers.sql
