/*-------------------------------------------------------------------------
 *
 * steps_http_flight.c
 *	  http steps in flight: the step runner's side of the HTTP transport.
 *
 * The batch transaction prepares the requests of http steps (steps_http.c)
 * and hands them over with execlog_http_steps_defer(); once it has
 * committed, they are sent through the transport (http_transport.c), whose
 * callback puts each finished one on the "done" list.  Their executions
 * are continued by the worker's next batch (execlog_http_steps_finished_ids
 * gives their ids), which asks for each result with
 * execlog_http_steps_result().  This file decides what the transport's
 * results mean for step rows:
 *
 *	- a request keeps its step's row (see http.h): the row of one still in
 *	  flight after EXECLOG_HTTP_RECORD_AFTER_MS is written as "running"
 *	  (execlog_http_steps_record_slow), and an aborted request's row is
 *	  written as failed, with what was sent (fail_stale);
 *	- cancels come from the worker's slot: a committed execlog.cancel() of
 *	  an execution that waits for an answer bumps the slot's http_cancels
 *	  (execlog.c); when it moved, execlog_http_steps_check_cancels looks up
 *	  which executions of the requests in flight stopped running here, and
 *	  releases their requests (the transport aborts them);
 *	- a request never outlives its execution's time limit: the limit is the
 *	  spec's deadline, and the result says when it stopped the request;
 *	- with enough requests in flight (execlog_http_steps_saturated), the
 *	  worker continues what finished before claiming more executions.
 *
 *-------------------------------------------------------------------------
 */
#include "http.h"
#include "plans.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* Longest wait for answers while saturated (libcurl's timer wakes us too). */
#define MAX_WAIT_IN_FLIGHT_MS 1000

/*
 * Results are continued in batches: a finished request waits up to this
 * long for others to finish, while the worker keeps driving the rest.
 */
#define GATHER_MS 5

/*
 * An http step's request, from the batch that prepared it to the one that
 * records its result.
 */
typedef struct StepReq
{
	dlist_node	node;			/* in deferred, flying or done */
	MemoryContext cxt;			/* everything of this request */
	HttpStep	step;			/* its row (the spec is the transport's) */
	HttpRequest *req;			/* in the transport */
	HttpStepResult result;		/* once done */
	bool		in_batch;		/* handed to a batch by finished_ids */
	bool		recorded;		/* its step row was written as "running" */
} StepReq;

/*
 * A step row to fail: its request was aborted or its result not used.  The
 * row may not have been written yet (see http.h): keep what it needs.
 */
typedef struct StaleStep
{
	int64		execution_id;
	int32		attempt;
	int32		position;
	int64		account_id;
	char	   *name;			/* in steps_cxt */
	Jsonb	   *input;			/* in steps_cxt */
	TimestampTz started_at;
	bool		answered;		/* the answer came, but too late */
} StaleStep;

static MemoryContext steps_cxt = NULL;
static dlist_head deferred = DLIST_STATIC_INIT(deferred);	/* sent after commit */
static dlist_head flying = DLIST_STATIC_INIT(flying);	/* in the transport */
static dlist_head done = DLIST_STATIC_INIT(done);	/* finished */
static int	n_flying = 0;
static int	n_done = 0;
static StaleStep *stale = NULL;
static int	n_stale = 0;
static int	cap_stale = 0;
static uint32 cancels_seen = 0;
static SPIPlanPtr gone_plan = NULL;
static SPIPlanPtr stale_plan = NULL;
static SPIPlanPtr slow_plan = NULL;

static void fail_stale(void);
static long record_due_ms(TimestampTz now);

/* Free a request and its step. */
static void
step_free(StepReq *sr)
{
	if (sr->req != NULL)
		execlog_http_release(sr->req);
	MemoryContextDelete(sr->cxt);
}

