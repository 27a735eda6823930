/*-------------------------------------------------------------------------
 *
 * policy.c
 *	  What happens after an execution fails, in one place.
 *
 *	- the retry budget: an execution makes at most max_retries + 1
 *	  attempts (execlog.retry(), automatic retries and crash recovery all
 *	  count against it; the status guard refuses anything past it);
 *	- an automation with a response step is never retried: its response
 *	  may have been sent already;
 *	- an automatic retry (auto_retries) is due retry_delay after the
 *	  failure, doubling with each attempt, and not before a Retry-After the
 *	  far end asked for;
 *	- an execution failed by crash recovery or by a broken batch is retried
 *	  at once when the budget allows (at-least-once, see README);
 *	- when no retry follows, on_failure creates a task and/or an alert,
 *	  placeholders resolved against the execution's document (payload,
 *	  context, resume, and the outputs of the steps that succeeded): the
 *	  same text whether the executor or crash recovery failed it.
 *
 * The executor (executor.c), the worker's recovery (worker.c), the API
 * (api.c) and the status guard (status.c) call these functions; none of
 * them decides any of this by itself.
 *
 *-------------------------------------------------------------------------
 */
#include "policy.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* The longest automatic retry delay: doubling stops here. */
#define MAX_RETRY_DELAY_MS (INT64CONST(86400000) * 365)

/*
 * execlog_policy_budget_left
 *		Whether an execution that made 'attempt' attempts may make another.
 */
bool
execlog_policy_budget_left(int32 attempt, int32 max_retries)
{
	return attempt < max_retries + 1;
}

/*
 * execlog_policy_response_forbids_retry
 *		Whether an automation's response step forbids a retry: it does, its
 *		response may have been sent already and must not be sent twice.
 */
bool
execlog_policy_response_forbids_retry(bool has_response_step)
{
	return has_response_step;
}

/*
 * execlog_policy_may_retry
 *		Whether a retry after attempt 'attempt' is allowed at all.
 */
bool
execlog_policy_may_retry(int32 attempt, int32 max_retries, bool has_response_step)
{
	return !execlog_policy_response_forbids_retry(has_response_step) &&
		execlog_policy_budget_left(attempt, max_retries);
}

/*
 * execlog_policy_check_budget
 *		Raise the retry-limit error when execution 'id', after 'attempt'
 *		attempts, has no retry left.
 */
void
execlog_policy_check_budget(int64 id, int32 attempt, int32 max_retries)
{
	if (execlog_policy_budget_left(attempt, max_retries))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("execution %lld has reached its retry limit", (long long) id),
			 attempt == 1 ?
			 errdetail_plural("It has made %d attempt and its automation allows %d retry.",
							  "It has made %d attempt and its automation allows %d retries.",
							  max_retries, attempt, max_retries) :
			 errdetail_plural("It has made %d attempts and its automation allows %d retry.",
							  "It has made %d attempts and its automation allows %d retries.",
							  max_retries, attempt, max_retries),
			 errhint("Start a new execution with execlog.start().")));
}

/*
 * execlog_policy_retry_time
 *		When the automatic retry after attempt 'attempt' is due: retry_delay
 *		after 'now', doubled for each attempt after the first (at most
 *		MAX_RETRY_DELAY_MS), and not before 'not_before' (0: none).
 */
TimestampTz
execlog_policy_retry_time(TimestampTz now, int64 retry_delay_ms, int32 attempt,
						  TimestampTz not_before)
{
	int64		delay = retry_delay_ms;
	TimestampTz at;
	int			k;

	for (k = 1; k < attempt && delay < MAX_RETRY_DELAY_MS; k++)
		delay *= 2;
	delay = Min(delay, MAX_RETRY_DELAY_MS);
	at = now + delay * 1000;
	return Max(at, not_before);
}

