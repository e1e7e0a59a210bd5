/*
 * coherence.c: module set-up, finding the extension's own tables, the
 * backend's prepared statements, and the writers' lock (released at commit
 * as commit.c explains).
 *
 * Locking design. Appends serialize on one heavyweight lock per database:
 * an ExclusiveLock on the extension's pg_extension entry, taken with
 * LockDatabaseObject and held until the appending transaction's commit is
 * visible. A writer reads the highest seq_no and runs the conflict check
 * only after it holds the lock, so it sees every append committed before it.
 * Hence seq_nos are gapless and become visible in order. A table lock would not do: every mode that conflicts with itself
 * also conflicts with VACUUM and ANALYZE. The object lock is invisible to
 * ordinary SQL (no function takes it), so a client cannot block writers with
 * it, yet DROP EXTENSION waits for writers in flight.
 *
 * Name lookup. While a coherence function runs its own statements,
 * search_path is "pg_catalog, pg_temp": tables are named with the
 * extension's schema, and operators and functions can only come from the
 * catalog, whatever the caller's search_path holds. The setting is made once
 * per call at a new GUC nest level and undone at its end (or by the
 * (sub)transaction abort on error), as PostgreSQL does for a function's SET
 * clause; kept plans are revalidated under it, never under the caller's path.
 *
 * Trusted objects. The extension's tables are found by name in its schema,
 * and each is checked to be a member of this extension (pg_depend) before
 * it is used: a table of the same name that another role created there (a
 * 1.0 installation has no coherence_snapshots, and a role with CREATE on the
 * schema could add one with a trigger) is refused, never written or read.
 * The check is repeated after any relation invalidation. The C functions
 * work only as members of the extension named coherence.
 *
 * Plans. Statements are prepared on first use with the schema name quoted
 * into their text and kept for the backend's life. The cache is keyed by the
 * extension's OID and schema: after DROP/CREATE EXTENSION it is rebuilt.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_proc.h"
#include "commands/extension.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/resowner.h"

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

/* The extension's tables; the first COHERENCE_CORE_TABLES exist since 1.0. */
static const char *const table_names[] = {
	"coherence_events", "coherence_actions", "coherence_effects", "coherence_triggers",
	"coherence_snapshots", "coherence_checkpoints"
};

#define COHERENCE_CORE_TABLES 4

/* Whether the core tables were verified since the last invalidation. */
static bool core_tables_verified = false;
static Oid	core_table_oids[COHERENCE_CORE_TABLES];

/* Forgets the verified tables when any relation changes. */
static void
forget_verified_tables(Datum arg, Oid relid)
{
	core_tables_verified = false;
}

/* Defines the coherence.* settings and reserves their namespace. */
void
_PG_init(void)
{
	coherence_define_snapshot_interval();
	MarkGUCPrefixReserved("coherence");
	CacheRegisterRelcacheCallback(forget_verified_tables, (Datum) 0);
	coherence_register_probes();
	coherence_register_commit_callbacks();
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
	core_tables_verified = false;
}

/* Fails unless the function is a member of the extension named coherence. */
static Oid
extension_of_function(Oid fn_oid)
{
	Oid			extension = getExtensionOfObject(ProcedureRelationId, fn_oid);

	if (!OidIsValid(extension) || extension != get_extension_oid("coherence", true))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("coherence: function %s does not belong to the coherence extension",
						format_procedure(fn_oid)),
				 errhint("Create the functions with CREATE EXTENSION coherence.")));
	return extension;
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

	extension = extension_of_function(fn_oid);
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

/*
 * The OID of one of the extension's tables, InvalidOid when it does not
 * exist; fails when a relation of that name is not the extension's own.
 */
Oid
coherence_table(CoherenceTable table)
{
	const char *name = table_names[table];
	Oid			relid = get_relname_relid(name, catalog_schema);

	if (OidIsValid(relid) &&
		getExtensionOfObject(RelationRelationId, relid) != catalog_extension)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("coherence: relation %s.%s is not part of the coherence extension",
						catalog_schema_quoted, name),
				 errdetail("Another role created it in the extension's schema; coherence never reads or writes it."),
				 errhint("Drop that relation, then run ALTER EXTENSION coherence UPDATE.")));
	return relid;
}

