/*
 * probe.c: the conflict check's lookups, read straight from the btree
 * indexes the extension's script creates rather than through SQL.
 *
 * Why. Under the writers' lock an append needs the highest seq_no, whether
 * an effect exists at or after base, and per aggregate the lowest action at
 * or after base: each one btree descent. Through a prepared statement each
 * also paid the plan cache check, executor start-up and shut-down and a
 * result tuple, several times the descent, while every other writer waited
 * (the profile is in the README's Performance chapter).
 *
 * What is kept. Nothing is written here; the rows are read with the table
 * access method's index scan and an MVCC snapshot, as the executor's index
 * scans read them: the caller passes the snapshot SPI would use, the table
 * and index are opened with AccessShareLock (held to the end of the
 * transaction, as the executor holds them), and scan keys carry the index's
 * collation. An index qualifies only if it is a valid, ready, live btree
 * index without predicate or expressions whose leading key columns are
 * exactly the columns needed, ascending, in their type's default operator
 * family and the column's collation. The choice is cached and forgotten on
 * any relation invalidation (CREATE, DROP or REINDEX of an index), and
 * checked again once the index is locked, since DROP INDEX CONCURRENTLY
 * needs no lock on the table. When no index qualifies, because a DBA dropped
 * or replaced it, coherence_probes_open answers false and the caller runs
 * the SQL statements instead, which find the rows by any plan.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "coherence.h"

/* What each probe reads, and the key columns its index must lead with. */
typedef struct ProbeTarget
{
	CoherenceTable table;
	int			ncolumns;
	const char *columns[3];
	Oid			types[3];
} ProbeTarget;

static const ProbeTarget targets[COHERENCE_NPROBES] = {
	[COHERENCE_PROBE_EVENTS] = {COHERENCE_EVENTS, 1, {"seq_no"}, {INT8OID}},
	[COHERENCE_PROBE_EFFECTS] = {COHERENCE_EFFECTS, 1, {"seq_no"}, {INT8OID}},
	[COHERENCE_PROBE_ACTIONS] = {COHERENCE_ACTIONS, 3,
	{"aggregate_kind", "aggregate_id", "seq_no"}, {TEXTOID, TEXTOID, INT8OID}},
};

/* The chosen index of each target. */
static Oid	chosen_index[COHERENCE_NPROBES];
static bool indexes_chosen = false;

/* Forgets the chosen indexes when any relation changes. */
static void
forget_chosen_indexes(Datum arg, Oid relid)
{
	indexes_chosen = false;
}

/* Registers the invalidation callback; called from _PG_init. */
void
coherence_register_probes(void)
{
	CacheRegisterRelcacheCallback(forget_chosen_indexes, (Datum) 0);
}

/* True while an index may be read: built, valid and not being dropped. */
static bool
index_usable(Relation index)
{
	return index->rd_index->indisvalid && index->rd_index->indisready &&
		index->rd_index->indislive;
}

/*
 * True when index (opened) can serve target's lookups on heap. Its columns,
 * operator families and collations never change under the same OID.
 */
static bool
index_serves(Relation heap, Relation index, const ProbeTarget *target)
{
	Form_pg_index form = index->rd_index;

	if (index->rd_rel->relkind != RELKIND_INDEX || index->rd_rel->relam != BTREE_AM_OID ||
		!index_usable(index) || form->indnkeyatts < target->ncolumns ||
		RelationGetIndexPredicate(index) != NIL || RelationGetIndexExpressions(index) != NIL)
		return false;
	for (int i = 0; i < target->ncolumns; i++)
	{
		AttrNumber	attnum = get_attnum(RelationGetRelid(heap), target->columns[i]);
		Form_pg_attribute column;

		if (attnum == InvalidAttrNumber || form->indkey.values[i] != attnum)
			return false;
		column = TupleDescAttr(RelationGetDescr(heap), attnum - 1);
		if (column->atttypid != target->types[i] ||
			index->rd_indoption[i] != 0 ||
			index->rd_opcintype[i] != target->types[i] ||
			index->rd_indcollation[i] != column->attcollation ||
			get_opclass_family(GetDefaultOpClass(target->types[i], BTREE_AM_OID)) != index->rd_opfamily[i])
			return false;
	}
	return true;
}

