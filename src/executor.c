/*-------------------------------------------------------------------------
 *
 * executor.c
 *	  Run a claimed batch of executions, step by step, and record it all.
 *
 * A worker claims a batch in one transaction (status "running", committed,
 * so the claim is visible) and runs it in a second one, here:
 *
 *	1. load the executions, their automations' steps and the step rows
 *	   already recorded for them (a pause being resumed, or the attempt
 *	   before a retry whose successful steps are kept);
 *	2. run each execution in its own subtransaction, each step in a nested
 *	   one, so a failing step rolls back only its own effects;
 *	3. lock the execution row before keeping its effects or creating its
 *	   follow-ups: if it was cancelled meanwhile, everything it did is
 *	   rolled back.  An execution that wrote nothing (an http step being
 *	   prepared or finished) is not locked: the UPDATE of step 4 writes only
 *	   executions still running this attempt here, and drops the others;
 *	4. write all executions with one UPDATE (one set-based transitions
 *	   insert) and all step rows with one INSERT (an upsert for executions
 *	   that already have rows of this attempt).
 *
 * SQL steps therefore commit together with their recorded result: after a
 * crash either both are there or neither is (the execution is then failed
 * as interrupted and retried, see worker.c).
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"
#include "http.h"
#include "plans.h"
#include "policy.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timeout.h"

/* The executor's statements (saved plans, see execlog_run_saved). */

/*
 * A batch is loaded with two statements: its executions, then their
 * automations with their steps (one row per step; what belongs to the
 * automation is read once per automation, not once per execution).
 */
static SavedStmt load_runs = {
	"SELECT e.id, e.automation_id, e.attempt, e.from_start, e.payload, e.context,"
	"       e.resume, e.started_at, e.account_id,"
	"       e.attempt > 1 OR EXISTS (SELECT 1 FROM execlog.execution_steps s"
	"                                 WHERE s.execution_id = e.id AND s.attempt = e.attempt)"
	"  FROM execlog.executions e"
	" WHERE e.id = ANY ($1) AND e.worker = $2 AND e.status = 'running'"
	" ORDER BY e.id",
	2, {INT8ARRAYOID, INT4OID}
};

static SavedStmt load_steps = {
	"SELECT a.id, a.time_limit, a.time_limit::text, a.run_as::text, a.max_retries,"
	"       a.auto_retries, (extract(epoch FROM a.retry_delay) * 1000)::bigint,"
	"       a.on_failure, s.position, s.name, s.kind, s.config,"
	"       s.on_error = 'continue', s.condition"
	"  FROM execlog.automations a LEFT JOIN execlog.steps s ON s.automation_id = a.id"
	" WHERE a.id = ANY ($1)"
	" ORDER BY a.id, s.position",
	1, {INT8ARRAYOID}
};

/* What a batch needs of one automation. */
typedef struct AutoDef
{
	int64		id;
	Datum		time_limit;		/* interval */
	char	   *time_limit_text;
	char	   *run_as;
	int32		max_retries;
	int32		auto_retries;
	int64		retry_delay_ms;
	Jsonb	   *on_failure;
	bool		has_response_step;
	List	   *steps;			/* StepDef * */
} AutoDef;

static SavedStmt load_rows = {
	"SELECT s.execution_id, s.attempt, s.position, s.name, s.status::text, s.output,"
	"       coalesce(s.reused_from, s.attempt), s.started_at, s.finished_at, s.input, s.kind,"
	"       s.error"
	"  FROM execlog.execution_steps s"
	" WHERE s.execution_id = ANY ($1)"
	" ORDER BY s.execution_id, s.attempt, s.position",
	1, {INT8ARRAYOID}
};

static SavedStmt lock_run = {
	"SELECT status = 'running' AND attempt = $2 AND worker = $3"
	"  FROM execlog.executions WHERE id = $1 FOR NO KEY UPDATE",
	3, {INT8OID, INT4OID, INT4OID}
};

/*
 * Step rows: executions without earlier rows of this attempt (see
 * has_history) get theirs inserted, the others upserted.
 */
#define STEP_ROWS_INSERT \
	"INSERT INTO execlog.execution_steps AS s" \
	"  (execution_id, attempt, position, account_id, name, kind, status, started_at," \
	"   finished_at, input, output, error, http_status, reused_from)" \
	" SELECT r.execution_id, r.attempt, r.position, r.account_id, r.name, r.kind," \
	"        r.status::execlog.step_status, r.started_at, r.finished_at, r.input, r.output," \
	"        r.error, r.http_status, r.reused_from" \
	"   FROM unnest($1::bigint[], $2::integer[], $3::integer[], $4::bigint[], $5::text[]," \
	"               $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[]," \
	"               $10::jsonb[], $11::jsonb[], $12::text[], $13::integer[], $14::integer[])" \
	"        AS r(execution_id, attempt, position, account_id, name, kind, status, started_at," \
	"             finished_at, input, output, error, http_status, reused_from)"
#define STEP_ROWS_TYPES \
	{INT8ARRAYOID, INT4ARRAYOID, INT4ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, \
	TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, \
	JSONBARRAYOID, JSONBARRAYOID, TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID}

static SavedStmt insert_rows = {STEP_ROWS_INSERT, 14, STEP_ROWS_TYPES};

