-- No way around the checks: read-only transactions, session_replication_role,
-- look-alike tables planted in the extension's schema, C functions bound
-- into another extension, and pg_dump registration.
DROP EXTENSION coherence;
CREATE EXTENSION coherence;
\i sql/include/helpers.sql

-- Appends in a read-only transaction fail with 25006 and write nothing;
-- dry runs and reads work there.
BEGIN READ ONLY;
SELECT coherence_rebase(1, jsonb_build_array(pg_temp.act('book', 'b')));
ROLLBACK;
BEGIN READ ONLY;
SELECT pg_temp.summary(coherence_rebase(1, jsonb_build_array(pg_temp.act('book', 'b')), dry => true));
SELECT coherence_seq_no(), coherence_event(1), coherence_aggregate('book', 'b');
SELECT count(*) FROM coherence_stream(0);
COMMIT;
SET default_transaction_read_only = on;
SELECT pg_temp.try(1, jsonb_build_array(pg_temp.act('book', 'b')));
SELECT pg_temp.try(1, jsonb_build_array(pg_temp.act('book', 'b')), dry => true);
RESET default_transaction_read_only;
SELECT coherence_seq_no();

-- Immutability holds in replica mode (logical replication, pg_restore).
SELECT pg_temp.try(1, jsonb_build_array(pg_temp.act('book', 'b', '[["key", "1"]]'),
	pg_temp.eff('key', '1')));
SET session_replication_role = replica;
UPDATE coherence_actions SET patch = '{"assoc": {"x": 666}}';
DELETE FROM coherence_events;
TRUNCATE coherence_triggers;
RESET session_replication_role;
SELECT patch FROM coherence_actions;

-- pg_dump saves the rows of every table.
SELECT c::regclass AS dumped FROM pg_extension e, unnest(e.extconfig) c
WHERE e.extname = 'coherence' ORDER BY 1::text;

-- A C function bound into another extension is refused.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS amcheck;
RESET client_min_messages;
CREATE FUNCTION rogue_seq_no() RETURNS bigint AS 'coherence', 'coherence_seq_no' LANGUAGE C;
ALTER EXTENSION amcheck ADD FUNCTION rogue_seq_no();
SELECT rogue_seq_no();
ALTER EXTENSION amcheck DROP FUNCTION rogue_seq_no();
DROP FUNCTION rogue_seq_no();

-- A role with CREATE on the extension's schema plants a look-alike
-- snapshots table (with a trigger) in a 1.0 installation, which has none.
-- Nothing runs it as the extension's owner: the library refuses the old
-- version, and the update refuses to adopt the table.
DROP EXTENSION coherence;
CREATE EXTENSION coherence VERSION '1.0';
CREATE ROLE coherence_planter;
GRANT CREATE ON SCHEMA public TO coherence_planter;
SET ROLE coherence_planter;
CREATE TABLE public.coherence_snapshots (aggregate_kind text, aggregate_id text,
	seq_no bigint, state jsonb, PRIMARY KEY (aggregate_kind, aggregate_id, seq_no));
CREATE TABLE public.planted_log (who text);
CREATE FUNCTION public.planted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.planted_log VALUES (current_user);
	RETURN NEW;
END $$;
CREATE TRIGGER planted BEFORE INSERT ON public.coherence_snapshots
	FOR EACH ROW EXECUTE FUNCTION public.planted();
GRANT INSERT ON public.planted_log TO PUBLIC;
RESET ROLE;
-- PostgreSQL 18 adds the script line to the update's error as CONTEXT.
\set SHOW_CONTEXT never
SET coherence.snapshot_interval = 1;
SELECT coherence_rebase(1, jsonb_build_array(pg_temp.act('book', 'p'), pg_temp.act('book', 'p')));
SELECT coherence_seq_no();
SELECT count(*) AS trigger_runs FROM public.planted_log;
ALTER EXTENSION coherence UPDATE;
RESET coherence.snapshot_interval;
DROP TABLE public.coherence_snapshots, public.planted_log;
DROP FUNCTION public.planted();
REVOKE CREATE ON SCHEMA public FROM coherence_planter;
DROP ROLE coherence_planter;
ALTER EXTENSION coherence UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'coherence';

DROP EXTENSION coherence;
CREATE EXTENSION coherence;
