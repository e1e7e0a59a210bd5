/*
 * rebase.c: coherence_rebase, the conflict-checked append.
 *
 * Concurrency. The input is validated before anything else. Then the call
 * takes the writers' lock (see coherence.c) and only after that reads the
 * highest seq_no and runs the conflict check, so both see every append
 * committed before it. In READ COMMITTED they read with a fresh snapshot
 * (through probe.c's index lookups, or SPI statements when an index is
 * missing), which after the lock includes every earlier writer. Under
 * REPEATABLE READ and SERIALIZABLE the transaction's snapshot may predate an
 * append that committed while we waited; comparing the highest seq_no in that
 * snapshot with the latest committed one detects it, and the call fails with
 * SQLSTATE 40001 instead of answering from a stale view.
 *
 * A call that writes keeps the lock until its transaction ends, so the next
 * writer sees its events. A call that writes nothing (conflict, invalid base)
 * gives its hold back at once. A dry run takes no lock at all: it answers
 * from one snapshot (a fresh one in READ COMMITTED), so it never waits
 * behind an open appender and works on a hot standby.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "coherence.h"

PG_FUNCTION_INFO_V1(coherence_rebase);

/*
 * For each action (kind, id) in history order, the lowest stored seq_no >=
 * base not in resolved: an action on the aggregate, or an effect on a trigger
 * linked to one of the aggregate's actions. The first action that has one.
 */
static CoherencePlan conflict_plan = {
	"SELECT h.ord, c.seq_no"
	"  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS h(kind, id, ord)"
	" CROSS JOIN LATERAL ("
	"   SELECT min(x.seq_no) AS seq_no FROM ("
	"     (SELECT a.seq_no FROM %1$s.coherence_actions a"
	"       WHERE a.aggregate_kind = h.kind AND a.aggregate_id = h.id"
	"         AND a.seq_no >= $3 AND a.seq_no <> ALL ($4)"
	"       ORDER BY a.seq_no LIMIT 1)"
	"     UNION ALL"
	"     (SELECT e.seq_no FROM %1$s.coherence_actions a"
	"        JOIN %1$s.coherence_triggers t ON t.seq_no = a.seq_no"
	"        JOIN %1$s.coherence_effects e"
	"          ON e.trigger_kind = t.trigger_kind AND e.trigger_id = t.trigger_id"
	"       WHERE a.aggregate_kind = h.kind AND a.aggregate_id = h.id"
	"         AND e.seq_no >= $3 AND e.seq_no <> ALL ($4)"
	"       ORDER BY e.seq_no LIMIT 1)"
	"   ) x"
	" ) c"
	" WHERE c.seq_no IS NOT NULL"
	" ORDER BY h.ord"
	" LIMIT 1",
	4, {TEXTARRAYOID, TEXTARRAYOID, INT8OID, INT8ARRAYOID}, CURSOR_OPT_GENERIC_PLAN
};

/*
 * From one snapshot: the highest seq_no; the lowest effect seq_no >= base
 * (NULL when none); and the lowest action seq_no >= base not in resolved on
 * the aggregate ($2, $3) (NULL when none, or when the aggregate is NULL).
 * Without an effect >= base no effect can conflict, and a history whose
 * actions share one aggregate has that probe as its only possible conflict,
 * so the common append needs no further query. (The effects branch of
 * conflict_plan walks every action of the aggregate, however old, so its
 * cost grows with the aggregate's history: it runs only when needed.)
 */
static CoherencePlan head_plan = {
	"SELECT (SELECT seq_no FROM %1$s.coherence_events ORDER BY seq_no DESC LIMIT 1),"
	"       (SELECT seq_no FROM %1$s.coherence_effects WHERE seq_no >= $1"
	"         ORDER BY seq_no LIMIT 1),"
	"       (SELECT a.seq_no FROM %1$s.coherence_actions a"
	"         WHERE a.aggregate_kind = $2 AND a.aggregate_id = $3"
	"           AND a.seq_no >= $1 AND a.seq_no <> ALL ($4)"
	"         ORDER BY a.seq_no LIMIT 1)",
	4, {INT8OID, TEXTOID, TEXTOID, INT8ARRAYOID}, CURSOR_OPT_GENERIC_PLAN
};

