/*
 * immutable.c: the trigger that keeps events immutable.
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(coherence_refuse_change);

/* Refuses UPDATE, DELETE and TRUNCATE on the event tables, for every role. */
Datum
coherence_refuse_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigger = (TriggerData *) fcinfo->context;
	const char *operation;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("coherence: coherence_refuse_change() must be called as a trigger")));

	if (TRIGGER_FIRED_BY_UPDATE(trigger->tg_event))
		operation = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigger->tg_event))
		operation = "DELETE";
	else
		operation = "TRUNCATE";

	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("coherence: events are immutable"),
			 errdetail("%s on table \"%s\" is not allowed.", operation,
					   RelationGetRelationName(trigger->tg_relation)),
			 errhint("Append an event that corrects the state instead.")));
	PG_RETURN_NULL();
}
