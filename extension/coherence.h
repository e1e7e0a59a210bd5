/*
 * coherence.h: types and helpers shared by the coherence extension's C files.
 */
#ifndef COHERENCE_H
#define COHERENCE_H

#include "postgres.h"

#include "access/genam.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "compat.h"

/*
 * Input limits, checked before anything is allocated or locked for the
 * input: they keep every identity within a btree entry, and bound the work
 * one call can make the writers wait for.
 */
#define COHERENCE_MAX_EVENTS 10000	/* events in one history */
#define COHERENCE_MAX_TRIGGERS 1000 /* triggers of one action */
#define COHERENCE_MAX_KIND_BYTES 256	/* an identity's kind */
#define COHERENCE_MAX_ID_BYTES 1024 /* an identity's id */
#define COHERENCE_MAX_TEXT_BYTES 1024	/* a source or reason */
#define COHERENCE_MAX_PATH_KEYS 32	/* keys in one patch path */

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
	char	   *id;				/* a UUID as lowercase text, NULL when none */
	TimestampTz timestamp;
	bool		timestamp_given;	/* input only: false when it defaulted */
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

/* The extension's tables, in the order coherence.c names them. */
typedef enum CoherenceTable
{
	COHERENCE_EVENTS,
	COHERENCE_ACTIONS,
	COHERENCE_EFFECTS,
	COHERENCE_TRIGGERS,
	COHERENCE_SNAPSHOTS,
	COHERENCE_CHECKPOINTS
} CoherenceTable;

/* coherence.c */
extern int	coherence_begin(FunctionCallInfo fcinfo);
extern void coherence_end(int nest_level);
extern Oid	coherence_table(CoherenceTable table);
extern Oid	coherence_core_table(CoherenceTable table);
extern void coherence_check_writable(void);
extern SPIPlanPtr coherence_plan(CoherencePlan *plan);
extern void coherence_lock_writers(void);
extern void coherence_end_writing(bool wrote, bool appended_before);
extern void coherence_check_spi(int rc, int expected, const char *what);

/* commit.c */
extern void coherence_register_commit_callbacks(void);
extern bool coherence_has_appended(void);
extern void coherence_record_append(Oid extension);
extern void coherence_wait_durable(void);

/* history.c */
extern CoherenceEvent *coherence_read_history(Jsonb *history, int *nevents, bool *any_id);
extern int64 *coherence_check_resolved(ArrayType *resolved, int *nresolved);

/* The lookups probe.c makes through an index instead of SQL. */
typedef enum CoherenceProbe
{
	COHERENCE_PROBE_EVENTS,		/* coherence_events (seq_no) */
	COHERENCE_PROBE_EFFECTS,	/* coherence_effects (seq_no) */
	COHERENCE_PROBE_ACTIONS,	/* coherence_actions (aggregate_kind, aggregate_id, seq_no) */
	COHERENCE_NPROBES
} CoherenceProbe;

/* The open tables and indexes of the probes, and their snapshot. */
typedef struct CoherenceProbes
{
	Snapshot	snapshot;
	Relation	heaps[COHERENCE_NPROBES];
	Relation	indexes[COHERENCE_NPROBES];
	TupleTableSlot *slots[COHERENCE_NPROBES];
	IndexScanDesc action_scan;	/* kept from one aggregate's probe to the next */
} CoherenceProbes;

/* probe.c */
extern void coherence_register_probes(void);
extern bool coherence_probes_open(CoherenceProbes *probes, Snapshot snapshot);
extern void coherence_probes_close(CoherenceProbes *probes);
extern int64 coherence_probe_max_seq_no(CoherenceProbes *probes);
extern bool coherence_probe_effect_since(CoherenceProbes *probes, int64 base);
extern int64 coherence_probe_action(CoherenceProbes *probes, const CoherenceIdentity *aggregate,
									int64 base, const int64 *resolved, int nresolved);

/* aggregate.c */
extern int	coherence_snapshot_interval;
extern void coherence_define_snapshot_interval(void);
extern void coherence_snapshot_appended(const CoherenceEvent *events, int nevents);

/* Column values of rows, gathered to be passed as array parameters. */
typedef struct CoherenceRows
{
	int			nrows;
	Datum	   *columns[7];
	bool	   *nulls[7];
} CoherenceRows;

/* write.c */
extern void coherence_rows_init(CoherenceRows *rows, int ncolumns, int capacity);
extern Datum coherence_column_array(const CoherenceRows *rows, int column, Oid array_type);
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