/* conflict_plan without its effects branch, for when no effect is >= base. */
static CoherencePlan action_conflict_plan = {
	"SELECT h.ord, c.seq_no"
	"  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS h(kind, id, ord)"
	" CROSS JOIN LATERAL ("
	"   SELECT a.seq_no FROM %1$s.coherence_actions a"
	"    WHERE a.aggregate_kind = h.kind AND a.aggregate_id = h.id"
	"      AND a.seq_no >= $3 AND a.seq_no <> ALL ($4)"
	"    ORDER BY a.seq_no LIMIT 1"
	" ) c"
	" ORDER BY h.ord"
	" LIMIT 1",
	4, {TEXTARRAYOID, TEXTARRAYOID, INT8OID, INT8ARRAYOID}, CURSOR_OPT_GENERIC_PLAN
};

/*
 * The aggregate every action of the history acts on, or NULL when they act
 * on several or there are no actions.
 */
static const CoherenceEvent *
one_aggregate(const CoherenceEvent *events, int nevents)
{
	const CoherenceEvent *first = NULL;

	for (int i = 0; i < nevents; i++)
	{
		if (!events[i].is_action)
			continue;
		if (first == NULL)
			first = &events[i];
		else if (strcmp(first->aggregate.kind, events[i].aggregate.kind) != 0 ||
				 strcmp(first->aggregate.id, events[i].aggregate.id) != 0)
			return NULL;
	}
	return first;
}

/* What the conflict check compares against, and how it reads. */
typedef struct Check
{
	int64		base;
	Datum		resolved;		/* as given, for the SQL statements */
	const int64 *sorted_resolved;	/* the same, sorted, for the probes */
	int			nresolved;
	bool		read_only;
	CoherenceProbes *probes;	/* NULL when an index is missing: use SQL */
} Check;

/* What read_head found besides the highest seq_no. */
typedef struct Head
{
	bool		effects_since_base; /* some effect has seq_no >= base */
	const CoherenceEvent *probed;	/* the one aggregate probed, or NULL */
	int64		probe;			/* its conflict's seq_no, 0 when none */
} Head;

/* The first action's index whose aggregate has a conflict, or -1. */
static int
probe_actions(const CoherenceEvent *events, int nevents, const Check *check, int64 *theirs)
{
	for (int i = 0; i < nevents; i++)
	{
		if (!events[i].is_action)
			continue;
		*theirs = coherence_probe_action(check->probes, &events[i].aggregate, check->base,
										 check->sorted_resolved, check->nresolved);
		if (*theirs)
			return i;
	}
	return -1;
}

/*
 * Returns the index of the first action that conflicts with a stored event,
 * or -1, setting *theirs to the stored event's seq_no. Unless an effect has
 * seq_no >= base, only actions can conflict: a history on one aggregate is
 * answered by head's probe (all its actions meet the same conflict, the
 * first's), others by a probe per action or the cheaper plan without the
 * effects branch.
 */