/* an on_failure task: with a due time, it escalates to the on_failure alert's channel */
static SavedStmt add_task = {
	"INSERT INTO execlog.tasks (execution_id, account_id, assignee, title, body, due_at, escalate)"
	" SELECT $1, $2, $3, coalesce($4, 'execution ' OPERATOR(pg_catalog.||) $1 OPERATOR(pg_catalog.||) ' failed'), $5,"
	"        d.due_at, CASE WHEN d.due_at IS NOT NULL THEN execlog._on_failure_escalation($7) END"
	"   FROM (SELECT execlog._due_at($6) AS due_at) d",
	7, {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID}
};

/*
 * execlog_policy_follow_ups
 *		Create the on_failure task of a failed (or rejected) execution and
 *		add its alert to 'alerts' (created when the caller flushes the
 *		batch, in the same transaction), with their placeholders resolved
 *		against run's document.
 */
void
execlog_policy_follow_ups(ExecRun *run, AlertBatch *alerts)
{
	MemoryContext cxt = CurrentMemoryContext;
	Jsonb	   *spec;
	Jsonb	   *task;
	Jsonb	   *alert;
	Datum		values[7];
	char		nulls[8] = "       ";

	if (run->on_failure == NULL)
		return;
	PG_TRY();
	{
		spec = execlog_resolve_config(run->on_failure, run);
	}
	PG_CATCH();
	{
		/* a broken placeholder must not lose the follow-up: use it as is */
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		spec = run->on_failure;
	}
	PG_END_TRY();

	task = execlog_jsonb_get(spec, "task");
	if (task != NULL)
	{
		char	   *v;

		values[0] = Int64GetDatum(run->id);
		values[1] = Int64GetDatum(run->account_id);
		v = execlog_jsonb_get_text(task, "assignee");
		values[2] = v ? CStringGetTextDatum(v) : (Datum) 0;
		nulls[2] = v ? ' ' : 'n';
		v = execlog_jsonb_get_text(task, "title");
		values[3] = v ? CStringGetTextDatum(v) : (Datum) 0;
		nulls[3] = v ? ' ' : 'n';
		v = execlog_jsonb_get_text(task, "body");
		if (v == NULL)
			v = run->error;
		values[4] = v ? CStringGetTextDatum(v) : (Datum) 0;
		nulls[4] = v ? ' ' : 'n';
		v = execlog_jsonb_get_text(task, "due");
		values[5] = v ? CStringGetTextDatum(v) : (Datum) 0;
		nulls[5] = v ? ' ' : 'n';
		values[6] = JsonbPGetDatum(spec);
		execlog_run_saved(&add_task, values, nulls, false);
	}
	alert = execlog_jsonb_get(spec, "alert");
	if (alert != NULL)
		(void) execlog_alert_batch_add(alerts, run->id, run->account_id, alert);
}

/*
 * execlog_policy_alert_errors
 *		See policy.h: a follow-up that cannot be created must not lose the
 *		failure, it is told in the execution's error.
 */
void
execlog_policy_alert_errors(AlertBatch *alerts, List *runs)
{
	int			i;
	ListCell   *lc;

	for (i = 0; i < alerts->flushed; i++)
	{
		AlertWant  *w = &alerts->wants[i];

		if (w->error == NULL)
			continue;
		foreach(lc, runs)
		{
			ExecRun    *run = (ExecRun *) lfirst(lc);

			if (run->id != w->execution_id)
				continue;
			run->error = psprintf("%s; its on_failure follow-up failed: %s",
								  run->error ? run->error : "failed", w->error);
			break;
		}
	}
}

/*
 * execlog_policy_after_failure
 *		After the executor ended an execution failed or rejected: schedule
 *		its automatic retry when auto_retries and the budget allow it,
 *		otherwise create its follow-ups.
 */
void
execlog_policy_after_failure(ExecRun *run, AlertBatch *alerts)
{
	ExecStatus	status = execlog_status_of_name(run->status);

	if (status != ES_FAILED && status != ES_REJECTED)
		return;
	if (run->attempt - 1 < run->auto_retries &&
		execlog_policy_may_retry(run->attempt, run->max_retries, run->has_response_step))
	{
		run->run_after = execlog_policy_retry_time(GetCurrentTimestamp(),
												   run->retry_delay_ms, run->attempt,
												   run->retry_not_before);
		return;
	}
	execlog_policy_follow_ups(run, alerts);
}

