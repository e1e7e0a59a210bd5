/*
 * event.c: events in their output JSON form, read from the tables or built
 * from rebase input; coherence_event and coherence_seq_no.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/numeric.h"

#include "coherence.h"

PG_FUNCTION_INFO_V1(coherence_event);
PG_FUNCTION_INFO_V1(coherence_seq_no);

static CoherencePlan max_seq_no_plan = {
	"SELECT max(seq_no) FROM %1$s.coherence_events",
	0, {0}, CURSOR_OPT_GENERIC_PLAN
};

static CoherencePlan event_plan = {
	"SELECT e.\"timestamp\", e.source,"
	"       a.reason, a.actor_kind, a.actor_id, a.aggregate_kind, a.aggregate_id, a.patch,"
	"       f.reason, f.trigger_kind, f.trigger_id,"
	"       ARRAY(SELECT t.trigger_kind FROM %1$s.coherence_triggers t WHERE t.seq_no = e.seq_no"
	"             ORDER BY t.trigger_kind COLLATE \"C\", t.trigger_id COLLATE \"C\"),"
	"       ARRAY(SELECT t.trigger_id FROM %1$s.coherence_triggers t WHERE t.seq_no = e.seq_no"
	"             ORDER BY t.trigger_kind COLLATE \"C\", t.trigger_id COLLATE \"C\"),"
	"       e.id::text"
	"  FROM %1$s.coherence_events e"
	"  LEFT JOIN %1$s.coherence_actions a ON a.seq_no = e.seq_no"
	"  LEFT JOIN %1$s.coherence_effects f ON f.seq_no = e.seq_no"
	" WHERE e.seq_no = $1",
	1, {INT8OID}, CURSOR_OPT_GENERIC_PLAN
};

/*
 * The highest stored seq_no, 0 when empty. A NULL snapshot means SPI's usual
 * one: the caller's when read_only, else a fresh one in READ COMMITTED.
 */
int64
coherence_max_seq_no(Snapshot snapshot, bool read_only)
{
	SPIPlanPtr	plan = coherence_plan(&max_seq_no_plan);
	bool		isnull;
	Datum		max;
	int			rc;

	if (snapshot)
		rc = SPI_execute_snapshot(plan, NULL, NULL, snapshot, InvalidSnapshot,
								  read_only, false, 1);
	else
		rc = SPI_execute_plan(plan, NULL, NULL, read_only, 1);
	coherence_check_spi(rc, SPI_OK_SELECT, "reading the highest seq_no");

	max = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(max);
}

/* Copies a text column of the current SPI row into context. */
static char *
text_column(HeapTuple row, TupleDesc desc, int column, MemoryContext context)
{
	bool		isnull;
	Datum		value = SPI_getbinval(row, desc, column, &isnull);

	return isnull ? NULL : MemoryContextStrdup(context, TextDatumGetCString(value));
}

/* Copies a text[] column of the current SPI row into context. */
static char **
text_array_column(HeapTuple row, TupleDesc desc, int column, MemoryContext context,
				  int *n)
{
	bool		isnull;
	Datum		value = SPI_getbinval(row, desc, column, &isnull);
	Datum	   *elems;
	char	  **strings;

	deconstruct_array(DatumGetArrayTypeP(value), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, NULL, n);
	strings = MemoryContextAlloc(context, sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		strings[i] = MemoryContextStrdup(context, TextDatumGetCString(elems[i]));
	return strings;
}

/*
 * Reads a stored event into *event, its strings copied into result_context.
 * Returns false when there is no such event. read_only uses the caller's
 * snapshot; otherwise SPI takes a fresh one in READ COMMITTED.
 */
bool
coherence_fetch_event(int64 seq_no, bool read_only, CoherenceEvent *event,
					  MemoryContext result_context)
{
	Datum		arg = Int64GetDatum(seq_no);
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	int			rc;

	rc = SPI_execute_plan(coherence_plan(&event_plan), &arg, NULL, read_only, 1);
	coherence_check_spi(rc, SPI_OK_SELECT, "reading an event");
	if (SPI_processed == 0)
		return false;

	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memset(event, 0, sizeof(CoherenceEvent));
	event->seq_no = seq_no;
	event->id = text_column(row, desc, 14, result_context);
	event->timestamp = DatumGetTimestampTz(SPI_getbinval(row, desc, 1, &isnull));
	event->source = text_column(row, desc, 2, result_context);
	SPI_getbinval(row, desc, 3, &isnull);
	event->is_action = !isnull;
	if (event->is_action)
	{
		MemoryContext old;
		char	  **kinds;
		char	  **ids;

		event->reason = text_column(row, desc, 3, result_context);
		event->actor.kind = text_column(row, desc, 4, result_context);
		event->actor.id = text_column(row, desc, 5, result_context);
		event->aggregate.kind = text_column(row, desc, 6, result_context);
		event->aggregate.id = text_column(row, desc, 7, result_context);
		old = MemoryContextSwitchTo(result_context);
		event->patch = DatumGetJsonbPCopy(SPI_getbinval(row, desc, 8, &isnull));
		MemoryContextSwitchTo(old);

		kinds = text_array_column(row, desc, 12, result_context, &event->ntriggers);
		ids = text_array_column(row, desc, 13, result_context, &event->ntriggers);
		event->triggers = MemoryContextAlloc(result_context,
											 sizeof(CoherenceIdentity) * Max(event->ntriggers, 1));
		for (int i = 0; i < event->ntriggers; i++)
		{
			event->triggers[i].kind = kinds[i];
			event->triggers[i].id = ids[i];
		}
	}
	else
	{
		event->reason = text_column(row, desc, 9, result_context);
		event->trigger.kind = text_column(row, desc, 10, result_context);
		event->trigger.id = text_column(row, desc, 11, result_context);
	}
	return true;
}

/* Pushes an object key. */
void
coherence_push_key(JsonbParseState **state, const char *key)
{
	coherence_push_string(state, WJB_KEY, key);
}

/* Pushes a string as a key, value or array element. */
void
coherence_push_string(JsonbParseState **state, JsonbIteratorToken token, const char *value)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	pushJsonbValue(state, token, &v);
}

