/*
 * coherence.h: types and helpers shared by the coherence extension's C files.
 */
#ifndef COHERENCE_H
#define COHERENCE_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* A [kind, id] pair naming an actor, aggregate or trigger. */
typedef struct CoherenceIdentity
{
	char	   *kind;
	char	   *id;
} CoherenceIdentity;

/* One event, as read from rebase input or from the tables. */
typedef struct CoherenceEvent
{
	int64		seq_no;
	TimestampTz timestamp;
	char	   *source;
	bool		is_action;
	char	   *reason;
	CoherenceIdentity actor;	/* action only */
	CoherenceIdentity aggregate;	/* action only */
	Jsonb	   *patch;			/* action only, as given */
	CoherenceIdentity trigger;	/* effect only */
	int			ntriggers;		/* action only, sorted by (kind, id) */
	CoherenceIdentity *triggers;
} CoherenceEvent;

/* A prepared statement kept for the life of the backend. */
typedef struct CoherencePlan
{
	const char *sql;			/* "%1$s" stands for the extension's schema */
	int			nargs;
	Oid			argtypes[10];
	int			cursor_options; /* CURSOR_OPT_GENERIC_PLAN or _CUSTOM_PLAN */
	SPIPlanPtr	plan;
} CoherencePlan;

/* coherence.c */
extern void coherence_begin(FunctionCallInfo fcinfo);
extern void coherence_end(void);
extern Oid	coherence_schema(void);
extern SPIPlanPtr coherence_plan(CoherencePlan *plan);
extern void coherence_lock_writers(void);
extern void coherence_unlock_writers(void);
extern void coherence_check_spi(int rc, int expected, const char *what);

/* history.c */
extern CoherenceEvent *coherence_read_history(Jsonb *history, int *nevents);
extern void coherence_check_resolved(ArrayType *resolved);

/* aggregate.c */
extern int	coherence_snapshot_interval;
extern void coherence_define_snapshot_interval(void);
extern void coherence_snapshot_appended(const CoherenceEvent *events, int nevents);

/* write.c */
extern void coherence_write_events(const CoherenceEvent *events, int nevents);

/* event.c */
extern int64 coherence_max_seq_no(Snapshot snapshot, bool read_only);
extern bool coherence_fetch_event(int64 seq_no, bool read_only, CoherenceEvent *event,
								  MemoryContext result_context);
extern JsonbValue *coherence_push_event(JsonbParseState **state, const CoherenceEvent *event);
extern void coherence_push_key(JsonbParseState **state, const char *key);
extern void coherence_push_string(JsonbParseState **state, JsonbIteratorToken token,
								  const char *value);
extern void coherence_push_int64(JsonbParseState **state, JsonbIteratorToken token,
								 int64 value);

#endif							/* COHERENCE_H */