/* The transport's callback: the request finished, for the next batch. */
static void
step_done(HttpRequest *req, void *arg)
{
	StepReq    *sr = (StepReq *) arg;

	dlist_delete(&sr->node);
	n_flying--;
	sr->result.step = &sr->step;
	sr->result.res = execlog_http_result(req);
	sr->result.consumed = false;
	dlist_push_tail(&done, &sr->node);
	n_done++;
}

/*
 * execlog_http_steps_defer
 *		Keep a copy of a request prepared by the batch; it is sent once the
 *		batch has committed (execlog_http_steps_batch_done).
 */
void
execlog_http_steps_defer(HttpStep *step)
{
	MemoryContext cxt;
	MemoryContext old;
	StepReq    *sr;

	if (steps_cxt == NULL)
		steps_cxt = AllocSetContextCreate(TopMemoryContext, "execlog http steps",
										  ALLOCSET_DEFAULT_SIZES);
	cxt = AllocSetContextCreate(steps_cxt, "execlog http step", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	sr = palloc0(sizeof(StepReq));
	sr->cxt = cxt;
	sr->step = *step;
	memset(&sr->step.spec, 0, sizeof(HttpSpec));
	sr->step.name = pstrdup(step->name ? step->name : "");
	sr->step.input = step->input ?
		(Jsonb *) PG_DETOAST_DATUM_COPY(JsonbPGetDatum(step->input)) : NULL;
	MemoryContextSwitchTo(old);
	sr->req = execlog_http_new(&step->spec, step_done, sr);
	dlist_push_tail(&deferred, &sr->node);
}

/* Remember the step row of a request to fail (sr is freed next). */
static void
stale_add(StepReq *sr, bool answered)
{
	StaleStep  *st;
	HttpStep   *step = &sr->step;

	if (n_stale == cap_stale)
	{
		cap_stale = Max(cap_stale * 2, 16);
		stale = stale ? repalloc(stale, sizeof(StaleStep) * cap_stale) :
			MemoryContextAlloc(steps_cxt, sizeof(StaleStep) * cap_stale);
	}
	st = &stale[n_stale++];
	st->execution_id = step->execution_id;
	st->attempt = step->attempt;
	st->position = step->position;
	st->account_id = step->account_id;
	st->name = MemoryContextStrdup(steps_cxt, step->name);
	st->input = step->input ? (Jsonb *) MemoryContextAlloc(steps_cxt, VARSIZE(step->input)) : NULL;
	if (st->input)
		memcpy(st->input, step->input, VARSIZE(step->input));
	st->started_at = step->started_at;
	st->answered = answered;
}

/*
 * execlog_http_steps_batch_done
 *		After the batch committed: drop the results it recorded, remember the
 *		ones it could not use (their executions stopped running meanwhile),
 *		and send the requests it prepared.
 */
void
execlog_http_steps_batch_done(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &done)
	{
		StepReq    *sr = dlist_container(StepReq, node, iter.cur);

		if (!sr->in_batch)
			continue;
		if (!sr->result.consumed)
			stale_add(sr, true);
		dlist_delete(&sr->node);
		n_done--;
		step_free(sr);
	}
	dlist_foreach_modify(iter, &deferred)
	{
		StepReq    *sr = dlist_container(StepReq, node, iter.cur);

		dlist_delete(&sr->node);
		dlist_push_tail(&flying, &sr->node);
		n_flying++;
		execlog_http_start(sr->req);
	}
	execlog_http_drive();
}

/*
 * execlog_http_steps_batch_abort
 *		The batch failed as a whole (its transaction aborted): the requests
 *		it prepared are dropped unsent, and the results it took are given
 *		back, to be continued by a later batch.
 */
void
execlog_http_steps_batch_abort(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &done)
	{
		StepReq    *sr = dlist_container(StepReq, node, iter.cur);

		sr->in_batch = false;
		sr->result.consumed = false;
	}
	dlist_foreach_modify(iter, &deferred)
	{
		StepReq    *sr = dlist_container(StepReq, node, iter.cur);

		dlist_delete(&sr->node);
		step_free(sr);
	}
}

