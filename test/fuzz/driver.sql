-- The fuzz driver: each history goes to coherence_rebase as a dry run, then
-- as a real append, each in its own subtransaction, and is judged.
CREATE TABLE fuzz.calls (outcome text NOT NULL);
CREATE TABLE fuzz.failures (
	attempt int, problem text, base bigint, history text, resolved text, answer text, sqlstate text, message text);

-- Why a call's outcome breaks the contract, or NULL when it keeps it. head
-- and after are coherence_seq_no() before and after the real append.
CREATE FUNCTION fuzz.judge(head bigint, after bigint, base bigint, history jsonb, resolved bigint[],
	answer jsonb, state text, message text, dry_answer jsonb, dry_state text, dry_message text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	has_id boolean := jsonb_typeof(history) = 'array'
		AND EXISTS (SELECT FROM jsonb_array_elements(history) e WHERE jsonb_typeof(e) = 'object' AND e ? 'id');
	written bigint := 0;
	theirs bigint;
BEGIN
	IF state IS DISTINCT FROM dry_state OR message IS DISTINCT FROM dry_message THEN
		RETURN format('the dry run answered %s %s, the append %s %s', dry_state, dry_message, state, message);
	END IF;
	IF answer ->> 'result' = 'ok' AND NOT coalesce((answer ->> 'duplicate')::boolean, false) THEN
		written := jsonb_array_length(answer -> 'events');
	END IF;
	IF after <> head + written THEN
		RETURN format('coherence_seq_no() went from %s to %s, %s events were answered written', head, after, written);
	END IF;
	IF state <> '00000' THEN
		IF left(state, 2) = '22' AND message LIKE 'coherence: %' THEN
			RETURN NULL;
		ELSIF left(state, 2) = '22' THEN
			RETURN 'a class 22 error not raised by the validator (no "coherence: " prefix)';
		ELSIF state = '23505' AND has_id THEN
			RETURN NULL;
		END IF;
		RETURN 'an error outside class 22';
	END IF;
	IF answer IS DISTINCT FROM dry_answer THEN
		RETURN 'the dry run answered differently: ' || left(dry_answer::text, 500);
	END IF;
	CASE answer ->> 'result'
	WHEN 'ok' THEN
		IF base > head + 1 THEN
			RETURN 'ok on a base past the next seq_no';
		ELSIF jsonb_array_length(answer -> 'events') <> jsonb_array_length(history) THEN
			RETURN 'ok with another number of events than the history';
		ELSIF written > 0 AND EXISTS (SELECT FROM jsonb_array_elements(answer -> 'events') WITH ORDINALITY e (event, i)
		                              WHERE (event ->> 'seq_no')::bigint <> head + i) THEN
			RETURN 'ok with seq_nos other than the next ones';
		END IF;
	WHEN 'conflict' THEN
		theirs := (answer #>> '{conflict,theirs,seq_no}')::bigint;
		IF theirs IS NULL OR theirs < base OR theirs > head OR theirs = ANY (resolved) THEN
			RETURN 'a conflict with an event it cannot conflict with';
		ELSIF (answer #>> '{conflict,ours,seq_no}')::bigint <> head + 1 + jsonb_array_length(answer -> 'events') THEN
			RETURN 'a conflict whose ours has the wrong seq_no';
		END IF;
	WHEN 'invalid-seq-no' THEN
		IF base <= head + 1 OR (answer ->> 'next_seq_no')::bigint <> head + 1 THEN
			RETURN 'a wrong invalid-seq-no';
		END IF;
	ELSE
		RETURN 'not an answer';
	END CASE;
	RETURN NULL;
END
$$;

-- One coherence_rebase call: its answer, or the SQLSTATE and message of its
-- error (and nothing it wrote kept).
CREATE FUNCTION fuzz.attempt(base bigint, history jsonb, resolved bigint[], dry boolean,
                             OUT answer jsonb, OUT state text, OUT message text)
LANGUAGE plpgsql AS $$
BEGIN
	answer := coherence_rebase(base, history, resolved, dry => dry);
	state := '00000';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
	answer := NULL;
END
$$;

-- Runs the given number of random histories from the given seed,
-- committing every 100 so no transaction grows large. SET fuzz.trace = on
-- logs every input to the server log before it is tried.
CREATE PROCEDURE fuzz.run(seed double precision, histories int) LANGUAGE plpgsql AS $$
DECLARE
	head bigint;
	after bigint;
	base bigint;
	history jsonb;
	resolved bigint[];
	answer jsonb;
	state text;
	message text;
	dry_answer jsonb;
	dry_state text;
	dry_message text;
	problem text;
	trace boolean := current_setting('fuzz.trace', true) = 'on';
BEGIN
	PERFORM setseed(seed);
	FOR attempt IN 1 .. histories LOOP
		head := coherence_seq_no();
		base := fuzz.base(head);
		history := fuzz.history();
		resolved := fuzz.resolved(head);
		IF trace THEN
			RAISE LOG 'fuzz: attempt %: coherence_rebase(%, %, %)', attempt, base, history, resolved;
		END IF;

		SELECT * INTO dry_answer, dry_state, dry_message FROM fuzz.attempt(base, history, resolved, true);
		after := coherence_seq_no();
		problem := CASE WHEN after <> head THEN format('the dry run moved coherence_seq_no() from %s to %s', head, after) END;

		SELECT * INTO answer, state, message FROM fuzz.attempt(base, history, resolved, false);
		after := coherence_seq_no();
		problem := coalesce(problem, fuzz.judge(head, after, base, history, resolved,
			answer, state, message, dry_answer, dry_state, dry_message));

		INSERT INTO fuzz.calls VALUES (CASE WHEN state = '00000' THEN coalesce(answer ->> 'result', 'NULL') ELSE state END);
		IF problem IS NOT NULL THEN
			INSERT INTO fuzz.failures VALUES (attempt, problem, base, left(history::text, 300), left(resolved::text, 100),
				left(answer::text, 300), state, left(message, 300));
		END IF;
		IF attempt % 100 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
END
$$;
