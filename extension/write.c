/*
 * write.c: writes appended events straight into the tables and their
 * indexes, the way PostgreSQL writes its catalogs (CatalogTupleInsert).
 *
 * Why not INSERT statements: each one pays an executor start-up, and each
 * row of a table with a foreign key pays an RI trigger, an SPI query that
 * also locks the parent row FOR KEY SHARE (a WAL record and a dirtied page).
 * coherence_rebase writes every parent row itself in the same call and has
 * validated every value its CHECK constraints guard, so neither adds
 * anything here; the constraints still hold for anyone writing with SQL.
 * Unique indexes are checked as INSERT checks them, values are TOASTed as
 * INSERT does, and the rows are WAL-logged (and logically decoded) the same.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "catalog/index.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "coherence.h"

/* One table open for appending, with its indexes. */
typedef struct TableWriter
{
	Relation	table;
	TupleTableSlot *slot;
	int			nindexes;
	Relation   *indexes;
	IndexInfo **index_infos;
} TableWriter;

/*
 * Opens one of the extension's tables and its indexes for inserting rows of
 * ncolumns values (checked, so that a changed table fails loudly).
 */
static void
writer_open(TableWriter *writer, const char *name, int ncolumns)
{
	Oid			relid = get_relname_relid(name, coherence_schema());
	List	   *index_oids;
	ListCell   *lc;
	int			i = 0;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("coherence: table %s is missing", name),
				 errhint("Recreate the extension with DROP EXTENSION and CREATE EXTENSION.")));
	writer->table = table_open(relid, RowExclusiveLock);
	if (RelationGetDescr(writer->table)->natts != ncolumns)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("coherence: table %s has %d columns, expected %d",
						name, RelationGetDescr(writer->table)->natts, ncolumns),
				 errhint("Recreate the extension with DROP EXTENSION and CREATE EXTENSION.")));
	writer->slot = MakeSingleTupleTableSlot(RelationGetDescr(writer->table),
											&TTSOpsHeapTuple);

	index_oids = RelationGetIndexList(writer->table);
	writer->nindexes = list_length(index_oids);
	writer->indexes = palloc(sizeof(Relation) * Max(writer->nindexes, 1));
	writer->index_infos = palloc(sizeof(IndexInfo *) * Max(writer->nindexes, 1));
	foreach(lc, index_oids)
	{
		writer->indexes[i] = index_open(lfirst_oid(lc), RowExclusiveLock);
		writer->index_infos[i] = BuildIndexInfo(writer->indexes[i]);
		i++;
	}
	list_free(index_oids);
}

/* Inserts one row into the table and every index. */
static void
writer_insert(TableWriter *writer, Datum *values, bool *nulls)
{
	HeapTuple	tuple = heap_form_tuple(RelationGetDescr(writer->table), values, nulls);
	Datum		index_values[INDEX_MAX_KEYS];
	bool		index_nulls[INDEX_MAX_KEYS];

	simple_heap_insert(writer->table, tuple);
	ExecStoreHeapTuple(tuple, writer->slot, false);
	for (int i = 0; i < writer->nindexes; i++)
	{
		Relation	index = writer->indexes[i];

		/* Plain column indexes only, so no executor state is needed. */
		FormIndexDatum(writer->index_infos[i], writer->slot, NULL,
					   index_values, index_nulls);
		index_insert(index, index_values, index_nulls, &tuple->t_self, writer->table,
					 index->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
					 false, writer->index_infos[i]);
	}
	ExecClearTuple(writer->slot);
	heap_freetuple(tuple);
}

/* Closes a writer; the locks are kept until the transaction ends. */
static void
writer_close(TableWriter *writer)
{
	ExecDropSingleTupleTableSlot(writer->slot);
	for (int i = 0; i < writer->nindexes; i++)
		index_close(writer->indexes[i], NoLock);
	table_close(writer->table, NoLock);
}

/* Writes the events, whose seq_nos are assigned, parents before children. */
void
coherence_write_events(const CoherenceEvent *events, int nevents)
{
	TableWriter event_rows,
				action_rows,
				effect_rows,
				trigger_rows;
	bool		any_action = false,
				any_effect = false,
				any_trigger = false;

	for (int i = 0; i < nevents; i++)
	{
		any_action |= events[i].is_action;
		any_effect |= !events[i].is_action;
		any_trigger |= events[i].ntriggers > 0;
	}
	writer_open(&event_rows, "coherence_events", 3);
	if (any_action)
		writer_open(&action_rows, "coherence_actions", 7);
	if (any_effect)
		writer_open(&effect_rows, "coherence_effects", 4);
	if (any_trigger)
		writer_open(&trigger_rows, "coherence_triggers", 3);

	for (int i = 0; i < nevents; i++)
	{
		const CoherenceEvent *e = &events[i];
		Datum		seq_no = Int64GetDatum(e->seq_no);
		bool		nulls[7] = {false};

		writer_insert(&event_rows, (Datum[]) {
			seq_no, TimestampTzGetDatum(e->timestamp), CStringGetTextDatum(e->source)
		}, nulls);
		if (e->is_action)
		{
			writer_insert(&action_rows, (Datum[]) {
				seq_no, CStringGetTextDatum(e->reason),
					CStringGetTextDatum(e->actor.kind), CStringGetTextDatum(e->actor.id),
					CStringGetTextDatum(e->aggregate.kind), CStringGetTextDatum(e->aggregate.id),
					JsonbPGetDatum(e->patch)
			}, nulls);
			for (int t = 0; t < e->ntriggers; t++)
				writer_insert(&trigger_rows, (Datum[]) {
					seq_no, CStringGetTextDatum(e->triggers[t].kind),
						CStringGetTextDatum(e->triggers[t].id)
				}, nulls);
		}
		else
			writer_insert(&effect_rows, (Datum[]) {
				seq_no, CStringGetTextDatum(e->reason),
					CStringGetTextDatum(e->trigger.kind), CStringGetTextDatum(e->trigger.id)
			}, nulls);
	}

	if (any_trigger)
		writer_close(&trigger_rows);
	if (any_effect)
		writer_close(&effect_rows);
	if (any_action)
		writer_close(&action_rows);
	writer_close(&event_rows);

	/* Later statements of this call (snapshots, a second rebase) see the rows. */
	CommandCounterIncrement();
}
