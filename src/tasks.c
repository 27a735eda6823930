/*-------------------------------------------------------------------------
 *
 * tasks.c
 *	  Human steps: alert and task steps, and the escalation of overdue
 *	  tasks (SPEC section 6).
 *
 * An alert step creates an alert row (through execlog_add_alert, the one
 * place alert rows are made) and goes on at once; the workers deliver it
 * off the execution path.
 *
 * A task step creates a task row.  With "wait" (the default) the step
 * stays "running" with output {"task_id": …} and the execution is paused
 * without a wake-up time: execlog.complete_task or execlog.dismiss_task
 * (api.c) write the step's final output or error into that row and set the
 * execution running again; the executor then finishes the step from the
 * row (load_progress).  The time a step waited for its task is added to the
 * attempt's deadline, so it does not count against time_limit.
 *
 * Escalation: every worker pass that looks for due work claims the open
 * tasks past due_at that have somewhere to escalate to (FOR UPDATE SKIP
 * LOCKED, their executions FOR KEY SHARE SKIP LOCKED, so a worker never
 * waits here), sets escalated_at and creates their alert rows in the same
 * transaction: each task escalates once, also across crashes.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

static SavedStmt add_step_task = {
	"INSERT INTO execlog.tasks (execution_id, account_id, step_position, assignee, title,"
	"                           body, due_at, escalate)"
	" VALUES ($1, $2, $3, $4, $5, $6, pg_catalog.now() OPERATOR(pg_catalog.+) $7, $8)"
	" RETURNING id",
	8, {INT8OID, INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, INTERVALOID, JSONBOID}
};

static SavedStmt is_role = {
	"SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}
};

static SavedStmt is_email = {
	"SELECT execlog._is_email($1)",
	1, {TEXTOID}
};

/*
 * Overdue tasks to escalate: claimed and marked in one statement.  The
 * message names the task, its assignee and its due time.
 */
static SavedStmt escalate_stmt = {
	"WITH due AS ("
	"  SELECT t.id FROM execlog.tasks t"
	"    JOIN execlog.executions e ON e.id OPERATOR(pg_catalog.=) t.execution_id"
	"   WHERE t.status OPERATOR(pg_catalog.=) 'open' AND t.escalated_at IS NULL"
	"     AND t.escalate IS NOT NULL AND t.due_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
	"   ORDER BY t.due_at LIMIT $1"
	"   FOR UPDATE OF t SKIP LOCKED FOR KEY SHARE OF e SKIP LOCKED)"
	" UPDATE execlog.tasks t SET escalated_at = pg_catalog.now()"
	"   FROM due WHERE t.id OPERATOR(pg_catalog.=) due.id"
	" RETURNING t.id, t.execution_id, t.account_id,"
	"   t.escalate OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('message',"
	"     pg_catalog.format('task %s \"%s\" assigned to %s is overdue: it was due at %s',"
	"                       t.id, t.title, t.assignee, t.due_at))",
	1, {INT4OID}, NULL, true
};

/* Whether a jsonb is the JSON value false. */
static bool
jsonb_is_false(Jsonb *j)
{
	JsonbValue	v;

	if (j == NULL || !JB_ROOT_IS_SCALAR(j))
		return false;
	JsonbExtractScalar(&j->root, &v);
	return v.type == jbvBool && !v.val.boolean;
}

/*
 * execlog_task_waits
 *		Whether a task step with this (resolved) config waits for its task.
 */
bool
execlog_task_waits(Jsonb *input)
{
	return !jsonb_is_false(execlog_jsonb_get(input, "wait"));
}

/*
 * execlog_alert_step
 *		Run an alert step: create its alert row; returns {"alert_id": …}.
 */
Jsonb *
execlog_alert_step(ExecRun *run, StepDef *def, Jsonb *input)
{
	char	   *channel = execlog_jsonb_get_text(input, "channel");
	char	   *target = execlog_jsonb_get_text(input, "target");
	char	   *message = execlog_jsonb_get_text(input, "message");
	Datum		values[1];
	bool		isnull;
	int64		id;
	const char *keys[1] = {"alert_id"};
	Jsonb	   *vals[1];

	if (channel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alert step \"%s\" needs \"channel\"", def->name)));
	if (message == NULL || message[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the message of alert step \"%s\" is empty", def->name)));
	if (target == NULL && execlog_jsonb_get(input, "target") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the target of alert step \"%s\" is not a string", def->name)));
	if (target != NULL)
	{
		/* a placeholder may have made it anything: check it again */
		values[0] = CStringGetTextDatum(target);
		execlog_run_saved(&is_email, values, NULL, true);
		if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										&isnull)) || isnull)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the target of alert step \"%s\" is not an e-mail address",
							def->name)));
	}
	/* its own row's id (RETURNING), whatever else this execution alerts */
	id = execlog_add_alert(run->id, run->account_id, input);
	if (id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("channel \"%s\" of alert step \"%s\" does not exist in its account",
						channel, def->name)));
	vals[0] = execlog_jsonb_int(id);
	return execlog_jsonb_object(1, keys, vals);
}

