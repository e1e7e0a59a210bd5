-- Helpers shared by the regression tests (included with \i; pg_temp, so
-- they vanish with the session).

-- A compact view of a rebase answer: outcome, seq_nos, ours and theirs.
CREATE FUNCTION pg_temp.summary(r jsonb) RETURNS text LANGUAGE sql AS $$
	SELECT concat_ws(' ', r->>'result',
		'events=[' || (SELECT coalesce(string_agg(e->>'seq_no', ','), '')
		               FROM jsonb_array_elements(r->'events') e) || ']',
		'ours=' || (r #>> '{conflict,ours,seq_no}'),
		'theirs=' || (r #>> '{conflict,theirs,seq_no}'),
		'next_seq_no=' || (r->>'next_seq_no'))
$$;

-- One action on aggregate [kind, id], optionally linked to triggers.
CREATE FUNCTION pg_temp.act(kind text, id text, triggers jsonb DEFAULT '[]',
                            patch jsonb DEFAULT '{"assoc": {"x": 1}}') RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jsonb_build_object('source', 'test', 'triggers', triggers,
		'action', jsonb_build_object('reason', 'r', 'actor', '["user", "u"]'::jsonb,
			'aggregate', jsonb_build_array(kind, id), 'patch', patch))
$$;

-- One effect on trigger [kind, id].
CREATE FUNCTION pg_temp.eff(kind text, id text) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('source', 'test',
		'effect', jsonb_build_object('reason', 'expired', 'trigger', jsonb_build_array(kind, id)))
$$;

-- Reports the SQLSTATE and message of a failing rebase, or its result.
CREATE FUNCTION pg_temp.try(base bigint, history jsonb, resolved bigint[] DEFAULT '{}',
                            dry boolean DEFAULT false) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	RETURN coherence_rebase(base, history, resolved, dry)->>'result';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
-- A valid event whose member at path is replaced by value (or removed, NULL).
CREATE FUNCTION pg_temp.bad(path text[], value jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_array(CASE WHEN value IS NULL THEN e #- path
	                              ELSE jsonb_set(e, path, value) END)
	FROM (SELECT '{"source": "s", "triggers": [["key", "1"]],
	               "action": {"reason": "r", "actor": ["user", "u"], "aggregate": ["book", "b"],
	                          "patch": {"assoc": {"k": 1}}}}'::jsonb AS e) x
$$;
