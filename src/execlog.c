/*-------------------------------------------------------------------------
 *
 * execlog.c
 *	  Library entry point: settings, shared memory, worker registration and
 *	  waking the workers when a transaction that enqueued work commits.
 *
 * execlog must be loaded through shared_preload_libraries: the workers and
 * their shared memory exist only then.  Loading it any other way fails with
 * a hint, so CREATE EXTENSION without preloading fails clearly.
 *
 *-------------------------------------------------------------------------
 */
#include "execlog.h"
#include "http.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"

#include <signal.h>
#include "utils/guc.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

ExeclogShared *execlog_shared = NULL;
bool		execlog_preloaded = false;
const char *execlog_actor = NULL;
const char *execlog_default_actor = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Set when this transaction enqueued work; the workers are woken at commit. */
static bool wake_pending = false;

/*
 * Running executions this transaction cancelled: at commit, the worker
 * running one is interrupted (its statement is cancelled).  The list lives
 * in TopTransactionContext and grows with the cancels, so none is dropped;
 * it is forgotten (with its context) when the transaction ends.
 */
typedef struct PendingCancel
{
	int			slot;
	int64		execution_id;
} PendingCancel;

static List *pending_cancels = NIL;

void		_PG_init(void);

/*
 * execlog_shmem_request
 *		Reserve our shared memory area.
 */
static void
execlog_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(ExeclogShared)));
	execlog_token_shmem_request();
}

/*
 * execlog_shmem_startup
 *		Attach to (and on first use, initialise) the shared memory area.
 */
static void
execlog_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	execlog_shared = ShmemInitStruct("execlog", sizeof(ExeclogShared), &found);
	if (!found)
	{
		memset(execlog_shared, 0, sizeof(ExeclogShared));
		SpinLockInit(&execlog_shared->mutex);
	}
	execlog_token_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * execlog_wake_workers
 *		Set the latch of every running worker.
 */
void
execlog_wake_workers(void)
{
	Latch	   *latches[EXECLOG_MAX_WORKERS];
	int			n = 0;
	int			i;

	if (execlog_shared == NULL)
		return;

	SpinLockAcquire(&execlog_shared->mutex);
	execlog_shared->wakeups++;
	for (i = 0; i < EXECLOG_MAX_WORKERS; i++)
	{
		if (execlog_shared->slots[i].pid != 0 && execlog_shared->slots[i].latch)
			latches[n++] = execlog_shared->slots[i].latch;
	}
	SpinLockRelease(&execlog_shared->mutex);

	/* SetLatch is safe on another process's latch; do it outside the lock */
	for (i = 0; i < n; i++)
		SetLatch(latches[i]);
}

/*
 * signal_cancels
 *		Tell the workers about executions cancelled by the committed
 *		transaction, and interrupt the statement of the one running it now.
 *
 * Under the spinlock only shared memory is read and written: which workers
 * to interrupt and which to wake is collected per slot (one signal and one
 * latch per worker are enough), and kill() and SetLatch() come after the
 * lock is released.
 */
static void
signal_cancels(void)
{
	bool		interrupt[EXECLOG_MAX_WORKERS];
	bool		wake[EXECLOG_MAX_WORKERS];
	pid_t		pids[EXECLOG_MAX_WORKERS];
	Latch	   *latches[EXECLOG_MAX_WORKERS];
	ListCell   *lc;
	int			i;

	if (execlog_shared == NULL)
		return;
	memset(interrupt, 0, sizeof(interrupt));
	memset(wake, 0, sizeof(wake));
	SpinLockAcquire(&execlog_shared->mutex);
	foreach(lc, pending_cancels)
	{
		PendingCancel *pc = (PendingCancel *) lfirst(lc);
		ExeclogWorkerSlot *s;

		if (pc->slot < 0 || pc->slot >= EXECLOG_MAX_WORKERS)
			continue;
		s = &execlog_shared->slots[pc->slot];
		if (s->pid != 0 && s->execution_id == pc->execution_id)
		{
			s->cancel_id = pc->execution_id;
			interrupt[pc->slot] = true;
			pids[pc->slot] = s->pid;
		}
		else if (s->pid != 0 && s->latch != NULL)
		{
			/* it may be waiting for an HTTP answer: the worker aborts it */
			s->http_cancels++;
			wake[pc->slot] = true;
			latches[pc->slot] = s->latch;
		}
	}
	SpinLockRelease(&execlog_shared->mutex);
	pending_cancels = NIL;
	for (i = 0; i < EXECLOG_MAX_WORKERS; i++)
	{
		if (interrupt[i])
			kill(pids[i], SIGINT);
		if (wake[i])
			SetLatch(latches[i]);
	}
}

/*
 * execlog_cancel_at_commit
 *		Remember that a running execution was cancelled; see signal_cancels.
 */
void
execlog_cancel_at_commit(int slot, int64 execution_id)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingCancel *pc = palloc(sizeof(PendingCancel));

	pc->slot = slot;
	pc->execution_id = execution_id;
	pending_cancels = lappend(pending_cancels, pc);
	MemoryContextSwitchTo(old);
}

/*
 * execlog_xact_callback
 *		Wake the workers once the transaction that enqueued work commits.
 *
 * Waking them earlier would make them look for rows they cannot see yet;
 * an aborted transaction enqueued nothing, so it wakes nobody.
 */
static void
execlog_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_pending)
			{
				wake_pending = false;
				execlog_wake_workers();
			}
			if (pending_cancels != NIL)
				signal_cancels();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_pending = false;
			pending_cancels = NIL;
			/* an API call that failed must not name its caller later */
			execlog_actor = execlog_default_actor;
			break;
		case XACT_EVENT_PREPARE:
			/* the list's memory goes with the prepared transaction */
			pending_cancels = NIL;
			break;
		default:
			break;
	}
}

/*
 * execlog_wake_at_commit
 *		Ask for the workers to be woken when the current transaction commits.
 */
void
execlog_wake_at_commit(void)
{
	wake_pending = true;
}

/*
 * _PG_init
 *		Library load: define settings, reserve shared memory, register workers.
 */
void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("execlog must be loaded via \"shared_preload_libraries\""),
				 errhint("Add execlog to \"shared_preload_libraries\" in postgresql.conf and restart the server.")));

	execlog_preloaded = true;
	execlog_define_gucs();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = execlog_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = execlog_shmem_startup;

	RegisterXactCallback(execlog_xact_callback, NULL);

	execlog_register_workers();
}
