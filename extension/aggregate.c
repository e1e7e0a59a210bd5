/*
 * aggregate.c: an aggregate's state, folded from its patches, and the
 * snapshots that keep long aggregates cheap to read.
 *
 * Folding. The state starts as {} at the aggregate's first action; each
 * patch first removes its dissoc paths (a missing path is no error), then
 * sets its assoc values, creating objects on the way (a value that stands in
 * the way of a nested path is replaced by an object). The work is done by
 * PostgreSQL's own jsonb functions (jsonb_concat, jsonb_set,
 * jsonb_delete_path).
 *
 * Snapshots. coherence_rebase writes a snapshot of an aggregate's state after
 * an action it appends when that action is sampled: a hash of its seq_no
 * falls in 1 of coherence.snapshot_interval buckets. Sampling keeps the
 * append path free of per-aggregate counters; snapshots of an aggregate are
 * then about snapshot_interval actions apart on average, and one is written
 * only if it saves folding at least half an interval. A snapshot is written
 * in the appending transaction, holding the writers' lock, so it reflects
 * exactly the actions up to its seq_no and is visible exactly when they are.
 * Reads start from the latest snapshot at or before the seq_no asked for.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "coherence.h"

PG_FUNCTION_INFO_V1(coherence_aggregate);

/* coherence.snapshot_interval: actions between snapshots, 0 = none. */
int			coherence_snapshot_interval = 100;

#define PATCH_BATCH 1000

static CoherencePlan latest_snapshot_plan = {
	"SELECT seq_no, state FROM %1$s.coherence_snapshots"
	" WHERE aggregate_kind = $1 AND aggregate_id = $2 AND seq_no <= $3"
	" ORDER BY seq_no DESC LIMIT 1",
	3, {TEXTOID, TEXTOID, INT8OID}, CURSOR_OPT_GENERIC_PLAN
};

static CoherencePlan patches_plan = {
	"SELECT patch FROM %1$s.coherence_actions"
	" WHERE aggregate_kind = $1 AND aggregate_id = $2 AND seq_no > $3 AND seq_no <= $4"
	" ORDER BY seq_no",
	4, {TEXTOID, TEXTOID, INT8OID, INT8OID}, CURSOR_OPT_GENERIC_PLAN
};

static CoherencePlan insert_snapshot_plan = {
	"INSERT INTO %1$s.coherence_snapshots (aggregate_kind, aggregate_id, seq_no, state)"
	" VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
	4, {TEXTOID, TEXTOID, INT8OID, JSONBOID}, CURSOR_OPT_GENERIC_PLAN
};

/* Defines coherence.snapshot_interval. */
void
coherence_define_snapshot_interval(void)
{
	DefineCustomIntVariable("coherence.snapshot_interval",
							"Actions of an aggregate between two snapshots of its state, on average.",
							"0 turns snapshots off; existing ones are still used.",
							&coherence_snapshot_interval,
							100, 0, 1000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}

/* The path a jsonb value stands for: a key, or an array of keys. */
static ArrayType *
path_array(const JsonbValue *path, int *length)
{
	Datum	   *keys;
	int			n;

	if (path->type == jbvString)
	{
		Datum		key = PointerGetDatum(cstring_to_text_with_len(path->val.string.val,
																	path->val.string.len));

		*length = 1;
		return construct_array(&key, 1, TEXTOID, -1, false, TYPALIGN_INT);
	}
	n = JsonContainerSize(path->val.binary.data);
	keys = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *key = getIthJsonbValueFromContainer(path->val.binary.data, i);

		keys[i] = PointerGetDatum(cstring_to_text_with_len(key->val.string.val,
														   key->val.string.len));
	}
	*length = n;
	return construct_array(keys, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/* The first depth keys of a path, as a new path. */
static ArrayType *
path_prefix(ArrayType *path, int depth)
{
	Datum	   *keys;
	int			n;

	deconstruct_array(path, TEXTOID, -1, false, TYPALIGN_INT, &keys, NULL, &n);
	return construct_array(keys, depth, TEXTOID, -1, false, TYPALIGN_INT);
}

/* True when the first depth keys of path lead to an object in state. */
static bool
is_object_at(Jsonb *state, ArrayType *path, int depth)
{
	JsonbContainer *container = &state->root;
	Datum	   *keys;
	int			n;

	deconstruct_array(path, TEXTOID, -1, false, TYPALIGN_INT, &keys, NULL, &n);
	for (int i = 0; i < depth; i++)
	{
		text	   *key = DatumGetTextPP(keys[i]);
		JsonbValue	found;

		if (!getKeyJsonValueFromContainer(container, VARDATA_ANY(key),
										  VARSIZE_ANY_EXHDR(key), &found) ||
			found.type != jbvBinary || !JsonContainerIsObject(found.val.binary.data))
			return false;
		container = found.val.binary.data;
	}
	return true;
}

/* Sets value at path, creating or replacing objects on the way. */
static Jsonb *
assoc_in(Jsonb *state, const JsonbValue *path_value, const JsonbValue *value)
{
	int			length;
	ArrayType  *path = path_array(path_value, &length);
	Datum		empty = DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));

	for (int depth = 1; depth < length; depth++)
		if (!is_object_at(state, path, depth))
			state = DatumGetJsonbP(DirectFunctionCall4(jsonb_set, JsonbPGetDatum(state),
													   PointerGetDatum(path_prefix(path, depth)),
													   empty, BoolGetDatum(true)));
	return DatumGetJsonbP(DirectFunctionCall4(jsonb_set, JsonbPGetDatum(state),
											  PointerGetDatum(path),
											  JsonbPGetDatum(JsonbValueToJsonb((JsonbValue *) value)),
											  BoolGetDatum(true)));
}