/*
 * execlog_http_steps_finished_ids
 *		Add the executions whose requests finished to ids (int64 *), for the
 *		batch that continues them.
 */
List *
execlog_http_steps_finished_ids(List *ids)
{
	dlist_iter	iter;

	dlist_foreach(iter, &done)
	{
		StepReq    *sr = dlist_container(StepReq, node, iter.cur);
		int64	   *id;

		if (sr->in_batch)
			continue;
		sr->in_batch = true;
		id = palloc(sizeof(int64));
		*id = sr->step.execution_id;
		ids = lappend(ids, id);
	}
	return ids;
}

/*
 * execlog_http_steps_result
 *		The result of the request of this step of this attempt, for the batch
 *		continuing it; NULL when there is none.
 */
HttpStepResult *
execlog_http_steps_result(int64 execution_id, int32 attempt, int32 position)
{
	dlist_iter	iter;

	dlist_foreach(iter, &done)
	{
		StepReq    *sr = dlist_container(StepReq, node, iter.cur);

		if (sr->in_batch && !sr->result.consumed &&
			sr->step.execution_id == execution_id &&
			sr->step.attempt == attempt && sr->step.position == position)
		{
			sr->result.consumed = true;
			return &sr->result;
		}
	}
	return NULL;
}

/*
 * execlog_http_steps_result_of
 *		The result of the request of an execution's attempt whose step row
 *		was not written yet (see http.h), for the batch continuing it; NULL
 *		when there is none.
 */
HttpStepResult *
execlog_http_steps_result_of(int64 execution_id, int32 attempt)
{
	dlist_iter	iter;

	dlist_foreach(iter, &done)
	{
		StepReq    *sr = dlist_container(StepReq, node, iter.cur);

		if (sr->in_batch && !sr->result.consumed && !sr->recorded &&
			sr->step.execution_id == execution_id && sr->step.attempt == attempt)
		{
			sr->result.consumed = true;
			return &sr->result;
		}
	}
	return NULL;
}

/*
 * execlog_http_steps_unconsume
 *		The batch could not use this result after all (its execution was
 *		cancelled meanwhile): its step row is failed after the batch.
 */
void
execlog_http_steps_unconsume(HttpStepResult *res)
{
	res->consumed = false;
}

/*
 * execlog_http_steps_saturated
 *		Whether the worker has enough requests in flight: it then continues
 *		what finished before claiming more executions.
 */
bool
execlog_http_steps_saturated(void)
{
	return n_flying + n_done >= Max(2 * execlog_batch_size, 32);
}

/* Results not yet handed to a batch, and the time the oldest finished. */
static int
ready_results(TimestampTz *oldest)
{
	dlist_iter	iter;
	int			n = 0;

	*oldest = 0;
	dlist_foreach(iter, &done)
	{
		StepReq    *sr = dlist_container(StepReq, node, iter.cur);

		if (sr->in_batch)
			continue;
		if (n == 0 || sr->result.res->finished_at < *oldest)
			*oldest = sr->result.res->finished_at;
		n++;
	}
	return n;
}

/*
 * execlog_http_steps_wait_ms
 *		How long the worker may wait for its latch or its sockets before the
 *		next pass, as far as http steps go: at most max_ms (0: other work is
 *		waiting).  Finished requests are continued once a batch of them is
 *		ready, nothing else is in flight, or the oldest has waited GATHER_MS;
 *		with enough requests in flight, the worker waits for answers before
 *		claiming more.
 */
