-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION coherence UPDATE TO '1.1'" to load this file. \quit

-- Folded aggregate states, a cache: coherence_aggregate starts from the
-- latest one at or before the seq_no asked for. Rows are written by
-- coherence_rebase in the appending transaction, so a snapshot is never
-- visible to a transaction that cannot see its events. Deleting any or all
-- of them (TRUNCATE coherence_snapshots) changes no answer.
CREATE TABLE @extschema@.coherence_snapshots (
	aggregate_kind text NOT NULL,
	aggregate_id text NOT NULL,
	seq_no bigint NOT NULL REFERENCES @extschema@.coherence_actions,
	state jsonb NOT NULL,
	PRIMARY KEY (aggregate_kind, aggregate_id, seq_no)
);

-- Read models' positions: the last seq_no a projector has applied.
CREATE TABLE @extschema@.coherence_checkpoints (
	name text PRIMARY KEY CHECK (name <> ''),
	seq_no bigint NOT NULL CHECK (seq_no >= 0),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- The aggregate's state: its patches applied in seq_no order up to
-- at_seq_no (the latest when NULL); NULL when it has no actions by then.
CREATE FUNCTION @extschema@.coherence_aggregate(
	kind text,
	id text,
	at_seq_no bigint DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'coherence_aggregate'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER;

-- A projector's checkpoint: the last seq_no it applied, 0 before the first.
CREATE FUNCTION @extschema@.coherence_checkpoint(name text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce((SELECT c.seq_no FROM @extschema@.coherence_checkpoints c
	                 WHERE c.name = coherence_checkpoint.name), 0)
$$;

-- Moves a checkpoint forward to seq_no, in the caller's transaction: run it
-- in the transaction that writes the read model, so both commit or neither.
CREATE FUNCTION @extschema@.coherence_advance(name text, seq_no bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	stored bigint;
	head bigint;
BEGIN
	IF name IS NULL OR name = '' THEN
		RAISE EXCEPTION 'coherence: checkpoint name must be a non-empty string'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF seq_no IS NULL OR seq_no < 0 THEN
		RAISE EXCEPTION 'coherence: seq_no of checkpoint "%" must be at least 0', name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT max(e.seq_no) INTO head FROM @extschema@.coherence_events e;
	IF seq_no > coalesce(head, 0) THEN
		RAISE EXCEPTION 'coherence: checkpoint "%" cannot advance to seq_no %, past the highest seq_no %',
			name, seq_no, coalesce(head, 0)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	INSERT INTO @extschema@.coherence_checkpoints AS c (name, seq_no)
	VALUES (coherence_advance.name, coherence_advance.seq_no)
	ON CONFLICT ON CONSTRAINT coherence_checkpoints_pkey DO UPDATE
		SET seq_no = excluded.seq_no, updated_at = now()
		WHERE c.seq_no <= excluded.seq_no
	RETURNING c.seq_no INTO stored;
	IF NOT FOUND THEN
		SELECT c.seq_no INTO stored FROM @extschema@.coherence_checkpoints c
		 WHERE c.name = coherence_advance.name;
		RAISE EXCEPTION 'coherence: checkpoint "%" cannot move backwards from % to %',
			name, stored, seq_no
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'Another projector may have advanced it; read it again with coherence_checkpoint().';
	END IF;
END
$$;

REVOKE ALL ON FUNCTION
	@extschema@.coherence_aggregate(text, text, bigint),
	@extschema@.coherence_checkpoint(text),
	@extschema@.coherence_advance(text, bigint)
FROM PUBLIC;