/* Checks, once per invalidation, that the core tables are the extension's. */
static void
verify_core_tables(void)
{
	if (core_tables_verified)
		return;
	for (int i = 0; i < COHERENCE_CORE_TABLES; i++)
	{
		core_table_oids[i] = coherence_table(i);
		if (!OidIsValid(core_table_oids[i]))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("coherence: table %s.%s is missing",
							catalog_schema_quoted, table_names[i]),
					 errhint("Restore the table from a backup; its events cannot be recreated.")));
	}
	if (get_attnum(core_table_oids[COHERENCE_EVENTS], "id") == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("coherence: the installed extension is older than its library"),
				 errdetail("Table coherence_events has no id column, which version 1.2 adds."),
				 errhint("Run ALTER EXTENSION coherence UPDATE.")));
	core_tables_verified = true;
}

/*
 * The OID of one of the core tables as verified by the running function's
 * coherence_begin.
 */
Oid
coherence_core_table(CoherenceTable table)
{
	Assert(table < COHERENCE_CORE_TABLES && OidIsValid(core_table_oids[table]));
	return core_table_oids[table];
}

/*
 * Starts a coherence function's own work: finds and verifies the
 * extension's tables, pins name lookup to the catalog and connects SPI.
 * Returns the GUC nest level to give to coherence_end. Errors undo all.
 */
int
coherence_begin(FunctionCallInfo fcinfo)
{
	int			nest_level;

	coherence_use_catalog(fcinfo);
	verify_core_tables();
	nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	coherence_check_spi(SPI_connect(), SPI_OK_CONNECT, "SPI_connect");
	return nest_level;
}

/* Ends what coherence_begin started. */
void
coherence_end(int nest_level)
{
	coherence_check_spi(SPI_finish(), SPI_OK_FINISH, "SPI_finish");
	AtEOXact_GUC(true, nest_level);
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

/*
 * Fails with 25006 where no append may be written: on a hot standby and in
 * a read-only transaction. Called before the writers' lock is taken.
 */
void
coherence_check_writable(void)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("coherence: cannot append on a hot standby"),
				 errdetail("This server is in recovery; only the primary writes events."),
				 errhint("Connect to the primary to append. Dry runs and reads work here.")));
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("coherence: cannot append in a read-only transaction"),
				 errhint("Append in a read-write transaction on the primary; dry runs work in read-only ones.")));
}

/*
 * Blocks until this transaction is the only one appending. The hold belongs
 * to the current (sub)transaction, not to the portal running the call (as
 * it would under the extended query protocol), so that a savepoint's
 * rollback releases it and commit.c can release it once the commit is
 * visible.
 */
void
coherence_lock_writers(void)
{
	ResourceOwner caller = CurrentResourceOwner;

	CurrentResourceOwner = CurTransactionResourceOwner;
	PG_TRY();
	{
		LockDatabaseObject(ExtensionRelationId, catalog_extension, 0, ExclusiveLock);
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = caller;
	}
	PG_END_TRY();
}

/*
 * Ends a call's hold of the writers' lock. The transaction keeps one hold
 * from its first append that wrote until commit (see commit.c); every other
 * call gives its hold back at once.
 */
void
coherence_end_writing(bool wrote, bool appended_before)
{
	if (!wrote || appended_before)
	{
		ResourceOwner caller = CurrentResourceOwner;

		CurrentResourceOwner = CurTransactionResourceOwner;
		UnlockDatabaseObject(ExtensionRelationId, catalog_extension, 0, ExclusiveLock);
		CurrentResourceOwner = caller;
	}
	if (wrote)
		coherence_record_append(catalog_extension);
}

/* Raises an internal error when an SPI call did not do what it should. */
void
coherence_check_spi(int rc, int expected, const char *what)
{
	if (rc != expected)
		elog(ERROR, "coherence: %s failed: %s", what, SPI_result_code_string(rc));
}
