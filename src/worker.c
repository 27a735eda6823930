/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background workers that run executions.
 *
 * execlog.workers static background workers connect to execlog.database.
 * Each pass of a worker's loop:
 *
 *	1. (first pass only) fails the executions its slot was running when it
 *	   last stopped, as interrupted: retried at once when the retry budget
 *	   allows (at-least-once: see README), otherwise with their on_failure
 *	   follow-ups (policy.c decides, as for any failure);
 *	2. moves due work forward: timed pauses that ended (or whose time limit
 *	   passed), automatic retries whose delay is over, and open tasks past
 *	   their due time, escalated once (tasks.c);
 *	3. claims up to execlog.batch_size executions (pending ones, resumed
 *	   ones, and queued ones of throttled automations while they have free
 *	   slots; see worker_xact_lock) and commits the claim;
 *	4. runs the batch (executor.c) in a second transaction, together with
 *	   the executions whose HTTP requests finished (they are still running
 *	   and owned by this worker: no new claim), then sends the requests the
 *	   batch prepared (steps_http_flight.c).
 *
 * When a pass finds nothing to do the worker sleeps on its latch and on
 * the sockets of its HTTP requests until the next due time.  Transactions
 * that enqueue work set the latch at commit (execlog.c), so a new execution
 * is picked up at once without polling.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"
#include "alerts.h"
#include "http.h"
#include "plans.h"
#include "policy.h"

#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/array.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"

PGDLLEXPORT void execlog_worker_main(Datum main_arg);

int			execlog_worker_slot = -1;

/* Reset at every pass of the loop; holds what one pass needs across transactions. */
static MemoryContext loop_cxt = NULL;

static object_access_hook_type prev_object_access_hook = NULL;

/* Longest sleep when nothing is due: a safety net, not a poll. */
#define MAX_SLEEP_MS 10000

/* Advisory lock class serialising throttled claims per automation. */
#define THROTTLE_LOCK_CLASS 0x45584c47

/* The workers' statements are all planned as index lookups (keyed). */

/* timed pauses that ended, or paused executions past their time limit */
static SavedStmt due_pauses = {
	"UPDATE execlog.executions e"
	"   SET status = 'running', worker = NULL, resume = NULL, run_after = NULL"
	" WHERE e.id IN (SELECT id FROM execlog.executions"
	"                 WHERE run_after <= pg_catalog.now() AND status = 'paused'"
	"                 ORDER BY run_after LIMIT $1 FOR UPDATE SKIP LOCKED)",
	1, {INT4OID}, NULL, true
};

/*
 * Automatic retries whose delay is over.  policy.c decided the retry when
 * it set run_after (the executor after a failure, or crash recovery); the
 * budget is looked at again because max_retries may have been lowered
 * since: such an execution keeps its status and only loses run_after (the
 * status guard would refuse the retry, see execlog_policy_check_budget).
 */
static SavedStmt due_retries = {
	"UPDATE execlog.executions e"
	"   SET status = CASE WHEN e.attempt < a.max_retries + 1"
	"                     THEN 'pending'::execlog.status ELSE e.status END,"
	"       attempt = CASE WHEN e.attempt < a.max_retries + 1"
	"                      THEN e.attempt + 1 ELSE e.attempt END,"
	"       from_start = false, run_after = NULL"
	"  FROM execlog.automations a"
	" WHERE a.id = e.automation_id"
	"   AND e.id IN (SELECT id FROM execlog.executions"
	"                 WHERE run_after <= pg_catalog.now()"
	"                   AND status IN ('failed', 'rejected', 'partially_executed')"
	"                 ORDER BY run_after LIMIT $1 FOR UPDATE SKIP LOCKED)",
	1, {INT4OID}, NULL, true
};

/*
 * Claims.  The workers of a database claim one at a time (an advisory
 * lock held until the claim commits), so they never pick the same rows:
 * a claim then updates the first claimable rows without locking them
 * first.  A row locked by some other transaction (a cancel not committed
 * yet, say) would make it wait: after CLAIM_WAIT_MS it gives up, and for
 * CLAIM_SKIP_MS claims lock their rows first and skip the locked ones.
 * The fast claim rechecks that a row is still claimable (after a wait)
 * with a condition that does not match executions_to_claim's predicate,
 * so that the rows are fetched by id (the primary key of the partition the
 * id prunes to) rather than by scanning that index.
 */
#define CLAIM_LOCK_CLASS 0x45584c43
#define CLAIM_WAIT_MS "50ms"
#define CLAIM_SKIP_MS 10000

static TimestampTz skip_locked_until = 0;

/*
 * The workers' own advisory locks use a lock tag field4 that the SQL
 * advisory lock functions never use (they use 1 and 2), so that no sql step
 * can take or block them.
 */
#define WORKER_LOCK_KIND 0x4558