long
execlog_http_steps_wait_ms(long max_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz oldest;
	int			ready = ready_results(&oldest);
	long		wait = max_ms;
	long		rec;

	if (n_stale > 0)
		return 0;
	if (ready > 0)
	{
		long		age = (long) ((now - oldest) / 1000);

		if (n_flying == 0 || ready >= execlog_batch_size || age >= GATHER_MS)
			return 0;
		wait = GATHER_MS - age;
	}
	else if (max_ms == 0)
	{
		if (n_flying == 0 || !execlog_http_steps_saturated())
			return 0;
		wait = MAX_WAIT_IN_FLIGHT_MS;
	}
	/* a slow request's row is due to be written as "running" */
	rec = record_due_ms(now);
	if (rec >= 0 && rec < wait)
		wait = rec;
	return wait;
}

/* Abort every request of an execution (it stopped running here). */
static void
abort_requests_of(int64 execution_id)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &flying)
	{
		StepReq    *sr = dlist_container(StepReq, node, iter.cur);

		if (sr->step.execution_id != execution_id)
			continue;
		stale_add(sr, false);
		dlist_delete(&sr->node);
		n_flying--;
		step_free(sr);
	}
}

static Datum
array_of(Datum *values, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_array(values, n, type, typlen, typbyval, typalign));
}


/*
 * execlog_http_steps_check_cancels
 *		Inside a worker transaction: when a cancel was committed for one of
 *		this worker's executions since the last look (the slot's
 *		http_cancels moved), abort the requests of executions that are no
 *		longer running here; then fail the step rows of aborted requests and
 *		of results that came too late.
 */
void
execlog_http_steps_check_cancels(int slot)
{
	uint32		seen;
	Datum		values[3];

	SpinLockAcquire(&execlog_shared->mutex);
	seen = execlog_shared->slots[slot].http_cancels;
	SpinLockRelease(&execlog_shared->mutex);

	if (seen != cancels_seen && n_flying > 0)
	{
		Datum	   *ids = palloc(sizeof(Datum) * n_flying);
		Datum	   *attempts = palloc(sizeof(Datum) * n_flying);
		int			n = 0;
		uint64		i;
		List	   *gone = NIL;
		ListCell   *lc;
		dlist_iter	iter;

		dlist_foreach(iter, &flying)
		{
			StepReq    *sr = dlist_container(StepReq, node, iter.cur);

			ids[n] = Int64GetDatum(sr->step.execution_id);
			attempts[n++] = Int32GetDatum(sr->step.attempt);
		}
		if (gone_plan == NULL)
		{
			Oid			types[3] = {INT8ARRAYOID, INT4ARRAYOID, INT4OID};

			gone_plan = execlog_keyed_prepare("SELECT u.id FROM unnest($1, $2) AS u(id, attempt)"
								  " WHERE NOT EXISTS (SELECT 1 FROM execlog.executions e"
								  "                    WHERE e.id = u.id AND e.attempt = u.attempt"
								  "                      AND e.status = 'running' AND e.worker = $3)",
								  3, types);
		}
		values[0] = array_of(ids, n, INT8OID);
		values[1] = array_of(attempts, n, INT4OID);
		values[2] = Int32GetDatum(slot);
		execlog_keyed_plan(gone_plan);
		if (SPI_execute_plan(gone_plan, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not check the executions of requests in flight");
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			int64	   *id = palloc(sizeof(int64));

			*id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
											  1, &isnull));
			gone = lappend(gone, id);
		}
		SPI_freetuptable(SPI_tuptable);
		foreach(lc, gone)
			abort_requests_of(*(int64 *) lfirst(lc));
	}
	cancels_seen = seen;

	if (n_stale > 0)
		fail_stale();
}

/* Columns of the step rows written by this file (stale and slow ones). */
#define ROW_COLS 8

/* The step rows being written, column by column (see rows_init). */
static Datum *row_vals[ROW_COLS];
static bool *row_nulls[ROW_COLS];

static void
rows_init(int n)
{
	int			k;

	for (k = 0; k < ROW_COLS; k++)
	{
		row_vals[k] = palloc(sizeof(Datum) * Max(n, 1));
		row_nulls[k] = palloc0(sizeof(bool) * Max(n, 1));
	}
}

