/*
 * stream.c: coherence_stream, the ordered read of actions with trigger replay.
 *
 * Rows go from SPI's executor straight into the function's result tuplestore
 * through a DestReceiver: nothing is collected in SPI_tuptable, and the
 * tuplestore spills to disk past work_mem, so memory stays flat however many
 * rows are returned. (A FROM-clause function scan materializes every set-
 * returning function into a tuplestore anyway; filling it directly saves a
 * copy.) Replayed rows all have seq_no < from_seq_no and window rows >=
 * from_seq_no, so running the replay query first keeps the output ordered.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/tstoreReceiver.h"
#include "funcapi.h"
#include "nodes/params.h"
#include "utils/array.h"

#include "coherence.h"

PG_FUNCTION_INFO_V1(coherence_stream);

#define STREAM_COLUMNS \
	"SELECT a.seq_no, e.\"timestamp\", e.source, a.reason, a.actor_kind, a.actor_id," \
	"       a.aggregate_kind, a.aggregate_id, a.patch," \
	"       COALESCE((SELECT jsonb_agg(jsonb_build_array(t.trigger_kind, t.trigger_id)" \
	"                        ORDER BY t.trigger_kind COLLATE \"C\", t.trigger_id COLLATE \"C\")" \
	"                   FROM %1$s.coherence_triggers t WHERE t.seq_no = a.seq_no)," \
	"                '[]'::jsonb),"

/* Actions in [from, to]. */
static CoherencePlan window_plan = {
	STREAM_COLUMNS " false, e.id"
	"  FROM %1$s.coherence_actions a JOIN %1$s.coherence_events e ON e.seq_no = a.seq_no"
	" WHERE a.seq_no >= $1 AND a.seq_no <= $2"
	"   AND ($3::text[] IS NULL OR a.aggregate_kind = ANY ($3))"
	" ORDER BY a.seq_no",
	3, {INT8OID, INT8OID, TEXTARRAYOID}, CURSOR_OPT_CUSTOM_PLAN
};

/* Actions before from of the aggregates that effects in [from, to] affect. */
static CoherencePlan replay_plan = {
	STREAM_COLUMNS " true, e.id"
	"  FROM %1$s.coherence_actions a JOIN %1$s.coherence_events e ON e.seq_no = a.seq_no"
	" WHERE a.seq_no < $1"
	"   AND ($3::text[] IS NULL OR a.aggregate_kind = ANY ($3))"
	"   AND (a.aggregate_kind, a.aggregate_id) IN ("
	"     SELECT x.aggregate_kind, x.aggregate_id"
	"       FROM %1$s.coherence_effects f"
	"       JOIN %1$s.coherence_triggers t"
	"         ON t.trigger_kind = f.trigger_kind AND t.trigger_id = f.trigger_id"
	"       JOIN %1$s.coherence_actions x ON x.seq_no = t.seq_no"
	"      WHERE f.seq_no >= $1 AND f.seq_no <= $2)"
	" ORDER BY a.seq_no",
	3, {INT8OID, INT8OID, TEXTARRAYOID}, CURSOR_OPT_CUSTOM_PLAN
};

/* Runs a stream query with the caller's snapshot, its rows sent to dest. */
static void
run_into(CoherencePlan *plan, ParamListInfo params, DestReceiver *dest)
{
	SPIExecuteOptions options;
	int			rc;

	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = true;
	options.dest = dest;
	rc = SPI_execute_plan_extended(coherence_plan(plan), &options);
	coherence_check_spi(rc, SPI_OK_SELECT, "streaming events");
}

/* Fails unless kinds is a one-dimensional array without NULLs. */
static void
check_kinds(ArrayType *kinds)
{
	if (ARR_NDIM(kinds) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("coherence: aggregate_kinds must be a one-dimensional array")));
	if (array_contains_nulls(kinds))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("coherence: aggregate_kinds must not contain nulls")));
}

/* Sets one constant parameter of a stream query. */
static void
set_param(ParamListInfo params, int i, Oid type, Datum value, bool isnull)
{
	params->params[i].value = value;
	params->params[i].isnull = isnull;
	params->params[i].pflags = PARAM_FLAG_CONST;
	params->params[i].ptype = type;
}

/*
 * coherence_stream(from_seq_no, to_seq_no, aggregate_kinds): actions in the
 * window, plus earlier actions replayed for effects in it, in seq_no order.
 */
Datum
coherence_stream(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		from;
	int64		to;
	ParamListInfo params;
	DestReceiver *dest;
	int			nest_level;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("coherence: from_seq_no must not be null"),
				 errhint("Use 0 to stream from the beginning.")));
	from = PG_GETARG_INT64(0);
	if (from < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("coherence: from_seq_no must not be negative")));
	to = PG_ARGISNULL(1) ? PG_INT64_MAX : PG_GETARG_INT64(1);
	if (!PG_ARGISNULL(2))
		check_kinds(PG_GETARG_ARRAYTYPE_P(2));

	InitMaterializedSRF(fcinfo, 0);

	params = makeParamList(3);
	set_param(params, 0, INT8OID, Int64GetDatum(from), false);
	set_param(params, 1, INT8OID, Int64GetDatum(to), false);
	set_param(params, 2, TEXTARRAYOID, PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2),
			  PG_ARGISNULL(2));

	dest = CreateDestReceiver(DestTuplestore);
	SetTuplestoreDestReceiverParams(dest, rsinfo->setResult,
									rsinfo->econtext->ecxt_per_query_memory,
									false, NULL, NULL);

	coherence_wait_durable();
	nest_level = coherence_begin(fcinfo);
	if (from > 1)
		run_into(&replay_plan, params, dest);
	run_into(&window_plan, params, dest);
	coherence_end(nest_level);

	dest->rDestroy(dest);
	return (Datum) 0;
}