/* Removes the key at path, if it is there under objects all the way. */
static Jsonb *
dissoc_in(Jsonb *state, const JsonbValue *path_value)
{
	int			length;
	ArrayType  *path = path_array(path_value, &length);

	if (!is_object_at(state, path, length - 1))
		return state;
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_delete_path, JsonbPGetDatum(state),
											  PointerGetDatum(path)));
}

/* Calls apply(state, element) for each element of an array container. */
static Jsonb *
each_element(Jsonb *state, JsonbContainer *array,
			 Jsonb *(*apply) (Jsonb *state, JsonbContainer *array, int i))
{
	int			n = JsonContainerSize(array);

	for (int i = 0; i < n; i++)
		state = apply(state, array, i);
	return state;
}

/* Applies one dissoc path. */
static Jsonb *
apply_dissoc(Jsonb *state, JsonbContainer *paths, int i)
{
	return dissoc_in(state, getIthJsonbValueFromContainer(paths, i));
}

/* Applies one [path, value] pair of an assoc array. */
static Jsonb *
apply_assoc_pair(Jsonb *state, JsonbContainer *pairs, int i)
{
	JsonbValue *pair = getIthJsonbValueFromContainer(pairs, i);

	return assoc_in(state, getIthJsonbValueFromContainer(pair->val.binary.data, 0),
					getIthJsonbValueFromContainer(pair->val.binary.data, 1));
}

/* Applies a (validated) patch: its dissoc paths, then its assoc values. */
static Jsonb *
apply_patch(Jsonb *state, Jsonb *patch)
{
	JsonbValue	member;

	if (getKeyJsonValueFromContainer(&patch->root, "dissoc", 6, &member))
		state = each_element(state, member.val.binary.data, apply_dissoc);
	if (getKeyJsonValueFromContainer(&patch->root, "assoc", 5, &member))
	{
		if (JsonContainerIsObject(member.val.binary.data))
			state = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(state),
													   JsonbPGetDatum(JsonbValueToJsonb(&member))));
		else
			state = each_element(state, member.val.binary.data, apply_assoc_pair);
	}
	return state;
}

/*
 * Folds the aggregate's patches up to at_seq_no, from its latest snapshot.
 * Returns the state in result_context, or NULL when there are no actions by
 * then; *folded counts the patches applied. Needs SPI connected; read_only
 * reads with the caller's snapshot. Memory stays bounded however long the
 * aggregate: states alternate between two contexts reset in turn.
 */
