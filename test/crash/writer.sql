-- One writer's transaction (psql, variables writer and round): append 1 to 3
-- events on the writer's own aggregates (sometimes an effect, sometimes
-- triggers), COMMIT, and only once COMMIT returned print the answer.
BEGIN;
SELECT coherence_rebase(coherence_seq_no() + 1, (
	SELECT jsonb_agg(CASE WHEN random() < 0.1 THEN
		jsonb_build_object('source', 'crash', 'effect', jsonb_build_object('reason', 'expired',
			'trigger', jsonb_build_array('key', floor(random() * 1000)::int)))
	ELSE
		jsonb_build_object('source', 'crash', 'action', jsonb_build_object('reason', 'write',
			'actor', jsonb_build_array('writer', :'writer'),
			'aggregate', jsonb_build_array('w' || :'writer', floor(random() * 20)::int),
			'patch', jsonb_build_object('assoc', jsonb_build_object('round', :round, 'v', md5(random()::text), 'ü', '✓ "\'))))
		|| CASE WHEN random() < 0.3 THEN jsonb_build_object('triggers', jsonb_build_array(
			jsonb_build_array('key', floor(random() * 1000)::int))) ELSE '{}' END
	END)
	FROM generate_series(1, 1 + floor(random() * 3)::int))) AS answer \gset
COMMIT;
\echo :answer