static int
find_conflict(const CoherenceEvent *events, int nevents, const Check *check,
			  const Head *head, int64 *theirs)
{
	CoherenceRows aggregates;
	int		   *action_index;
	Datum		args[4];
	bool		isnull;
	int64		ord;
	int			rc;

	if (!head->effects_since_base && head->probed)
	{
		if (head->probe == 0)
			return -1;
		*theirs = head->probe;
		return head->probed - events;
	}
	if (!head->effects_since_base && check->probes)
		return probe_actions(events, nevents, check, theirs);

	action_index = palloc(sizeof(int) * nevents);
	coherence_rows_init(&aggregates, 2, nevents);
	for (int i = 0; i < nevents; i++)
	{
		int			row;

		if (!events[i].is_action)
			continue;
		row = aggregates.nrows++;
		action_index[row] = i;
		aggregates.columns[0][row] = CStringGetTextDatum(events[i].aggregate.kind);
		aggregates.columns[1][row] = CStringGetTextDatum(events[i].aggregate.id);
	}
	if (aggregates.nrows == 0)
		return -1;

	args[0] = coherence_column_array(&aggregates, 0, TEXTARRAYOID);
	args[1] = coherence_column_array(&aggregates, 1, TEXTARRAYOID);
	args[2] = Int64GetDatum(check->base);
	args[3] = check->resolved;
	rc = SPI_execute_plan(coherence_plan(head->effects_since_base ? &conflict_plan
										 : &action_conflict_plan),
						  args, NULL, check->read_only, 1);
	coherence_check_spi(rc, SPI_OK_SELECT, "checking for conflicts");
	if (SPI_processed == 0)
		return -1;

	ord = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*theirs = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	return action_index[ord - 1];
}

/*
 * Returns the highest seq_no (0 when empty) and fills *head, through the
 * probes when they are open, else with head_plan in one statement. Nothing
 * is stored at or after a base above the highest seq_no, so then the
 * probes need not look.
 */
static int64
read_head(const CoherenceEvent *events, int nevents, const Check *check, Head *head)
{
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	Datum		value;
	int			rc;

	head->probed = one_aggregate(events, nevents);
	if (check->probes)
	{
		int64		max = coherence_probe_max_seq_no(check->probes);

		head->effects_since_base = false;
		head->probe = 0;
		if (check->base <= max)
		{
			head->effects_since_base = coherence_probe_effect_since(check->probes, check->base);
			if (head->probed)
				head->probe = coherence_probe_action(check->probes, &head->probed->aggregate,
													 check->base, check->sorted_resolved,
													 check->nresolved);
		}
		return max;
	}

	args[0] = Int64GetDatum(check->base);
	if (head->probed)
	{
		args[1] = CStringGetTextDatum(head->probed->aggregate.kind);
		args[2] = CStringGetTextDatum(head->probed->aggregate.id);
	}
	else
	{
		args[1] = args[2] = (Datum) 0;
		nulls[1] = nulls[2] = 'n';
	}
	args[3] = check->resolved;
	rc = SPI_execute_plan(coherence_plan(&head_plan), args, nulls, check->read_only, 1);
	coherence_check_spi(rc, SPI_OK_SELECT, "reading the highest seq_no");

	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	SPI_getbinval(row, desc, 2, &isnull);
	head->effects_since_base = !isnull;
	value = SPI_getbinval(row, desc, 3, &isnull);
	head->probe = isnull ? 0 : DatumGetInt64(value);
	value = SPI_getbinval(row, desc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(value);
}

/*
 * The snapshot SPI would read with: the caller's for a dry run (read only);
 * for a writer, after CommandCounterIncrement, a fresh one in READ
 * COMMITTED, the transaction's under REPEATABLE READ.
 */
static Snapshot
read_snapshot(bool read_only)
{
	if (read_only)
		return GetActiveSnapshot();
	CommandCounterIncrement();
	return GetTransactionSnapshot();
}

/*
 * Under a transaction snapshot, fails with 40001 when an append committed
 * that the snapshot cannot see: answering from it could miss a conflict.
 */
static void
check_snapshot_is_current(int64 highest_seen)
{
	int64		latest;

	if (!IsolationUsesXactSnapshot())
		return;
	latest = coherence_max_seq_no(GetLatestSnapshot(), true);
	if (latest != highest_seen)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("coherence: could not serialize access due to a concurrent append"),
				 errdetail("Events up to seq_no " INT64_FORMAT " were appended after this transaction's snapshot, which sees up to " INT64_FORMAT ".",
						   latest, highest_seen),
				 errhint("Retry the transaction.")));
}

