-- Events are immutable: UPDATE, DELETE and TRUNCATE fail for everyone,
-- superusers and the owner included.
DROP EXTENSION coherence;
CREATE EXTENSION coherence;

SELECT coherence_rebase(1, '[
  {"source": "s", "action": {"reason": "r", "actor": ["user", "u"], "aggregate": ["book", "b"],
   "patch": {"assoc": {"k": 1}}}, "triggers": [["key", "1"]]},
  {"source": "s", "effect": {"reason": "r", "trigger": ["key", "1"]}}]')->>'result';

SELECT rolsuper FROM pg_roles WHERE rolname = current_user;
SELECT tableowner = current_user AS owner FROM pg_tables WHERE tablename = 'coherence_events';

UPDATE coherence_events SET source = 'x';
UPDATE coherence_actions SET reason = 'x';
UPDATE coherence_effects SET reason = 'x';
UPDATE coherence_triggers SET trigger_id = 'x';
DELETE FROM coherence_events;
DELETE FROM coherence_actions WHERE seq_no = 1;
DELETE FROM coherence_effects;
DELETE FROM coherence_triggers;
TRUNCATE coherence_events CASCADE;
TRUNCATE coherence_actions CASCADE;
TRUNCATE coherence_effects;
TRUNCATE coherence_triggers;
-- Even a statement that matches no row is refused.
UPDATE coherence_events SET source = 'x' WHERE false;

SELECT seq_no, source FROM coherence_events ORDER BY seq_no;
SELECT count(*) AS links FROM coherence_triggers;
