/*
 * history.c: reads and validates coherence_rebase's input with the jsonb API
 * (walking the binary jsonb, never re-parsing text). Every rule the contract
 * lists is checked here, before anything touches the tables, and reported as
 * an SQLSTATE class 22 error naming the event's index and the field. Sizes
 * are checked against the limits in coherence.h before anything is copied
 * or allocated for them. Timestamps are read by a strict ISO 8601 parser of
 * our own, so the answer never depends on DateStyle or TimeZone and no
 * error of PostgreSQL's input function has to be caught.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
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
static pg_noreturn void
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

/* Fails when a string of len bytes is longer than max_bytes. */
static void
check_length(int len, int max_bytes, int index, const char *field)
{
	if (len > max_bytes)
		bad_field(index, field, psprintf("must be at most %d bytes long", max_bytes));
}

/* Reads a non-empty string member of at most max_bytes, naming the field. */
static char *
read_string(const JsonbValue *v, int max_bytes, int index, const char *field)
{
	if (!is_nonempty_string(v))
		bad_field(index, field, "must be a non-empty string");
	check_length(v->val.string.len, max_bytes, index, field);
	return jsonb_cstring(v);
}

/*
 * The canonical text of a numeric id: an integral number as its integer
 * text, so that 1, 1.0 and 1e0 name the same aggregate as "1".
 */
static char *
integral_text(Numeric number, int index, const char *field)
{
	char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out,
														   NumericGetDatum(number)));
	char	   *point = strchr(text, '.');

	if (point)
	{
		if (point[strspn(point + 1, "0") + 1] != '\0')
			bad_field(index, field, "id must be a string or an integral number");
		*point = '\0';
	}
	if (strcmp(text, "-0") == 0)
		return pstrdup("0");
	return text;
}

/* Reads a [kind, id] pair; a numeric id is stored as its integer text. */
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
	check_length(kind->val.string.len, COHERENCE_MAX_KIND_BYTES, index,
				 psprintf("%s kind", field));
	identity.kind = jsonb_cstring(kind);

	if (id->type == jbvNumeric)
	{
		identity.id = integral_text(id->val.numeric, index, field);
		check_length(strlen(identity.id), COHERENCE_MAX_ID_BYTES, index,
					 psprintf("%s id", field));
	}
	else if (is_nonempty_string(id))
	{
		check_length(id->val.string.len, COHERENCE_MAX_ID_BYTES, index,
					 psprintf("%s id", field));
		identity.id = jsonb_cstring(id);
	}
	else
		bad_field(index, field, "id must be a non-empty string or an integral number");
	return identity;
}

/* What check_path found. */
typedef enum PathCheck
{
	PATH_OK,
	PATH_MALFORMED,
	PATH_TOO_LONG
} PathCheck;

/* Checks that v is a path: a key, or a non-empty array of keys. */
static PathCheck
check_path(const JsonbValue *v)
{
	int			n;

	if (v->type == jbvString)
		return PATH_OK;
	if (!is_container(v, false) || (n = JsonContainerSize(v->val.binary.data)) == 0)
		return PATH_MALFORMED;
	if (n > COHERENCE_MAX_PATH_KEYS)
		return PATH_TOO_LONG;
	for (int i = 0; i < n; i++)
		if (getIthJsonbValueFromContainer(v->val.binary.data, i)->type != jbvString)
			return PATH_MALFORMED;
	return PATH_OK;
}