/* Stored events with the history's ids, ordered by id. */
static CoherencePlan ids_plan = {
	"SELECT e.id::text, e.seq_no FROM %1$s.coherence_events e"
	" WHERE e.id = ANY ($1::uuid[]) ORDER BY 1",
	1, {UUIDARRAYOID}, CURSOR_OPT_GENERIC_PLAN
};

/* True when two identities are equal. */
static bool
same_identity(const CoherenceIdentity *a, const CoherenceIdentity *b)
{
	return strcmp(a->kind, b->kind) == 0 && strcmp(a->id, b->id) == 0;
}

/* The first field in which a retried event differs from the stored one. */
static const char *
event_difference(const CoherenceEvent *given, const CoherenceEvent *stored)
{
	if (strcmp(given->source, stored->source) != 0)
		return "source";
	if (given->is_action != stored->is_action)
		return given->is_action ? "action" : "effect";
	if (strcmp(given->reason, stored->reason) != 0)
		return given->is_action ? "action.reason" : "effect.reason";
	if (given->is_action)
	{
		if (!same_identity(&given->actor, &stored->actor))
			return "action.actor";
		if (!same_identity(&given->aggregate, &stored->aggregate))
			return "action.aggregate";
		if (!DatumGetBool(DirectFunctionCall2(jsonb_eq, JsonbPGetDatum(given->patch),
											  JsonbPGetDatum(stored->patch))))
			return "action.patch";
		if (given->ntriggers != stored->ntriggers)
			return "triggers";
		for (int t = 0; t < given->ntriggers; t++)
			if (!same_identity(&given->triggers[t], &stored->triggers[t]))
				return "triggers";
	}
	else if (!same_identity(&given->trigger, &stored->trigger))
		return "effect.trigger";
	if (given->timestamp_given && given->timestamp != stored->timestamp)
		return "timestamp";
	return NULL;
}

/* Fails because history[index].id is stored at seq_no, not as a retry. */
static pg_noreturn void
id_reused(int index, int64 seq_no, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("coherence: history[%d].id is already stored at seq_no " INT64_FORMAT,
					index, seq_no),
			 errdetail_internal("%s", detail),
			 errhint("A retry sends the same history again; new events need new ids.")));
}

/* Compares event ids for bsearch. */
static int
compare_id_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * Looks the history's ids up. Returns false when none is stored. Returns
 * true, with the stored events in stored[], when the call is a retry: every
 * event has an id, and all are stored at consecutive seq_nos with the same
 * content. Any other use of a stored id fails with 23505.
 */
