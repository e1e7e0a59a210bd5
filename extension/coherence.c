/*
 * coherence.c: module set-up, finding the extension's own tables, the
 * backend's prepared statements, and the writers' lock.
 *
 * Locking design. Appends serialize on one heavyweight lock per database:
 * an ExclusiveLock on the extension's pg_extension entry, taken with
 * LockDatabaseObject and held until the transaction ends. A writer reads the
 * highest seq_no and runs the conflict check only after it holds the lock, so
 * it sees every append committed before it (the lock is released after the
 * commit becomes visible). Hence seq_nos are gapless and become visible in
 * order. A table lock would not do: every mode that conflicts with itself
 * also conflicts with VACUUM and ANALYZE. The object lock is invisible to
 * ordinary SQL (no function takes it), so a client cannot block writers with
 * it, yet DROP EXTENSION waits for writers in flight.
 *
 * Name lookup. While a coherence function runs its own statements, the
 * search path is pg_catalog alone (no temporary schema): tables are named
 * with the extension's schema, and operators and functions can only come
 * from the catalog, whatever the caller's search_path holds. An override
 * search path does this without the cost of a SET clause on every call, and
 * kept plans are revalidated under it, never under the caller's path.
 *
 * Plans. Statements are prepared on first use with the schema name quoted
 * into their text and kept for the backend's life. The cache is keyed by the
 * extension's OID and schema: after DROP/CREATE EXTENSION it is rebuilt.
 */
#include "postgres.h"

#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_proc.h"
#include "commands/extension.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"

#include "coherence.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

#define MAX_PLANS 32
#define MAX_KNOWN_FUNCTIONS 16

static Oid	catalog_extension = InvalidOid;
static Oid	catalog_schema = InvalidOid;
static char *catalog_schema_quoted = NULL;

/* Functions already checked to belong to the cached extension. */
static Oid	known_functions[MAX_KNOWN_FUNCTIONS];
static int	nknown_functions = 0;

/* Plans prepared under the cached extension, freed when it changes. */
static CoherencePlan *prepared[MAX_PLANS];
static int	nprepared = 0;

/* Defines the coherence.* settings and reserves their namespace. */
void
_PG_init(void)
{
	coherence_define_snapshot_interval();
	MarkGUCPrefixReserved("coherence");
}

/* Frees every kept plan, so they are prepared again for a new schema. */
static void
forget_plans(void)
{
	for (int i = 0; i < nprepared; i++)
	{
		SPI_freeplan(prepared[i]->plan);
		prepared[i]->plan = NULL;
	}
	nprepared = 0;
	nknown_functions = 0;
}

/*
 * Points the plan cache at the extension that owns the called function, so
 * tables are found through the extension's schema, never the search_path.
 */
static void
coherence_use_catalog(FunctionCallInfo fcinfo)
{
	Oid			fn_oid = fcinfo->flinfo->fn_oid;
	Oid			extension;
	Oid			schema;

	for (int i = 0; i < nknown_functions; i++)
		if (known_functions[i] == fn_oid)
			return;

	extension = getExtensionOfObject(ProcedureRelationId, fn_oid);
	if (!OidIsValid(extension))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("coherence: function %s does not belong to the coherence extension",
						format_procedure(fn_oid)),
				 errhint("Create the functions with CREATE EXTENSION coherence.")));
	schema = get_func_namespace(fn_oid);

	if (extension != catalog_extension || schema != catalog_schema)
	{
		char	   *name = get_namespace_name(schema);

		forget_plans();
		if (catalog_schema_quoted)
			pfree(catalog_schema_quoted);
		catalog_schema_quoted = MemoryContextStrdup(TopMemoryContext,
													quote_identifier(name));
		catalog_extension = extension;
		catalog_schema = schema;
	}
	if (nknown_functions == MAX_KNOWN_FUNCTIONS)
		nknown_functions = 0;
	known_functions[nknown_functions++] = fn_oid;
}

/* The schema of the extension in use, as set by coherence_use_catalog. */
Oid
coherence_schema(void)
{
	return catalog_schema;
}

/*
 * Starts a coherence function's own work: finds the extension's schema,
 * pins name lookup to pg_catalog and connects SPI. Errors undo all three.
 */
void
coherence_begin(FunctionCallInfo fcinfo)
{
	static OverrideSearchPath catalog_only = {NIL, true, false, 0};

	coherence_use_catalog(fcinfo);
	PushOverrideSearchPath(&catalog_only);
	coherence_check_spi(SPI_connect(), SPI_OK_CONNECT, "SPI_connect");
}

/* Ends what coherence_begin started. */
void
coherence_end(void)
{
	coherence_check_spi(SPI_finish(), SPI_OK_FINISH, "SPI_finish");
	PopOverrideSearchPath();
}

/* Returns the kept plan for a statement, preparing it on first use. */
SPIPlanPtr
coherence_plan(CoherencePlan *plan)
{
	char	   *sql;
	SPIPlanPtr	prepared_plan;

	if (plan->plan)
		return plan->plan;

	Assert(catalog_schema_quoted != NULL);
	if (nprepared == MAX_PLANS)
		elog(ERROR, "coherence: too many prepared statements");

	sql = psprintf(plan->sql, catalog_schema_quoted);
	prepared_plan = SPI_prepare_cursor(sql, plan->nargs, plan->argtypes,
									   plan->cursor_options);
	if (prepared_plan == NULL)
		elog(ERROR, "coherence: SPI_prepare failed: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(prepared_plan) != 0)
		elog(ERROR, "coherence: SPI_keepplan failed");
	pfree(sql);

	plan->plan = prepared_plan;
	prepared[nprepared++] = plan;
	return prepared_plan;
}

/* Blocks until this transaction is the only one appending. */
void
coherence_lock_writers(void)
{
	LockDatabaseObject(ExtensionRelationId, catalog_extension, 0, ExclusiveLock);
}

/*
 * Gives back one hold of the writers' lock; a lock this transaction took for
 * an earlier append that wrote events stays held until commit.
 */
void
coherence_unlock_writers(void)
{
	UnlockDatabaseObject(ExtensionRelationId, catalog_extension, 0, ExclusiveLock);
}

/* Raises an internal error when an SPI call did not do what it should. */
void
coherence_check_spi(int rc, int expected, const char *what)
{
	if (rc != expected)
		elog(ERROR, "coherence: %s failed: %s", what, SPI_result_code_string(rc));
}
