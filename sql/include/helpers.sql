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
