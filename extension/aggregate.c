/*
 * aggregate.c: an aggregate's state, folded from its patches, and the
 * snapshots that keep long aggregates cheap to read.
 *
 * Folding. The state starts as {} at the aggregate's first action; each
 * patch first removes its dissoc paths (a missing path is no error), then
 * sets its assoc values, creating objects on the way (a value that stands in
 * the way of a nested path is replaced by an object). Each patch rewrites
 * the state once, in time linear in the sizes of patch and state (see
 * apply_patch).
 *
 * Snapshots. coherence_rebase writes a snapshot of an aggregate's state after
 * an action it appends when that action is sampled: a hash of its seq_no
 * falls in 1 of coherence.snapshot_interval buckets. Sampling keeps the
 * append path free of per-aggregate counters; snapshots of an aggregate are
 * then about snapshot_interval actions apart on average, and one is written
 * only if it saves folding at least half an interval. A sampled append folds
 * at most two intervals of patches from the latest snapshot: when that one
 * is further back (after TRUNCATE coherence_snapshots, or for an aggregate
 * that grew with snapshots off) the snapshot is written where those patches
 * end, so the chain catches up by two intervals per sampled append and no
 * append does unbounded work. A snapshot is written in the appending
 * transaction, holding the writers' lock, so it reflects exactly the actions
 * up to its seq_no and is visible exactly when they are.
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
	"SELECT patch, seq_no FROM %1$s.coherence_actions"
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

/*
 * Applying a patch. Its operations are first gathered into a tree of the
 * paths they touch, in patch order: a dissoc makes its node absent, an
 * assoc gives its node a value, and either drops what earlier operations
 * did below that node; an assoc also marks the nodes on its way as "must
 * be an object" (a value in the way is replaced by {}), a dissoc does not
 * (it does nothing under a non-object). The new state is then written in
 * one pass over the old one, copying every untouched member as it is, so a
 * patch costs time linear in the sizes of the patch and the state, and
 * recursion no deeper than COHERENCE_MAX_PATH_KEYS.
 */

/* What a node's value is before the operations below it apply. */
typedef enum NodeBase
{
	BASE_ORIGINAL,				/* the member as it is in the old state */
	BASE_ABSENT,				/* removed by a dissoc */
	BASE_VALUE					/* set by an assoc */
} NodeBase;

/* One key of a patch's path tree. */
typedef struct PatchNode
{
	const char *key;
	int			keylen;
	NodeBase	base;
	JsonbValue *value;			/* BASE_VALUE: the value from the patch */
	bool		make_object;	/* a later nested assoc needs an object here */
	uint32		generation;		/* bumped when the node is set again */
	bool		visited;		/* met while copying the old state */
	struct PatchNode *first_child;
	struct PatchNode *next_sibling;
} PatchNode;

/* A child is found by its parent, the parent's generation and its key. */
typedef struct ChildKey
{
	const PatchNode *parent;
	uint32		generation;
	const char *key;
	int			keylen;
} ChildKey;

typedef struct ChildEntry
{
	ChildKey	key;
	PatchNode  *node;
	char		status;
} ChildEntry;

/* Hashes a child's key. */
static inline uint32
child_hash(const ChildKey *key)
{
	uint32		h = hash_bytes((const unsigned char *) key->key, key->keylen);

	h = hash_combine(h, murmurhash32((uint32) (uintptr_t) key->parent));
	return hash_combine(h, key->generation);
}

/* Compares two children's keys. */
static inline bool
child_equal(const ChildKey *a, const ChildKey *b)
{
	return a->parent == b->parent && a->generation == b->generation &&
		a->keylen == b->keylen && memcmp(a->key, b->key, a->keylen) == 0;
}

#define SH_PREFIX children
#define SH_ELEMENT_TYPE ChildEntry
#define SH_KEY_TYPE ChildKey
#define SH_KEY key
#define SH_HASH_KEY(tb, k) child_hash(&(k))
#define SH_EQUAL(tb, a, b) child_equal(&(a), &(b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* Finds the child of parent at key, creating it (unchanged) if needed. */
static PatchNode *
child_of(children_hash *children, PatchNode *parent, const char *key, int keylen)
{
	ChildKey	lookup = {parent, parent->generation, key, keylen};
	bool		found;
	ChildEntry *entry = children_insert(children, lookup, &found);

	if (!found)
	{
		PatchNode  *node = palloc0(sizeof(PatchNode));

		node->key = key;
		node->keylen = keylen;
		node->base = BASE_ORIGINAL;
		node->next_sibling = parent->first_child;
		parent->first_child = node;
		entry->node = node;
	}
	return entry->node;
}