static SavedStmt write_rows = {
	STEP_ROWS_INSERT
	" ON CONFLICT (execution_id, attempt, position) DO UPDATE"
	"   SET status = excluded.status, finished_at = excluded.finished_at,"
	"       output = excluded.output, error = excluded.error,"
	"       http_status = excluded.http_status",
	14, STEP_ROWS_TYPES
};

/*
 * Only executions still running this attempt here are written: one that was
 * cancelled meanwhile (and maybe retried) keeps its status, see
 * execlog_run_batch.
 */
static SavedStmt write_runs = {
	"UPDATE execlog.executions e"
	"   SET status = u.status::execlog.status, error = u.error,"
	"       context = coalesce(u.context, e.context),"
	"       response = coalesce(u.response, e.response),"
	"       run_after = u.run_after,"
	"       worker = CASE WHEN u.status = 'running' THEN e.worker END"
	"  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[],"
	"              $6::timestamptz[], $7::integer[])"
	"       AS u(id, status, error, context, response, run_after, attempt)"
	" WHERE e.id = u.id AND e.status = 'running' AND e.attempt = u.attempt"
	"   AND e.worker = $8"
	" RETURNING e.id",
	8, {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID, JSONBARRAYOID,
	TIMESTAMPTZARRAYOID, INT4ARRAYOID, INT4OID}
};

/* Run one of the executor's statements; returns SPI_processed. */
static uint64
exec_stmt(SavedStmt *stmt, Datum *values, const char *nulls)
{
	return execlog_run_saved(stmt, values, nulls, false);
}

/* ----------
 * Array builders for the set-based writes
 * ----------
 */
typedef struct ArrBuf
{
	Datum	   *values;
	bool	   *nulls;
	int			n;
	int			cap;
	Oid			elemtype;
} ArrBuf;

static void
arr_init(ArrBuf *a, Oid elemtype, int cap)
{
	a->cap = Max(cap, 4);
	a->n = 0;
	a->elemtype = elemtype;
	a->values = palloc(sizeof(Datum) * a->cap);
	a->nulls = palloc(sizeof(bool) * a->cap);
}

static void
arr_add(ArrBuf *a, Datum d, bool isnull)
{
	if (a->n == a->cap)
	{
		a->cap *= 2;
		a->values = repalloc(a->values, sizeof(Datum) * a->cap);
		a->nulls = repalloc(a->nulls, sizeof(bool) * a->cap);
	}
	a->values[a->n] = d;
	a->nulls[a->n] = isnull;
	a->n++;
}

static void
arr_text(ArrBuf *a, const char *s)
{
	arr_add(a, s ? CStringGetTextDatum(s) : (Datum) 0, s == NULL);
}

static void
arr_jsonb(ArrBuf *a, Jsonb *j)
{
	arr_add(a, j ? JsonbPGetDatum(j) : (Datum) 0, j == NULL);
}

static void
arr_ts(ArrBuf *a, TimestampTz t)
{
	arr_add(a, TimestampTzGetDatum(t), t == 0);
}

static void
arr_int4(ArrBuf *a, int32 i, bool isnull)
{
	arr_add(a, Int32GetDatum(i), isnull);
}

static Datum
arr_datum(ArrBuf *a)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1];
	int			lbs[1] = {1};

	get_typlenbyvalalign(a->elemtype, &typlen, &typbyval, &typalign);
	dims[0] = a->n;
	return PointerGetDatum(construct_md_array(a->values, a->nulls, 1, dims, lbs,
											  a->elemtype, typlen, typbyval, typalign));
}

/* ----------
 * Loading
 * ----------
 */

static Jsonb *
result_jsonb(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : DatumGetJsonbPCopy(d);
}

static char *
result_cstring(HeapTuple tup, TupleDesc desc, int col)
{
	return SPI_getvalue(tup, desc, col);
}

static StepRow *
new_row(StepDef *def, const char *status)
{
	StepRow    *row = palloc0(sizeof(StepRow));

	row->position = def->position;
	row->name = def->name;
	row->kind = def->kind;
	row->status = status;
	return row;
}

static void
add_output(ExecRun *run, const char *name, Jsonb *output)
{
	StepOutput *o = palloc(sizeof(StepOutput));

	o->name = pstrdup(name);
	o->output = output;
	run->outputs = lappend(run->outputs, o);
}

/*
 * load_batch
 *		Load the claimed executions with their steps; returns ExecRun *s.
 */
/*
 * deadline_of
 *		started_at + time_limit; a time limit past the end of time (a
 *		definition written before intervals were bounded) means none.
 */
pg_noinline static TimestampTz
deadline_of(TimestampTz started_at, Datum time_limit)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile TimestampTz result = DT_NOEND;

	PG_TRY();
	{
		result = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														 TimestampTzGetDatum(started_at),
														 time_limit));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		result = DT_NOEND;
	}
	PG_END_TRY();
	return result;
}

