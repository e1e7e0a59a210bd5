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