/*
 * worker_xact_lock
 *		Take the workers' exclusive lock (class, key) until the end of the
 *		transaction.
 */
static void
worker_xact_lock(int32 class, int32 key)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) class, (uint32) key,
						 WORKER_LOCK_KIND);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* Classes of the SQL functions' own locks (execlog._serialize). */
#define MERGE_LOCK_CLASS 0x45584d45
#define EXPORT_LOCK_CLASS 0x45584558

PG_FUNCTION_INFO_V1(execlog_serialize);

/*
 * execlog_serialize
 *		execlog._serialize(what, key): the lock that makes merge_event_log()
 *		calls ('merge_event_log', 0), or exports into one schema
 *		('export_contexts', schema oid), wait for each other, held until the
 *		end of the transaction.  It lives in execlog's own lock kind (see
 *		WORKER_LOCK_KIND), so that no one can take or hold it with
 *		pg_advisory_lock() to block them; only a role that may run the
 *		function it serialises may take it.
 */
Datum
execlog_serialize(PG_FUNCTION_ARGS)
{
	char	   *what = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			key = PG_GETARG_OID(1);

	if (strcmp(what, "merge_event_log") == 0 && key == InvalidOid)
	{
		Oid			operator = get_role_oid("execlog_operator", false);

		if (!has_privs_of_role(GetUserId(), operator))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to merge the event log"),
					 errdetail("Only members of execlog_operator can.")));
		worker_xact_lock(MERGE_LOCK_CLASS, 0);
	}
	else if (strcmp(what, "export_contexts") == 0 && OidIsValid(key))
	{
		if (pg_namespace_aclcheck(key, GetUserId(), ACL_CREATE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for schema %s",
							get_namespace_name(key) ? get_namespace_name(key) : "?")));
		worker_xact_lock(EXPORT_LOCK_CLASS, (int32) key);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("nothing to serialise as \"%s\" with key %u", what, key)));
	PG_RETURN_VOID();
}

static SavedStmt claim_fast_stmt = {
	"UPDATE execlog.executions e SET status = 'running', worker = $2"
	" WHERE e.id = ANY (ARRAY("
	"        SELECT id FROM execlog.executions"
	"         WHERE status = 'pending' OR (status = 'running' AND worker IS NULL)"
	"         ORDER BY id LIMIT $1))"
	"   AND e.status::text IN ('pending', 'running')"
	"   AND (e.status <> 'running' OR e.worker IS NULL)"
	" RETURNING e.id",
	2, {INT4OID, INT4OID}, NULL, true
};

/*
 * Update the rows locked, by id: executions is partitioned, so a ctid
 * names a row of one partition only.
 */
static SavedStmt claim_stmt = {
	"WITH c AS ("
	"  SELECT id FROM execlog.executions"
	"   WHERE status = 'pending' OR (status = 'running' AND worker IS NULL)"
	"   ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)"
	" UPDATE execlog.executions e SET status = 'running', worker = $2"
	"   FROM c WHERE e.id = c.id RETURNING e.id",
	2, {INT4OID, INT4OID}, NULL, true
};

static SavedStmt throttled_stmt = {
	"SELECT a.id, a.throttle FROM execlog.automations a"
	" WHERE a.throttle IS NOT NULL"
	"   AND EXISTS (SELECT 1 FROM execlog.executions e"
	"                WHERE e.automation_id = a.id AND e.status = 'queued')",
	0, {0}, NULL, true
};

static SavedStmt claim_queued_stmt = {
	"WITH c AS ("
	"  SELECT id FROM execlog.executions"
	"   WHERE automation_id = $1 AND status = 'queued'"
	"   ORDER BY id"
	"   LIMIT greatest(0, $2 - (SELECT count(*) FROM execlog.executions"
	"                           WHERE automation_id = $1"
	"                             AND status IN ('running', 'paused')))"
	"   FOR UPDATE SKIP LOCKED)"
	" UPDATE execlog.executions e SET status = 'running', worker = $3"
	"   FROM c WHERE e.id = c.id RETURNING e.id",
	3, {INT8OID, INT4OID, INT4OID}, NULL, true
};

static SavedStmt prune_stmt = {
	"SELECT execlog.prune(pg_catalog.make_interval(mins => $1))",
	1, {INT4OID}, NULL, true
};

/* How often worker 0 applies execlog.retention. */
#define PRUNE_INTERVAL_MS 60000

/*
 * Worker 0's partition maintenance (src/sql/80_partitions.sql): the history
 * partitions ahead, and the next one opened when an interval of
 * execlog.partition_interval begins; once a minute, before the claim.
 */
static SavedStmt partitions_stmt = {
	"SELECT execlog._partitions_maintain(pg_catalog.make_interval(mins => $1))",
	1, {INT4OID}, NULL, true
};

#define PARTITIONS_INTERVAL_MS 60000