pg_noinline static List *
load_batch(int slot, List *ids)
{
	ArrBuf		idarr;
	ListCell   *lc;
	ListCell   *ac;
	Datum		values[2];
	List	   *runs = NIL;
	List	   *autos = NIL;
	AutoDef    *au = NULL;
	uint64		i;
	ArrBuf		autarr;

	arr_init(&idarr, INT8OID, list_length(ids));
	foreach(lc, ids)
		arr_add(&idarr, Int64GetDatum(*(int64 *) lfirst(lc)), false);
	values[0] = arr_datum(&idarr);
	values[1] = Int32GetDatum(slot);
	exec_stmt(&load_runs, values, NULL);

	arr_init(&autarr, INT8OID, (int) SPI_processed);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		ExecRun    *run = palloc0(sizeof(ExecRun));
		bool		isnull;

		run->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		run->automation_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		run->attempt = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		run->from_start = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		run->payload = result_jsonb(tup, desc, 5);
		run->context = result_jsonb(tup, desc, 6);
		run->resume = result_jsonb(tup, desc, 7);
		run->started_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 8, &isnull));
		run->account_id = DatumGetInt64(SPI_getbinval(tup, desc, 9, &isnull));
		run->has_history = DatumGetBool(SPI_getbinval(tup, desc, 10, &isnull));
		runs = lappend(runs, run);
		arr_add(&autarr, Int64GetDatum(run->automation_id), false);
	}
	SPI_freetuptable(SPI_tuptable);
	if (runs == NIL)
		return NIL;

	/* their automations and step definitions */
	values[0] = arr_datum(&autarr);
	exec_stmt(&load_steps, values, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		automation_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		StepDef    *def;
		Datum		cond;

		if (au == NULL || au->id != automation_id)
		{
			au = palloc0(sizeof(AutoDef));
			au->id = automation_id;
			au->time_limit = datumCopy(SPI_getbinval(tup, desc, 2, &isnull), false, 16);
			au->time_limit_text = result_cstring(tup, desc, 3);
			au->run_as = result_cstring(tup, desc, 4);
			au->max_retries = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
			au->auto_retries = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
			au->retry_delay_ms = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));
			au->on_failure = result_jsonb(tup, desc, 8);
			autos = lappend(autos, au);
		}
		(void) SPI_getbinval(tup, desc, 9, &isnull);
		if (isnull)
			continue;			/* an automation without steps */
		def = palloc0(sizeof(StepDef));
		def->position = DatumGetInt32(SPI_getbinval(tup, desc, 9, &isnull));
		def->name = result_cstring(tup, desc, 10);
		def->kind = result_cstring(tup, desc, 11);
		def->config = result_jsonb(tup, desc, 12);
		def->continue_on_error = DatumGetBool(SPI_getbinval(tup, desc, 13, &isnull));
		cond = SPI_getbinval(tup, desc, 14, &isnull);
		def->condition = isnull ? (Datum) 0 :
			PointerGetDatum(PG_DETOAST_DATUM_COPY(cond));
		if (strcmp(def->kind, "response") == 0)
			au->has_response_step = true;
		au->steps = lappend(au->steps, def);
	}
	SPI_freetuptable(SPI_tuptable);

	foreach(lc, runs)
	{
		ExecRun    *run = (ExecRun *) lfirst(lc);

		foreach(ac, autos)
		{
			AutoDef    *a = (AutoDef *) lfirst(ac);

			if (a->id != run->automation_id)
				continue;
			run->deadline = deadline_of(run->started_at, a->time_limit);
			run->time_limit_text = a->time_limit_text;
			run->run_as = a->run_as;
			run->max_retries = a->max_retries;
			run->auto_retries = a->auto_retries;
			run->retry_delay_ms = a->retry_delay_ms;
			run->on_failure = a->on_failure;
			run->has_response_step = a->has_response_step;
			run->steps = a->steps;
			break;
		}
	}
	return runs;
}

/*
 * take_in_flight
 *		Executions whose http step finished with its row still in memory (see
 *		http.h) continue at that step: its row is finished from the result.
 */
static void
take_in_flight(List *runs, int *first_step)
{
	ListCell   *lc;
	int			r = 0;

	foreach(lc, runs)
	{
		ExecRun    *run = (ExecRun *) lfirst(lc);
		HttpStepResult *res;
		HttpStep   *step;
		StepRow    *row;
		int			i;

		r++;
		if (run->http_row != NULL ||
			(res = execlog_http_steps_result_of(run->id, run->attempt)) == NULL)
			continue;
		step = res->step;
		row = palloc0(sizeof(StepRow));
		row->position = step->position;
		row->name = step->name;
		row->kind = "http";
		row->status = "running";
		row->started_at = step->started_at;
		row->input = step->input;
		run->rows = lappend(run->rows, row);
		for (i = 0; i < list_length(run->steps); i++)
			if (((StepDef *) list_nth(run->steps, i))->position >= step->position)
				break;
		if (i < list_length(run->steps) &&
			((StepDef *) list_nth(run->steps, i))->position == step->position)
		{
			run->http_row = row;
			run->http_index = i;
			run->http_result = res;
			first_step[r - 1] = i + 1;
		}
		else
		{
			/* its step was deleted meanwhile: record the answer, go on */
			row->status = "failed";
			row->finished_at = res->res->finished_at;
			row->http_status = (int32) res->res->status;
			row->error = "the step was deleted while its request was in flight";
			run->partial = true;
			if (run->error == NULL)
				run->error = psprintf("step \"%s\" failed: %s", row->name, row->error);
			first_step[r - 1] = i;
		}
	}
}

/*
 * extend_deadline
 *		Add the time a task step waited (from started to finished) to the
 *		attempt's deadline: waiting for a person does not count against
 *		time_limit.
 */