static void
rows_set(int i, int64 id, int32 attempt, int32 position, int64 account_id,
		 const char *name, Jsonb *input, TimestampTz started_at, bool answered)
{
	row_vals[0][i] = Int64GetDatum(id);
	row_vals[1][i] = Int32GetDatum(attempt);
	row_vals[2][i] = Int32GetDatum(position);
	row_vals[3][i] = Int64GetDatum(account_id);
	row_vals[4][i] = CStringGetTextDatum(name ? name : "");
	row_vals[5][i] = input ? JsonbPGetDatum(input) : (Datum) 0;
	row_nulls[5][i] = input == NULL;
	row_vals[6][i] = TimestampTzGetDatum(started_at);
	row_vals[7][i] = BoolGetDatum(answered);
}

/* Run a statement on the rows set so far: $1..$8 are their columns. */
static void
rows_run(SPIPlanPtr plan, int n, int expect)
{
	static const Oid elem[ROW_COLS] = {INT8OID, INT4OID, INT4OID, INT8OID, TEXTOID,
	JSONBOID, TIMESTAMPTZOID, BOOLOID};
	Datum		values[ROW_COLS];
	int			k;

	for (k = 0; k < ROW_COLS; k++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;
		int			dims[1] = {n};
		int			lbs[1] = {1};

		get_typlenbyvalalign(elem[k], &typlen, &typbyval, &typalign);
		values[k] = PointerGetDatum(construct_md_array(row_vals[k], row_nulls[k], 1, dims, lbs,
													   elem[k], typlen, typbyval, typalign));
	}
	execlog_keyed_plan(plan);
	if (SPI_execute_plan(plan, values, NULL, false, 0) != expect)
		elog(ERROR, "could not record the step rows of requests");
}

#define ROW_ARGS \
	"unnest($1::bigint[], $2::integer[], $3::integer[], $4::bigint[], $5::text[]," \
	"       $6::jsonb[], $7::timestamptz[], $8::boolean[])" \
	" AS u(id, attempt, position, account_id, name, input, started_at, answered)"

static const Oid row_types[ROW_COLS] = {INT8ARRAYOID, INT4ARRAYOID, INT4ARRAYOID,
INT8ARRAYOID, TEXTARRAYOID, JSONBARRAYOID, TIMESTAMPTZARRAYOID, BOOLARRAYOID};

/*
 * fail_stale
 *		Fail the step rows of aborted requests and of answers that came too
 *		late (their executions stopped running), writing the rows that were
 *		still kept in memory.
 */
static void
fail_stale(void)
{
	int			i;

	if (stale_plan == NULL)
		stale_plan = execlog_keyed_prepare(
						"INSERT INTO execlog.execution_steps AS s"
						"  (execution_id, attempt, position, account_id, name, kind, status,"
						"   started_at, finished_at, input, error)"
						" SELECT u.id, u.attempt, u.position, u.account_id, u.name, 'http', 'failed',"
						"        u.started_at, pg_catalog.now(), u.input,"
						"        CASE WHEN e.attempt <> u.attempt"
						"             THEN 'request aborted: a new attempt started'"
						"             WHEN u.answered"
						"             THEN 'answer discarded: the execution is '"
						"                  || e.status::text || ', no longer running'"
						"             ELSE 'request aborted: the execution is '"
						"                  || e.status::text || ', no longer running' END"
						"   FROM " ROW_ARGS
						"   JOIN execlog.executions e ON e.id = u.id"
						"  WHERE e.status <> 'running' OR e.attempt <> u.attempt"
						" ON CONFLICT (execution_id, attempt, position) DO UPDATE"
						"   SET status = 'failed', finished_at = excluded.finished_at,"
						"       error = excluded.error"
						/* or the row execlog.cancel() ended for us (api.c) */
						" WHERE s.status = 'running'"
						"    OR s.error = '" EXECLOG_HTTP_CANCELLED_ERROR "'",
						ROW_COLS, (Oid *) row_types);
	rows_init(n_stale);
	for (i = 0; i < n_stale; i++)
		rows_set(i, stale[i].execution_id, stale[i].attempt, stale[i].position,
				 stale[i].account_id, stale[i].name, stale[i].input,
				 stale[i].started_at, stale[i].answered);
	rows_run(stale_plan, n_stale, SPI_OK_INSERT);
	for (i = 0; i < n_stale; i++)
	{
		pfree(stale[i].name);
		if (stale[i].input)
			pfree(stale[i].input);
	}
	n_stale = 0;
}

