-- Installing into another schema, calling under a hostile search_path, and
-- DROP EXTENSION.
DROP EXTENSION coherence;
CREATE SCHEMA vault;
CREATE EXTENSION coherence SCHEMA vault;
SELECT count(*) AS objects_in_public FROM pg_class
 WHERE relnamespace = 'public'::regnamespace AND relname LIKE 'coherence%';

-- Look-alikes earlier in the search_path: tables with the same names holding
-- a fake event, an equality that calls every pair of strings equal, and a
-- temporary table too.
CREATE SCHEMA decoy;
CREATE TABLE decoy.coherence_events (seq_no bigint, "timestamp" timestamptz, source text);
INSERT INTO decoy.coherence_events VALUES (1000, now(), 'decoy');
CREATE TABLE decoy.coherence_actions (seq_no bigint, reason text, actor_kind text, actor_id text,
	aggregate_kind text, aggregate_id text, patch jsonb);
INSERT INTO decoy.coherence_actions VALUES (1000, 'r', 'user', 'u', 'book', 'a', '{}');
CREATE FUNCTION decoy.always_equal(text, text) RETURNS boolean
	LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE OPERATOR decoy.= (LEFTARG = text, RIGHTARG = text, FUNCTION = decoy.always_equal);
CREATE TEMP TABLE coherence_effects (seq_no bigint, reason text, trigger_kind text, trigger_id text);
INSERT INTO coherence_effects VALUES (1, 'r', 'key', '1');
SET search_path = decoy, pg_catalog, vault;
SELECT 'x' = 'y' AS decoy_equality_is_active;

-- The calls use vault's tables and the catalog's operators only.
SELECT coherence_rebase(1, '[{"source": "s", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["book", "a"], "patch": {"assoc": {"k": 1}}}, "triggers": [["key", "1"]]}]')
	#>> '{events,0,seq_no}' AS seq_no;
SELECT coherence_rebase(2, '[{"source": "s", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["book", "b"], "patch": {"assoc": {"k": 1}}}}]')->>'result' AS other_book;
SELECT coherence_rebase(2, '[{"source": "s", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["book", "a"], "patch": {"assoc": {"k": 2}}}}]')->>'result' AS same_book_unchanged;
SELECT coherence_seq_no();
SELECT seq_no, aggregate_id, replayed FROM coherence_stream(1);
SELECT coherence_event(1)->>'source' AS source;
SELECT seq_no, source FROM decoy.coherence_events;
-- Kept plans are revalidated after an invalidation, still never under the
-- caller's path: the look-alike equality would make this a conflict.
ANALYZE vault.coherence_actions;
SELECT coherence_rebase(3, '[{"source": "s", "action": {"reason": "r", "actor": ["user", "u"],
	"aggregate": ["book", "c"], "patch": {"assoc": {"k": 1}}}}]')->>'result' AS after_invalidation;
RESET search_path;

-- An empty search_path is fine too.
SET search_path = '';
SELECT vault.coherence_seq_no();
RESET search_path;

-- DROP EXTENSION removes everything it created.
DROP TABLE coherence_effects;
DROP SCHEMA decoy CASCADE;
DROP EXTENSION coherence;
SELECT count(*) AS relations FROM pg_class WHERE relnamespace = 'vault'::regnamespace;
SELECT count(*) AS functions FROM pg_proc WHERE proname LIKE 'coherence%';
SELECT count(*) AS types FROM pg_type WHERE typnamespace = 'vault'::regnamespace;
DROP SCHEMA vault;

-- Created again elsewhere in the same session, it starts empty and works.
CREATE EXTENSION coherence;
SELECT coherence_seq_no();
SELECT coherence_rebase(1, '[{"source": "s", "effect": {"reason": "r", "trigger": ["key", "1"]}}]')
	#>> '{events,0,seq_no}' AS seq_no;