static void
extend_deadline(ExecRun *run, TimestampTz started, TimestampTz finished)
{
	TimestampTz waited = finished - started;

	if (waited <= 0 || run->deadline == DT_NOEND)
		return;
	if (run->deadline > DT_NOEND - waited)
		run->deadline = DT_NOEND;
	else
		run->deadline += waited;
}

/*
 * finish_task_row
 *		Finish the row of a task step resumed from its task: complete_task
 *		wrote its output (with the outcome), dismiss_task its error.
 */
static void
finish_task_row(ExecRun *run, StepDef *def, StepRow *row, Jsonb *output, char *error)
{
	extend_deadline(run, row->started_at, row->finished_at);
	row->output = output;
	if (error == NULL && execlog_jsonb_get(output, "outcome") != NULL)
	{
		add_output(run, def->name, output);
		return;
	}
	if (error == NULL)
		error = "the execution was resumed while the task of this step was still open";
	row->status = "failed";
	row->error = error;
	if (def->continue_on_error)
	{
		run->partial = true;
		if (run->error == NULL)
			run->error = psprintf("step \"%s\" failed: %s", def->name, error);
	}
	else
		run->stop_error = psprintf("step \"%s\" failed: %s", def->name, error);
}

/*
 * load_progress
 *		Decide where each execution starts: after a pause being resumed, at
 *		the first step of the previous attempt that did not succeed (keeping
 *		the outputs before it), or at the first step.
 */
static void
load_progress(List *runs, int *first_step)
{
	ArrBuf		idarr;
	ListCell   *lc;
	Datum		values[1];
	uint64		i;
	int			r;

	/* only retries and resumed executions have rows to look at */
	arr_init(&idarr, INT8OID, list_length(runs));
	foreach(lc, runs)
	{
		ExecRun    *run = (ExecRun *) lfirst(lc);

		if (run->has_history)
			arr_add(&idarr, Int64GetDatum(run->id), false);
	}
	if (idarr.n == 0)
	{
		/* first_step[] is all zeroes: start at the top */
		take_in_flight(runs, first_step);
		return;
	}
	values[0] = arr_datum(&idarr);
	exec_stmt(&load_rows, values, NULL);

	r = 0;
	foreach(lc, runs)
	{
		ExecRun    *run = (ExecRun *) lfirst(lc);
		int			next = 0;	/* index into run->steps */
		bool		current_seen = false;
		bool		reusing = !run->from_start && run->attempt > 1;
		int			prev_index = 0;
		int32		prev_attempt = 0;

		/*
		 * The attempt to resume from is the latest earlier one with rows: an
		 * attempt interrupted before its first batch committed left none, and
		 * the one before it has the steps that succeeded (exact recovery
		 * through any number of crashes).
		 */
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			bool		isnull;
			int32		attempt;

			if (DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull)) != run->id)
				continue;
			attempt = DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
			if (attempt < run->attempt && attempt > prev_attempt)
				prev_attempt = attempt;
		}

		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		eid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			int32		attempt;
			int32		position;
			char	   *name;
			char	   *status;

			/* every run looks at every row: skip the others' cheaply */
			if (eid != run->id)
				continue;
			attempt = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
			if (attempt < prev_attempt)
				continue;
			position = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
			name = result_cstring(tup, desc, 4);
			status = result_cstring(tup, desc, 5);

			if (attempt == run->attempt)
			{
				/* this attempt ran before: it was paused and now resumes */
				StepDef    *def;

				current_seen = true;
				/* the time an earlier task step of this attempt waited */
				if ((strcmp(status, "success") == 0 || strcmp(status, "failed") == 0) &&
					DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull)) == attempt)
				{
					char	   *kind = result_cstring(tup, desc, 11);
					Datum		started = SPI_getbinval(tup, desc, 8, &isnull);
					Datum		finished;
					bool		fnull;

					finished = SPI_getbinval(tup, desc, 9, &fnull);
					if (strcmp(kind, "task") == 0 && !isnull && !fnull &&
						execlog_task_waits(result_jsonb(tup, desc, 10)))
						extend_deadline(run, DatumGetTimestampTz(started),
										DatumGetTimestampTz(finished));
				}
				while (next < list_length(run->steps) &&
					   ((StepDef *) list_nth(run->steps, next))->position <= position)
					next++;
				def = next > 0 ? (StepDef *) list_nth(run->steps, next - 1) : NULL;
				if (strcmp(status, "success") == 0)
					add_output(run, name, result_jsonb(tup, desc, 6));
				else if (strcmp(status, "failed") == 0)
				{
					/* a step with on_error = continue failed before the pause */
					run->partial = true;
					if (run->error == NULL)
						run->error = psprintf("step \"%s\" failed: %s", name,
											  SPI_getvalue(tup, desc, 12));
				}
				else if (strcmp(status, "running") == 0 && def != NULL &&
						 def->position == position && strcmp(def->kind, "http") == 0)
				{
					/* an http step whose request finished: finish_http_step */
					StepRow    *row = new_row(def, "running");

					row->started_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 8, &isnull));
					row->input = result_jsonb(tup, desc, 10);
					run->http_row = row;
					run->http_index = next - 1;
					run->http_result = execlog_http_steps_result(run->id, attempt, position);
					run->rows = lappend(run->rows, row);
				}
				else if (strcmp(status, "running") == 0 && def != NULL &&
						 def->position == position && strcmp(def->kind, "task") == 0)
				{
					/* a task step whose task was closed (or that was resumed) */
					StepRow    *row = new_row(def, "success");

					row->started_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 8, &isnull));
					row->finished_at = GetCurrentTimestamp();
					row->input = result_jsonb(tup, desc, 10);
					finish_task_row(run, def, row, result_jsonb(tup, desc, 6),
									SPI_getvalue(tup, desc, 12));
					run->rows = lappend(run->rows, row);
				}
				else if (strcmp(status, "running") == 0 && def != NULL &&
						 def->position == position)
				{
					/* the pause being resumed: its output is the resume payload */
					StepRow    *row = new_row(def, "success");

					row->started_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 8, &isnull));
					row->finished_at = GetCurrentTimestamp();
					row->input = result_jsonb(tup, desc, 10);
					if (row->finished_at >= run->deadline)
					{
						/* woken because its time limit passed while paused */
						row->status = "failed";
						row->error = psprintf("time limit of %s exceeded",
											  run->time_limit_text);
						run->expired = true;
					}
					else
					{
						row->output = run->resume;
						add_output(run, name, run->resume);
					}
					run->rows = lappend(run->rows, row);
				}
			}
			else if (reusing && !current_seen)
			{
				/* previous attempt: keep the successful prefix */
				StepDef    *def = prev_index < list_length(run->steps) ?
				(StepDef *) list_nth(run->steps, prev_index) : NULL;

				if (def == NULL || def->position != position ||
					strcmp(def->name, name) != 0 || strcmp(status, "success") != 0)
				{
					reusing = false;
					continue;
				}
				{
					StepRow    *row = new_row(def, "success");

					row->started_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 8, &isnull));
					row->finished_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 9, &isnull));
					row->input = result_jsonb(tup, desc, 10);
					row->output = result_jsonb(tup, desc, 6);
					row->reused_from = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
					run->rows = lappend(run->rows, row);
					add_output(run, name, row->output);
				}
				prev_index++;
			}
		}
		if (!current_seen)
			next = (!run->from_start && run->attempt > 1) ? prev_index : 0;
		first_step[r++] = next;
	}
	SPI_freetuptable(SPI_tuptable);
	take_in_flight(runs, first_step);
}