static Jsonb *
fold(Datum kind, Datum id, int64 at_seq_no, bool read_only,
	 MemoryContext result_context, int64 *folded)
{
	Datum		args[4] = {kind, id, Int64GetDatum(at_seq_no), 0};
	MemoryContext contexts[2];
	int			current = 0;
	Jsonb	   *state = NULL;
	int64		after = 0;
	Portal		portal;
	bool		isnull;
	int			rc;

	contexts[0] = AllocSetContextCreate(result_context, "coherence fold", ALLOCSET_DEFAULT_SIZES);
	contexts[1] = AllocSetContextCreate(result_context, "coherence fold", ALLOCSET_DEFAULT_SIZES);

	rc = SPI_execute_plan(coherence_plan(&latest_snapshot_plan), args, NULL, read_only, 1);
	coherence_check_spi(rc, SPI_OK_SELECT, "reading a snapshot");
	if (SPI_processed == 1)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		MemoryContext old = MemoryContextSwitchTo(contexts[current]);

		after = DatumGetInt64(SPI_getbinval(row, SPI_tuptable->tupdesc, 1, &isnull));
		state = DatumGetJsonbPCopy(SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &isnull));
		MemoryContextSwitchTo(old);
	}

	*folded = 0;
	args[2] = Int64GetDatum(after);
	args[3] = Int64GetDatum(at_seq_no);
	portal = SPI_cursor_open(NULL, coherence_plan(&patches_plan), args, NULL, read_only);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, PATCH_BATCH);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			int			next = 1 - current;
			MemoryContext old = MemoryContextSwitchTo(contexts[next]);
			Jsonb	   *patch = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[i],
															 SPI_tuptable->tupdesc, 1, &isnull));

			Jsonb	   *before;

			if (state == NULL)
				state = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
			before = state;
			state = apply_patch(state, patch);
			/* jsonb functions return their input when nothing changes. */
			if (state == before)
				state = DatumGetJsonbPCopy(JsonbPGetDatum(state));
			MemoryContextSwitchTo(old);
			MemoryContextReset(contexts[current]);
			current = next;
			(*folded)++;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);

	if (state)
	{
		MemoryContext old = MemoryContextSwitchTo(result_context);

		state = DatumGetJsonbPCopy(JsonbPGetDatum(state));
		MemoryContextSwitchTo(old);
	}
	MemoryContextDelete(contexts[0]);
	MemoryContextDelete(contexts[1]);
	return state;
}

/* True when the action at seq_no is sampled for a snapshot. */
static bool
sampled(int64 seq_no)
{
	uint64		hash = hash_bytes_extended((const unsigned char *) &seq_no,
										   sizeof(seq_no), 0);

	return hash % (uint64) coherence_snapshot_interval == 0;
}

/*
 * Writes snapshots after the sampled actions of events just written by
 * coherence_rebase (SPI connected, writers' lock held).
 */
void
coherence_snapshot_appended(const CoherenceEvent *events, int nevents)
{
	if (coherence_snapshot_interval <= 0)
		return;

	for (int i = 0; i < nevents; i++)
	{
		const CoherenceEvent *e = &events[i];
		Datum		args[4];
		int64		folded;
		Jsonb	   *state;
		int			rc;

		if (!e->is_action || !sampled(e->seq_no))
			continue;
		/* A 1.0 installation, not yet updated, has no snapshots table. */
		if (!OidIsValid(get_relname_relid("coherence_snapshots", coherence_schema())))
			return;
		args[0] = CStringGetTextDatum(e->aggregate.kind);
		args[1] = CStringGetTextDatum(e->aggregate.id);
		args[2] = Int64GetDatum(e->seq_no);
		state = fold(args[0], args[1], e->seq_no, false, CurrentMemoryContext, &folded);
		if (state == NULL || folded < Max(coherence_snapshot_interval / 2, 1))
			continue;
		args[3] = JsonbPGetDatum(state);
		rc = SPI_execute_plan(coherence_plan(&insert_snapshot_plan), args, NULL, false, 0);
		coherence_check_spi(rc, SPI_OK_INSERT, "writing a snapshot");
	}
}

/*
 * coherence_aggregate(kind, id, at_seq_no): the aggregate's state after its
 * actions up to at_seq_no (all when NULL), NULL when it has none by then.
 */
Datum
coherence_aggregate(PG_FUNCTION_ARGS)
{
	int64		at_seq_no = PG_ARGISNULL(2) ? PG_INT64_MAX : PG_GETARG_INT64(2);
	MemoryContext caller = CurrentMemoryContext;
	Jsonb	   *state;
	int64		folded;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("coherence: %s must not be null", PG_ARGISNULL(0) ? "kind" : "id")));
	if (at_seq_no < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("coherence: at_seq_no must not be negative")));

	coherence_begin(fcinfo);
	state = fold(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), at_seq_no, true, caller, &folded);
	coherence_end();

	if (state == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(state);
}