static bool
find_retry(const CoherenceEvent *events, int nevents, bool read_only,
		   CoherenceEvent *stored, MemoryContext result_context)
{
	CoherenceRows ids;
	Datum		arg;
	char	  **found_ids;
	int64	   *found_seq_nos;
	int64	   *seq_nos;
	uint64		nfound;
	int			rc;

	coherence_rows_init(&ids, 1, nevents);
	for (int i = 0; i < nevents; i++)
		if (events[i].id)
			ids.columns[0][ids.nrows++] = DirectFunctionCall1(uuid_in,
															  CStringGetDatum(events[i].id));
	arg = coherence_column_array(&ids, 0, UUIDARRAYOID);
	rc = SPI_execute_plan(coherence_plan(&ids_plan), &arg, NULL, read_only, 0);
	coherence_check_spi(rc, SPI_OK_SELECT, "looking up event ids");
	nfound = SPI_processed;
	if (nfound == 0)
		return false;

	found_ids = palloc(sizeof(char *) * nfound);
	found_seq_nos = palloc(sizeof(int64) * nfound);
	for (uint64 r = 0; r < nfound; r++)
	{
		bool		isnull;

		found_ids[r] = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
		found_seq_nos[r] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
													   SPI_tuptable->tupdesc, 2, &isnull));
	}
	seq_nos = palloc(sizeof(int64) * nevents);
	for (int i = 0; i < nevents; i++)
	{
		char	  **hit = events[i].id ? bsearch(&events[i].id, found_ids, nfound,
												 sizeof(char *), compare_id_strings) : NULL;

		seq_nos[i] = hit ? found_seq_nos[hit - found_ids] : 0;
	}
	/* A retry is the whole history again, stored from its first event on. */
	for (int i = 0; i < nevents; i++)
	{
		if (seq_nos[0] == 0 && seq_nos[i] != 0)
			id_reused(i, seq_nos[i], "Earlier events of the history are not stored, so this is not a retry of one append.");
		if (seq_nos[0] != 0 && seq_nos[i] == 0)
			id_reused(0, seq_nos[0], psprintf("history[%d] is not stored, so this is not a retry of one append.", i));
		if (seq_nos[i] != seq_nos[0] + i)
			id_reused(i, seq_nos[i], psprintf("A retry stores its events at consecutive seq_nos in history order; history[0].id is at seq_no " INT64_FORMAT ".", seq_nos[0]));
	}

	for (int i = 0; i < nevents; i++)
	{
		const char *difference;

		if (!coherence_fetch_event(seq_nos[i], read_only, &stored[i], result_context))
			elog(ERROR, "coherence: event " INT64_FORMAT " vanished", seq_nos[i]);
		difference = event_difference(&events[i], &stored[i]);
		if (difference)
			id_reused(i, seq_nos[i], psprintf("The stored event has a different %s.", difference));
	}
	return true;
}

/* Pushes the events [0, n) as the "events" member of the result. */
static void
push_events(JsonbParseState **state, const CoherenceEvent *events, int n)
{
	coherence_push_key(state, "events");
	pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < n; i++)
		coherence_push_event(state, &events[i]);
	pushJsonbValue(state, WJB_END_ARRAY, NULL);
}

/*
 * Memory for building the answer, kept for the backend's life. The answer
 * of a batch is many small allocations; in a fresh context per call glibc
 * hands the blocks back to the kernel at the end and the next call faults
 * them in again, which took 40% of a 100-event append in the profile. The
 * first block survives resets, so steady appends reuse warm pages. It holds
 * data only while the answer is built, after SPI_finish, where no SQL (so no
 * nested call) can run; what an error leaves behind goes at the next reset.
 */
#define ANSWER_KEPT_BYTES (1024 * 1024)

static MemoryContext answer_context = NULL;

/* Returns the answer memory, emptied. */
static MemoryContext
empty_answer_context(void)
{
	if (answer_context == NULL)
		answer_context = AllocSetContextCreate(TopMemoryContext, "coherence_rebase answer",
											   ANSWER_KEPT_BYTES, ANSWER_KEPT_BYTES,
											   ALLOCSET_DEFAULT_MAXSIZE);
	else
		MemoryContextReset(answer_context);
	return answer_context;
}

/* Fails when a required argument is NULL. */
static void
require_argument(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("coherence: %s must not be null", name)));
}

/*
 * coherence_rebase(base, history, resolved, dry): appends history on top of
 * base, all or nothing, unless an action conflicts with a stored event.
 */