/* Fails unless v is a path of at most COHERENCE_MAX_PATH_KEYS keys. */
static void
require_path(const JsonbValue *v, int index, const char *field, int i, const char *rule)
{
	PathCheck	check = check_path(v);

	if (check == PATH_MALFORMED)
		bad_field(index, psprintf("%s[%d]", field, i), rule);
	if (check == PATH_TOO_LONG)
		bad_field(index, psprintf("%s[%d]", field, i),
				  psprintf("path must have at most %d keys", COHERENCE_MAX_PATH_KEYS));
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
		require_path(getIthJsonbValueFromContainer(pair->val.binary.data, 0), index,
					 ".action.patch.assoc", i, "path must be a key or a non-empty array of keys");
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
		require_path(getIthJsonbValueFromContainer(dissoc->val.binary.data, i), index,
					 ".action.patch.dissoc", i, "must be a key or a non-empty array of keys");
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
	if (n > COHERENCE_MAX_TRIGGERS)
		bad_field(index, ".triggers", psprintf("must have at most %d triggers",
											   COHERENCE_MAX_TRIGGERS));
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

/* Reads exactly n digits at *p into *value, advancing *p. */
static bool
read_digits(const char **p, const char *end, int n, int *value)
{
	*value = 0;
	for (int i = 0; i < n; i++, (*p)++)
	{
		if (*p >= end || !isdigit((unsigned char) **p))
			return false;
		*value = *value * 10 + (**p - '0');
	}
	return true;
}

/* Reads the character c at *p, advancing *p. */
static bool
read_char(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

/*
 * Parses YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm) (also a space or
 * "t" for "T", "z" for "Z", and +hhmm or +hh offsets) into *result. The
 * fraction is rounded to microseconds, as PostgreSQL stores it. False for
 * anything else, an impossible date or time, or a value out of range.
 */
static bool
parse_iso8601(const char *p, const char *end, TimestampTz *result)
{
	struct pg_tm tm = {0};
	int			usec = 0;
	bool		round_up = false;
	int			offset_hours = 0;
	int			offset_minutes = 0;
	int			tz;
	Timestamp	timestamp;

	if (!read_digits(&p, end, 4, &tm.tm_year) || !read_char(&p, end, '-') ||
		!read_digits(&p, end, 2, &tm.tm_mon) || !read_char(&p, end, '-') ||
		!read_digits(&p, end, 2, &tm.tm_mday))
		return false;
	if (p >= end || (*p != 'T' && *p != 't' && *p != ' '))
		return false;
	p++;
	if (!read_digits(&p, end, 2, &tm.tm_hour) || !read_char(&p, end, ':') ||
		!read_digits(&p, end, 2, &tm.tm_min) || !read_char(&p, end, ':') ||
		!read_digits(&p, end, 2, &tm.tm_sec))
		return false;
	if (read_char(&p, end, '.'))
	{
		int			digits = 0;

		for (; p < end && isdigit((unsigned char) *p); p++, digits++)
		{
			if (digits < 6)
				usec = usec * 10 + (*p - '0');
			else if (digits == 6)
				round_up = *p >= '5';
		}
		if (digits == 0)
			return false;
		for (; digits < 6; digits++)
			usec *= 10;
	}
	if (read_char(&p, end, 'Z') || read_char(&p, end, 'z'))
		tz = 0;
	else if (p < end && (*p == '+' || *p == '-'))
	{
		int			sign = *p++ == '-' ? -1 : 1;

		if (!read_digits(&p, end, 2, &offset_hours))
			return false;
		if (p < end && (read_char(&p, end, ':') || isdigit((unsigned char) *p)) &&
			!read_digits(&p, end, 2, &offset_minutes))
			return false;
		if (offset_hours > 15 || offset_minutes > 59)
			return false;
		/* PostgreSQL counts zone offsets in seconds west of Greenwich. */
		tz = -sign * (offset_hours * SECS_PER_HOUR + offset_minutes * SECS_PER_MINUTE);
	}
	else
		return false;
	if (p != end)
		return false;

	if (tm.tm_year < 1 || tm.tm_mon < 1 || tm.tm_mon > MONTHS_PER_YEAR ||
		tm.tm_mday < 1 || tm.tm_mday > day_tab[isleap(tm.tm_year)][tm.tm_mon - 1] ||
		tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
		return false;
	if (tm2timestamp(&tm, usec, &tz, &timestamp) != 0)
		return false;
	if (round_up)
		timestamp++;
	if (!IS_VALID_TIMESTAMP(timestamp))
		return false;
	*result = timestamp;
	return true;
}

/* Reads an event's timestamp: an ISO 8601 string with an explicit offset. */
static TimestampTz
read_timestamp(const JsonbValue *v, int index)
{
	TimestampTz result;

	if (v->type != jbvString ||
		!parse_iso8601(v->val.string.val, v->val.string.val + v->val.string.len, &result))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("coherence: history[%d].timestamp must be an ISO 8601 timestamp with a date, a time and an offset",
						index),
				 errhint("Use a form such as \"2026-11-22T10:00:00Z\" or \"2026-11-22T11:00:00+01:00\", or leave timestamp out for now().")));
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
	event->reason = read_string(members[0].value, COHERENCE_MAX_TEXT_BYTES, index,
								".action.reason");
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
	event->reason = read_string(members[0].value, COHERENCE_MAX_TEXT_BYTES, index,
								".effect.reason");
	event->trigger = read_identity(members[1].value, index, ".effect.trigger");
}

/*
 * Reads an event id: a UUID, hex digits in any case, with the usual hyphens
 * or none; returned as lowercase hyphenated text (uuid's output form).
 */
static char *
read_uuid(const JsonbValue *v, int index)
{
	static const char hyphenated[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	char		canonical[sizeof(hyphenated)];
	const char *p;
	int			len;
	bool		with_hyphens;

	if (v->type != jbvString ||
		((len = v->val.string.len) != 32 && len != sizeof(hyphenated) - 1))
		bad_field(index, ".id", "must be a UUID string such as \"7f3e2a4c-9b1d-4e8f-a2c5-0d6b8e1f3a79\"");
	with_hyphens = len != 32;
	p = v->val.string.val;
	for (int i = 0; i < sizeof(hyphenated) - 1; i++)
	{
		if (hyphenated[i] == '-')
		{
			canonical[i] = '-';
			if (with_hyphens && *p++ != '-')
				bad_field(index, ".id", "must be a UUID string such as \"7f3e2a4c-9b1d-4e8f-a2c5-0d6b8e1f3a79\"");
			continue;
		}
		if (!isxdigit((unsigned char) *p))
			bad_field(index, ".id", "must be a UUID string such as \"7f3e2a4c-9b1d-4e8f-a2c5-0d6b8e1f3a79\"");
		canonical[i] = pg_ascii_tolower((unsigned char) *p++);
	}
	canonical[sizeof(hyphenated) - 1] = '\0';
	return pstrdup(canonical);
}

/* qsort comparator for the event indexes of ids, by id. */
static int
compare_ids(const void *a, const void *b, void *arg)
{
	const CoherenceEvent *events = arg;
	int			x = *(const int *) a;
	int			y = *(const int *) b;
	int			c = strcmp(events[x].id, events[y].id);

	return c != 0 ? c : x - y;
}

/* Fails when two events of the history carry the same id. */
static void
check_distinct_ids(const CoherenceEvent *events, int n)
{
	int		   *with_id = palloc(sizeof(int) * n);
	int			count = 0;

	for (int i = 0; i < n; i++)
		if (events[i].id)
			with_id[count++] = i;
	qsort_arg(with_id, count, sizeof(int), compare_ids, (void *) events);
	for (int i = 1; i < count; i++)
		if (strcmp(events[with_id[i - 1]].id, events[with_id[i]].id) == 0)
			bad_field(with_id[i], ".id", psprintf("repeats history[%d].id", with_id[i - 1]));
	pfree(with_id);
}

/* Reads one event of the history. */
static void
read_event(const JsonbValue *v, int index, CoherenceEvent *event)
{
	Member		members[] = {{"timestamp"}, {"source"}, {"action"}, {"effect"}, {"triggers"},
	{"id"}};
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
	if (members[5].value)
		event->id = read_uuid(members[5].value, index);
	event->timestamp_given = timestamp != NULL;
	event->timestamp = timestamp ? read_timestamp(timestamp, index)
		: GetCurrentTransactionStartTimestamp();
	event->source = read_string(members[1].value, COHERENCE_MAX_TEXT_BYTES, index, ".source");

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

/*
 * Reads and validates a whole history; seq_nos are left for the caller.
 * *any_id tells whether some event carries an id.
 */
CoherenceEvent *
coherence_read_history(Jsonb *history, int *nevents, bool *any_id)
{
	int			n;
	CoherenceEvent *events;

	if (!JB_ROOT_IS_ARRAY(history) || JB_ROOT_IS_SCALAR(history) ||
		JB_ROOT_COUNT(history) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("coherence: history must be a non-empty array of events")));

	*any_id = false;
	n = JB_ROOT_COUNT(history);
	if (n > COHERENCE_MAX_EVENTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("coherence: history must have at most %d events", COHERENCE_MAX_EVENTS),
				 errdetail("The history has %d events.", n),
				 errhint("Append a long history in several calls.")));
	events = palloc(sizeof(CoherenceEvent) * n);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *v = getIthJsonbValueFromContainer(&history->root, i);

		read_event(v, i, &events[i]);
		*any_id |= events[i].id != NULL;
	}
	if (*any_id)
		check_distinct_ids(events, n);
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

/*
 * Checks resolved: a one-dimensional array of distinct seq_nos >= 1.
 * Returns them sorted, their number in *nresolved.
 */
int64 *
coherence_check_resolved(ArrayType *resolved, int *nresolved)
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
	*nresolved = n;
	return sorted;
}
