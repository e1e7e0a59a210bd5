/*
 * history.c: reads and validates coherence_rebase's input with the jsonb API
 * (walking the binary jsonb, never re-parsing text). Every rule the contract
 * lists is checked here, before anything touches the tables, and reported as
 * an SQLSTATE class 22 error naming the event's index and the field.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "coherence.h"

/* One member an object may have; value is NULL when the key is absent. */
typedef struct Member
{
	const char *name;
	JsonbValue *value;
} Member;

/* A trigger and its position in the input, for duplicate reports. */
typedef struct PlacedTrigger
{
	CoherenceIdentity identity;
	int			position;
} PlacedTrigger;

/* Reports a field of history[index] that breaks a rule. */
static pg_attribute_noreturn() void
bad_field(int index, const char *field, const char *rule)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("coherence: history[%d]%s %s", index, field, rule)));
}

/* Copies a jsonb string out as a C string. */
static char *
jsonb_cstring(const JsonbValue *v)
{
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* True when v is a nested array (or object, when want_object). */
static bool
is_container(const JsonbValue *v, bool want_object)
{
	if (v == NULL || v->type != jbvBinary)
		return false;
	return want_object ? JsonContainerIsObject(v->val.binary.data)
		: JsonContainerIsArray(v->val.binary.data);
}

/* True when v is a string of at least one character. */
static bool
is_nonempty_string(const JsonbValue *v)
{
	return v != NULL && v->type == jbvString && v->val.string.len > 0;
}

/*
 * Collects the members of the object v into members[], refusing keys that
 * are not listed. Values are copied, so they outlive the iteration.
 */
static void
read_members(const JsonbValue *v, int index, const char *field,
			 Member *members, int nmembers)
{
	JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
	JsonbIteratorToken token;
	JsonbValue	key;
	JsonbValue	value;

	while ((token = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		int			i;

		if (token != WJB_KEY)
			continue;
		token = JsonbIteratorNext(&it, &value, true);
		Assert(token == WJB_VALUE);

		for (i = 0; i < nmembers; i++)
			if (strlen(members[i].name) == key.val.string.len &&
				memcmp(members[i].name, key.val.string.val, key.val.string.len) == 0)
				break;
		if (i == nmembers)
			bad_field(index, field,
					  psprintf("has unknown key \"%s\"", jsonb_cstring(&key)));
		members[i].value = palloc(sizeof(JsonbValue));
		*members[i].value = value;
	}
}

/* Reads a non-empty string member, the rule naming the field. */
static char *
read_string(const JsonbValue *v, int index, const char *field)
{
	if (!is_nonempty_string(v))
		bad_field(index, field, "must be a non-empty string");
	return jsonb_cstring(v);
}

/* Reads a [kind, id] pair; a numeric id is kept in its text form. */
static CoherenceIdentity
read_identity(const JsonbValue *v, int index, const char *field)
{
	CoherenceIdentity identity;
	JsonbValue *kind;
	JsonbValue *id;

	if (!is_container(v, false) || JsonContainerSize(v->val.binary.data) != 2)
		bad_field(index, field, "must be a [kind, id] array");
	kind = getIthJsonbValueFromContainer(v->val.binary.data, 0);
	id = getIthJsonbValueFromContainer(v->val.binary.data, 1);

	if (!is_nonempty_string(kind))
		bad_field(index, field, "kind must be a non-empty string");
	identity.kind = jsonb_cstring(kind);

	if (id->type == jbvNumeric)
		identity.id = DatumGetCString(DirectFunctionCall1(numeric_out,
														  NumericGetDatum(id->val.numeric)));
	else if (is_nonempty_string(id))
		identity.id = jsonb_cstring(id);
	else
		bad_field(index, field, "id must be a non-empty string or a number");
	return identity;
}

/* True when v is a path: a key, or a non-empty array of keys. */
static bool
is_path(const JsonbValue *v)
{
	int			n;

	if (v->type == jbvString)
		return true;
	if (!is_container(v, false) || (n = JsonContainerSize(v->val.binary.data)) == 0)
		return false;
	for (int i = 0; i < n; i++)
		if (getIthJsonbValueFromContainer(v->val.binary.data, i)->type != jbvString)
			return false;
	return true;
}

/* Checks assoc in either form: an object of keys, or [path, value] pairs. */
static void
check_assoc(const JsonbValue *assoc, int index)
{
	int			n;

	if (is_container(assoc, true) && JsonContainerSize(assoc->val.binary.data) > 0)
		return;
	if (!is_container(assoc, false) || (n = JsonContainerSize(assoc->val.binary.data)) == 0)
		bad_field(index, ".action.patch.assoc",
				  "must be a non-empty object or a non-empty array of [path, value] pairs");

	for (int i = 0; i < n; i++)
	{
		JsonbValue *pair = getIthJsonbValueFromContainer(assoc->val.binary.data, i);

		if (!is_container(pair, false) || JsonContainerSize(pair->val.binary.data) != 2)
			bad_field(index, psprintf(".action.patch.assoc[%d]", i),
					  "must be a [path, value] pair");
		if (!is_path(getIthJsonbValueFromContainer(pair->val.binary.data, 0)))
			bad_field(index, psprintf(".action.patch.assoc[%d]", i),
					  "path must be a key or a non-empty array of keys");
	}
}

/* Checks dissoc: a non-empty array of paths. */
static void
check_dissoc(const JsonbValue *dissoc, int index)
{
	int			n;

	if (!is_container(dissoc, false) || (n = JsonContainerSize(dissoc->val.binary.data)) == 0)
		bad_field(index, ".action.patch.dissoc", "must be a non-empty array of paths");

	for (int i = 0; i < n; i++)
		if (!is_path(getIthJsonbValueFromContainer(dissoc->val.binary.data, i)))
			bad_field(index, psprintf(".action.patch.dissoc[%d]", i),
					  "must be a key or a non-empty array of keys");
}

/* Reads a patch, kept as given once it is known to be well formed. */
static Jsonb *
read_patch(const JsonbValue *v, int index)
{
	Member		members[] = {{"assoc"}, {"dissoc"}};

	if (!is_container(v, true))
		bad_field(index, ".action.patch", "must be an object with assoc and/or dissoc");
	read_members(v, index, ".action.patch", members, lengthof(members));
	if (!members[0].value && !members[1].value)
		bad_field(index, ".action.patch", "must have assoc and/or dissoc");
	if (members[0].value)
		check_assoc(members[0].value, index);
	if (members[1].value)
		check_dissoc(members[1].value, index);
	return JsonbValueToJsonb((JsonbValue *) v);
}

/* Orders identities by kind, then id, bytewise (as COLLATE "C"). */
static int
compare_identities(const CoherenceIdentity *a, const CoherenceIdentity *b)
{
	int			c = strcmp(a->kind, b->kind);

	return c != 0 ? c : strcmp(a->id, b->id);
}

/* qsort comparator for placed triggers, ties broken by input position. */
static int
compare_placed(const void *a, const void *b)
{
	const PlacedTrigger *x = a;
	const PlacedTrigger *y = b;
	int			c = compare_identities(&x->identity, &y->identity);

	return c != 0 ? c : x->position - y->position;
}

/* Reads an action's triggers: distinct identities, stored sorted. */
static void
read_triggers(const JsonbValue *v, int index, CoherenceEvent *event)
{
	int			n;
	PlacedTrigger *placed;

	if (!is_container(v, false))
		bad_field(index, ".triggers", "must be an array of [kind, id] arrays");
	n = JsonContainerSize(v->val.binary.data);
	placed = palloc(sizeof(PlacedTrigger) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		placed[i].identity = read_identity(getIthJsonbValueFromContainer(v->val.binary.data, i),
										   index, psprintf(".triggers[%d]", i));
		placed[i].position = i;
	}
	qsort(placed, n, sizeof(PlacedTrigger), compare_placed);

	event->ntriggers = n;
	event->triggers = palloc(sizeof(CoherenceIdentity) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (i > 0 && compare_identities(&placed[i - 1].identity, &placed[i].identity) == 0)
			bad_field(index, psprintf(".triggers[%d]", placed[i].position),
					  psprintf("repeats triggers[%d]", placed[i - 1].position));
		event->triggers[i] = placed[i].identity;
	}
	pfree(placed);
}

/* Parses an ISO 8601 timestamp; any parse failure names the field. */
static TimestampTz
read_timestamp(const JsonbValue *v, int index)
{
	MemoryContext context = CurrentMemoryContext;
	volatile	TimestampTz result = 0;
	volatile bool ok = false;

	if (v->type == jbvString)
	{
		char	   *text = jsonb_cstring(v);

		/* The input function reports some failures with its own ereport. */
		PG_TRY();
		{
			result = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
															 CStringGetDatum(text),
															 ObjectIdGetDatum(InvalidOid),
															 Int32GetDatum(-1)));
			ok = !TIMESTAMP_NOT_FINITE(result);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(context);
			FlushErrorState();
		}
		PG_END_TRY();
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("coherence: history[%d].timestamp must be an ISO 8601 timestamp string",
						index),
				 errhint("Use a form such as \"2026-11-22T10:00:00Z\", or leave timestamp out for now().")));
	return result;
}

