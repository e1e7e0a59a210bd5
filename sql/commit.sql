-- Commit paths of an append: savepoints, PREPARE TRANSACTION, and the
-- caller's synchronous_commit (the append commits asynchronously under the
-- writers' lock, then waits for the flush after giving the lock back).
DROP EXTENSION coherence;
CREATE EXTENSION coherence;
\i sql/include/helpers.sql

-- How many holds of the writers' lock this backend has.
CREATE FUNCTION pg_temp.writers_lock() RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM pg_locks
	WHERE locktype = 'object' AND classid = 'pg_extension'::regclass AND pid = pg_backend_pid()
$$;

-- ROLLBACK TO after an append gives back its rows and its lock; the next
-- append reuses the seq_no, so the log stays gapless.
BEGIN;
SAVEPOINT before_append;
SELECT pg_temp.summary(coherence_rebase(1, jsonb_build_array(pg_temp.act('book', 'a'))));
SELECT pg_temp.writers_lock() AS held_after_append;
ROLLBACK TO before_append;
SELECT pg_temp.writers_lock() AS held_after_rollback_to;
SELECT pg_temp.summary(coherence_rebase(1, jsonb_build_array(pg_temp.act('book', 'b'))));
-- An append in a released savepoint belongs to the transaction.
SAVEPOINT inner_append;
SELECT pg_temp.summary(coherence_rebase(2, jsonb_build_array(pg_temp.act('book', 'c'))));
RELEASE inner_append;
SAVEPOINT failing;
SELECT pg_temp.summary(coherence_rebase(3, jsonb_build_array(pg_temp.act('book', 'd'))));
ROLLBACK TO failing;
SELECT pg_temp.writers_lock() AS held_for_outer_appends;
COMMIT;
SELECT pg_temp.writers_lock() AS held_after_commit;
SELECT seq_no, aggregate_id FROM coherence_stream(0);
SELECT count(*) = max(seq_no) AS gapless FROM coherence_events;

-- PREPARE TRANSACTION after an append is refused and nothing is stored.
BEGIN;
SELECT pg_temp.summary(coherence_rebase(3, jsonb_build_array(pg_temp.act('book', 'e'))));
PREPARE TRANSACTION 'coherence_append';
SELECT coherence_seq_no();
-- Without an append it is PostgreSQL's own business.
BEGIN;
SELECT pg_temp.summary(coherence_rebase(3, jsonb_build_array(pg_temp.act('book', 'e')), dry => true));
SELECT count(*) FROM pg_prepared_xacts;
ROLLBACK;

-- The caller's synchronous_commit is what it was after the commit, whatever
-- it was set to, and a later SET in the transaction does not stop the append
-- from committing.
SET synchronous_commit = remote_apply;
SELECT pg_temp.summary(coherence_rebase(3, jsonb_build_array(pg_temp.act('book', 'f'))));
SHOW synchronous_commit;
BEGIN;
SELECT pg_temp.summary(coherence_rebase(4, jsonb_build_array(pg_temp.act('book', 'g'))));
SET LOCAL synchronous_commit = local;
COMMIT;
SHOW synchronous_commit;
SET synchronous_commit = off;
SELECT pg_temp.summary(coherence_rebase(5, jsonb_build_array(pg_temp.act('book', 'h'))));
SHOW synchronous_commit;
RESET synchronous_commit;
-- An error after the append rolls everything back, and the setting with it.
BEGIN;
SELECT pg_temp.summary(coherence_rebase(6, jsonb_build_array(pg_temp.act('book', 'i'))));
SELECT 1 / 0;
ROLLBACK;
SHOW synchronous_commit;
SELECT coherence_seq_no(), pg_temp.writers_lock() AS held;

-- Emits WAL until the insert position sits right after a page header,
-- that is, the last record ended exactly at a page boundary.
CREATE FUNCTION pg_temp.wal_to_page_boundary() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	before pg_lsn;
	rem bigint;
	overhead bigint := 60;
	size bigint;
BEGIN
	FOR attempt IN 1 .. 2000 LOOP
		before := pg_current_wal_insert_lsn();
		IF (before - '0/0') % 8192 = 24 THEN
			RETURN true;
		END IF;
		rem := 8192 - (before - '0/0') % 8192;
		IF rem < overhead + 300 THEN
			PERFORM pg_logical_emit_message(false, 'coherence', repeat('x', 300));
			CONTINUE;
		END IF;
		size := rem - overhead + attempt % 8;
		PERFORM pg_logical_emit_message(false, 'coherence', repeat('x', size::int));
		overhead := (pg_current_wal_insert_lsn() - before) - size;
	END LOOP;
	RETURN false;
END $$;
-- A read waits for the WAL flush up to the insert position; right after a
-- page boundary that position lies past a page header not yet written, and
-- the wait must stop at the boundary instead of asking for WAL that does not
-- exist.
SELECT pg_temp.wal_to_page_boundary() AS at_boundary;
SELECT coherence_seq_no() AS read_at_boundary;

-- Appends in a procedure that commits between them: each commit gives its
-- locks back (no "you don't own a lock" warning), and the log is gapless.
CREATE PROCEDURE pg_temp.append_twice() LANGUAGE plpgsql AS $$
BEGIN
	PERFORM coherence_rebase(coherence_seq_no() + 1, jsonb_build_array(pg_temp.act('book', 'p1')));
	COMMIT;
	PERFORM coherence_rebase(coherence_seq_no() + 1, jsonb_build_array(pg_temp.act('book', 'p2')));
END $$;
CALL pg_temp.append_twice();
SELECT aggregate_id FROM coherence_stream(coherence_seq_no() - 1);
SELECT pg_temp.writers_lock() AS held_after_call;