/* Opens (locked) the first index of heap that serves target, or NULL. */
static Relation
open_serving_index(Relation heap, const ProbeTarget *target)
{
	List	   *indexes = RelationGetIndexList(heap);
	ListCell   *cell;

	foreach(cell, indexes)
	{
		Relation	index = try_relation_open(lfirst_oid(cell), AccessShareLock);

		if (index == NULL)
			continue;
		if (index_serves(heap, index, target))
		{
			list_free(indexes);
			return index;
		}
		relation_close(index, AccessShareLock);
	}
	list_free(indexes);
	return NULL;
}

/*
 * Opens every table and index the probes read, for reads with snapshot.
 * Returns false, with nothing left open, when an index is missing; the
 * caller then asks SQL.
 */
bool
coherence_probes_open(CoherenceProbes *probes, Snapshot snapshot)
{
	Relation	heaps[COHERENCE_NPROBES];

	/* Locks first: taking them processes pending invalidations. */
	for (int t = 0; t < COHERENCE_NPROBES; t++)
		heaps[t] = table_open(coherence_core_table(targets[t].table), AccessShareLock);

	for (int t = 0; t < COHERENCE_NPROBES; t++)
	{
		Relation	index = NULL;

		if (indexes_chosen)
		{
			index = try_relation_open(chosen_index[t], AccessShareLock);
			if (index && !index_usable(index))
			{
				relation_close(index, AccessShareLock);
				index = NULL;
			}
		}
		if (index == NULL)
			index = open_serving_index(heaps[t], &targets[t]);
		if (index == NULL)
		{
			for (int i = 0; i < t; i++)
				index_close(probes->indexes[i], AccessShareLock);
			for (int i = 0; i < COHERENCE_NPROBES; i++)
				table_close(heaps[i], AccessShareLock);
			indexes_chosen = false;
			return false;
		}
		chosen_index[t] = RelationGetRelid(index);
		probes->indexes[t] = index;
	}
	for (int t = 0; t < COHERENCE_NPROBES; t++)
	{
		probes->heaps[t] = heaps[t];
		probes->slots[t] = table_slot_create(heaps[t], NULL);
	}
	indexes_chosen = true;
	probes->action_scan = NULL;
	probes->snapshot = RegisterSnapshot(snapshot);
	return true;
}

/* Closes what coherence_probes_open opened; the locks stay until commit. */
void
coherence_probes_close(CoherenceProbes *probes)
{
	if (probes->action_scan)
		index_endscan(probes->action_scan);
	for (int t = 0; t < COHERENCE_NPROBES; t++)
	{
		ExecDropSingleTupleTableSlot(probes->slots[t]);
		index_close(probes->indexes[t], NoLock);
		table_close(probes->heaps[t], NoLock);
	}
	UnregisterSnapshot(probes->snapshot);
}

/* Sets key to "index column attno <strategy> value" with the index's rules. */
static void
set_key(ScanKey key, Relation index, AttrNumber attno, StrategyNumber strategy,
		RegProcedure procedure, Datum value)
{
	ScanKeyEntryInitialize(key, 0, attno, strategy, InvalidOid,
						   index->rd_indcollation[attno - 1], procedure, value);
}

/*
 * The seq_no of the row in the target's slot: seq_no is the last key column
 * the index was chosen for, so the index names its table column.
 */
static int64
slot_seq_no(CoherenceProbes *probes, CoherenceProbe target)
{
	AttrNumber	attnum = probes->indexes[target]->rd_index->indkey.values[targets[target].ncolumns - 1];
	bool		isnull;
	Datum		value = slot_getattr(probes->slots[target], attnum, &isnull);

	Assert(!isnull);
	return DatumGetInt64(value);
}