/* Reads an action's body: reason, actor, aggregate and patch. */
static void
read_action(const JsonbValue *v, int index, CoherenceEvent *event)
{
	Member		members[] = {{"reason"}, {"actor"}, {"aggregate"}, {"patch"}};

	if (!is_container(v, true))
		bad_field(index, ".action", "must be an object");
	read_members(v, index, ".action", members, lengthof(members));
	event->is_action = true;
	event->reason = read_string(members[0].value, index, ".action.reason");
	event->actor = read_identity(members[1].value, index, ".action.actor");
	event->aggregate = read_identity(members[2].value, index, ".action.aggregate");
	if (!members[3].value)
		bad_field(index, ".action.patch", "must be an object with assoc and/or dissoc");
	event->patch = read_patch(members[3].value, index);
}

/* Reads an effect's body: reason and trigger. */
static void
read_effect(const JsonbValue *v, int index, CoherenceEvent *event)
{
	Member		members[] = {{"reason"}, {"trigger"}};

	if (!is_container(v, true))
		bad_field(index, ".effect", "must be an object");
	read_members(v, index, ".effect", members, lengthof(members));
	event->is_action = false;
	event->reason = read_string(members[0].value, index, ".effect.reason");
	event->trigger = read_identity(members[1].value, index, ".effect.trigger");
}