/* ----------
 * Running
 * ----------
 */

static TimestampTz
add_interval(TimestampTz t, const char *interval)
{
	Datum		iv = DirectFunctionCall3(interval_in, CStringGetDatum(interval),
										 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));

	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												   TimestampTzGetDatum(t), iv));
}

/* Mark steps from index 'from' on as skipped. */
static void
skip_rest(ExecRun *run, int from)
{
	int			i;

	for (i = from; i < list_length(run->steps); i++)
		run->rows = lappend(run->rows,
							new_row((StepDef *) list_nth(run->steps, i), "skipped"));
}

static void
reject(ExecRun *run)
{
	run->status = "rejected";
	run->error = psprintf("time limit of %s exceeded", run->time_limit_text);
}

/*
 * run_step
 *		Run one step (inside its subtransaction).  Returns false when the
 *		execution stops here without an error (a pause).
 */
static bool
run_step(ExecRun *run, StepDef *def, StepRow *row)
{
	Jsonb	   *input;

	if (strcmp(def->kind, "sql") == 0)
		execlog_refuse_query_placeholders(def);
	input = execlog_resolve_config(def->config, run);
	row->input = input;
	if (strcmp(def->kind, "sql") == 0)
		row->output = execlog_run_sql_step(run, def, input);
	else if (strcmp(def->kind, "response") == 0)
	{
		Jsonb	   *body = execlog_jsonb_get(input, "body");

		/* the step's output and executions.response: both stored capped */
		row->output = execlog_cap_payload(body ? body : execlog_jsonb_from_cstring("null"));
		run->response = row->output;
	}
	else if (strcmp(def->kind, "feedback") == 0)
		row->output = execlog_feedback_step(run, input);
	else if (strcmp(def->kind, "alert") == 0)
		row->output = execlog_alert_step(run, def, input);
	else if (strcmp(def->kind, "task") == 0)
		return execlog_task_step(run, def, row, input);
	else if (strcmp(def->kind, "http") == 0)
	{
		/*
		 * Sent once the batch commits; the execution waits, still running.
		 * The row stays in memory with the request (see http.h).
		 */
		HttpStep   *step;

		/* stored without secrets even when the step is refused below */
		row->input = execlog_http_stored_input(input);
		row->input = execlog_http_prepare(run, def, input, &step);
		row->status = "running";
		row->in_flight = true;
		step->account_id = run->account_id;
		step->name = def->name;
		/* stored as sent; row->input stays whole for checking the answer */
		step->input = execlog_cap_payload(row->input);
		step->started_at = row->started_at;
		run->http_request = step;
		run->status = "running";
		return false;
	}
	else if (strcmp(def->kind, "pause") == 0)
	{
		char	   *duration = execlog_jsonb_get_text(input, "for");
		TimestampTz until = run->deadline;

		if (duration != NULL)
		{
			TimestampTz end = add_interval(GetCurrentTimestamp(), duration);

			if (end < until)
				until = end;
		}
		row->status = "running";
		run->status = "paused";
		run->run_after = until;
		return false;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("step kind \"%s\" cannot run in this version of execlog", def->kind)));
	return true;
}