/* Starts a scan of the target's index with the given keys. */
static IndexScanDesc
begin_scan(CoherenceProbes *probes, CoherenceProbe target, ScanKey keys, int nkeys)
{
	IndexScanDesc scan;

#if PG_VERSION_NUM >= 180000
	scan = index_beginscan(probes->heaps[target], probes->indexes[target], probes->snapshot,
						   NULL, nkeys, 0);
#else
	scan = index_beginscan(probes->heaps[target], probes->indexes[target], probes->snapshot,
						   nkeys, 0);
#endif
	index_rescan(scan, keys, nkeys, NULL, 0);
	return scan;
}

/* The highest seq_no visible to the snapshot, 0 when the log is empty. */
int64
coherence_probe_max_seq_no(CoherenceProbes *probes)
{
	IndexScanDesc scan = begin_scan(probes, COHERENCE_PROBE_EVENTS, NULL, 0);
	int64		max = 0;

	if (index_getnext_slot(scan, BackwardScanDirection, probes->slots[COHERENCE_PROBE_EVENTS]))
		max = slot_seq_no(probes, COHERENCE_PROBE_EVENTS);
	index_endscan(scan);
	return max;
}

/* True when some effect has seq_no >= base. */
bool
coherence_probe_effect_since(CoherenceProbes *probes, int64 base)
{
	ScanKeyData key;
	IndexScanDesc scan;
	bool		found;

	set_key(&key, probes->indexes[COHERENCE_PROBE_EFFECTS], 1, BTGreaterEqualStrategyNumber,
			F_INT8GE, Int64GetDatum(base));
	scan = begin_scan(probes, COHERENCE_PROBE_EFFECTS, &key, 1);
	found = index_getnext_slot(scan, ForwardScanDirection, probes->slots[COHERENCE_PROBE_EFFECTS]);
	index_endscan(scan);
	return found;
}

/* True when the sorted resolved seq_nos hold seq_no. */
static bool
is_resolved(const int64 *resolved, int nresolved, int64 seq_no)
{
	int			low = 0,
				high = nresolved - 1;

	while (low <= high)
	{
		int			mid = low + (high - low) / 2;

		if (resolved[mid] == seq_no)
			return true;
		if (resolved[mid] < seq_no)
			low = mid + 1;
		else
			high = mid - 1;
	}
	return false;
}

/*
 * The lowest seq_no >= base of an action on aggregate (kind, id) that is not
 * among the sorted resolved seq_nos, 0 when there is none.
 */
int64
coherence_probe_action(CoherenceProbes *probes, const CoherenceIdentity *aggregate, int64 base,
					   const int64 *resolved, int nresolved)
{
	Relation	index = probes->indexes[COHERENCE_PROBE_ACTIONS];
	TupleTableSlot *slot = probes->slots[COHERENCE_PROBE_ACTIONS];
	ScanKeyData keys[3];
	IndexScanDesc scan;
	int64		found = 0;

	set_key(&keys[0], index, 1, BTEqualStrategyNumber, F_TEXTEQ,
			CStringGetTextDatum(aggregate->kind));
	set_key(&keys[1], index, 2, BTEqualStrategyNumber, F_TEXTEQ,
			CStringGetTextDatum(aggregate->id));
	set_key(&keys[2], index, 3, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(base));
	/* A history on many aggregates probes each: one scan, restarted. */
	scan = probes->action_scan;
	if (scan)
		index_rescan(scan, keys, 3, NULL, 0);
	else
		scan = probes->action_scan = begin_scan(probes, COHERENCE_PROBE_ACTIONS, keys, 3);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		int64		seq_no = slot_seq_no(probes, COHERENCE_PROBE_ACTIONS);

		if (!is_resolved(resolved, nresolved, seq_no))
		{
			found = seq_no;
			break;
		}
	}
	return found;
}
