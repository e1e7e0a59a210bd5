-- A damaged installation fails loudly instead of writing wrong rows.
DROP EXTENSION coherence;
CREATE EXTENSION coherence;
\set SHOW_CONTEXT never

-- The C functions work only as members of the extension.
CREATE FUNCTION rogue_seq_no() RETURNS bigint AS 'coherence', 'coherence_seq_no' LANGUAGE C;
SELECT rogue_seq_no();
DROP FUNCTION rogue_seq_no();

-- A table of the extension's name that is not a member of it is never used:
-- here the snapshots table, which a sampled append would write.
SET coherence.snapshot_interval = 1;
ALTER EXTENSION coherence DROP TABLE coherence_snapshots;
SELECT coherence_rebase(1, '[{"source": "s", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["book", "b"], "patch": {"assoc": {"k": 1}}}},
	{"source": "s", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["book", "b"], "patch": {"assoc": {"k": 2}}}}]');
SELECT coherence_seq_no();
ALTER EXTENSION coherence ADD TABLE coherence_snapshots;
RESET coherence.snapshot_interval;

-- A table that is gone is reported by name, by writes and reads alike.
ALTER EXTENSION coherence DROP TABLE coherence_triggers;
DROP TABLE coherence_triggers;
SELECT coherence_rebase(1, '[{"source": "s", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["book", "b"], "patch": {"assoc": {"k": 1}}}, "triggers": [["key", "1"]]}]');
SELECT coherence_seq_no();

DROP EXTENSION coherence;
CREATE EXTENSION coherence;