/* One step to run in its subtransaction (see try_step). */
typedef struct StepCall
{
	ExecRun    *run;
	StepDef    *def;
	StepRow    *row;
	bool		go_on;
} StepCall;

static void
step_call(void *arg)
{
	StepCall   *c = (StepCall *) arg;

	if (c->def->condition != (Datum) 0 &&
		!execlog_condition_holds(c->def->condition, execlog_document(c->run)))
	{
		c->row->status = "skipped";
		c->row->started_at = 0;
	}
	else
	{
		/* a committed cancel of this execution interrupts the step (worker.c) */
		execlog_step_interruptible(true);
		c->go_on = run_step(c->run, c->def, c->row);
		execlog_step_interruptible(false);
	}
}

/*
 * try_step
 *		Run one step in its own subtransaction.  Returns the error, or NULL;
 *		*go_on is cleared when the execution stops here (a pause).
 */
static ErrorData *
try_step(ExecRun *run, StepDef *def, StepRow *row, bool *go_on)
{
	StepCall	c = {run, def, row, true};
	ErrorData  *edata = execlog_try(step_call, &c);

	if (edata != NULL)
	{
		disable_timeout(STATEMENT_TIMEOUT, false);	/* a failed sql step's */
		execlog_step_interruptible(false);
	}
	else
		*go_on = c.go_on;
	return edata;
}

/*
 * run_execution
 *		Run the steps of one execution from index 'first', recording rows and
 *		the resulting status in run.
 */
static void
run_execution(ExecRun *run, int first)
{
	bool		partial = run->partial;
	int			i;

	if (run->expired)
	{
		reject(run);
		skip_rest(run, first);
		return;
	}
	if (run->stop_error != NULL)
	{
		/* the task a resumed step waited for was dismissed */
		run->status = "failed";
		run->error = run->stop_error;
		skip_rest(run, first);
		return;
	}

	for (i = first; i < list_length(run->steps); i++)
	{
		StepDef    *def = (StepDef *) list_nth(run->steps, i);
		StepRow    *row;
		ErrorData  *edata;
		bool		go_on = true;

		CHECK_FOR_INTERRUPTS();

		/*
		 * A cancel committed since the last step (or while the worker ran
		 * its own statements) stops this execution here, and only it.
		 */
		if (execlog_cancelled_at_boundary(run->id))
		{
			run->cancelled = true;
			return;
		}
		if (GetCurrentTimestamp() >= run->deadline)
		{
			reject(run);
			skip_rest(run, i);
			return;
		}

		row = new_row(def, "success");
		row->started_at = GetCurrentTimestamp();
		pgstat_report_activity(STATE_RUNNING,
							   psprintf("execlog: execution %lld, step \"%s\"",
										(long long) run->id, def->name));

		edata = try_step(run, def, row, &go_on);
		if (edata != NULL)
		{
			row->status = "failed";
			row->output = NULL;
			row->error = edata->message;
			if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			{
				if (execlog_cancel_requested(run->id))
				{
					run->cancelled = true;
					return;
				}
				if (GetCurrentTimestamp() >= run->deadline)
				{
					row->finished_at = GetCurrentTimestamp();
					reject(run);
					row->error = run->error;
					run->rows = lappend(run->rows, row);
					skip_rest(run, i + 1);
					return;
				}
			}
		}

		if (strcmp(row->status, "running") != 0 && row->started_at != 0)
			row->finished_at = GetCurrentTimestamp();
		run->rows = lappend(run->rows, row);

		if (strcmp(row->status, "success") == 0)
			add_output(run, def->name, row->output);
		else if (strcmp(row->status, "failed") == 0)
		{
			if (!def->continue_on_error)
			{
				run->status = "failed";
				run->error = psprintf("step \"%s\" failed: %s", def->name, row->error);
				skip_rest(run, i + 1);
				return;
			}
			partial = true;
			if (run->error == NULL)
				run->error = psprintf("step \"%s\" failed: %s", def->name, row->error);
		}
		if (!go_on)
			return;				/* paused */
	}
	run->status = partial ? "partially_executed" : "success";
	if (!partial)
		run->error = NULL;
}

/*
 * finish_http_step
 *		Record the result of the http step the execution waited for (its
 *		request ran after an earlier batch, see steps_http_flight.c), in its own
 *		subtransaction.  Returns whether the execution goes on.
 */
static void
http_finish_call(void *arg)
{
	ExecRun    *run = (ExecRun *) arg;

	execlog_http_finish(run, (StepDef *) list_nth(run->steps, run->http_index),
						run->http_row, run->http_result ? run->http_result->res : NULL);
}

static bool
finish_http_step(ExecRun *run)
{
	StepRow    *row = run->http_row;
	StepDef    *def;
	ErrorData  *edata;

	if (row == NULL)
		return true;
	def = (StepDef *) list_nth(run->steps, run->http_index);

	edata = execlog_try(http_finish_call, run);
	if (edata != NULL)
	{
		row->status = "failed";
		row->output = NULL;
		row->error = edata->message;
		row->finished_at = GetCurrentTimestamp();
	}

	if (run->expired)
		return true;			/* run_execution rejects it */
	if (strcmp(row->status, "success") == 0)
	{
		add_output(run, def->name, row->output);
		return true;
	}
	if (run->error == NULL || !def->continue_on_error)
		run->error = psprintf("step \"%s\" failed: %s", def->name, row->error);
	if (!def->continue_on_error)
	{
		run->status = "failed";
		skip_rest(run, run->http_index + 1);
		return false;
	}
	run->partial = true;
	return true;
}

