-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION coherence UPDATE TO '1.2'" to load this file. \quit

-- Backups keep every row: pg_dump saves the contents of these tables (the
-- extension's own objects come back with CREATE EXTENSION), in an order
-- that satisfies their foreign keys, so a restore continues the log.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coherence_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coherence_actions', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coherence_effects', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coherence_triggers', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coherence_snapshots', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coherence_checkpoints', '');

-- Immutability holds under any session_replication_role: triggers enabled
-- ALWAYS also fire in replica mode (logical replication, pg_restore).
ALTER TABLE @extschema@.coherence_events ENABLE ALWAYS TRIGGER coherence_immutable;
ALTER TABLE @extschema@.coherence_events ENABLE ALWAYS TRIGGER coherence_immutable_truncate;
ALTER TABLE @extschema@.coherence_actions ENABLE ALWAYS TRIGGER coherence_immutable;
ALTER TABLE @extschema@.coherence_actions ENABLE ALWAYS TRIGGER coherence_immutable_truncate;
ALTER TABLE @extschema@.coherence_effects ENABLE ALWAYS TRIGGER coherence_immutable;
ALTER TABLE @extschema@.coherence_effects ENABLE ALWAYS TRIGGER coherence_immutable_truncate;
ALTER TABLE @extschema@.coherence_triggers ENABLE ALWAYS TRIGGER coherence_immutable;
ALTER TABLE @extschema@.coherence_triggers ENABLE ALWAYS TRIGGER coherence_immutable_truncate;

-- Idempotent appends: an event may carry a client-chosen UUID, unique
-- across the log, so a retried append is recognised instead of stored twice.
ALTER TABLE @extschema@.coherence_events ADD COLUMN id uuid;
CREATE UNIQUE INDEX coherence_events_id_idx ON @extschema@.coherence_events (id)
	WHERE id IS NOT NULL;

-- coherence_stream gains the id column; the privileges a DBA granted on
-- the old function are carried over to the new one.
SELECT pg_catalog.set_config('coherence_upgrade.stream_grants',
	coalesce(pg_catalog.string_agg(pg_catalog.format('%s%s', a.grantee::regrole,
		CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), ','), ''), true)
FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
WHERE p.oid = '@extschema@.coherence_stream(bigint, bigint, text[])'::pg_catalog.regprocedure
  AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner AND a.grantee <> 0;
DROP FUNCTION @extschema@.coherence_stream(bigint, bigint, text[]);
CREATE FUNCTION @extschema@.coherence_stream(
	from_seq_no bigint DEFAULT 0,
	to_seq_no bigint DEFAULT NULL,
	aggregate_kinds text[] DEFAULT NULL)
RETURNS TABLE (
	seq_no bigint,
	"timestamp" timestamptz,
	source text,
	reason text,
	actor_kind text,
	actor_id text,
	aggregate_kind text,
	aggregate_id text,
	patch jsonb,
	triggers jsonb,
	replayed boolean,
	id uuid)
AS 'MODULE_PATHNAME', 'coherence_stream'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER
ROWS 1000;
REVOKE ALL ON FUNCTION @extschema@.coherence_stream(bigint, bigint, text[]) FROM PUBLIC;
DO $$
DECLARE
	grantee text;
BEGIN
	FOREACH grantee IN ARRAY pg_catalog.string_to_array(
		pg_catalog.current_setting('coherence_upgrade.stream_grants'), ',')
	LOOP
		EXECUTE 'GRANT EXECUTE ON FUNCTION @extschema@.coherence_stream(bigint, bigint, text[]) TO '
			|| grantee;
	END LOOP;
END
$$;