/* Whether a request in flight has its row to write as "running" by now. */
static bool
slow_unrecorded(StepReq *sr, TimestampTz now)
{
	return !sr->recorded &&
		TimestampDifferenceExceeds(sr->step.started_at, now, EXECLOG_HTTP_RECORD_AFTER_MS);
}

/*
 * execlog_http_steps_record_slow
 *		Inside a worker transaction: write the step rows of requests in
 *		flight for EXECLOG_HTTP_RECORD_AFTER_MS or more as "running", so
 *		that step_log shows what a slow request sent while it waits.
 */
void
execlog_http_steps_record_slow(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int			n = 0;
	dlist_iter	iter;

	dlist_foreach(iter, &flying)
	{
		if (slow_unrecorded(dlist_container(StepReq, node, iter.cur), now))
			n++;
	}
	if (n == 0)
		return;
	if (slow_plan == NULL)
		slow_plan = execlog_keyed_prepare(
						"INSERT INTO execlog.execution_steps"
						"  (execution_id, attempt, position, account_id, name, kind, status,"
						"   started_at, input)"
						" SELECT u.id, u.attempt, u.position, u.account_id, u.name, 'http', 'running',"
						"        u.started_at, u.input"
						"   FROM " ROW_ARGS
						"   JOIN execlog.executions e ON e.id = u.id"
						"  WHERE e.status = 'running' AND e.attempt = u.attempt"
						/*
						 * A cancel committed meanwhile is seen (the locked row is
						 * checked again), and one under way is skipped; a cancel
						 * that comes later waits for this transaction and then
						 * ends the row itself (api.c): so no cancelled execution
						 * keeps a running row, even if this worker dies.
						 */
						"    FOR SHARE OF e SKIP LOCKED"
						" ON CONFLICT (execution_id, attempt, position) DO NOTHING",
						ROW_COLS, (Oid *) row_types);
	rows_init(n);
	n = 0;
	dlist_foreach(iter, &flying)
	{
		StepReq    *sr = dlist_container(StepReq, node, iter.cur);
		HttpStep   *st = &sr->step;

		if (!slow_unrecorded(sr, now))
			continue;
		rows_set(n++, st->execution_id, st->attempt, st->position, st->account_id,
				 st->name, st->input, st->started_at, false);
		sr->recorded = true;
	}
	rows_run(slow_plan, n, SPI_OK_INSERT);
}

/*
 * record_due_ms
 *		Milliseconds until the next request in flight has its row to write
 *		(0: now); -1 when none.
 */
static long
record_due_ms(TimestampTz now)
{
	TimestampTz first = 0;
	dlist_iter	iter;

	dlist_foreach(iter, &flying)
	{
		StepReq    *sr = dlist_container(StepReq, node, iter.cur);

		if (!sr->recorded && (first == 0 || sr->step.started_at < first))
			first = sr->step.started_at;
	}
	if (first == 0)
		return -1;
	first += (TimestampTz) EXECLOG_HTTP_RECORD_AFTER_MS * 1000;
	return first <= now ? 0 : (long) ((first - now + 999) / 1000);
}