/*
 * still_running
 *		Lock the execution row; if it was cancelled while running, undo all
 *		it did.  Called inside the execution's subtransaction.
 */
static bool
still_running(int slot, ExecRun *run)
{
	Datum		values[3];
	bool		isnull;
	bool		result;

	values[0] = Int64GetDatum(run->id);
	values[1] = Int32GetDatum(run->attempt);
	values[2] = Int32GetDatum(slot);
	if (exec_stmt(&lock_run, values, NULL) == 0)
		return false;
	result = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										&isnull));
	SPI_freetuptable(SPI_tuptable);
	return result;
}

/* Whether an execution's status changes: its executions row is written. */
static bool
run_changes(ExecRun *run)
{
	/* waiting for an HTTP answer with nothing else changed: keep the row */
	return strcmp(run->status, "running") != 0 || run->context_changed ||
		run->response != NULL;
}

/*
 * write_results
 *		Update every execution whose status changed and write every step
 *		row, set-based; then hand the requests prepared over to the HTTP
 *		client.  An execution found cancelled by the update is dropped.
 */
static void
write_results(int slot, List *runs)
{
	static const Oid rowtypes[14] = {INT8OID, INT4OID, INT4OID, INT8OID, TEXTOID,
		TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBOID, JSONBOID, TEXTOID,
	INT4OID, INT4OID};
	static const Oid runtypes[7] = {INT8OID, TEXTOID, TEXTOID, JSONBOID, JSONBOID,
	TIMESTAMPTZOID, INT4OID};
	ArrBuf		fresh[14];		/* rows of executions without history: inserted */
	ArrBuf		known[14];		/* the others: upserted */
	ArrBuf		u[7];
	Datum		values[14];
	ListCell   *lc;
	ListCell   *rc;
	int			k;

	for (k = 0; k < 7; k++)
		arr_init(&u[k], runtypes[k], 64);
	foreach(lc, runs)
	{
		ExecRun    *run = (ExecRun *) lfirst(lc);

		if (run->cancelled || !run_changes(run))
			continue;
		arr_add(&u[0], Int64GetDatum(run->id), false);
		arr_text(&u[1], run->status);
		arr_text(&u[2], run->error);
		arr_jsonb(&u[3], run->context_changed ? run->context : NULL);
		arr_jsonb(&u[4], run->response);
		arr_ts(&u[5], run->run_after);
		arr_int4(&u[6], run->attempt, false);
	}
	if (u[0].n > 0)
	{
		uint64		written;
		uint64		i;

		for (k = 0; k < 7; k++)
			values[k] = arr_datum(&u[k]);
		values[7] = Int32GetDatum(slot);
		written = exec_stmt(&write_runs, values, NULL);
		if (written < (uint64) u[0].n)
		{
			/* some were cancelled meanwhile: they were not locked, drop them */
			foreach(lc, runs)
			{
				ExecRun    *run = (ExecRun *) lfirst(lc);
				bool		found = false;

				if (run->cancelled || !run_changes(run))
					continue;
				for (i = 0; i < written && !found; i++)
				{
					bool		isnull;

					found = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
														SPI_tuptable->tupdesc, 1,
														&isnull)) == run->id;
				}
				if (!found)
				{
					run->cancelled = true;
					if (run->http_result != NULL)
						execlog_http_steps_unconsume(run->http_result);
				}
			}
		}
		SPI_freetuptable(SPI_tuptable);
	}

	for (k = 0; k < 14; k++)
	{
		arr_init(&fresh[k], rowtypes[k], 64);
		arr_init(&known[k], rowtypes[k], 64);
	}
	foreach(lc, runs)
	{
		ExecRun    *run = (ExecRun *) lfirst(lc);
		ArrBuf	   *a = run->has_history ? known : fresh;

		if (run->cancelled)
			continue;
		foreach(rc, run->rows)
		{
			StepRow    *row = (StepRow *) lfirst(rc);

			if (row->in_flight)
				continue;
			arr_add(&a[0], Int64GetDatum(run->id), false);
			arr_int4(&a[1], run->attempt, false);
			arr_int4(&a[2], row->position, false);
			arr_add(&a[3], Int64GetDatum(run->account_id), false);
			arr_text(&a[4], row->name);
			arr_text(&a[5], row->kind);
			arr_text(&a[6], row->status);
			arr_ts(&a[7], row->started_at);
			arr_ts(&a[8], row->finished_at);
			arr_jsonb(&a[9], execlog_cap_payload(row->input));
			arr_jsonb(&a[10], row->output);
			arr_text(&a[11], row->error);
			arr_int4(&a[12], row->http_status, row->http_status == 0);
			arr_int4(&a[13], row->reused_from, row->reused_from == 0);
		}
	}
	if (fresh[0].n > 0)
	{
		for (k = 0; k < 14; k++)
			values[k] = arr_datum(&fresh[k]);
		exec_stmt(&insert_rows, values, NULL);
	}
	if (known[0].n > 0)
	{
		for (k = 0; k < 14; k++)
			values[k] = arr_datum(&known[k]);
		exec_stmt(&write_rows, values, NULL);
	}
}