/* Pushes an integer as a value or array element. */
void
coherence_push_int64(JsonbParseState **state, JsonbIteratorToken token, int64 value)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(value);
	pushJsonbValue(state, token, &v);
}

/* Pushes an identity as a [kind, id] array value or element. */
static void
push_identity(JsonbParseState **state, const CoherenceIdentity *identity)
{
	pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
	coherence_push_string(state, WJB_ELEM, identity->kind);
	coherence_push_string(state, WJB_ELEM, identity->id);
	pushJsonbValue(state, WJB_END_ARRAY, NULL);
}

/*
 * Pushes an event as an object, in the output form of the contract. Returns
 * what pushJsonbValue returns: the finished value when it is the outermost.
 */
JsonbValue *
coherence_push_event(JsonbParseState **state, const CoherenceEvent *event)
{
	JsonbValue	patch;

	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	coherence_push_key(state, "seq_no");
	coherence_push_int64(state, WJB_VALUE, event->seq_no);
	if (event->id)
	{
		coherence_push_key(state, "id");
		coherence_push_string(state, WJB_VALUE, event->id);
	}
	coherence_push_key(state, "timestamp");
	coherence_push_string(state, WJB_VALUE,
						  JsonEncodeDateTime(NULL, TimestampTzGetDatum(event->timestamp),
											 TIMESTAMPTZOID, NULL));
	coherence_push_key(state, "source");
	coherence_push_string(state, WJB_VALUE, event->source);

	coherence_push_key(state, event->is_action ? "action" : "effect");
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	coherence_push_key(state, "reason");
	coherence_push_string(state, WJB_VALUE, event->reason);
	if (event->is_action)
	{
		coherence_push_key(state, "actor");
		push_identity(state, &event->actor);
		coherence_push_key(state, "aggregate");
		push_identity(state, &event->aggregate);
		coherence_push_key(state, "patch");
		patch.type = jbvBinary;
		patch.val.binary.data = &event->patch->root;
		patch.val.binary.len = VARSIZE(event->patch) - VARHDRSZ;
		pushJsonbValue(state, WJB_VALUE, &patch);
	}
	else
	{
		coherence_push_key(state, "trigger");
		push_identity(state, &event->trigger);
	}
	pushJsonbValue(state, WJB_END_OBJECT, NULL);

	if (event->is_action)
	{
		coherence_push_key(state, "triggers");
		pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
		for (int i = 0; i < event->ntriggers; i++)
			push_identity(state, &event->triggers[i]);
		pushJsonbValue(state, WJB_END_ARRAY, NULL);
	}
	return pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/* coherence_event(seq_no): one stored event as JSON, NULL when absent. */
Datum
coherence_event(PG_FUNCTION_ARGS)
{
	int64		seq_no = PG_GETARG_INT64(0);
	MemoryContext caller = CurrentMemoryContext;
	CoherenceEvent event;
	JsonbParseState *state = NULL;
	JsonbValue *result;
	bool		found;
	int			nest_level;

	coherence_wait_durable();
	nest_level = coherence_begin(fcinfo);
	found = coherence_fetch_event(seq_no, true, &event, caller);
	coherence_end(nest_level);
	if (!found)
		PG_RETURN_NULL();

	result = coherence_push_event(&state, &event);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(result));
}

/* coherence_seq_no(): the highest seq_no in the caller's snapshot, 0 when empty. */
Datum
coherence_seq_no(PG_FUNCTION_ARGS)
{
	int64		max;
	int			nest_level;

	coherence_wait_durable();
	nest_level = coherence_begin(fcinfo);
	max = coherence_max_seq_no(NULL, true);
	coherence_end(nest_level);
	PG_RETURN_INT64(max);
}