/* Reads one event of the history. */
static void
read_event(const JsonbValue *v, int index, CoherenceEvent *event)
{
	Member		members[] = {{"timestamp"}, {"source"}, {"action"}, {"effect"}, {"triggers"}};
	JsonbValue *timestamp;
	JsonbValue *action;
	JsonbValue *effect;
	JsonbValue *triggers;

	if (!is_container(v, true))
		bad_field(index, "", "must be an object");
	read_members(v, index, "", members, lengthof(members));
	timestamp = members[0].value;
	action = members[2].value;
	effect = members[3].value;
	triggers = members[4].value;

	memset(event, 0, sizeof(CoherenceEvent));
	event->timestamp = timestamp ? read_timestamp(timestamp, index)
		: GetCurrentTransactionStartTimestamp();
	event->source = read_string(members[1].value, index, ".source");

	if ((action == NULL) == (effect == NULL))
		bad_field(index, "", "must have exactly one of action or effect");
	if (action)
	{
		read_action(action, index, event);
		if (triggers)
			read_triggers(triggers, index, event);
	}
	else
	{
		if (triggers)
			bad_field(index, ".triggers", "is not allowed on an effect");
		read_effect(effect, index, event);
	}
}

/* Reads and validates a whole history; seq_nos are left for the caller. */
CoherenceEvent *
coherence_read_history(Jsonb *history, int *nevents)
{
	int			n;
	CoherenceEvent *events;

	if (!JB_ROOT_IS_ARRAY(history) || JB_ROOT_IS_SCALAR(history) ||
		JB_ROOT_COUNT(history) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("coherence: history must be a non-empty array of events")));

	n = JB_ROOT_COUNT(history);
	events = palloc(sizeof(CoherenceEvent) * n);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *v = getIthJsonbValueFromContainer(&history->root, i);

		read_event(v, i, &events[i]);
	}
	*nevents = n;
	return events;
}

/* qsort comparator for int64. */
static int
compare_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* Checks resolved: a one-dimensional array of distinct seq_nos >= 1. */
void
coherence_check_resolved(ArrayType *resolved)
{
	Datum	   *values;
	bool	   *nulls;
	int64	   *sorted;
	int			n;

	if (ARR_NDIM(resolved) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("coherence: resolved must be a one-dimensional array")));
	deconstruct_array(resolved, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &values, &nulls, &n);

	sorted = palloc(sizeof(int64) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("coherence: resolved[%d] must not be null", i + 1)));
		sorted[i] = DatumGetInt64(values[i]);
		if (sorted[i] < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("coherence: resolved[%d] must be a seq_no of at least 1", i + 1)));
	}
	qsort(sorted, n, sizeof(int64), compare_int64);
	for (int i = 1; i < n; i++)
		if (sorted[i] == sorted[i - 1])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("coherence: resolved lists seq_no " INT64_FORMAT " more than once",
							sorted[i])));
	pfree(sorted);
}