/* Gives a node a new base, forgetting every operation below it. */
static void
reset_node(PatchNode *node, NodeBase base, JsonbValue *value)
{
	node->base = base;
	node->value = value;
	node->make_object = false;
	node->first_child = NULL;
	node->generation++;
}

/* The i-th key of a path (a key, or an array of keys). */
static JsonbValue *
path_key(JsonbValue *path, int i)
{
	return path->type == jbvString ? path
		: getIthJsonbValueFromContainer(path->val.binary.data, i);
}

/* The number of keys of a path. */
static int
path_keys(const JsonbValue *path)
{
	return path->type == jbvString ? 1 : JsonContainerSize(path->val.binary.data);
}

/*
 * Walks to the node of a path's last key; an assoc (for_assoc) marks the
 * nodes on its way as needing an object.
 */
static PatchNode *
node_at(children_hash *children, PatchNode *root, JsonbValue *path, bool for_assoc)
{
	PatchNode  *node = root;
	int			n = path_keys(path);

	for (int i = 0; i < n; i++)
	{
		JsonbValue *key = path_key(path, i);

		if (for_assoc && i > 0)
			node->make_object = true;
		node = child_of(children, node, key->val.string.val, key->val.string.len);
	}
	return node;
}

/* True when v is an object. */
static bool
is_object(const JsonbValue *v)
{
	return v != NULL && v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

static void push_members(JsonbParseState **state, children_hash *children,
						 PatchNode *node, JsonbContainer *old);

/* Pushes node's new value as the member key, given its old value (or NULL). */
static void
push_node(JsonbParseState **state, children_hash *children, PatchNode *node,
		  JsonbValue *old)
{
	JsonbValue	key = {.type = jbvString};
	JsonbValue *value = node->base == BASE_ORIGINAL ? old
		: node->base == BASE_VALUE ? node->value : NULL;
	bool		coerced = node->make_object && !is_object(value);

	if (value == NULL && !coerced)
		return;
	key.val.string.val = (char *) node->key;
	key.val.string.len = node->keylen;
	pushJsonbValue(state, WJB_KEY, &key);
	if (!coerced && (node->first_child == NULL || !is_object(value)))
	{
		pushJsonbValue(state, WJB_VALUE, value);
		return;
	}
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	push_members(state, children, node, coerced ? NULL : value->val.binary.data);
	pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/*
 * Pushes the members of the object old (NULL for {}) with the operations
 * under node applied: untouched members as they are, touched ones changed.
 */
static void
push_members(JsonbParseState **state, children_hash *children, PatchNode *node,
			 JsonbContainer *old)
{
	if (old)
	{
		JsonbIterator *it = JsonbIteratorInit(old);
		JsonbIteratorToken token;
		JsonbValue	key;
		JsonbValue	value;

		while ((token = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
		{
			ChildKey	lookup;
			ChildEntry *entry;

			if (token != WJB_KEY)
				continue;
			JsonbIteratorNext(&it, &value, true);
			lookup = (ChildKey) {node, node->generation, key.val.string.val, key.val.string.len};
			entry = children_lookup(children, lookup);
			if (entry == NULL)
			{
				pushJsonbValue(state, WJB_KEY, &key);
				pushJsonbValue(state, WJB_VALUE, &value);
				continue;
			}
			entry->node->visited = true;
			push_node(state, children, entry->node, &value);
		}
	}
	for (PatchNode *child = node->first_child; child; child = child->next_sibling)
		if (!child->visited)
			push_node(state, children, child, NULL);
}

/* Calls add(children, root, element) for each element of an array container. */
static void
each_operation(children_hash *children, PatchNode *root, JsonbContainer *array,
			   void (*add) (children_hash *children, PatchNode *root, JsonbValue *element))
{
	int			n = JsonContainerSize(array);

	for (int i = 0; i < n; i++)
		add(children, root, getIthJsonbValueFromContainer(array, i));
}

/* Adds a dissoc path: its node becomes absent. */
static void
add_dissoc(children_hash *children, PatchNode *root, JsonbValue *path)
{
	reset_node(node_at(children, root, path, false), BASE_ABSENT, NULL);
}

/* Adds a [path, value] pair of an assoc array: its node gets the value. */
static void
add_assoc_pair(children_hash *children, PatchNode *root, JsonbValue *pair)
{
	JsonbValue *path = getIthJsonbValueFromContainer(pair->val.binary.data, 0);

	reset_node(node_at(children, root, path, true), BASE_VALUE,
			   getIthJsonbValueFromContainer(pair->val.binary.data, 1));
}

/* Applies a (validated) patch: its dissoc paths, then its assoc values. */
static Jsonb *
apply_patch(Jsonb *state, Jsonb *patch)
{
	children_hash *children = children_create(CurrentMemoryContext, 16, NULL);
	PatchNode	root = {0};
	JsonbParseState *parse = NULL;
	JsonbValue	member;

	if (getKeyJsonValueFromContainer(&patch->root, "dissoc", 6, &member))
		each_operation(children, &root, member.val.binary.data, add_dissoc);
	if (getKeyJsonValueFromContainer(&patch->root, "assoc", 5, &member))
	{
		if (JsonContainerIsArray(member.val.binary.data))
			each_operation(children, &root, member.val.binary.data, add_assoc_pair);
		else
		{
			JsonbIterator *it = JsonbIteratorInit(member.val.binary.data);
			JsonbIteratorToken token;
			JsonbValue	key;

			while ((token = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
			{
				JsonbValue *value;

				if (token != WJB_KEY)
					continue;
				value = palloc(sizeof(JsonbValue));
				JsonbIteratorNext(&it, value, true);
				reset_node(node_at(children, &root, &key, true), BASE_VALUE, value);
			}
		}
	}

	pushJsonbValue(&parse, WJB_BEGIN_OBJECT, NULL);
	push_members(&parse, children, &root, &state->root);
	return JsonbValueToJsonb(pushJsonbValue(&parse, WJB_END_OBJECT, NULL));
}

/*
 * Folds the aggregate's patches up to at_seq_no, from its latest snapshot,
 * applying at most max_patches. Returns the state in result_context, or NULL
 * when there are no actions by then; *folded counts the patches applied and
 * *folded_to is the seq_no the state is at. Needs SPI connected; read_only
 * reads with the caller's snapshot. Memory stays bounded however long the
 * aggregate: states alternate between two contexts reset in turn.
 */
static Jsonb *
fold(Datum kind, Datum id, int64 at_seq_no, bool read_only, MemoryContext result_context,
	 int64 max_patches, int64 *folded, int64 *folded_to)
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
	*folded_to = after;
	args[2] = Int64GetDatum(after);
	args[3] = Int64GetDatum(at_seq_no);
	portal = SPI_cursor_open(NULL, coherence_plan(&patches_plan), args, NULL, read_only);
	while (*folded < max_patches)
	{
		SPI_cursor_fetch(portal, true, Min(PATCH_BATCH, max_patches - *folded));
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			int			next = 1 - current;
			MemoryContext old = MemoryContextSwitchTo(contexts[next]);
			Jsonb	   *patch = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[i],
															 SPI_tuptable->tupdesc, 1, &isnull));

			if (state == NULL)
				state = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
			state = apply_patch(state, patch);
			MemoryContextSwitchTo(old);
			MemoryContextReset(contexts[current]);
			current = next;
			(*folded)++;
			*folded_to = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 2, &isnull));
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
		int64		folded_to;
		Jsonb	   *state;
		int			rc;

		if (!e->is_action || !sampled(e->seq_no))
			continue;
		/* A 1.0 installation, not yet updated, has no snapshots table. */
		if (!OidIsValid(coherence_table(COHERENCE_SNAPSHOTS)))
			return;
		args[0] = CStringGetTextDatum(e->aggregate.kind);
		args[1] = CStringGetTextDatum(e->aggregate.id);
		state = fold(args[0], args[1], e->seq_no, false, CurrentMemoryContext,
					 2 * (int64) coherence_snapshot_interval, &folded, &folded_to);
		if (state == NULL || folded < Max(coherence_snapshot_interval / 2, 1))
			continue;
		args[2] = Int64GetDatum(folded_to);
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
	int64		folded_to;
	int			nest_level;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("coherence: %s must not be null", PG_ARGISNULL(0) ? "kind" : "id")));
	if (at_seq_no < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("coherence: at_seq_no must not be negative")));

	coherence_wait_durable();
	nest_level = coherence_begin(fcinfo);
	state = fold(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), at_seq_no, true, caller,
				 PG_INT64_MAX, &folded, &folded_to);
	coherence_end(nest_level);

	if (state == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(state);
}
