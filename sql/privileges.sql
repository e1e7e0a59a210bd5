-- Roles: a writer granted only USAGE and EXECUTE on coherence_rebase can
-- append but never touch the tables; a reader granted only the read
-- functions can read but not append; nobody else can do anything.
DROP EXTENSION coherence;
CREATE SCHEMA store;
CREATE EXTENSION coherence SCHEMA store;
CREATE ROLE coherence_writer;
CREATE ROLE coherence_reader;
CREATE ROLE coherence_stranger;

-- The GRANTs a DBA runs (README, "Privileges").
GRANT USAGE ON SCHEMA store TO coherence_writer, coherence_reader, coherence_stranger;
GRANT EXECUTE ON FUNCTION store.coherence_rebase(bigint, jsonb, bigint[], boolean)
	TO coherence_writer;
GRANT EXECUTE ON FUNCTION store.coherence_stream(bigint, bigint, text[]),
	store.coherence_seq_no(), store.coherence_event(bigint)
	TO coherence_reader;

SET ROLE coherence_writer;
SELECT store.coherence_rebase(1, '[{"source": "s", "action": {"reason": "r",
	"actor": ["user", "w"], "aggregate": ["book", "b"], "patch": {"assoc": {"k": 1}}},
	"triggers": [["key", "1"]]}]')->>'result';
SELECT store.coherence_rebase(1, '[{"source": "s", "action": {"reason": "r",
	"actor": ["user", "w"], "aggregate": ["book", "b"], "patch": {"assoc": {"k": 2}}}}]')->>'result';
INSERT INTO store.coherence_events VALUES (2, now(), 'bypass');
INSERT INTO store.coherence_actions VALUES (1, 'r', 'user', 'w', 'book', 'b', '{}');
UPDATE store.coherence_events SET source = 'x';
DELETE FROM store.coherence_triggers;
TRUNCATE store.coherence_effects;
SELECT count(*) FROM store.coherence_events;
SELECT * FROM store.coherence_stream();
SELECT store.coherence_seq_no();
RESET ROLE;

SET ROLE coherence_reader;
SELECT store.coherence_seq_no();
SELECT seq_no, actor_id, aggregate_id, triggers FROM store.coherence_stream();
SELECT store.coherence_event(1)->>'source';
SELECT store.coherence_rebase(2, '[{"source": "s", "effect": {"reason": "r",
	"trigger": ["key", "1"]}}]');
INSERT INTO store.coherence_events VALUES (2, now(), 'bypass');
SELECT count(*) FROM store.coherence_actions;
RESET ROLE;

-- EXECUTE was revoked from PUBLIC: USAGE on the schema alone grants nothing.
SET ROLE coherence_stranger;
SELECT store.coherence_seq_no();
SELECT store.coherence_event(1);
SELECT store.coherence_rebase(2, '[{"source": "s", "effect": {"reason": "r",
	"trigger": ["key", "1"]}}]');
RESET ROLE;

-- Only the writer's single event is stored.
SELECT seq_no, source FROM store.coherence_events;

DROP EXTENSION coherence;
DROP SCHEMA store;
DROP ROLE coherence_writer, coherence_reader, coherence_stranger;
CREATE EXTENSION coherence;