/*
 * fail_run
 *		Fail an execution with an error raised while running, finishing or
 *		recording it (not by one of its steps): what it did in this batch is
 *		gone (rolled back), the error is stored on it, the batch goes on.
 */
static void
fail_run(ExecRun *run, ErrorData *edata)
{
	ereport(LOG,
			(errmsg("execlog execution %lld failed by an error outside its steps: %s",
					(long long) run->id, edata->message)));
	run->status = "failed";
	run->error = psprintf("execution failed: %s", edata->message);
	run->rows = NIL;
	run->response = NULL;
	run->run_after = 0;
	run->http_request = NULL;
	if (run->http_result != NULL)
	{
		execlog_http_steps_unconsume(run->http_result);
		run->http_result = NULL;
	}
}

/* execlog_policy_after_failure in a subtransaction (see execlog_try) */
static void
follow_ups_call(void *arg)
{
	execlog_policy_after_failure((ExecRun *) arg);
}

/* write_results in a subtransaction (see execlog_try) */
typedef struct WriteCall
{
	int			slot;
	List	   *runs;
} WriteCall;

static void
write_call(void *arg)
{
	WriteCall  *w = (WriteCall *) arg;

	write_results(w->slot, w->runs);
}

/*
 * write_isolated
 *		Write the batch's results set-based; when that fails, write each
 *		execution alone, and fail (with the error) one whose own write
 *		fails, so that one bad row does not lose the others.
 */
static void
write_isolated(int slot, List *runs)
{
	WriteCall	w = {slot, runs};
	ErrorData  *edata;
	ListCell   *lc;

	edata = execlog_try(write_call, &w);
	if (edata == NULL)
		return;
	ereport(LOG,
			(errmsg("execlog worker %d writes its executions one by one: %s",
					slot, edata->message)));
	foreach(lc, runs)
	{
		ExecRun    *run = (ExecRun *) lfirst(lc);

		w.runs = list_make1(run);
		edata = execlog_try(write_call, &w);
		if (edata == NULL)
			continue;
		fail_run(run, edata);
		edata = execlog_try(write_call, &w);
		if (edata != NULL)
			ReThrowError(edata);	/* the worker's recovery block fails it */
	}
}

/*
 * execlog_run_batch
 *		Run the executions claimed by this worker (ids: List of int64 *).
 *		Called inside a transaction with SPI connected.  An error raised by
 *		one execution (outside its steps, which have their own handling)
 *		fails that execution only.
 */
void
execlog_run_batch(int slot, List *ids)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	List	   *runs;
	ListCell   *lc;
	int		   *first;
	volatile int r = 0;

	/* cancels from now on may be for executions of this batch */
	execlog_batch_cancels_begin();
	runs = load_batch(slot, ids);
	if (runs == NIL)
		return;
	first = palloc0(sizeof(int) * list_length(runs));
	load_progress(runs, first);

	foreach(lc, runs)
	{
		ExecRun    *run = (ExecRun *) lfirst(lc);
		int			level;
		ErrorData  *volatile edata = NULL;

		execlog_set_current_execution(slot, run->id);

		/* the whole execution in a subtransaction, undone if cancelled */
		BeginInternalSubTransaction(NULL);
		level = GetCurrentTransactionNestLevel();
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			if (finish_http_step(run))
				run_execution(run, first[r]);

			/*
			 * Lock the execution before keeping what it wrote, or before its
			 * follow-ups; one that wrote nothing is checked by write_results.
			 */
			if (!run->cancelled &&
				(TransactionIdIsValid(GetCurrentTransactionIdIfAny()) ||
				 execlog_status_of_name(run->status) == ES_FAILED ||
				 execlog_status_of_name(run->status) == ES_REJECTED) &&
				!still_running(slot, run))
				run->cancelled = true;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			disable_timeout(STATEMENT_TIMEOUT, false);
			execlog_step_interruptible(false);
			while (GetCurrentTransactionNestLevel() > level)
				RollbackAndReleaseCurrentSubTransaction();
		}
		PG_END_TRY();
		r++;

		if (edata != NULL)
		{
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			fail_run(run, edata);
		}
		else if (run->cancelled)
		{
			RollbackAndReleaseCurrentSubTransaction();
			if (run->http_result != NULL)
				execlog_http_steps_unconsume(run->http_result);
		}
		else
			ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;

		execlog_set_current_execution(slot, 0);
		if (!run->cancelled)
		{
			/* a follow-up that cannot be created must not lose the failure */
			edata = execlog_try(follow_ups_call, run);
			if (edata != NULL)
				run->error = psprintf("%s; its on_failure follow-up failed: %s",
									  run->error ? run->error : "failed",
									  edata->message);
		}
	}
	write_isolated(slot, runs);
	foreach(lc, runs)
	{
		ExecRun    *run = (ExecRun *) lfirst(lc);

		if (!run->cancelled && run->http_request != NULL)
			execlog_http_steps_defer(run->http_request);
	}
	pgstat_report_activity(STATE_IDLE, NULL);
}
