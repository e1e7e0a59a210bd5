-- Every conflict rule of coherence_rebase.
DROP EXTENSION coherence;
CREATE EXTENSION coherence;

\i sql/include/helpers.sql

-- Setting the scene: 1 a/1 linked to k/1, 2 b/1, 3 a/2, 4 effect on k/1.
SELECT pg_temp.summary(coherence_rebase(1, jsonb_build_array(
	pg_temp.act('a', '1', '[["k", "1"]]'), pg_temp.act('b', '1'), pg_temp.act('a', '2'),
	pg_temp.eff('k', '1'))));

-- An action on an aggregate changed since base conflicts with that action.
SELECT pg_temp.summary(coherence_rebase(2, jsonb_build_array(pg_temp.act('b', '1'))));
-- An effect on a trigger linked to the aggregate conflicts too (base 4 sees
-- only the effect); the conflict is the lowest seq_no >= base, so from base 1
-- it is the action (1).
SELECT pg_temp.summary(coherence_rebase(4, jsonb_build_array(pg_temp.act('a', '1'))));
SELECT pg_temp.summary(coherence_rebase(1, jsonb_build_array(pg_temp.act('a', '1'))));
-- The effect reaches a/1 through the trigger link only: from base 2 the
-- stored action 1 is older than base, the effect 4 is not.
SELECT pg_temp.summary(coherence_rebase(2, jsonb_build_array(pg_temp.act('a', '1'))));
-- Aggregates that are not linked to k/1 are not affected by the effect.
SELECT pg_temp.summary(coherence_rebase(4, jsonb_build_array(pg_temp.act('b', '1'), pg_temp.act('a', '2'))));
-- A base past every change is ok (dry: nothing is written).
SELECT pg_temp.summary(coherence_rebase(5, jsonb_build_array(pg_temp.act('a', '1')), dry => true));
SELECT coherence_seq_no();

-- resolved: each listed seq_no stops counting; the next one shows up.
SELECT pg_temp.summary(coherence_rebase(1, jsonb_build_array(pg_temp.act('a', '1')), '{1}', true));
SELECT pg_temp.summary(coherence_rebase(1, jsonb_build_array(pg_temp.act('a', '1')), '{4,1}', true));
-- Resolving a seq_no of another aggregate changes nothing.
SELECT pg_temp.summary(coherence_rebase(2, jsonb_build_array(pg_temp.act('b', '1')), '{3}', true));

-- The first conflicting action stops the call; the events before it,
-- effects included, are reported with the seq_nos they would have had.
SELECT pg_temp.summary(coherence_rebase(2, jsonb_build_array(
	pg_temp.act('c', '1'), pg_temp.eff('k', '9'), pg_temp.act('b', '1'), pg_temp.act('a', '2'))));
SELECT coherence_seq_no();

-- Events of one history never conflict with each other, even when a later
-- one touches an aggregate an earlier one changed or linked.
SELECT pg_temp.summary(coherence_rebase(5, jsonb_build_array(
	pg_temp.act('d', '1', '[["k", "2"]]'), pg_temp.eff('k', '2'), pg_temp.act('d', '1'), pg_temp.act('d', '1'))));

-- Effects have no conflicts, however old their base.
SELECT pg_temp.summary(coherence_rebase(1, jsonb_build_array(pg_temp.eff('k', '1'))));

-- A trigger linked by an action of this very history does not make a stored
-- effect on it a conflict: only stored links count.
SELECT pg_temp.summary(coherence_rebase(1, jsonb_build_array(pg_temp.act('e', '1', '[["k", "1"]]'))));

-- Invalid base: past the next seq_no. base = next is fine.
SELECT pg_temp.summary(coherence_rebase(coherence_seq_no() + 2, jsonb_build_array(pg_temp.act('z', '1'))));
SELECT pg_temp.summary(coherence_rebase(coherence_seq_no() + 1, jsonb_build_array(pg_temp.act('z', '1')), dry => true));

-- dry answers exactly what the real call then does, and writes nothing.
BEGIN;
SELECT coherence_seq_no() AS before_dry \gset
CREATE TEMP TABLE answers AS SELECT coherence_rebase(1,
	jsonb_build_array(pg_temp.act('f', '1'), pg_temp.eff('k', '3')), dry => true) AS answer;
SELECT coherence_seq_no() = :before_dry AS nothing_written;
INSERT INTO answers SELECT coherence_rebase(1,
	jsonb_build_array(pg_temp.act('f', '1'), pg_temp.eff('k', '3')));
SELECT count(DISTINCT answer) = 1 AS same_answer, min(pg_temp.summary(answer)) FROM answers;
COMMIT;

-- Numeric ids name the same aggregate as their text form.
SELECT pg_temp.summary(coherence_rebase(1, '[{"source": "test", "action": {"reason": "r",
	"actor": ["user", 7], "aggregate": ["b", 1], "patch": {"dissoc": ["x"]}}}]'));

-- The call runs in the caller's transaction: a rollback takes it back, and a
-- second call in the same transaction sees the first.
BEGIN;
SELECT pg_temp.summary(coherence_rebase(coherence_seq_no() + 1, jsonb_build_array(pg_temp.act('t', '1'))));
SELECT pg_temp.summary(coherence_rebase(coherence_seq_no(), jsonb_build_array(pg_temp.act('t', '1'))));
ROLLBACK;
SELECT count(*) AS t_actions FROM coherence_actions WHERE aggregate_kind = 't';

-- Every seq_no so far, gapless.
SELECT count(*) = max(seq_no) AS gapless, max(seq_no) FROM coherence_events;