/*
 * When worker 0 last ran its partition maintenance and applied
 * execlog.retention; a reload of the settings clears both, so that new
 * values apply at the next pass.
 */
static TimestampTz partitions_checked_at = 0;
static TimestampTz pruned_at = 0;

/* The batch being run (TopMemoryContext), and the error that broke it. */
static int64 *batch_ids = NULL;
static int	n_batch_ids = 0;
static char *batch_error = NULL;

/*
 * The next timed pause, automatic retry or task escalation: the earliest
 * due time, and the earliest after $1 (see held_before; NULL: none).
 */
static SavedStmt next_due_stmt = {
	"SELECT LEAST("
	"  (SELECT pg_catalog.min(run_after) FROM execlog.executions WHERE run_after IS NOT NULL),"
	"  (SELECT pg_catalog.min(due_at) FROM execlog.tasks"
	"    WHERE status OPERATOR(pg_catalog.=) 'open' AND escalated_at IS NULL"
	"      AND escalate IS NOT NULL)),"
	" LEAST("
	"  (SELECT pg_catalog.min(run_after) FROM execlog.executions"
	"    WHERE run_after OPERATOR(pg_catalog.>) $1),"
	"  (SELECT pg_catalog.min(due_at) FROM execlog.tasks"
	"    WHERE status OPERATOR(pg_catalog.=) 'open' AND escalated_at IS NULL"
	"      AND escalate IS NOT NULL AND due_at OPERATOR(pg_catalog.>) $1))",
	1, {TIMESTAMPTZOID}, NULL, true
};

/*
 * While busy, a worker looks for due work when the earliest due time it
 * knows of has come, and at least this often (others may have set earlier
 * ones meanwhile); when idle, at every pass.
 */
#define DUE_RECHECK_MS 1000

/*
 * How soon to look again at due work that a pass could not take: the due
 * statements skip rows another transaction holds locked (SKIP LOCKED), and
 * their due time, already past, must not make the worker look again at
 * once, every millisecond, for as long as the lock is held.
 */
#define DUE_LOCKED_RECHECK_MS 1000

static TimestampTz next_due_at = 0;		/* 0: nothing due */
static TimestampTz due_checked_at = 0;

/*
 * After a look at due work that took everything it could (no statement
 * filled its batch), whatever was due by then (held_before, the now() of
 * its statements) and is still there was skipped: it is looked at again
 * at held_until.  held_before 0: nothing held.
 */
static TimestampTz held_before = 0;
static TimestampTz held_until = 0;

static uint64
worker_stmt(SavedStmt *stmt, Datum *values)
{
	return execlog_run_saved(stmt, values, NULL, false);
}

/*
 * Collect the ids returned by the last statement into a list of int64 *.
 * The list must outlive the claim transaction, and SPI leaves its own
 * procedure context current after every call, so allocate in loop_cxt.
 */
static List *
returned_ids(List *ids)
{
	uint64		i;
	MemoryContext old = MemoryContextSwitchTo(loop_cxt);

	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64	   *id = palloc(sizeof(int64));

		*id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
										  SPI_tuptable->tupdesc, 1, &isnull));
		ids = lappend(ids, id);
	}
	MemoryContextSwitchTo(old);
	SPI_freetuptable(SPI_tuptable);
	return ids;
}

/*
 * claim_fast
 *		Claim without locking rows first (see worker_xact_lock); false when
 *		a row locked by another transaction made the claim give up.
 */
typedef struct ClaimCall
{
	Datum	   *values;
	List	   *ids;
} ClaimCall;