/* ----------
 * Failing the executions a worker left running
 * ----------
 */

/*
 * What the follow-ups need of an execution left running, locked: the
 * executions of a slot that stopped (crash recovery: its own slot, or one
 * past execlog.workers), or those of a broken batch.
 */
#define LEFT_RUNNING \
	"SELECT e.id, e.account_id, e.attempt, e.payload, e.context, e.resume," \
	"       a.max_retries, a.on_failure," \
	"       EXISTS (SELECT 1 FROM execlog.steps s" \
	"                WHERE s.automation_id OPERATOR(pg_catalog.=) a.id" \
	"                  AND s.kind OPERATOR(pg_catalog.=) 'response')" \
	"  FROM execlog.executions e JOIN execlog.automations a" \
	"    ON a.id OPERATOR(pg_catalog.=) e.automation_id" \
	" WHERE e.status OPERATOR(pg_catalog.=) 'running'"

static SavedStmt left_by_slot = {
	LEFT_RUNNING
	"   AND (e.worker OPERATOR(pg_catalog.=) $1 OR e.worker OPERATOR(pg_catalog.>=) $2)"
	" ORDER BY e.id FOR UPDATE OF e",
	2, {INT4OID, INT4OID}, NULL, true
};

static SavedStmt left_by_batch = {
	LEFT_RUNNING
	"   AND e.id OPERATOR(pg_catalog.=) ANY ($1) AND e.worker OPERATOR(pg_catalog.=) $2"
	" ORDER BY e.id FOR UPDATE OF e",
	2, {INT8ARRAYOID, INT4OID}, NULL, true
};

/* The outputs of the steps of its attempt that succeeded, for placeholders. */
static SavedStmt left_outputs = {
	"SELECT name, output FROM execlog.execution_steps"
	" WHERE execution_id OPERATOR(pg_catalog.=) $1 AND attempt OPERATOR(pg_catalog.=) $2"
	"   AND status OPERATOR(pg_catalog.=) 'success'"
	" ORDER BY position",
	2, {INT8OID, INT4OID}, NULL, true
};

/*
 * Fail them (each with its error, retried at once when run_after is set),
 * and end the steps of their attempt still pending or running with the
 * error (a final execution keeps none).
 */
static SavedStmt fail_left = {
	"WITH f AS ("
	"  UPDATE execlog.executions e"
	"     SET status = 'failed', worker = NULL, error = u.error, run_after = u.run_after"
	"    FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS u(id, error, run_after)"
	"   WHERE e.id OPERATOR(pg_catalog.=) u.id"
	"  RETURNING e.id, e.attempt)"
	" UPDATE execlog.execution_steps s"
	"    SET status = 'failed', finished_at = pg_catalog.now(), error = $4"
	"   FROM f WHERE s.execution_id OPERATOR(pg_catalog.=) f.id"
	"    AND s.attempt OPERATOR(pg_catalog.=) f.attempt"
	"    AND s.status::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{pending,running}')",
	4, {INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TEXTOID}, NULL, true
};

static Jsonb *
left_jsonb(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : DatumGetJsonbPCopy(d);
}

/* follow-ups in a subtransaction (execlog_try) */
typedef struct FollowUpsCall
{
	ExecRun    *run;
	AlertBatch *alerts;
} FollowUpsCall;

static void
follow_ups_call(void *arg)
{
	ExecRun    *run = ((FollowUpsCall *) arg)->run;
	Datum		values[2];
	uint64		i;

	values[0] = Int64GetDatum(run->id);
	values[1] = Int32GetDatum(run->attempt);
	execlog_run_saved(&left_outputs, values, NULL, true);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		StepOutput *o = palloc(sizeof(StepOutput));

		o->name = SPI_getvalue(tup, SPI_tuptable->tupdesc, 1);
		o->output = left_jsonb(tup, SPI_tuptable->tupdesc, 2);
		run->outputs = lappend(run->outputs, o);
	}
	SPI_freetuptable(SPI_tuptable);
	execlog_policy_follow_ups(run, ((FollowUpsCall *) arg)->alerts);
}

