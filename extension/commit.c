/*
 * commit.c: early lock release at commit, and durable reads.
 *
 * Design. The writers' lock (coherence.c) must make the previous append
 * *visible* to the next writer, not durable. So a transaction that appended
 * commits asynchronously while it holds the lock: at pre-commit its
 * synchronous_commit is set to off (after any SET the caller made). In the
 * commit callback, which PostgreSQL calls once the commit is visible to
 * every snapshot and before it releases the transaction's locks, we give the
 * writers' lock back, and with it the lock NOTIFY holds across commit; only
 * then do we wait for the WAL to be flushed up to our commit record (and for
 * synchronous standbys, when the caller's synchronous_commit asks for them),
 * before COMMIT returns to the client. Writers thus flush side by side:
 * PostgreSQL's group commit.
 *
 * Why it is safe (the argument of early lock release, DeWitt et al. 1984;
 * Johnson et al., Aether, VLDB 2010). The next writer can take the lock only
 * after our commit record is in the WAL, so its own commit record comes
 * later in the WAL. A crash loses a suffix of the WAL, so it can take back
 * only a suffix of appends: seq_nos stay gapless, and every COMMIT that
 * returned had its record flushed. NOTIFY's queue stays in commit order,
 * because a notifier adds its entries while holding that lock, and we give
 * it back only after our commit is visible.
 *
 * The one cost: for a moment a reader can see an append whose commit record
 * is not yet flushed. So every coherence read (and every answer of
 * coherence_rebase that shows stored events) first waits until the WAL is
 * flushed up to the current insert position, which covers every commit its
 * snapshot sees; that costs nothing when the WAL is already flushed. Plain
 * SELECTs on the tables do not wait.
 *
 * Subtransactions: an append inside a savepoint that is rolled back leaves
 * nothing behind (its rows, its lock hold and its NOTIFY go with it), so the
 * transaction's "appended" state follows the nesting level of the outermost
 * surviving append. PREPARE TRANSACTION after an append is refused: the lock
 * would be held until COMMIT PREPARED.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "replication/syncrep.h"
#include "storage/lmgr.h"
#include "utils/resowner.h"

#include "coherence.h"

/* Nesting level of the outermost surviving append, 0 when none. */
static int	append_level = 0;

/* The extension whose writers' lock the append holds. */
static Oid	append_extension = InvalidOid;

/* The caller's synchronous_commit, while we run the commit asynchronously. */
static int	caller_synchronous_commit = -1;

/*
 * Gives back the writers' lock and NOTIFY's lock once the commit is
 * visible. The writers' lock is held by the top transaction by then; NOTIFY's
 * lock by the resource owner current during this commit, which took it in
 * PreCommit_Notify (under a procedure's COMMIT that is not the top one).
 */
static void
release_locks_early(void)
{
	ResourceOwner caller = CurrentResourceOwner;

	/* Async_Notify was called by the append, so PreCommit_Notify took it. */
	UnlockSharedObject(DatabaseRelationId, InvalidOid, 0, AccessExclusiveLock);
	CurrentResourceOwner = TopTransactionResourceOwner;
	UnlockDatabaseObject(ExtensionRelationId, append_extension, 0, ExclusiveLock);
	CurrentResourceOwner = caller;
}

/* Commits appends asynchronously, then releases early and waits for the flush. */
static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (append_level > 0)
			{
				caller_synchronous_commit = synchronous_commit;
				synchronous_commit = SYNCHRONOUS_COMMIT_OFF;
			}
			break;
		case XACT_EVENT_COMMIT:
			if (append_level > 0)
			{
				synchronous_commit = caller_synchronous_commit;
				release_locks_early();
				if (caller_synchronous_commit > SYNCHRONOUS_COMMIT_OFF)
				{
					XLogFlush(XactLastCommitEnd);
					/* Returns at once unless synchronous standbys are asked for. */
					SyncRepWaitForLSN(XactLastCommitEnd, true);
				}
			}
			append_level = 0;
			caller_synchronous_commit = -1;
			break;
		case XACT_EVENT_ABORT:
			if (caller_synchronous_commit >= 0)
				synchronous_commit = caller_synchronous_commit;
			append_level = 0;
			caller_synchronous_commit = -1;
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (append_level > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("coherence: cannot PREPARE a transaction that appended events"),
						 errdetail("The writers' lock would be held until COMMIT PREPARED, blocking every other writer."),
						 errhint("Append in an ordinary transaction.")));
			break;
		default:
			break;
	}
}

/* Keeps the appended state in step with savepoints. */
static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	if (event == SUBXACT_EVENT_ABORT_SUB && append_level >= level)
		append_level = 0;
	else if (event == SUBXACT_EVENT_COMMIT_SUB && append_level == level)
		append_level = level - 1;
}

/* Registers the transaction callbacks, once per backend. */
void
coherence_register_commit_callbacks(void)
{
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}

/* True when this transaction holds the writers' lock for an append. */
bool
coherence_has_appended(void)
{
	return append_level > 0;
}

/* Records that this transaction appended under the extension's lock. */
void
coherence_record_append(Oid extension)
{
	int			level = GetCurrentTransactionNestLevel();

	if (append_level == 0 || level < append_level)
		append_level = level;
	append_extension = extension;
}

/*
 * Waits until the WAL is flushed up to the current insert position, so no
 * event a snapshot taken before can see is one that a crash could take back.
 * A standby shows only WAL its primary flushed.
 */
void
coherence_wait_durable(void)
{
	XLogRecPtr	upto;

	if (RecoveryInProgress())
		return;
	upto = GetXLogInsertRecPtr();
	/* At a page boundary it points past a page header not yet written. */
	if (XLogSegmentOffset(upto, wal_segment_size) == SizeOfXLogLongPHD)
		upto -= SizeOfXLogLongPHD;
	else if (upto % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		upto -= SizeOfXLogShortPHD;
	XLogFlush(upto);
}