static void
claim_fast_call(void *arg)
{
	ClaimCall  *c = (ClaimCall *) arg;
	int			nest = NewGUCNestLevel();

	(void) set_config_option("lock_timeout", CLAIM_WAIT_MS, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	worker_stmt(&claim_fast_stmt, c->values);
	AtEOXact_GUC(true, nest);
	c->ids = returned_ids(c->ids);
}

static bool
claim_fast(Datum *values, List **ids)
{
	ClaimCall	c = {values, *ids};
	ErrorData  *edata = execlog_try(claim_fast_call, &c);

	if (edata == NULL)
	{
		*ids = c.ids;
		return true;
	}
	if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
		ReThrowError(edata);
	skip_locked_until = GetCurrentTimestamp() + (TimestampTz) CLAIM_SKIP_MS * 1000;
	return false;
}

/*
 * claim
 *		Claim up to execlog.batch_size executions for this worker.
 */
static List *
claim(int slot)
{
	Datum		values[3];
	List	   *ids = NIL;
	List	   *throttled = NIL;
	ListCell   *lc;
	uint64		i;

	/* queued executions of throttled automations, while slots are free */
	worker_stmt(&throttled_stmt, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64	   *pair = palloc(sizeof(int64) * 2);

		pair[0] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		pair[1] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		throttled = lappend(throttled, pair);
	}
	SPI_freetuptable(SPI_tuptable);
	foreach(lc, throttled)
	{
		int64	   *pair = (int64 *) lfirst(lc);

		if (list_length(ids) >= execlog_batch_size)
			break;
		worker_xact_lock(THROTTLE_LOCK_CLASS, (int32) pair[0]);
		values[0] = Int64GetDatum(pair[0]);
		values[1] = Int32GetDatum((int32) Min(pair[1], execlog_batch_size - list_length(ids)));
		values[2] = Int32GetDatum(slot);
		worker_stmt(&claim_queued_stmt, values);
		ids = returned_ids(ids);
	}

	if (list_length(ids) < execlog_batch_size)
	{
		worker_xact_lock(CLAIM_LOCK_CLASS, 0);
		values[0] = Int32GetDatum(execlog_batch_size - list_length(ids));
		values[1] = Int32GetDatum(slot);
		if (GetCurrentTimestamp() < skip_locked_until || !claim_fast(values, &ids))
		{
			worker_stmt(&claim_stmt, values);
			ids = returned_ids(ids);
		}
	}
	return ids;
}

/*
 * look_next_due
 *		Note when something becomes due next.
 */
static void
look_next_due(TimestampTz now)
{
	Datum		values[1];
	char		nulls[2] = " ";
	bool		isnull;
	bool		later_null;
	Datum		d;
	Datum		later;

	values[0] = TimestampTzGetDatum(held_before);
	if (held_before == 0)
		nulls[0] = 'n';
	execlog_run_saved(&next_due_stmt, values, nulls, false);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	later = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &later_null);
	SPI_freetuptable(SPI_tuptable);
	next_due_at = isnull ? 0 : DatumGetTimestampTz(d);

	/* what was skipped as locked waits until held_until, the rest does not */
	if (held_before != 0 && next_due_at != 0 && next_due_at <= held_before)
	{
		next_due_at = held_until;
		if (!later_null && DatumGetTimestampTz(later) < held_until)
			next_due_at = DatumGetTimestampTz(later);
	}
	due_checked_at = now;
}

/* How long to sleep before something becomes due. */
static long
next_sleep_ms(TimestampTz now)
{
	int64		ms;

	if (next_due_at == 0)
		return MAX_SLEEP_MS;
	ms = (next_due_at - now) / 1000;
	if (ms < 1)
		return 1;
	return (long) Min(ms + 1, MAX_SLEEP_MS);
}