/*
 * execlog_policy_fail_running
 *		See policy.h.  Called by a worker inside a transaction, SPI connected.
 */
uint64
execlog_policy_fail_running(int slot, int nslots, ArrayType *ids, const char *error)
{
	Datum		values[4];
	List	   *runs = NIL;
	ListCell   *lc;
	uint64		i;
	uint64		n;
	Datum	   *id_d;
	Datum	   *error_d;
	Datum	   *after_d;
	bool	   *after_null;
	int			dims[1];
	int			lbs[1] = {1};
	int			k = 0;
	TimestampTz now = GetCurrentTimestamp();
	AlertBatch	alerts;
	FollowUpsCall call;

	execlog_alert_batch_init(&alerts);
	call.alerts = &alerts;
	if (ids == NULL)
	{
		values[0] = Int32GetDatum(slot);
		values[1] = Int32GetDatum(nslots);
		n = execlog_run_saved(&left_by_slot, values, NULL, false);
	}
	else
	{
		values[0] = PointerGetDatum(ids);
		values[1] = Int32GetDatum(slot);
		n = execlog_run_saved(&left_by_batch, values, NULL, false);
	}
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		ExecRun    *run = palloc0(sizeof(ExecRun));
		bool		isnull;

		run->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		run->account_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		run->attempt = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		run->payload = left_jsonb(tup, desc, 4);
		run->context = left_jsonb(tup, desc, 5);
		run->resume = left_jsonb(tup, desc, 6);
		run->max_retries = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
		run->on_failure = left_jsonb(tup, desc, 8);
		run->has_response_step = DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull));
		run->status = execlog_status_name(ES_FAILED);
		run->error = pstrdup(error);
		runs = lappend(runs, run);
	}
	SPI_freetuptable(SPI_tuptable);
	if (runs == NIL)
		return 0;

	id_d = palloc(sizeof(Datum) * n);
	error_d = palloc(sizeof(Datum) * n);
	after_d = palloc(sizeof(Datum) * n);
	after_null = palloc(sizeof(bool) * n);
	foreach(lc, runs)
	{
		ExecRun    *run = (ExecRun *) lfirst(lc);

		if (execlog_policy_may_retry(run->attempt, run->max_retries, run->has_response_step))
			run->run_after = now;	/* interrupted: retried at once */
		else
		{
			/* a follow-up that cannot be created must not lose the failure */
			ErrorData  *edata;

			call.run = run;
			edata = execlog_try(follow_ups_call, &call);
			if (edata != NULL)
				run->error = psprintf("%s; its on_failure follow-up failed: %s",
									  run->error, edata->message);
		}
	}
	/* the alerts of them all, one statement, before their failure is written */
	execlog_alert_batch_flush(&alerts);
	execlog_policy_alert_errors(&alerts, runs);
	foreach(lc, runs)
	{
		ExecRun    *run = (ExecRun *) lfirst(lc);

		id_d[k] = Int64GetDatum(run->id);
		error_d[k] = CStringGetTextDatum(run->error);
		after_d[k] = TimestampTzGetDatum(run->run_after);
		after_null[k] = run->run_after == 0;
		k++;
	}
	dims[0] = k;
	values[0] = PointerGetDatum(construct_array(id_d, k, INT8OID, sizeof(int64), true,
												TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(error_d, k, TEXTOID, -1, false,
												TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_md_array(after_d, after_null, 1, dims, lbs,
												   TIMESTAMPTZOID, sizeof(TimestampTz),
												   true, TYPALIGN_DOUBLE));
	values[3] = CStringGetTextDatum(error);
	execlog_run_saved(&fail_left, values, NULL, false);
	return (uint64) k;
}
