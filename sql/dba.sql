-- The tables are ordinary tables to a DBA: indexes of every kind,
-- constraints, row triggers and column changes are honoured by appends
-- exactly as by an INSERT, and every index stays consistent (amcheck).
DROP EXTENSION coherence;
CREATE EXTENSION coherence;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS amcheck;
RESET client_min_messages;
\i sql/include/helpers.sql
\set SHOW_CONTEXT never

-- Appends one action on [kind, id] from the current head; returns the answer.
CREATE FUNCTION pg_temp.append(kind text, id text, reason text DEFAULT 'r',
                               triggers jsonb DEFAULT '[]') RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.try(coherence_seq_no() + 1,
		jsonb_build_array(jsonb_set(pg_temp.act(kind, id, triggers), '{action,reason}', to_jsonb(reason))))
$$;

-- Checks every index of the coherence tables, heap entries included.
CREATE FUNCTION pg_temp.check_indexes() RETURNS TABLE (index regclass, ok boolean)
LANGUAGE sql AS $$
	SELECT i.indexrelid::regclass, (SELECT true FROM bt_index_check(i.indexrelid, true))
	FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
	WHERE i.indrelid::regclass::text LIKE 'coherence%' AND a.amname = 'btree' AND i.indisvalid
	ORDER BY 1::text
$$;

-- An expression index (this crashed the server when rows bypassed the executor).
CREATE INDEX actions_lower_id ON coherence_actions (lower(aggregate_id));
SELECT pg_temp.append('book', 'Neuromancer');
SET enable_seqscan = off;
SELECT seq_no FROM coherence_actions WHERE lower(aggregate_id) = 'neuromancer';
RESET enable_seqscan;

-- A partial index holds only matching rows; a partial unique index refuses
-- only true duplicates.
CREATE INDEX actions_deletes ON coherence_actions (aggregate_id) WHERE reason = 'delete';
CREATE UNIQUE INDEX actions_one_create ON coherence_actions (aggregate_kind, aggregate_id)
	WHERE reason = 'create';
SELECT pg_temp.append('book', 'a', 'create');
SELECT pg_temp.append('book', 'a', 'update');
SELECT pg_temp.append('book', 'a', 'update');
SELECT pg_temp.append('book', 'a', 'delete');
SELECT pg_temp.append('book', 'a', 'create');
SET enable_seqscan = off;
SELECT count(*) AS deletes_in_partial_index FROM coherence_actions WHERE reason = 'delete';
RESET enable_seqscan;
SELECT pg_temp.check_indexes();

-- An exclusion constraint is enforced.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS btree_gist;
RESET client_min_messages;
ALTER TABLE coherence_actions ADD CONSTRAINT one_isbn_owner
	EXCLUDE USING gist (aggregate_id WITH =, actor_id WITH <>) WHERE (aggregate_kind = 'isbn');
SELECT pg_temp.append('isbn', '978-0441569595');
SELECT pg_temp.try(coherence_seq_no() + 1, jsonb_build_array(jsonb_set(
	pg_temp.act('isbn', '978-0441569595'), '{action,actor}', '["user", "mallory"]')));
ALTER TABLE coherence_actions DROP CONSTRAINT one_isbn_owner;

-- A deferrable unique constraint is checked at commit, not at once.
ALTER TABLE coherence_effects ADD CONSTRAINT one_effect_per_reason
	UNIQUE (reason) DEFERRABLE INITIALLY DEFERRED;
BEGIN;
SELECT pg_temp.try(coherence_seq_no() + 1, jsonb_build_array(pg_temp.eff('key', '1')));
SELECT pg_temp.try(coherence_seq_no() + 1, jsonb_build_array(pg_temp.eff('key', '2')))
	AS checked_at_commit;
COMMIT;
SELECT count(*) AS effects FROM coherence_effects;
ALTER TABLE coherence_effects DROP CONSTRAINT one_effect_per_reason;

-- A CHECK constraint a DBA adds is enforced.
ALTER TABLE coherence_events ADD CONSTRAINT no_test_source CHECK (source <> 'forbidden');
SELECT pg_temp.try(coherence_seq_no() + 1, pg_temp.bad('{source}', '"forbidden"'));
ALTER TABLE coherence_events DROP CONSTRAINT no_test_source;

-- A narrower column type is honoured as by an INSERT.
ALTER TABLE coherence_actions ALTER COLUMN reason TYPE varchar(10);
SELECT pg_temp.append('book', 'typmod', 'short');
SELECT pg_temp.append('book', 'typmod', 'far-too-long-reason');
ALTER TABLE coherence_actions ALTER COLUMN reason TYPE text;

-- Row triggers a DBA adds (an audit log, an outbox) fire for every row.
-- They run under the appending call's search_path (pg_catalog, pg_temp), so
-- they name their own tables with the schema.
CREATE TABLE audit (tbl text, seq_no bigint);
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.audit VALUES (TG_TABLE_NAME, NEW.seq_no);
	RETURN NEW;
END $$;
CREATE TRIGGER audit AFTER INSERT ON coherence_events FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER audit AFTER INSERT ON coherence_triggers FOR EACH ROW EXECUTE FUNCTION audit_row();
SELECT pg_temp.append('book', 'audited', 'r', '[["key", "1"], ["key", "2"]]');
SELECT tbl, seq_no = coherence_seq_no() AS newest FROM audit ORDER BY tbl;
-- A BEFORE trigger can refuse a row, and the whole append with it.
CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit: % refused', NEW.aggregate_id USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER refuse BEFORE INSERT ON coherence_actions FOR EACH ROW
	WHEN (NEW.aggregate_id = 'refused') EXECUTE FUNCTION refuse_row();
SELECT pg_temp.append('book', 'refused');
DROP TRIGGER refuse ON coherence_actions;
DROP TRIGGER audit ON coherence_events;
DROP TRIGGER audit ON coherence_triggers;

-- Columns added (with a default) and dropped change nothing for appends.
ALTER TABLE coherence_effects ADD COLUMN note text DEFAULT 'none';
ALTER TABLE coherence_events ADD COLUMN spare int;
ALTER TABLE coherence_events DROP COLUMN spare;
SELECT pg_temp.try(coherence_seq_no() + 1, jsonb_build_array(pg_temp.eff('key', '1')));
SELECT note FROM coherence_effects;
ALTER TABLE coherence_effects DROP COLUMN note;
SELECT pg_temp.append('book', 'after-drop');
SELECT coherence_event(coherence_seq_no())->'action'->>'aggregate' AS aggregate;

-- Every index of every table is consistent with the heap.
SELECT * FROM pg_temp.check_indexes();
SELECT count(*) = max(seq_no) AS gapless FROM coherence_events;
DROP TABLE audit;
DROP FUNCTION audit_row();
DROP FUNCTION refuse_row();