/*
 * parse_interval
 *		Parse an interval as interval_in does (the same syntaxes, ISO 8601
 *		included), but return false for a malformed or out-of-range value
 *		instead of raising an error: the caller words its own error, and
 *		catching interval_in's would need a subtransaction.
 */
static bool
parse_interval(const char *str, Interval *result)
{
	struct pg_itm_in itm;
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	char		workbuf[256];
	int			nf;
	int			dtype = 0;
	int			dterr;

	memset(&itm, 0, sizeof(itm));
	dterr = ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype,
						  MAXDATEFIELDS, &nf);
	if (dterr == 0)
		dterr = DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE, &dtype, &itm);
	/* as interval_in: what is not PostgreSQL's format may be ISO 8601's */
	if (dterr == DTERR_BAD_FORMAT)
		dterr = DecodeISO8601Interval(pstrdup(str), &dtype, &itm);
	if (dterr != 0 || dtype != DTK_DELTA)
		return false;
	return itmin2interval(&itm, result) == 0;
}

/*
 * due_interval
 *		The resolved "due" of a task step as an interval: positive, or an
 *		error naming the step.
 */
static Datum
due_interval(StepDef *def, const char *due)
{
	Interval   *iv = palloc0(sizeof(Interval));
	Interval   *zero = palloc0(sizeof(Interval));
	Interval   *year = palloc0(sizeof(Interval));

	if (!parse_interval(due, iv))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"due\" of task step \"%s\" is not an interval: \"%s\"",
						def->name, due)));
	year->month = MONTHS_PER_YEAR;
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(iv),
										  IntervalPGetDatum(zero))) <= 0 ||
		DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(iv),
										  IntervalPGetDatum(year))) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"due\" of task step \"%s\" must be more than 0 and at most 1 year, not \"%s\"",
						def->name, due)));
	return IntervalPGetDatum(iv);
}

/*
 * escalation_of
 *		Where an overdue task of this step escalates to: the step's
 *		"escalate" channel, else the automation's on_failure alert channel
 *		(or address); NULL: nowhere.
 */
static Jsonb *
escalation_of(ExecRun *run, Jsonb *input)
{
	char	   *channel = execlog_jsonb_get_text(input, "escalate");
	char	   *target = NULL;
	const char *keys[2] = {"channel", "target"};
	Jsonb	   *vals[2];

	if (channel == NULL)
	{
		Jsonb	   *alert = execlog_jsonb_get(run->on_failure, "alert");

		channel = execlog_jsonb_get_text(alert, "channel");
		target = execlog_jsonb_get_text(alert, "target");
	}
	if (channel == NULL)
		return NULL;
	vals[0] = execlog_jsonb_string(channel);
	vals[1] = target ? execlog_jsonb_string(target) : NULL;
	return execlog_jsonb_object(target ? 2 : 1, keys, vals);
}

/*
 * execlog_task_step
 *		Run a task step: create its task.  Returns false when the execution
 *		pauses to wait for it (the row stays "running", output {"task_id"}).
 */