static void
begin_tx(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end_tx(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * maintain_partitions
 *		Worker 0's partition maintenance (partitions_stmt) in a
 *		subtransaction of the claim's transaction: a failure (a lock not
 *		granted within lock_timeout, say) is logged and retried at the next
 *		maintenance pass; it never costs the claim.
 */
static void
maintain_partitions(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	Datum		values[1];

	values[0] = Int32GetDatum(execlog_partition_interval_min);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		worker_stmt(&partitions_stmt, values);
		SPI_freetuptable(SPI_tuptable);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ereport(LOG,
				(errmsg("execlog: partition maintenance failed, retried in a minute: %s",
						edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * schema_usable
 *		Whether the extension is installed at the library's version.  While
 *		it is missing, older or newer the worker waits, saying so once per
 *		change of state; it looks again every MAX_SLEEP_MS.
 */
static bool
schema_usable(void)
{
	static ExeclogSchemaState reported = EXECLOG_SCHEMA_MISSING;
	const char *version;
	ExeclogSchemaState state = execlog_schema_state(&version);

	if (state != reported)
	{
		if (state == EXECLOG_SCHEMA_OLDER)
			ereport(LOG,
					(errmsg("%s waits: execlog schema version %s is older than the library (%s): run ALTER EXTENSION execlog UPDATE",
							execlog_default_actor, version, EXECLOG_VERSION)));
		else if (state == EXECLOG_SCHEMA_NEWER)
			ereport(LOG,
					(errmsg("%s waits: execlog schema version %s is newer than the library (%s): install the matching library",
							execlog_default_actor, version, EXECLOG_VERSION)));
		else if (state == EXECLOG_SCHEMA_CURRENT && reported != EXECLOG_SCHEMA_MISSING)
			ereport(LOG,
					(errmsg("%s goes on: execlog schema version %s matches the library",
							execlog_default_actor, version)));
		reported = state;
	}
	return state == EXECLOG_SCHEMA_CURRENT;
}

/*
 * fail_broken_batch
 *		After the recovery block caught an error of a batch transaction: fail
 *		the executions of that batch still running here, with the error, so
 *		that none stays running for good.
 */
static void
fail_broken_batch(int slot)
{
	ArrayType  *arr;
	Datum	   *elems;
	int			i;

	begin_tx("execlog: failing a broken batch");
	elems = palloc(sizeof(Datum) * n_batch_ids);
	for (i = 0; i < n_batch_ids; i++)
		elems[i] = Int64GetDatum(batch_ids[i]);
	arr = construct_array(elems, n_batch_ids, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE);
	(void) execlog_policy_fail_running(slot, 0, arr,
									   psprintf("execution failed: the batch running it failed: %s",
												batch_error ? batch_error : "unknown error"));
	end_tx();
	pfree(batch_ids);
	batch_ids = NULL;
	n_batch_ids = 0;
	if (batch_error)
		pfree(batch_error);
	batch_error = NULL;
}

/*
 * worker_pass
 *		One pass of the loop; returns true when there may be more work
 *		right away.  *sleep_ms is set to the time until something is due.
 */
static bool
worker_pass(int slot, bool *recovered, long *sleep_ms)
{
	Datum		values[2];
	List	   *ids;
	bool		saturated;
	uint64		due = 0;
	TimestampTz now;
	bool		look_due;
	bool		more_alerts;

	if (batch_ids != NULL)
		fail_broken_batch(slot);
	begin_tx("execlog: claiming");
	if (!schema_usable())
	{
		end_tx();
		*sleep_ms = MAX_SLEEP_MS;
		return false;
	}
	if (!*recovered)
	{
		(void) execlog_policy_fail_running(slot, execlog_workers, NULL,
										   "interrupted: the worker running it stopped before it finished");
		*recovered = true;
	}
	/* partitions ahead: worker 0, once a minute */
	if (slot == 0)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (TimestampDifferenceExceeds(partitions_checked_at, now, PARTITIONS_INTERVAL_MS))
		{
			partitions_checked_at = now;
			maintain_partitions();
		}
	}
	/* execlog.retention: worker 0 prunes once a minute */
	if (slot == 0 && execlog_retention_min > 0)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (TimestampDifferenceExceeds(pruned_at, now, PRUNE_INTERVAL_MS))
		{
			values[0] = Int32GetDatum(execlog_retention_min);
			worker_stmt(&prune_stmt, values);
			SPI_freetuptable(SPI_tuptable);
			pruned_at = now;
		}
	}

	now = GetCurrentTimestamp();
	look_due = (next_due_at != 0 && next_due_at <= now) ||
		TimestampDifferenceExceeds(due_checked_at, now, DUE_RECHECK_MS);
	if (look_due)
	{
		uint64		pauses;
		uint64		retries;
		uint64		tasks;

		values[0] = Int32GetDatum(execlog_batch_size);
		pauses = worker_stmt(&due_pauses, values);
		retries = worker_stmt(&due_retries, values);
		tasks = execlog_escalate_tasks();
		due = pauses + retries + tasks;

		/*
		 * A full batch may have more due behind it: look again at once.
		 * Otherwise what was due when this transaction started (the now()
		 * of the due statements) and is left was skipped as locked.
		 */
		if (pauses < (uint64) execlog_batch_size && retries < (uint64) execlog_batch_size &&
			tasks < (uint64) execlog_batch_size)
		{
			held_before = GetCurrentTransactionStartTimestamp();
			held_until = TimestampTzPlusMilliseconds(now, DUE_LOCKED_RECHECK_MS);
		}
		else
			held_before = 0;
	}
	/* with enough requests in flight, continue those before claiming more */
	saturated = execlog_http_steps_saturated();
	ids = saturated ? NIL : claim(slot);
	execlog_http_steps_check_cancels(slot);
	execlog_http_steps_record_slow();
	/* the due time matters when the worker may sleep next */
	if (look_due || (ids == NIL && !saturated))
		look_next_due(now);
	*sleep_ms = next_sleep_ms(now);
	end_tx();
	MemoryContextSwitchTo(loop_cxt);

	/* executions whose HTTP requests finished: still ours, no claim needed */
	ids = execlog_http_steps_finished_ids(ids);
	if (ids != NIL)
	{
		ListCell   *lc;

		/* kept for the recovery block, should the batch fail as a whole */
		batch_ids = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * list_length(ids));
		n_batch_ids = 0;
		foreach(lc, ids)
			batch_ids[n_batch_ids++] = *(int64 *) lfirst(lc);
		begin_tx("execlog: running executions");
		execlog_run_batch(slot, ids);
		end_tx();
		pfree(batch_ids);
		batch_ids = NULL;
		n_batch_ids = 0;
		MemoryContextSwitchTo(loop_cxt);
		execlog_http_steps_batch_done();	/* sends the requests the batch prepared */
	}

	/* alert deliveries: outcomes recorded, due alerts sent (alert_send.c) */
	more_alerts = execlog_alerts_pass(sleep_ms, ids != NIL);

	/*
	 * Look again at once after any work: a full batch may have more behind
	 * it, and finished executions may have freed throttle slots.  With
	 * enough requests in flight the claim was skipped: look again as soon
	 * as answers come in.
	 */
	return due > 0 || saturated || ids != NIL || more_alerts;
}

/*
 * worker_detach
 *		on_shmem_exit callback: free the worker's slot.
 */
static void
worker_detach(int code, Datum arg)
{
	int			slot = DatumGetInt32(arg);

	SpinLockAcquire(&execlog_shared->mutex);
	execlog_shared->slots[slot].pid = 0;
	execlog_shared->slots[slot].latch = NULL;
	execlog_shared->slots[slot].execution_id = 0;
	execlog_shared->slots[slot].exit_requested = false;
	SpinLockRelease(&execlog_shared->mutex);
}

/*
 * Per-execution cancels.
 *
 * A committed execlog.cancel() of the execution this worker runs bumps its
 * slot's cancel generation (execlog.c, signal_cancels); no signal is sent,
 * so nothing can interrupt the worker's own statements (claims, step rows,
 * follow-ups) or another execution of the batch.  The cancel is acted on
 * in two places only:
 *
 *	- at every step boundary (execlog_cancelled_at_boundary, see
 *	  executor.c): the execution stops there and what it did in this batch
 *	  is undone (also one cancelled while it waited for its turn in the
 *	  batch, see batch_http_cancels);
 *	- inside a running step: while a step runs, the timeout
 *	  cancel_check_timeout fires every CANCEL_CHECK_MS and, when the
 *	  generation moved, sets QueryCancelPending as a SIGINT would.
 *
 * Why a timeout: the step's statement is ordinary PostgreSQL code in this
 * process (pg_sleep, a long scan, a lock wait); it reaches
 * CHECK_FOR_INTERRUPTS often, but nothing in it looks at our slot, and a
 * SetLatch from the canceller only wakes a latch wait, which then goes back
 * to sleep.  A timeout handler runs in the SIGALRM handler of this process
 * (PostgreSQL 15 timeout.c), so it may only do what a signal handler may:
 * it reads the generation without the spinlock (pg_atomic_read_u32 is a
 * plain load on every platform, simulated atomics included) and sets the
 * same flags StatementCancelHandler sets; the next CHECK_FOR_INTERRUPTS in
 * the statement raises "canceling statement due to user request"
 * (ERRCODE_QUERY_CANCELED), which fails the step's subtransaction only.
 * The timeout is disabled, and a flag it may have set after the statement
 * ended is cleared, before the worker runs any statement of its own
 * (execlog_step_interruptible(false)).  An executor hook checking between
 * rows would not interrupt a statement that returns no rows for a long
 * time (pg_sleep, a lock wait), hence the timeout.
 *
 * The time limit of an sql step is PostgreSQL's statement timeout (steps.c),
 * enabled only around the step's statement: its handler signals this
 * process itself, so it too can only interrupt the step; a cancel flag it
 * raised just as the statement ended is cleared with ours at the step's end.
 */
#define CANCEL_CHECK_MS 100

static TimeoutId cancel_check_timeout;
static volatile sig_atomic_t step_interruptible = false;
static int64 current_execution = 0;
static volatile uint32 cancel_base = 0;	/* cancel_gen when it started */

/*
 * cancel_check
 *		Timeout handler (signal context): interrupt the running step when a
 *		cancel of its execution was committed.
 */
static void
cancel_check(void)
{
	if (step_interruptible && execlog_worker_slot >= 0 &&
		pg_atomic_read_u32(&execlog_shared->slots[execlog_worker_slot].cancel_gen) != cancel_base)
	{
		InterruptPending = true;
		QueryCancelPending = true;
		SetLatch(MyLatch);
	}
}

/*
 * execlog_set_current_execution
 *		Publish which execution this worker runs (0: none), so that a
 *		committed cancel of it reaches this worker, and of no other.
 */
void
execlog_set_current_execution(int slot, int64 execution_id)
{
	SpinLockAcquire(&execlog_shared->mutex);
	execlog_shared->slots[slot].execution_id = execution_id;
	/* cancels committed from now on while it runs are for this execution */
	cancel_base = pg_atomic_read_u32(&execlog_shared->slots[slot].cancel_gen);
	SpinLockRelease(&execlog_shared->mutex);
	current_execution = execution_id;
}

/*
 * execlog_cancel_requested
 *		Whether a cancel of this execution was committed while we ran it.
 */
bool
execlog_cancel_requested(int64 execution_id)
{
	if (execlog_worker_slot < 0 || execution_id == 0 ||
		execution_id != current_execution)
		return false;
	return pg_atomic_read_u32(&execlog_shared->slots[execlog_worker_slot].cancel_gen) !=
		cancel_base;
}

/*
 * Cancels of executions of the batch that were not running at the time
 * (claimed, waiting for their turn) bump the slot's http_cancels instead
 * (execlog.c): when it moved since the batch began, the next step boundary
 * of each execution looks at its row.
 */
static uint32 batch_http_cancels = 0;

static SavedStmt still_running_stmt = {
	"SELECT 1 FROM execlog.executions"
	" WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'running'",
	1, {INT8OID}, NULL, true
};

/*
 * execlog_batch_cancels_begin
 *		Note, before a batch is loaded, the cancels its slot has seen.
 */
void
execlog_batch_cancels_begin(void)
{
	if (execlog_worker_slot < 0)
		return;
	SpinLockAcquire(&execlog_shared->mutex);
	batch_http_cancels = execlog_shared->slots[execlog_worker_slot].http_cancels;
	SpinLockRelease(&execlog_shared->mutex);
}

/*
 * execlog_cancelled_at_boundary
 *		At a step boundary: whether this execution was cancelled since the
 *		batch began (while it ran, or while it waited for its turn).  Looks
 *		at its row only when some cancel reached the slot meanwhile.
 */
bool
execlog_cancelled_at_boundary(int64 execution_id)
{
	Datum		values[1];
	uint32		seen;

	if (execlog_cancel_requested(execution_id))
		return true;
	if (execlog_worker_slot < 0)
		return false;
	SpinLockAcquire(&execlog_shared->mutex);
	seen = execlog_shared->slots[execlog_worker_slot].http_cancels;
	SpinLockRelease(&execlog_shared->mutex);
	if (seen == batch_http_cancels)
		return false;
	values[0] = Int64GetDatum(execution_id);
	return execlog_run_saved(&still_running_stmt, values, NULL, false) == 0;
}

/*
 * execlog_step_interruptible
 *		Around a step (true before it, false after it, on success and on
 *		error): while a step runs, a committed cancel of its execution
 *		interrupts it (see above).
 */
void
execlog_step_interruptible(bool on)
{
	if (execlog_worker_slot < 0)
		return;
	if (on)
	{
		step_interruptible = true;
		enable_timeout_every(cancel_check_timeout,
							 TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														 CANCEL_CHECK_MS),
							 CANCEL_CHECK_MS);
		/* a cancel committed between the boundary check and now */
		cancel_check();
	}
	else
	{
		disable_timeout(cancel_check_timeout, false);
		step_interruptible = false;

		/*
		 * The step is over: a cancel it did not reach is noticed at the next
		 * step boundary, and must not interrupt a statement of the worker.
		 */
		QueryCancelPending = false;
	}
}

/*
 * wait_for_work
 *		Wait for the latch, the HTTP sockets (one epoll descriptor) or a
 *		timeout, whichever comes first: not at all when more work is waiting
 *		('more'), at most sleep_ms otherwise.  Answers to requests in flight
 *		are collected while waiting, and finished ones are continued in
 *		batches (see execlog_http_steps_wait_ms).
 */
static void
wait_for_work(bool more, long sleep_ms)
{
	TimestampTz until = GetCurrentTimestamp() + (TimestampTz) sleep_ms * 1000;

	for (;;)
	{
		long		max_ms = more ? 0 : (long) ((until - GetCurrentTimestamp()) / 1000);
		long		wait_ms;
		int			rc;

		execlog_http_drive();
		/* what the http steps, the alert deliveries and libcurl allow */
		wait_ms = execlog_http_steps_wait_ms(Max(max_ms, 0));
		if (wait_ms > 0)
			wait_ms = execlog_alerts_wait_ms(wait_ms);
		if (wait_ms > 0)
			wait_ms = execlog_http_wait_ms(wait_ms);
		if (wait_ms <= 0)
			break;
		rc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | WL_SOCKET_READABLE | WL_TIMEOUT |
							   WL_EXIT_ON_PM_DEATH,
							   execlog_http_socket(), wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if ((rc & WL_LATCH_SET) || (!more && GetCurrentTimestamp() >= until))
			break;
	}
}

/*
 * execlog_worker_main
 *		Entry point of a worker; main_arg is its slot number.
 */
void
execlog_worker_main(Datum main_arg)
{
	int			slot = DatumGetInt32(main_arg);
	volatile bool recovered = false;
	sigjmp_buf	local_sigjmp_buf;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(execlog_database, NULL, 0);
	/* nothing others create resolves in the worker's own statements */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);

	SpinLockAcquire(&execlog_shared->mutex);
	execlog_shared->slots[slot].pid = MyProcPid;
	execlog_shared->slots[slot].latch = MyLatch;
	execlog_shared->slots[slot].database = MyDatabaseId;
	execlog_shared->slots[slot].execution_id = 0;
	execlog_shared->slots[slot].exit_requested = false;
	SpinLockRelease(&execlog_shared->mutex);
	before_shmem_exit(worker_detach, Int32GetDatum(slot));

	execlog_worker_slot = slot;
	execlog_default_actor = MemoryContextStrdup(TopMemoryContext,
												psprintf("execlog worker %d", slot));
	execlog_actor = execlog_default_actor;
	pgstat_report_appname(execlog_default_actor);

	cancel_check_timeout = RegisterTimeout(USER_TIMEOUT, cancel_check);

	loop_cxt = AllocSetContextCreate(TopMemoryContext, "execlog worker loop",
									 ALLOCSET_DEFAULT_SIZES);
	execlog_http_init();

	ereport(LOG,
			(errmsg("%s started for database \"%s\"", execlog_default_actor,
					execlog_database)));

	/*
	 * An error outside any execution (a batch statement, a claim) ends up
	 * here, as in autovacuum's launcher: report it, abort the transaction,
	 * forget the pass, wait a moment and go on.  A batch that broke has its
	 * executions failed with the error at the next pass.
	 */
	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		/*
		 * Since not using PG_TRY, reset the error context stack by hand (as
		 * autovacuum's launcher does): the entries the error jumped over
		 * (SPI's, a trigger's) were on stack frames that are gone, and the
		 * next error report would follow them into garbage.
		 */
		error_context_stack = NULL;

		HOLD_INTERRUPTS();
		QueryCancelPending = false;
		disable_all_timeouts(false);
		step_interruptible = false;
		MemoryContextSwitchTo(TopMemoryContext);
		if (batch_ids != NULL && batch_error == NULL)
		{
			ErrorData  *edata = CopyErrorData();

			batch_error = MemoryContextStrdup(TopMemoryContext, edata->message);
			FreeErrorData(edata);
		}
		EmitErrorReport();
		AbortCurrentTransaction();
		/* an error between transactions leaves no lock behind either */
		LWLockReleaseAll();
		execlog_set_current_execution(slot, 0);
		execlog_http_steps_batch_abort();
		pgstat_report_activity(STATE_IDLE, NULL);
		MemoryContextSwitchTo(TopMemoryContext);
		FlushErrorState();
		MemoryContextReset(loop_cxt);
		RESUME_INTERRUPTS();

		/* do not flood the log with a persistent error */
		pg_usleep(1000000L);
	}
	PG_exception_stack = &local_sigjmp_buf;

	for (;;)
	{
		long		sleep_ms = MAX_SLEEP_MS;
		bool		more;
		bool		exit_requested;

		/*
		 * Between passes no statement runs: a late pg_cancel_backend() is
		 * moot, and raising it outside a transaction would stop the worker.
		 * (execlog.cancel sends no signal, see execlog_step_interruptible.)
		 */
		QueryCancelPending = false;
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			partitions_checked_at = 0;
			pruned_at = 0;
		}

		SpinLockAcquire(&execlog_shared->mutex);
		exit_requested = execlog_shared->slots[slot].exit_requested;
		SpinLockRelease(&execlog_shared->mutex);
		if (exit_requested)
		{
			ereport(LOG,
					(errmsg("%s exits: its database is being dropped",
							execlog_default_actor)));
			proc_exit(1);
		}

		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);
		execlog_http_drive();
		more = worker_pass(slot, (bool *) &recovered, &sleep_ms);
		MemoryContextSwitchTo(loop_cxt);
		wait_for_work(more, sleep_ms);
		MemoryContextSwitchTo(TopMemoryContext);
	}
}