Datum
coherence_rebase(PG_FUNCTION_ARGS)
{
	int64		base;
	Jsonb	   *history;
	ArrayType  *resolved;
	bool		dry;
	CoherenceEvent *events;
	int			nevents;
	int64		next;
	Head		head;
	int			conflict = -1;
	CoherenceEvent theirs;
	bool		wrote = false;
	MemoryContext caller = CurrentMemoryContext;
	JsonbParseState *state = NULL;
	JsonbValue *result;
	Jsonb	   *answer;
	int			nest_level;
	bool		any_id;
	bool		appended_before;
	bool		retry = false;
	CoherenceEvent *stored = NULL;
	Check		check;
	CoherenceProbes probes;

	require_argument(fcinfo, 0, "base");
	require_argument(fcinfo, 1, "history");
	require_argument(fcinfo, 2, "resolved");
	require_argument(fcinfo, 3, "dry");
	base = PG_GETARG_INT64(0);
	history = PG_GETARG_JSONB_P(1);
	resolved = PG_GETARG_ARRAYTYPE_P(2);
	dry = PG_GETARG_BOOL(3);

	if (base < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("coherence: base must be at least 1"),
				 errdetail("base is the first seq_no the caller has not seen; seq_nos start at 1.")));
	check.base = base;
	check.resolved = PointerGetDatum(resolved);
	check.sorted_resolved = coherence_check_resolved(resolved, &check.nresolved);
	check.read_only = dry;
	events = coherence_read_history(history, &nevents, &any_id);

	if (!dry)
		coherence_check_writable();

	nest_level = coherence_begin(fcinfo);
	appended_before = coherence_has_appended();
	if (dry)
		PushActiveSnapshot(GetTransactionSnapshot());
	else
		coherence_lock_writers();

	check.probes = coherence_probes_open(&probes, read_snapshot(dry)) ? &probes : NULL;
	next = read_head(events, nevents, &check, &head) + 1;
	check_snapshot_is_current(next - 1);
	if (any_id)
	{
		stored = palloc(sizeof(CoherenceEvent) * nevents);
		retry = find_retry(events, nevents, dry, stored, caller);
	}
	if (retry)
		events = stored;
	else if (base <= next)
	{
		for (int i = 0; i < nevents; i++)
			events[i].seq_no = next + i;
		conflict = find_conflict(events, nevents, &check, &head, &theirs.seq_no);
		if (conflict >= 0)
		{
			if (!coherence_fetch_event(theirs.seq_no, dry, &theirs, caller))
				elog(ERROR, "coherence: conflicting event " INT64_FORMAT " vanished",
					 theirs.seq_no);
		}
		else if (!dry)
		{
			coherence_write_events(events, nevents);
			coherence_snapshot_appended(events, nevents);
			wrote = true;
		}
	}
	if (check.probes)
		coherence_probes_close(check.probes);
	if (dry)
		PopActiveSnapshot();
	else
		coherence_end_writing(wrote, appended_before);
	coherence_end(nest_level);

	/* An answer that shows stored events shows only durable ones. */
	if (!wrote)
		coherence_wait_durable();

	if (wrote)
		Async_Notify("coherence", psprintf(INT64_FORMAT, events[nevents - 1].seq_no));

	MemoryContextSwitchTo(empty_answer_context());
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	coherence_push_key(&state, "result");
	if (retry)
	{
		coherence_push_string(&state, WJB_VALUE, "ok");
		push_events(&state, events, nevents);
		coherence_push_key(&state, "duplicate");
		pushJsonbValue(&state, WJB_VALUE, &(JsonbValue) {.type = jbvBool, .val.boolean = true});
	}
	else if (base > next)
	{
		coherence_push_string(&state, WJB_VALUE, "invalid-seq-no");
		coherence_push_key(&state, "next_seq_no");
		coherence_push_int64(&state, WJB_VALUE, next);
	}
	else if (conflict >= 0)
	{
		coherence_push_string(&state, WJB_VALUE, "conflict");
		push_events(&state, events, conflict);
		coherence_push_key(&state, "conflict");
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		coherence_push_key(&state, "ours");
		coherence_push_event(&state, &events[conflict]);
		coherence_push_key(&state, "theirs");
		coherence_push_event(&state, &theirs);
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	else
	{
		coherence_push_string(&state, WJB_VALUE, "ok");
		push_events(&state, events, nevents);
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	MemoryContextSwitchTo(caller);
	answer = JsonbValueToJsonb(result);
	MemoryContextReset(answer_context);
	PG_RETURN_JSONB_P(answer);
}