bool
execlog_task_step(ExecRun *run, StepDef *def, StepRow *row, Jsonb *input)
{
	char	   *assignee = execlog_jsonb_get_text(input, "assignee");
	char	   *title = execlog_jsonb_get_text(input, "title");
	char	   *body = execlog_jsonb_get_text(input, "body");
	char	   *due = execlog_jsonb_get_text(input, "due");
	Jsonb	   *escalate = NULL;
	Datum		values[8];
	char		nulls[9] = "        ";
	bool		isnull;
	int64		task_id;

	if (assignee == NULL || assignee[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the assignee of task step \"%s\" is not a role name", def->name)));
	/* a placeholder may have made it anything: nobody would see the task */
	values[0] = CStringGetTextDatum(assignee);
	if (execlog_run_saved(&is_role, values, NULL, true) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("assignee \"%s\" of task step \"%s\" is not a role", assignee, def->name),
				 errhint("A task is shown in execlog.my_tasks to its assignee role and that role's members.")));
	values[0] = Int64GetDatum(run->id);
	values[1] = Int64GetDatum(run->account_id);
	values[2] = Int32GetDatum(def->position);
	values[3] = CStringGetTextDatum(assignee);
	values[4] = CStringGetTextDatum(title && title[0] ? title : def->name);
	values[5] = body ? CStringGetTextDatum(body) : (Datum) 0;
	nulls[5] = body ? ' ' : 'n';
	if (due == NULL && execlog_jsonb_get(input, "due") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"due\" of task step \"%s\" is not a string", def->name)));
	if (due != NULL)
	{
		values[6] = due_interval(def, due);
		escalate = escalation_of(run, input);
	}
	else
		nulls[6] = 'n';
	values[7] = escalate ? JsonbPGetDatum(escalate) : (Datum) 0;
	nulls[7] = escalate ? ' ' : 'n';
	execlog_run_saved(&add_step_task, values, nulls, false);
	task_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										  &isnull));

	if (execlog_task_waits(input))
	{
		const char *keys[1] = {"task_id"};
		Jsonb	   *vals[1] = {execlog_jsonb_int(task_id)};

		/* paused without a wake-up: waiting does not count against time_limit */
		row->output = execlog_jsonb_object(1, keys, vals);
		row->status = "running";
		run->status = "paused";
		run->run_after = 0;
		return false;
	}
	else
	{
		const char *keys[4] = {"task_id", "outcome", "note", "closed_by"};
		Jsonb	   *vals[4] = {execlog_jsonb_int(task_id), NULL, NULL, NULL};

		row->output = execlog_jsonb_object(4, keys, vals);
		return true;
	}
}

/* One escalation alert to create (see execlog_escalate_tasks). */
typedef struct Escalation
{
	int64		task_id;
	int64		execution_id;
	int64		account_id;
	Jsonb	   *spec;
} Escalation;

/*
 * escalate_call
 *		Claim and mark the overdue tasks, then create their alert rows;
 *		*arg (uint64 *) receives how many were escalated.
 */
static void
escalate_call(void *arg)
{
	uint64	   *count = (uint64 *) arg;
	Datum		values[1];
	Escalation *list;
	AlertBatch	alerts;
	int		   *index;
	uint64		n;
	uint64		i;

	values[0] = Int32GetDatum(execlog_batch_size);
	n = execlog_run_saved(&escalate_stmt, values, NULL, false);
	if (n == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return;
	}
	list = palloc(sizeof(Escalation) * n);
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		list[i].task_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		list[i].execution_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		list[i].account_id = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		list[i].spec = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 4, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);

	/*
	 * The alerts with one statement.  escalated_at stays set even when one
	 * alert cannot be made (it is logged): a task escalates at most once,
	 * and one bad row never blocks the others or the worker's claims.
	 */
	execlog_alert_batch_init(&alerts);
	index = palloc(sizeof(int) * n);
	for (i = 0; i < n; i++)
		index[i] = execlog_alert_batch_add(&alerts, list[i].execution_id,
										   list[i].account_id, list[i].spec);
	execlog_alert_batch_flush(&alerts);
	for (i = 0; i < n; i++)
	{
		AlertWant  *w = index[i] >= 0 ? &alerts.wants[index[i]] : NULL;

		if (w != NULL && w->error != NULL)
			ereport(WARNING,
					(errmsg("overdue task %lld was not escalated: %s",
							(long long) list[i].task_id, w->error)));
		else if (w == NULL || w->id == 0)
			ereport(WARNING,
					(errmsg("overdue task %lld was not escalated: its channel is gone",
							(long long) list[i].task_id)));
	}
	*count = n;
}

/*
 * execlog_escalate_tasks
 *		Escalate up to execlog.batch_size overdue tasks; returns how many.
 *		Called by the workers inside a transaction with SPI connected; an
 *		error is logged and leaves the worker's transaction usable.
 */
uint64
execlog_escalate_tasks(void)
{
	uint64		count = 0;
	ErrorData  *edata = execlog_try(escalate_call, &count);

	if (edata != NULL)
	{
		ereport(WARNING,
				(errmsg("execlog could not escalate overdue tasks: %s", edata->message)));
		return 0;
	}
	return count;
}
