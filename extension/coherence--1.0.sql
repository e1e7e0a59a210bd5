-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION coherence" to load this file. \quit

-- Every event: its global position, when and where it came from.
CREATE TABLE @extschema@.coherence_events (
	seq_no bigint PRIMARY KEY CHECK (seq_no >= 1),
	"timestamp" timestamptz NOT NULL,
	source text NOT NULL CHECK (source <> '')
);

-- An actor's reason for patching an aggregate. The (aggregate, seq_no) index
-- is the conflict probe and the replay lookup.
CREATE TABLE @extschema@.coherence_actions (
	seq_no bigint PRIMARY KEY REFERENCES @extschema@.coherence_events,
	reason text NOT NULL CHECK (reason <> ''),
	actor_kind text NOT NULL CHECK (actor_kind <> ''),
	actor_id text NOT NULL CHECK (actor_id <> ''),
	aggregate_kind text NOT NULL CHECK (aggregate_kind <> ''),
	aggregate_id text NOT NULL CHECK (aggregate_id <> ''),
	patch jsonb NOT NULL
);
CREATE INDEX coherence_actions_aggregate_idx
	ON @extschema@.coherence_actions (aggregate_kind, aggregate_id, seq_no);

-- Something that happened to a trigger; found by trigger for conflict checks.
CREATE TABLE @extschema@.coherence_effects (
	seq_no bigint PRIMARY KEY REFERENCES @extschema@.coherence_events,
	reason text NOT NULL CHECK (reason <> ''),
	trigger_kind text NOT NULL CHECK (trigger_kind <> ''),
	trigger_id text NOT NULL CHECK (trigger_id <> '')
);
CREATE INDEX coherence_effects_trigger_idx
	ON @extschema@.coherence_effects (trigger_kind, trigger_id, seq_no);

-- Links from actions to triggers: by seq_no (the primary key) to list an
-- action's triggers, by trigger to find the actions an effect touches.
CREATE TABLE @extschema@.coherence_triggers (
	seq_no bigint NOT NULL REFERENCES @extschema@.coherence_actions,
	trigger_kind text NOT NULL CHECK (trigger_kind <> ''),
	trigger_id text NOT NULL CHECK (trigger_id <> ''),
	PRIMARY KEY (seq_no, trigger_kind, trigger_id)
);
CREATE INDEX coherence_triggers_trigger_idx
	ON @extschema@.coherence_triggers (trigger_kind, trigger_id, seq_no);

-- Events are immutable: these triggers refuse UPDATE, DELETE and TRUNCATE
-- for every role, the owner and superusers included.
CREATE FUNCTION @extschema@.coherence_refuse_change() RETURNS trigger
	AS 'MODULE_PATHNAME', 'coherence_refuse_change' LANGUAGE C;
REVOKE ALL ON FUNCTION @extschema@.coherence_refuse_change() FROM PUBLIC;

CREATE TRIGGER coherence_immutable BEFORE UPDATE OR DELETE ON @extschema@.coherence_events
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.coherence_refuse_change();
CREATE TRIGGER coherence_immutable_truncate BEFORE TRUNCATE ON @extschema@.coherence_events
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.coherence_refuse_change();
CREATE TRIGGER coherence_immutable BEFORE UPDATE OR DELETE ON @extschema@.coherence_actions
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.coherence_refuse_change();
CREATE TRIGGER coherence_immutable_truncate BEFORE TRUNCATE ON @extschema@.coherence_actions
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.coherence_refuse_change();
CREATE TRIGGER coherence_immutable BEFORE UPDATE OR DELETE ON @extschema@.coherence_effects
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.coherence_refuse_change();
CREATE TRIGGER coherence_immutable_truncate BEFORE TRUNCATE ON @extschema@.coherence_effects
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.coherence_refuse_change();
CREATE TRIGGER coherence_immutable BEFORE UPDATE OR DELETE ON @extschema@.coherence_triggers
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.coherence_refuse_change();
CREATE TRIGGER coherence_immutable_truncate BEFORE TRUNCATE ON @extschema@.coherence_triggers
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.coherence_refuse_change();

-- The API. The functions run as the extension's owner (SECURITY DEFINER) so
-- that callers need only EXECUTE, never table privileges, and so can never
-- bypass the checks. The C code names tables with the extension's schema and
-- resolves everything else in pg_catalog alone while it runs (an override
-- search path, cheaper than a SET clause), so a caller's look-alike tables,
-- functions or operators are never used.
CREATE FUNCTION @extschema@.coherence_rebase(
	base bigint,
	history jsonb,
	resolved bigint[] DEFAULT '{}',
	dry boolean DEFAULT false)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'coherence_rebase'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER;

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
	replayed boolean)
AS 'MODULE_PATHNAME', 'coherence_stream'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER
ROWS 1000;

CREATE FUNCTION @extschema@.coherence_seq_no() RETURNS bigint
AS 'MODULE_PATHNAME', 'coherence_seq_no'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER;

CREATE FUNCTION @extschema@.coherence_event(seq_no bigint) RETURNS jsonb
AS 'MODULE_PATHNAME', 'coherence_event'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED SECURITY DEFINER;

-- Nothing is callable by default: a DBA grants EXECUTE to writer and reader
-- roles (see the README, "Privileges").
REVOKE ALL ON FUNCTION
	@extschema@.coherence_rebase(bigint, jsonb, bigint[], boolean),
	@extschema@.coherence_stream(bigint, bigint, text[]),
	@extschema@.coherence_seq_no(),
	@extschema@.coherence_event(bigint)
FROM PUBLIC;