/*
 * execlog_object_access
 *		When the workers' database is about to be dropped, ask them to exit
 *		so that DROP DATABASE does not wait for them.
 */
static void
execlog_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					  int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);

	if (access == OAT_DROP && classId == DatabaseRelationId && execlog_shared)
	{
		Latch	   *latches[EXECLOG_MAX_WORKERS];
		int			n = 0;
		int			i;

		/* flag the workers under the lock, wake them after releasing it */
		SpinLockAcquire(&execlog_shared->mutex);
		for (i = 0; i < EXECLOG_MAX_WORKERS; i++)
		{
			ExeclogWorkerSlot *s = &execlog_shared->slots[i];

			if (s->pid != 0 && s->database == objectId)
			{
				s->exit_requested = true;
				if (s->latch)
					latches[n++] = s->latch;
			}
		}
		SpinLockRelease(&execlog_shared->mutex);
		for (i = 0; i < n; i++)
			SetLatch(latches[i]);
	}
}

/*
 * execlog_register_workers
 *		Register the workers (from _PG_init, while preloading).
 */
void
execlog_register_workers(void)
{
	BackgroundWorker worker;
	int			i;

	prev_object_access_hook = object_access_hook;
	object_access_hook = execlog_object_access;

	for (i = 0; i < execlog_workers; i++)
	{
		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = 5;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "execlog");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "execlog_worker_main");
		snprintf(worker.bgw_name, BGW_MAXLEN, "execlog worker %d", i);
		snprintf(worker.bgw_type, BGW_MAXLEN, "execlog worker");
		worker.bgw_main_arg = Int32GetDatum(i);
		RegisterBackgroundWorker(&worker);
	}
}
