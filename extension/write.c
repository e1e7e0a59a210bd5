/*
 * write.c: writes appended events into the tables with prepared INSERT
 * statements, so everything PostgreSQL does for an INSERT happens: every
 * kind of index a DBA adds (expression, partial, exclusion, deferrable,
 * ones being built concurrently), CHECK and foreign-key constraints, column
 * defaults and types, row triggers and row-level security. One statement per
 * table for the whole history (the rows travel as arrays), and the usual
 * history of actions without triggers needs a single statement.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "coherence.h"

static CoherencePlan insert_events_plan = {
	"INSERT INTO %1$s.coherence_events (seq_no, \"timestamp\", source, id)"
	" SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::uuid[])",
	4, {INT8ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID, UUIDARRAYOID}, CURSOR_OPT_GENERIC_PLAN
};

static CoherencePlan insert_actions_plan = {
	"INSERT INTO %1$s.coherence_actions"
	" (seq_no, reason, actor_kind, actor_id, aggregate_kind, aggregate_id, patch)"
	" SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[],"
	"                      $5::text[], $6::text[], $7::jsonb[])",
	7, {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	TEXTARRAYOID, JSONBARRAYOID}, CURSOR_OPT_GENERIC_PLAN
};

static CoherencePlan insert_effects_plan = {
	"INSERT INTO %1$s.coherence_effects (seq_no, reason, trigger_kind, trigger_id)"
	" SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])",
	4, {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID}, CURSOR_OPT_GENERIC_PLAN
};

static CoherencePlan insert_triggers_plan = {
	"INSERT INTO %1$s.coherence_triggers (seq_no, trigger_kind, trigger_id)"
	" SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])",
	3, {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID}, CURSOR_OPT_GENERIC_PLAN
};

/*
 * Events and their actions in one statement: one executor start instead of
 * two. The foreign key is checked at the end of the statement, after both.
 */
static CoherencePlan insert_events_actions_plan = {
	"WITH e AS (INSERT INTO %1$s.coherence_events (seq_no, \"timestamp\", source, id)"
	"           SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::uuid[]))"
	" INSERT INTO %1$s.coherence_actions"
	" (seq_no, reason, actor_kind, actor_id, aggregate_kind, aggregate_id, patch)"
	" SELECT * FROM unnest($1::bigint[], $5::text[], $6::text[], $7::text[],"
	"                      $8::text[], $9::text[], $10::jsonb[])",
	10, {INT8ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID, UUIDARRAYOID, TEXTARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID}, CURSOR_OPT_GENERIC_PLAN
};

/* Allocates room for up to capacity rows of ncolumns columns. */
void
coherence_rows_init(CoherenceRows *rows, int ncolumns, int capacity)
{
	rows->nrows = 0;
	for (int i = 0; i < ncolumns; i++)
	{
		rows->columns[i] = palloc(sizeof(Datum) * Max(capacity, 1));
		rows->nulls[i] = palloc0(sizeof(bool) * Max(capacity, 1));
	}
}

/* One column of the gathered rows as an array of the given array type. */
Datum
coherence_column_array(const CoherenceRows *rows, int column, Oid array_type)
{
	Oid			element_type = get_element_type(array_type);
	int16		typlen;
	bool		typbyval;
	char		typalign;

	int			dims[1] = {rows->nrows};
	int			lbs[1] = {1};

	get_typlenbyvalalign(element_type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(rows->columns[column], rows->nulls[column],
											  1, dims, lbs, element_type,
											  typlen, typbyval, typalign));
}

/* Appends columns [first, first + n) of rows to a plan's arguments. */
static void
add_columns(Datum *args, int *nargs, const CoherencePlan *plan, const CoherenceRows *rows,
			int first, int n)
{
	for (int c = first; c < first + n; c++, (*nargs)++)
		args[*nargs] = coherence_column_array(rows, c, plan->argtypes[*nargs]);
}

/* Runs one of the insert statements. */
static void
run_insert(CoherencePlan *plan, Datum *args)
{
	int			rc = SPI_execute_plan(coherence_plan(plan), args, NULL, false, 0);

	coherence_check_spi(rc, SPI_OK_INSERT, "appending events");
}

/* Inserts the gathered rows of one table, if there are any. */
static void
insert_table(CoherencePlan *plan, const CoherenceRows *rows)
{
	Datum		args[10];
	int			nargs = 0;

	if (rows->nrows == 0)
		return;
	add_columns(args, &nargs, plan, rows, 0, plan->nargs);
	run_insert(plan, args);
}

/* Writes the events, whose seq_nos are assigned, parents before children. */
void
coherence_write_events(const CoherenceEvent *events, int nevents)
{
	CoherenceRows base_rows,
				actions,
				effects,
				links;
	int			ntriggers = 0;

	for (int i = 0; i < nevents; i++)
		ntriggers += events[i].ntriggers;
	coherence_rows_init(&base_rows, 4, nevents);
	coherence_rows_init(&actions, 7, nevents);
	coherence_rows_init(&effects, 4, nevents);
	coherence_rows_init(&links, 3, ntriggers);

	for (int i = 0; i < nevents; i++)
	{
		const CoherenceEvent *e = &events[i];
		Datum		seq_no = Int64GetDatum(e->seq_no);
		int			row = base_rows.nrows++;

		base_rows.columns[0][row] = seq_no;
		base_rows.columns[1][row] = TimestampTzGetDatum(e->timestamp);
		base_rows.columns[2][row] = CStringGetTextDatum(e->source);
		base_rows.nulls[3][row] = e->id == NULL;
		if (e->id)
			base_rows.columns[3][row] = DirectFunctionCall1(uuid_in, CStringGetDatum(e->id));
		if (e->is_action)
		{
			row = actions.nrows++;
			actions.columns[0][row] = seq_no;
			actions.columns[1][row] = CStringGetTextDatum(e->reason);
			actions.columns[2][row] = CStringGetTextDatum(e->actor.kind);
			actions.columns[3][row] = CStringGetTextDatum(e->actor.id);
			actions.columns[4][row] = CStringGetTextDatum(e->aggregate.kind);
			actions.columns[5][row] = CStringGetTextDatum(e->aggregate.id);
			actions.columns[6][row] = JsonbPGetDatum(e->patch);
			for (int t = 0; t < e->ntriggers; t++)
			{
				row = links.nrows++;
				links.columns[0][row] = seq_no;
				links.columns[1][row] = CStringGetTextDatum(e->triggers[t].kind);
				links.columns[2][row] = CStringGetTextDatum(e->triggers[t].id);
			}
		}
		else
		{
			row = effects.nrows++;
			effects.columns[0][row] = seq_no;
			effects.columns[1][row] = CStringGetTextDatum(e->reason);
			effects.columns[2][row] = CStringGetTextDatum(e->trigger.kind);
			effects.columns[3][row] = CStringGetTextDatum(e->trigger.id);
		}
	}

	if (effects.nrows == 0 && links.nrows == 0)
	{
		Datum		args[10];
		int			nargs = 0;

		add_columns(args, &nargs, &insert_events_actions_plan, &base_rows, 0, 4);
		add_columns(args, &nargs, &insert_events_actions_plan, &actions, 1, 6);
		run_insert(&insert_events_actions_plan, args);
	}
	else
	{
		insert_table(&insert_events_plan, &base_rows);
		insert_table(&insert_actions_plan, &actions);
		insert_table(&insert_effects_plan, &effects);
		insert_table(&insert_triggers_plan, &links);
	}

	/* Later statements of this call (snapshots, a second rebase) see the rows. */
	CommandCounterIncrement();
}
