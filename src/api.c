/*-------------------------------------------------------------------------
 *
 * api.c
 *	  The SQL API: start, start_many, retry, cancel, resume, complete_task,
 *	  dismiss_task, schedule, unschedule, watch and unwatch.
 *
 * Each function first looks the object up as the caller, so privileges and
 * row-level security decide what the caller may act on ("does not exist"
 * otherwise), then switches to the extension owner to lock and change it.
 * Refusals raise an error and change nothing.  The status trigger
 * (status.c) re-checks every change, so these functions only add the
 * friendlier messages and the rules that depend on more than one row.
 *
 *-------------------------------------------------------------------------
 */
#include "execlog.h"
#include "policy.h"

#include "access/htup_details.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "funcapi.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(execlog_start_by_name);
PG_FUNCTION_INFO_V1(execlog_start_by_id);
PG_FUNCTION_INFO_V1(execlog_start_many);
PG_FUNCTION_INFO_V1(execlog_retry);
PG_FUNCTION_INFO_V1(execlog_cancel);
PG_FUNCTION_INFO_V1(execlog_resume);
PG_FUNCTION_INFO_V1(execlog_complete_task);
PG_FUNCTION_INFO_V1(execlog_dismiss_task);
PG_FUNCTION_INFO_V1(execlog_schedule);
PG_FUNCTION_INFO_V1(execlog_unschedule);
PG_FUNCTION_INFO_V1(execlog_watch);
PG_FUNCTION_INFO_V1(execlog_unwatch);

/* The statements the API runs (saved plans, see execlog_run_saved). */
static SavedStmt find_by_name = {
	"SELECT a.id, a.enabled, ac.name"
	"  FROM execlog.automations a"
	"  JOIN execlog.accounts ac ON ac.id = a.account_id"
	" WHERE a.name = $1 AND ($2::text IS NULL OR ac.name = $2)"
	" ORDER BY ac.name",
	2, {TEXTOID, TEXTOID}
};

/*
 * execlog.start() and start_many(): the automation to start as the caller
 * sees it, with what a new execution records of it and its manual trigger
 * (the row the guard would look up, see execlog_guard_preset).
 */
#define FIND_TO_START \
	"SELECT a.id, a.enabled, ac.name, a.name, a.account_id, a.revision," \
	"       a.throttle IS NOT NULL, t.id, t.revision, t.kind" \
	"  FROM execlog.automations a" \
	"  JOIN execlog.accounts ac ON ac.id = a.account_id" \
	"  LEFT JOIN execlog.triggers t ON t.automation_id = a.id AND t.kind = 'manual'"

static SavedStmt find_to_start_by_name = {
	FIND_TO_START
	" WHERE a.name = $1 AND ac.name = $2",
	2, {TEXTOID, TEXTOID}
};

/* no ORDER BY: only the error for an ambiguous name lists them, sorted then */
static SavedStmt find_to_start_by_name_any = {
	FIND_TO_START
	" WHERE a.name = $1",
	1, {TEXTOID}
};

static SavedStmt find_to_start_by_id = {
	FIND_TO_START
	" WHERE a.id = $1",
	1, {INT8OID}
};

static SavedStmt may_change = {
	"SELECT a.name, a.run_as::text,"
	"       CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = a.run_as)"
	"            THEN pg_catalog.pg_has_role(a.run_as, 'MEMBER')"
	"            ELSE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r"
	"                          WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER AND r.rolsuper) END"
	"  FROM execlog.automations a WHERE a.id = $1",
	1, {INT8OID}
};

/*
 * New executions of an automation through its manual trigger ($5), as
 * looked up by find_to_start: the statement locks the automation and the
 * trigger FOR KEY SHARE, once, as a foreign key's check would (executions
 * has none, see references.c), and inserts nothing when either is gone by
 * now (a concurrent delete committed).  The guard takes the rest from the
 * preset (execlog_guard_preset).
 */
#define LOCK_AUTOMATION_AND_TRIGGER \
	"WITH l AS (SELECT FROM execlog.automations a, execlog.triggers t" \
	"            WHERE a.id OPERATOR(pg_catalog.=) $1 AND t.id OPERATOR(pg_catalog.=) $5" \
	"              AND t.automation_id OPERATOR(pg_catalog.=) a.id FOR KEY SHARE OF a, t)"

static SavedStmt insert_execution = {
	LOCK_AUTOMATION_AND_TRIGGER
	" INSERT INTO execlog.executions (automation_id, trigger_id, triggered_by, payload)"
	" SELECT $1, $2, $3, $4 FROM l RETURNING id",
	5, {INT8OID, INT8OID, TEXTOID, JSONBOID, INT8OID}
};

/* one statement for all the payloads, in their order */
static SavedStmt insert_executions = {
	LOCK_AUTOMATION_AND_TRIGGER
	" INSERT INTO execlog.executions (automation_id, trigger_id, triggered_by, payload)"
	" SELECT $1, $2, $3, COALESCE(u.p, '{}'::jsonb)"
	"   FROM l, pg_catalog.unnest($4::jsonb[]) WITH ORDINALITY u (p, n)"
	"  ORDER BY u.n"
	" RETURNING id",
	5, {INT8OID, INT8OID, TEXTOID, JSONBARRAYOID, INT8OID}
};

/*
 * Without a manual trigger (find_to_start found none): the guard looks the
 * automation up itself and refuses the row.
 */
static SavedStmt insert_execution_unchecked = {
	"INSERT INTO execlog.executions (automation_id, trigger_id, triggered_by, payload)"
	" VALUES ($1, $2, $3, $4) RETURNING id",
	4, {INT8OID, INT8OID, TEXTOID, JSONBOID}
};

static SavedStmt execution_visible = {
	"SELECT 1 FROM execlog.executions WHERE id = $1",
	1, {INT8OID}
};

static SavedStmt lock_for_retry = {
	"SELECT e.status::text, e.attempt, a.max_retries, a.name,"
	"       e.trigger_id IS NULL OR t.revision IS DISTINCT FROM e.trigger_revision,"
	"       EXISTS (SELECT 1 FROM execlog.steps s"
	"                WHERE s.automation_id = a.id AND s.kind = 'response')"
	"  FROM execlog.executions e"
	"  JOIN execlog.automations a ON a.id = e.automation_id"
	"  LEFT JOIN execlog.triggers t ON t.id = e.trigger_id"
	" WHERE e.id = $1 FOR UPDATE OF e",
	1, {INT8OID}
};

static SavedStmt do_retry = {
	"UPDATE execlog.executions"
	"   SET status = 'pending', attempt = attempt + 1, from_start = $2,"
	"       run_after = NULL, resume = NULL"
	" WHERE id = $1",
	2, {INT8OID, BOOLOID}
};

static SavedStmt lock_execution = {
	"SELECT status::text FROM execlog.executions WHERE id = $1 FOR UPDATE",
	1, {INT8OID}
};

/*
 * A final execution keeps no pending or running step in its current
 * attempt: the pause step a paused execution waited in ends failed,
 * "cancelled", and so does the row of an http request in flight, with the
 * words its worker uses when it aborts the request.  The worker still
 * writes its own account over that row (an answer that came too late, say),
 * but should it die first, the row is final anyway: crash recovery only
 * looks at running executions.
 */
static SavedStmt do_cancel = {
	"WITH c AS ("
	"  UPDATE execlog.executions SET status = 'cancelled', run_after = NULL"
	"   WHERE id OPERATOR(pg_catalog.=) $1 RETURNING worker, attempt),"
	" s AS ("
	"  UPDATE execlog.execution_steps st"
	"     SET status = 'failed', finished_at = pg_catalog.now(),"
	"         error = CASE WHEN st.kind OPERATOR(pg_catalog.=) 'http'"
	"                      THEN '" EXECLOG_HTTP_CANCELLED_ERROR "'"
	"                      ELSE 'cancelled' END"
	"    FROM c WHERE st.execution_id OPERATOR(pg_catalog.=) $1"
	"     AND st.attempt OPERATOR(pg_catalog.=) c.attempt"
	"     AND st.status::pg_catalog.text OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'running'])"
	"  RETURNING st.kind, st.output),"
	/* the task a task step waited for is dismissed with it */
	" t AS ("
	"  UPDATE execlog.tasks tk"
	"     SET status = 'dismissed', closed_at = pg_catalog.now(), closed_by = execlog._actor(),"
	"         note = coalesce(tk.note, 'the execution was cancelled')"
	"    FROM s WHERE s.kind OPERATOR(pg_catalog.=) 'task'"
	"     AND tk.execution_id OPERATOR(pg_catalog.=) $1 AND tk.status OPERATOR(pg_catalog.=) 'open'"
	"     AND tk.id OPERATOR(pg_catalog.=) (s.output OPERATOR(pg_catalog.->>) 'task_id')::pg_catalog.int8)"
	" SELECT worker FROM c",
	1, {INT8OID}
};

static SavedStmt do_resume = {
	"UPDATE execlog.executions"
	"   SET status = 'running', resume = $2, run_after = NULL, worker = NULL"
	" WHERE id = $1",
	2, {INT8OID, JSONBOID}
};

/* the task a paused execution's task step waits for */
static SavedStmt waiting_task = {
	"SELECT st.output OPERATOR(pg_catalog.->>) 'task_id'"
	"  FROM execlog.executions e"
	"  JOIN execlog.execution_steps st ON st.execution_id OPERATOR(pg_catalog.=) e.id"
	"   AND st.attempt OPERATOR(pg_catalog.=) e.attempt"
	" WHERE e.id OPERATOR(pg_catalog.=) $1 AND st.kind OPERATOR(pg_catalog.=) 'task'"
	"   AND st.status OPERATOR(pg_catalog.=) 'running'::execlog.step_status",
	1, {INT8OID}
};

/*
 * The task as the caller sees it (row-level security: its accounts only),
 * and whether the caller may close it: a task assigned to a role is closed
 * by that role's members (pg_has_role MEMBER, as execlog.my_tasks shows
 * it) or by an administrator of its account; a task whose assignee names
 * no role (0.1's on_failure tasks took any text) by any operator of it.
 */
static SavedStmt task_visible = {
	"SELECT t.execution_id, t.assignee,"
	"       r.oid IS NULL OR pg_catalog.pg_has_role(r.oid, 'MEMBER')"
	"       OR (pg_catalog.pg_has_role('execlog_admin', 'MEMBER')"
	"           AND t.account_id OPERATOR(pg_catalog.=) ANY (execlog.my_accounts()))"
	"  FROM execlog.tasks t"
	"  LEFT JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) t.assignee"
	" WHERE t.id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}
};

/*
 * Whether a task step waits for the task ($2) in its execution ($1).  Only
 * the step that created a task ever waits for it, from the transaction
 * that created both until the task is closed or the execution cancelled:
 * a task seen without a waiting step never gets one.
 */
static SavedStmt task_awaited = {
	"SELECT 1 FROM execlog.executions e"
	"  JOIN execlog.execution_steps st ON st.execution_id OPERATOR(pg_catalog.=) e.id"
	"   AND st.attempt OPERATOR(pg_catalog.=) e.attempt"
	" WHERE e.id OPERATOR(pg_catalog.=) $1 AND st.kind OPERATOR(pg_catalog.=) 'task'"
	"   AND st.status OPERATOR(pg_catalog.=) 'running'::execlog.step_status"
	"   AND (st.output OPERATOR(pg_catalog.->>) 'task_id')"
	"       OPERATOR(pg_catalog.=) $2::pg_catalog.text",
	2, {INT8OID, INT8OID}
};

/* the execution first (as cancel locks it), then the task */
static SavedStmt lock_task_execution = {
	"SELECT 1 FROM execlog.executions WHERE id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
	1, {INT8OID}
};

static SavedStmt lock_task = {
	"SELECT status FROM execlog.tasks WHERE id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
	1, {INT8OID}
};

/*
 * Close a task ($2: done or dismissed) and hand the step waiting for it
 * its output and, when dismissed, its error: the execution then runs again
 * and a worker finishes that step (executor.c, finish_task_row).  The
 * execution row is only read unless a step waits for the task.
 */
static SavedStmt do_close_task = {
	"WITH t AS ("
	"  UPDATE execlog.tasks"
	"     SET status = $2, note = $3, outcome = $4, closed_at = pg_catalog.now(), closed_by = $5"
	"   WHERE id OPERATOR(pg_catalog.=) $1 RETURNING execution_id),"
	" s AS ("
	"  UPDATE execlog.execution_steps st"
	"     SET output = pg_catalog.jsonb_build_object('task_id', $1, 'outcome', $4, 'note', $3,"
	"                                                'closed_by', $5),"
	"         error = $6"
	"    FROM t, execlog.executions e"
	"   WHERE e.id OPERATOR(pg_catalog.=) t.execution_id"
	"     AND e.status OPERATOR(pg_catalog.=) 'paused'::execlog.status"
	"     AND st.execution_id OPERATOR(pg_catalog.=) e.id AND st.attempt OPERATOR(pg_catalog.=) e.attempt"
	"     AND st.kind OPERATOR(pg_catalog.=) 'task'"
	"     AND st.status OPERATOR(pg_catalog.=) 'running'::execlog.step_status"
	"     AND (st.output OPERATOR(pg_catalog.->>) 'task_id') OPERATOR(pg_catalog.=) $1::pg_catalog.text"
	"  RETURNING st.execution_id)"
	" UPDATE execlog.executions"
	"    SET status = 'running', run_after = NULL, worker = NULL"
	"  WHERE id OPERATOR(pg_catalog.=) ANY (SELECT execution_id FROM s)",
	6, {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID}
};

static SavedStmt cron_installed = {
	"SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron'",
	0, {0}
};

/*
 * The job runs execlog._run_schedule(automation id) in this database, as
 * the extension owner; pg_cron replaces a job of the same name and owner.
 */
static SavedStmt cron_schedule = {
	"SELECT cron.schedule_in_database('execlog schedule ' || $1, $2,"
	"                                 'SELECT execlog._run_schedule(' || $1 || ')',"
	"                                 pg_catalog.current_database())",
	2, {INT8OID, TEXTOID}
};

/* one schedule per automation (triggers_one_schedule): a new one replaces it */
static SavedStmt set_schedule = {
	"INSERT INTO execlog.triggers (automation_id, kind, config)"
	" VALUES ($1, 'schedule', pg_catalog.jsonb_build_object('cron', $2::text, 'payload', $3::jsonb,"
	"                                                       'job', $4::bigint))"
	" ON CONFLICT (automation_id) WHERE kind = 'schedule'"
	" DO UPDATE SET config = excluded.config"
	" RETURNING id",
	4, {INT8OID, TEXTOID, JSONBOID, INT8OID}
};

static SavedStmt drop_schedule = {
	"DELETE FROM execlog.triggers WHERE automation_id = $1 AND kind = 'schedule'",
	1, {INT8OID}
};

/*
 * One watch per automation and table (triggers_one_watch): a new one
 * replaces it.  The table is identified by its OID (watched_table), so that
 * renames keep the watch; config keeps the name it was watched under.
 */
static SavedStmt set_watch = {
	"INSERT INTO execlog.triggers (automation_id, kind, config, watched_table)"
	" VALUES ($1, 'data', pg_catalog.jsonb_build_object('table', $2::text, 'condition', $3::text), $4)"
	" ON CONFLICT (automation_id, watched_table) WHERE kind = 'data'"
	" DO UPDATE SET config = excluded.config"
	" RETURNING id",
	4, {INT8OID, TEXTOID, TEXTOID, REGCLASSOID}
};

/*
 * A watch of the automation on a partitioned table above the table, or on
 * a partition below it: the row triggers would be one (PostgreSQL clones a
 * partitioned table's row trigger to its partitions, and replaces one of
 * the same name).  Second column: whether it is above.
 */
static SavedStmt watch_overlap = {
	"SELECT tr.watched_table::pg_catalog.text,"
	"       tr.watched_table OPERATOR(pg_catalog.=)"
	"         ANY (ARRAY(SELECT pg_catalog.pg_partition_ancestors($2)))"
	"  FROM execlog.triggers tr"
	" WHERE tr.automation_id = $1 AND tr.kind = 'data'"
	"   AND tr.watched_table OPERATOR(pg_catalog.<>) $2"
	"   AND tr.watched_table OPERATOR(pg_catalog.=)"
	"         ANY (ARRAY(SELECT pg_catalog.pg_partition_ancestors($2)"
	"                    UNION ALL SELECT t.relid FROM pg_catalog.pg_partition_tree($2) t))"
	" LIMIT 1",
	2, {INT8OID, REGCLASSOID}
};

static SavedStmt drop_watch = {
	"DELETE FROM execlog.triggers"
	" WHERE automation_id = $1 AND kind = 'data' AND watched_table OPERATOR(pg_catalog.=) $2",
	2, {INT8OID, REGCLASSOID}
};

/* Column of the first result row, as text (palloc'd in the SPI context). */
static char *
result_text(int col)
{
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);
}

static Datum
result_datum(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/*
 * require_arg
 *		Refuse a NULL argument with a clear error.
 */
static void
require_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

/*
 * api_call
 *		Run the body of an API function with the caller recorded as the
 *		actor of every change it makes (transitions.by, tasks.closed_by).
 *
 * The name lives in this frame and the previous actor is restored however
 * the body ends: an error that the caller catches in a subtransaction (a
 * PL/pgSQL EXCEPTION block) must not leave a stale actor behind for the
 * rest of the transaction, nor one pointing into freed SPI memory.
 */
static Datum
api_call(PGFunction body, FunctionCallInfo fcinfo)
{
	const char *save_actor = execlog_actor;
	NameData	actor;
	volatile Datum result = (Datum) 0;

	/* before reading any argument: an older schema may declare others */
	execlog_require_current_schema();
	namestrcpy(&actor, GetUserNameFromId(GetUserId(), false));
	execlog_actor = NameStr(actor);
	PG_TRY();
	{
		result = body(fcinfo);
	}
	PG_FINALLY();
	{
		execlog_actor = save_actor;
	}
	PG_END_TRY();
	return result;
}

/*
 * begin_api_call / end_api_call
 *		Bracket the body of an API function: connect SPI and pin search_path.
 */
static void
begin_api_call(ExeclogPrivState *priv)
{
	SPI_connect();
	execlog_pin_search_path(priv);
}

static void
end_api_call(ExeclogPrivState *priv)
{
	execlog_restore(priv);
	SPI_finish();
}

/*
 * run_insert
 *		As the extension owner, run an INSERT of new executions of the
 *		automation of *info (NULL: the guard looks it up), with the guard
 *		preset to *info while it runs.
 */
static uint64
run_insert(ExeclogPrivState *priv, const ExeclogStartInfo *info,
		   SavedStmt *stmt, Datum *values, const char *nulls)
{
	volatile uint64 n = 0;

	execlog_become_owner(priv);
	execlog_guard_preset(info);
	PG_TRY();
	{
		n = execlog_run_saved(stmt, values, nulls, false);
	}
	PG_FINALLY();
	{
		execlog_guard_preset(NULL);
	}
	PG_END_TRY();
	return n;
}

/*
 * refuse_gone
 *		A new execution's automation or manual trigger was deleted after
 *		find_to_start saw it (the INSERT locking them found none).
 */
static void
refuse_gone(int64 automation_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("automation %lld does not exist", (long long) automation_id)));
}

/*
 * enqueue
 *		Insert a new execution of an automation as the extension owner.
 */
static int64
enqueue(ExeclogPrivState *priv, const ExeclogStartInfo *info,
		int64 automation_id, Datum payload, const char *triggered_by)
{
	Datum		values[5];
	char		nulls[6] = "     ";
	bool		isnull;

	values[0] = Int64GetDatum(automation_id);
	values[1] = (Datum) 0;
	nulls[1] = 'n';				/* the manual trigger, from the preset */
	values[2] = CStringGetTextDatum(triggered_by);
	values[3] = payload;

	if (info == NULL)
		run_insert(priv, info, &insert_execution_unchecked, values, nulls);
	else
	{
		values[4] = Int64GetDatum(info->trigger_id);
		if (run_insert(priv, info, &insert_execution, values, nulls) == 0)
			refuse_gone(automation_id);
	}
	return DatumGetInt64(result_datum(0, 1, &isnull));
}

/*
 * payload_check
 *		Refuse a payload that is not a JSON object; which (may be NULL)
 *		names it in the message.
 */
static void
payload_check(Jsonb *payload, const char *which)
{
	char	   *type;
	const char *article;

	if (JB_ROOT_IS_OBJECT(payload))
		return;
	type = text_to_cstring(DatumGetTextPP(DirectFunctionCall1(jsonb_typeof,
															  JsonbPGetDatum(payload))));
	article = strcmp(type, "null") == 0 ? "" :
		strcmp(type, "array") == 0 ? "an " : "a ";
	if (which)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object, not %s%s", which, article, type),
				 errhint("Wrap the value in an object, such as '{\"value\": ...}'.")));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("payload must be a JSON object, not %s%s", article, type),
			 errhint("Wrap the value in an object, such as '{\"value\": ...}'.")));
}

/*
 * The payload argument, with SQL NULL meaning an empty object; any other
 * payload must be a JSON object (its members are $.payload.<name>).
 */
static Datum
payload_arg(FunctionCallInfo fcinfo, int argno)
{
	Jsonb	   *payload;

	if (PG_ARGISNULL(argno))
		return DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	payload = PG_GETARG_JSONB_P(argno);
	payload_check(payload, NULL);
	return JsonbPGetDatum(payload);
}

static void
refuse_disabled(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("automation \"%s\" is disabled", name),
			 errhint("Enable it with UPDATE execlog.automations SET enabled = true.")));
}

/*
 * lookup_automation
 *		The automation of that name (in that account, unless NULL) the
 *		caller can see; *enabled tells whether it is enabled.  hint says how
 *		to pick one when the name is ambiguous.  SPI connected, as the caller.
 */
static int64
lookup_automation(const char *name, const char *account, bool *enabled,
				  const char *hint)
{
	Datum		values[2];
	char		nulls[3] = "  ";
	uint64		n;
	bool		isnull;

	values[0] = CStringGetTextDatum(name);
	if (account == NULL)
		nulls[1] = 'n';
	else
		values[1] = CStringGetTextDatum(account);
	n = execlog_run_saved(&find_by_name, values, nulls, true);
	if (n == 0)
	{
		if (account)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("automation \"%s\" does not exist in account \"%s\"",
							name, account)));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("automation \"%s\" does not exist", name)));
	}
	if (n > 1)
	{
		StringInfoData accounts;
		uint64		i;

		initStringInfo(&accounts);
		for (i = 0; i < n; i++)
			appendStringInfo(&accounts, "%s\"%s\"", i > 0 ? ", " : "",
							 SPI_getvalue(SPI_tuptable->vals[i],
										  SPI_tuptable->tupdesc, 3));
		ereport(ERROR,
				(errcode(ERRCODE_AMBIGUOUS_FUNCTION),
				 errmsg("automation name \"%s\" is ambiguous", name),
				 errdetail("Automations of that name exist in accounts %s.", accounts.data),
				 errhint("%s", hint)));
	}
	*enabled = DatumGetBool(result_datum(0, 2, &isnull));
	return DatumGetInt64(result_datum(0, 1, &isnull));
}

/*
 * require_may_change
 *		Refuse to change the automation's triggers unless the caller is a
 *		member of its run_as role (the rule of the definition triggers, which
 *		see the owner when the API writes).  SPI connected, as the caller.
 */
static void
require_may_change(int64 automation_id)
{
	Datum		values[1];
	bool		isnull;

	values[0] = Int64GetDatum(automation_id);
	if (execlog_run_saved(&may_change, values, NULL, true) == 0)
		return;
	if (!DatumGetBool(result_datum(0, 3, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to change automation \"%s\" that runs as role \"%s\"",
						result_text(1), result_text(2)),
				 errhint("Changing an automation, its steps or its triggers needs membership in its run_as role.")));
}

/*
 * start_info
 *		The row of a FIND_TO_START statement in SPI_tuptable: refuse a
 *		disabled automation, fill *info (left unset without a manual
 *		trigger, which the guard then refuses).  Returns info, or NULL.
 */
static const ExeclogStartInfo *
start_info(ExeclogStartInfo *info)
{
	bool		isnull;

	if (!DatumGetBool(result_datum(0, 2, &isnull)))
		refuse_disabled(result_text(4));
	info->automation_id = DatumGetInt64(result_datum(0, 1, &isnull));
	info->account_id = DatumGetInt64(result_datum(0, 5, &isnull));
	info->revision = DatumGetInt32(result_datum(0, 6, &isnull));
	info->throttled = DatumGetBool(result_datum(0, 7, &isnull));
	info->trigger_id = DatumGetInt64(result_datum(0, 8, &isnull));
	if (isnull)
		return NULL;
	info->trigger_revision = DatumGetInt32(result_datum(0, 9, &isnull));
	strlcpy(info->trigger_kind, result_text(10), sizeof(info->trigger_kind));
	return info;
}

/* qsort comparator: account names in the database's collation (ORDER BY name) */
static int
compare_names(const void *a, const void *b)
{
	const char *x = *(const char *const *) a;
	const char *y = *(const char *const *) b;

	return varstr_cmp(x, strlen(x), y, strlen(y), DEFAULT_COLLATION_OID);
}

/*
 * find_to_start
 *		As the caller: the automation of that name (in that account, unless
 *		NULL) to start, enabled, into *info; the refusals of lookup_automation
 *		and refuse_disabled.  fn names the function for the hint.  Returns
 *		info, or NULL (no manual trigger, the guard says so).
 */
static const ExeclogStartInfo *
find_to_start(const char *name, const char *account, const char *fn,
			  ExeclogStartInfo *info)
{
	Datum		values[2];
	uint64		n;

	values[0] = CStringGetTextDatum(name);
	if (account)
	{
		values[1] = CStringGetTextDatum(account);
		n = execlog_run_saved(&find_to_start_by_name, values, NULL, true);
	}
	else
		n = execlog_run_saved(&find_to_start_by_name_any, values, NULL, true);
	if (n == 0)
	{
		if (account)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("automation \"%s\" does not exist in account \"%s\"",
							name, account)));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("automation \"%s\" does not exist", name)));
	}
	if (n > 1)
	{
		StringInfoData accounts;
		char	  **names = palloc(sizeof(char *) * n);
		uint64		i;

		for (i = 0; i < n; i++)
			names[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
		qsort(names, n, sizeof(char *), compare_names);
		initStringInfo(&accounts);
		for (i = 0; i < n; i++)
			appendStringInfo(&accounts, "%s\"%s\"", i > 0 ? ", " : "", names[i]);
		ereport(ERROR,
				(errcode(ERRCODE_AMBIGUOUS_FUNCTION),
				 errmsg("automation name \"%s\" is ambiguous", name),
				 errdetail("Automations of that name exist in accounts %s.", accounts.data),
				 errhint("Pass the account name as the third argument of %s.", fn)));
	}
	return start_info(info);
}

/* The body of execlog.start, run by api_call. */
static Datum
start_by_name_body(PG_FUNCTION_ARGS)
{
	ExeclogPrivState priv;
	ExeclogStartInfo info;
	const ExeclogStartInfo *found;
	char	   *name;
	char	   *account = NULL;
	int64		id;

	require_arg(fcinfo, 0, "automation name");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(2))
		account = text_to_cstring(PG_GETARG_TEXT_PP(2));

	begin_api_call(&priv);
	found = find_to_start(name, account, "execlog.start()", &info);
	id = enqueue(&priv, found, info.automation_id, payload_arg(fcinfo, 1),
				 GetUserNameFromId(GetSessionUserId(), false));
	end_api_call(&priv);
	PG_RETURN_INT64(id);
}

/*
 * execlog.start(automation text, payload jsonb, account text) returns bigint
 */
Datum
execlog_start_by_name(PG_FUNCTION_ARGS)
{
	return api_call(start_by_name_body, fcinfo);
}

/* The body of execlog.start, run by api_call. */
static Datum
start_by_id_body(PG_FUNCTION_ARGS)
{
	ExeclogPrivState priv;
	ExeclogStartInfo info;
	const ExeclogStartInfo *found;
	Datum		values[1];
	int64		automation_id;
	int64		id;

	require_arg(fcinfo, 0, "automation id");
	automation_id = PG_GETARG_INT64(0);
	values[0] = Int64GetDatum(automation_id);

	begin_api_call(&priv);
	if (execlog_run_saved(&find_to_start_by_id, values, NULL, true) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("automation %lld does not exist", (long long) automation_id)));
	found = start_info(&info);
	id = enqueue(&priv, found, automation_id, payload_arg(fcinfo, 1),
				 GetUserNameFromId(GetSessionUserId(), false));
	end_api_call(&priv);
	PG_RETURN_INT64(id);
}

/*
 * execlog.start(automation_id bigint, payload jsonb) returns bigint
 */
Datum
execlog_start_by_id(PG_FUNCTION_ARGS)
{
	return api_call(start_by_id_body, fcinfo);
}

/*
 * The body of execlog.start_many, run by api_call.
 *
 * One INSERT ... SELECT over the array for all the executions: the
 * automation is looked up and checked once, as the caller, every payload
 * is checked before anything is inserted, and the status trigger takes the
 * automation from that lookup (execlog_guard_preset) rather than running a
 * query per row.  The statement-level triggers log every new execution's
 * first transition in one INSERT; the workers are woken once, at commit.
 */
static Datum
start_many_body(PG_FUNCTION_ARGS)
{
	ExeclogPrivState priv;
	ExeclogStartInfo info;
	const ExeclogStartInfo *found;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name;
	char	   *account = NULL;
	ArrayType  *payloads;
	Datum	   *elems;
	bool	   *elnulls;
	int			nelems;
	int			i;
	Datum		values[5];
	uint64		n;
	uint64		r;

	require_arg(fcinfo, 0, "automation name");
	require_arg(fcinfo, 1, "payloads");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	payloads = PG_GETARG_ARRAYTYPE_P(1);
	if (!PG_ARGISNULL(2))
		account = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (ARR_NDIM(payloads) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("payloads must be a one-dimensional array")));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	begin_api_call(&priv);
	found = find_to_start(name, account, "execlog.start_many()", &info);

	/* every payload a JSON object (NULL: an empty one), before inserting */
	deconstruct_array(payloads, JSONBOID, -1, false, TYPALIGN_INT,
					  &elems, &elnulls, &nelems);
	for (i = 0; i < nelems; i++)
	{
		if (!elnulls[i])
		{
			char		which[64];

			snprintf(which, sizeof(which), "element %d of payloads",
					 i + ARR_LBOUND(payloads)[0]);
			payload_check(DatumGetJsonbP(elems[i]), which);
		}
	}

	if (nelems > 0)
	{
		char		nulls[6] = " n   ";

		values[0] = Int64GetDatum(info.automation_id);
		values[1] = (Datum) 0;	/* the manual trigger, from the preset */
		values[2] = CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false));
		if (found == NULL)
		{
			/* no manual trigger: the guard refuses the first row */
			values[3] = PointerGetDatum(DatumGetJsonbP(elems[0]));
			nulls[3] = elnulls[0] ? 'n' : ' ';
			n = run_insert(&priv, found, &insert_execution_unchecked, values, nulls);
		}
		else
		{
			values[3] = PointerGetDatum(payloads);
			values[4] = Int64GetDatum(info.trigger_id);
			n = run_insert(&priv, found, &insert_executions, values, nulls);
			if (n == 0)
				refuse_gone(info.automation_id);
		}
		for (r = 0; r < n; r++)
		{
			bool		isnull;
			Datum		id = result_datum(r, 1, &isnull);

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &id, &isnull);
		}
	}
	end_api_call(&priv);
	return (Datum) 0;
}

/*
 * execlog.start_many(automation text, payloads jsonb[], account text)
 *		returns setof bigint
 */
Datum
execlog_start_many(PG_FUNCTION_ARGS)
{
	return api_call(start_many_body, fcinfo);
}

/*
 * check_execution_visible
 *		As the caller: error out unless the execution exists and is visible.
 */
static void
check_execution_visible(int64 id)
{
	Datum		values[1];

	values[0] = Int64GetDatum(id);
	if (execlog_run_saved(&execution_visible, values, NULL, true) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("execution %lld does not exist", (long long) id)));
}

/*
 * lock_status
 *		As the owner: lock an execution and return its status.
 */
static char *
lock_status(int64 id)
{
	Datum		values[1];

	values[0] = Int64GetDatum(id);
	if (execlog_run_saved(&lock_execution, values, NULL, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("execution %lld does not exist", (long long) id)));
	return result_text(1);
}

/* The body of execlog.retry, run by api_call. */
static Datum
retry_body(PG_FUNCTION_ARGS)
{
	ExeclogPrivState priv;
	Datum		values[2];
	int64		id;
	bool		from_start;
	char	   *status;
	int32		attempt;
	int32		max_retries;
	char	   *automation;
	bool		isnull;

	require_arg(fcinfo, 0, "execution id");
	id = PG_GETARG_INT64(0);
	from_start = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	values[0] = Int64GetDatum(id);
	values[1] = BoolGetDatum(from_start);

	begin_api_call(&priv);
	check_execution_visible(id);
	execlog_become_owner(&priv);

	if (execlog_run_saved(&lock_for_retry, values, NULL, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("execution %lld does not exist", (long long) id)));
	status = result_text(1);
	attempt = DatumGetInt32(result_datum(0, 2, &isnull));
	max_retries = DatumGetInt32(result_datum(0, 3, &isnull));
	automation = result_text(4);

	if (!EXECLOG_STATUS_IS_RETRYABLE(execlog_status_of_name(status)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("execution %lld cannot be retried: its status is \"%s\"",
						(long long) id, status),
				 errdetail("Only failed, partially executed and rejected executions can be retried.")));
	if (execlog_policy_response_forbids_retry(DatumGetBool(result_datum(0, 6, &isnull))))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("execution %lld cannot be retried: automation \"%s\" has a response step",
						(long long) id, automation),
				 errdetail("Its response may have been sent already and must not be sent twice."),
				 errhint("Start a new execution with execlog.start().")));
	if (DatumGetBool(result_datum(0, 5, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("execution %lld cannot be retried: its trigger was reconfigured",
						(long long) id),
				 errdetail("The trigger that started it was changed or removed after the execution started."),
				 errhint("Start a new execution with execlog.start().")));
	execlog_policy_check_budget(id, attempt, max_retries);

	execlog_run_saved(&do_retry, values, NULL, false);
	end_api_call(&priv);
	PG_RETURN_INT64(id);
}

/*
 * execlog.retry(execution_id bigint, from_start boolean) returns bigint
 *
 * Refusals, in this order: a status that cannot be retried, a response step,
 * a reconfigured trigger, the retry limit.
 */
Datum
execlog_retry(PG_FUNCTION_ARGS)
{
	return api_call(retry_body, fcinfo);
}

/* The body of execlog.cancel, run by api_call. */
static Datum
cancel_body(PG_FUNCTION_ARGS)
{
	ExeclogPrivState priv;
	Datum		values[1];
	int64		id;
	char	   *status;

	require_arg(fcinfo, 0, "execution id");
	id = PG_GETARG_INT64(0);
	values[0] = Int64GetDatum(id);

	begin_api_call(&priv);
	check_execution_visible(id);
	execlog_become_owner(&priv);
	status = lock_status(id);
	if (EXECLOG_STATUS_IS_FINAL(execlog_status_of_name(status)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("execution %lld cannot be cancelled: its status is \"%s\"",
						(long long) id, status),
				 errdetail("Only pending, queued, running and paused executions can be cancelled.")));
	execlog_run_saved(&do_cancel, values, NULL, false);
	{
		bool		isnull;
		Datum		worker = result_datum(0, 1, &isnull);

		/* interrupt the worker running it once this transaction commits */
		if (!isnull)
			execlog_cancel_at_commit(DatumGetInt32(worker), id);
	}
	end_api_call(&priv);
	PG_RETURN_VOID();
}

/*
 * execlog.cancel(execution_id bigint) returns void
 */
Datum
execlog_cancel(PG_FUNCTION_ARGS)
{
	return api_call(cancel_body, fcinfo);
}

/* The body of execlog.resume, run by api_call. */
static Datum
resume_body(PG_FUNCTION_ARGS)
{
	ExeclogPrivState priv;
	Datum		values[2];
	int64		id;
	char	   *status;

	require_arg(fcinfo, 0, "execution id");
	id = PG_GETARG_INT64(0);
	values[0] = Int64GetDatum(id);
	values[1] = payload_arg(fcinfo, 1);

	begin_api_call(&priv);
	check_execution_visible(id);
	execlog_become_owner(&priv);
	status = lock_status(id);
	if (execlog_status_of_name(status) != ES_PAUSED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("execution %lld cannot be resumed: its status is \"%s\"",
						(long long) id, status),
				 errdetail("Only paused executions can be resumed.")));
	if (execlog_run_saved(&waiting_task, values, NULL, true) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("execution %lld cannot be resumed: it is waiting for task %s",
						(long long) id, result_text(1)),
				 errhint("Close the task with execlog.complete_task() or execlog.dismiss_task().")));
	execlog_run_saved(&do_resume, values, NULL, false);
	end_api_call(&priv);
	PG_RETURN_VOID();
}

/*
 * execlog.resume(execution_id bigint, payload jsonb) returns void
 */
Datum
execlog_resume(PG_FUNCTION_ARGS)
{
	return api_call(resume_body, fcinfo);
}

/*
 * close_task
 *		Close an open task as done (with an outcome) or dismissed, as the
 *		caller's act: the caller must see the task (row-level security: its
 *		accounts only) and may close it (see task_visible); then, as the
 *		owner, the task (and its execution, when a step waits for the
 *		task) is locked and a step waiting for it is resumed.
 */
static void
close_task(FunctionCallInfo fcinfo, bool done)
{
	ExeclogPrivState priv;
	Datum		values[6];
	char		nulls[7] = "      ";
	int64		id;
	char	   *status;
	bool		isnull;
	Datum		execution_id;
	Datum		awaited_values[2];
	const char *verb = done ? "completed" : "dismissed";

	require_arg(fcinfo, 0, "task id");
	if (done)
		require_arg(fcinfo, 2, "outcome");
	id = PG_GETARG_INT64(0);
	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(done ? "done" : "dismissed");
	if (PG_ARGISNULL(1))
		nulls[2] = 'n';
	else
		values[2] = PG_GETARG_DATUM(1);
	if (done)
		values[3] = PG_GETARG_DATUM(2);
	else
		nulls[3] = 'n';
	values[4] = CStringGetTextDatum(execlog_actor);
	if (done)
		nulls[5] = 'n';
	else
		values[5] = CStringGetTextDatum(psprintf("task %lld was dismissed by \"%s\"",
												 (long long) id, execlog_actor));

	begin_api_call(&priv);
	if (execlog_run_saved(&task_visible, values, NULL, true) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("task %lld does not exist", (long long) id)));
	if (!DatumGetBool(result_datum(0, 3, &isnull)))
	{
		char	   *assignee = result_text(2);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to close task %lld assigned to \"%s\"",
						(long long) id, assignee),
				 errhint("Only members of role \"%s\" and the administrators (execlog_admin) of its account may complete or dismiss it.",
						 assignee)));
	}
	execution_id = result_datum(0, 1, &isnull);
	execlog_become_owner(&priv);

	/*
	 * Lock the execution only when a step waits for the task: the one that
	 * resumes it must not race a cancel (the execution first, then the
	 * task, as cancel locks them).  A task nothing waits for leaves its
	 * execution alone, so an open transaction that closed it does not hold
	 * up the worker running that execution.
	 */
	awaited_values[0] = execution_id;
	awaited_values[1] = Int64GetDatum(id);
	if (execlog_run_saved(&task_awaited, awaited_values, NULL, true) > 0)
		execlog_run_saved(&lock_task_execution, &execution_id, NULL, false);
	if (execlog_run_saved(&lock_task, values, NULL, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("task %lld does not exist", (long long) id)));
	status = result_text(1);
	if (strcmp(status, "open") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("task %lld cannot be %s: its status is \"%s\"",
						(long long) id, verb, status),
				 errdetail("Only open tasks can be completed or dismissed.")));
	execlog_run_saved(&do_close_task, values, nulls, false);
	end_api_call(&priv);
}

/* The body of execlog.complete_task, run by api_call. */
static Datum
complete_task_body(PG_FUNCTION_ARGS)
{
	close_task(fcinfo, true);
	PG_RETURN_VOID();
}

/*
 * execlog.complete_task(task_id bigint, note text, outcome text) returns void
 *
 * The step waiting for the task (if any) succeeds with output
 * {"task_id", "outcome", "note", "closed_by"}.
 */
Datum
execlog_complete_task(PG_FUNCTION_ARGS)
{
	return api_call(complete_task_body, fcinfo);
}

/* The body of execlog.dismiss_task, run by api_call. */
static Datum
dismiss_task_body(PG_FUNCTION_ARGS)
{
	close_task(fcinfo, false);
	PG_RETURN_VOID();
}

/*
 * execlog.dismiss_task(task_id bigint, note text) returns void
 *
 * The step waiting for the task (if any) fails with 'task 7 was dismissed
 * by "maria"'; its on_error decides what the execution does.
 */
Datum
execlog_dismiss_task(PG_FUNCTION_ARGS)
{
	return api_call(dismiss_task_body, fcinfo);
}

/*
 * require_pg_cron
 *		Refuse clearly when pg_cron is not installed in this database.
 */
static void
require_pg_cron(void)
{
	if (execlog_run_saved(&cron_installed, NULL, NULL, true) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("schedules need the pg_cron extension in this database"),
				 errhint("Add pg_cron to shared_preload_libraries, set cron.database_name to this database and run CREATE EXTENSION pg_cron.")));
}

/* The body of execlog.schedule, run by api_call. */
static Datum
schedule_body(PG_FUNCTION_ARGS)
{
	ExeclogPrivState priv;
	char	   *name;
	bool		enabled;
	bool		isnull;
	int64		automation_id;
	int64		trigger_id;
	int64		job;
	Datum		values[4];

	require_arg(fcinfo, 0, "automation name");
	require_arg(fcinfo, 1, "cron schedule");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	begin_api_call(&priv);
	automation_id = lookup_automation(name, NULL, &enabled,
									  "Rename one of them: schedules name the automation alone.");
	require_pg_cron();
	require_may_change(automation_id);

	execlog_become_owner(&priv);
	values[0] = Int64GetDatum(automation_id);
	values[1] = PG_GETARG_DATUM(1);
	execlog_run_saved(&cron_schedule, values, NULL, false);	/* checks the schedule */
	job = DatumGetInt64(result_datum(0, 1, &isnull));

	values[2] = payload_arg(fcinfo, 2);
	values[3] = Int64GetDatum(job);
	execlog_run_saved(&set_schedule, values, NULL, false);
	trigger_id = DatumGetInt64(result_datum(0, 1, &isnull));
	end_api_call(&priv);
	PG_RETURN_INT64(trigger_id);
}

/*
 * execlog.schedule(automation text, cron text, payload jsonb) returns bigint
 *		Start the automation on a pg_cron schedule; returns its trigger id.
 */
Datum
execlog_schedule(PG_FUNCTION_ARGS)
{
	return api_call(schedule_body, fcinfo);
}

/* The body of execlog.unschedule, run by api_call. */
static Datum
unschedule_body(PG_FUNCTION_ARGS)
{
	ExeclogPrivState priv;
	char	   *name;
	bool		enabled;
	Datum		values[1];

	require_arg(fcinfo, 0, "automation name");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	begin_api_call(&priv);
	values[0] = Int64GetDatum(lookup_automation(name, NULL, &enabled,
												"Rename one of them: schedules name the automation alone."));
	require_may_change(DatumGetInt64(values[0]));
	execlog_become_owner(&priv);
	/* the trigger on execlog.triggers removes the pg_cron job */
	if (execlog_run_saved(&drop_schedule, values, NULL, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("automation \"%s\" has no schedule", name)));
	end_api_call(&priv);
	PG_RETURN_VOID();
}

/*
 * execlog.unschedule(automation text) returns void
 */
Datum
execlog_unschedule(PG_FUNCTION_ARGS)
{
	return api_call(unschedule_body, fcinfo);
}

/*
 * watched_table
 *		The qualified name of a table the caller may put triggers on.
 */
static char *
watched_table(Oid relid)
{
	char		kind = get_rel_relkind(relid);
	char	   *name = get_rel_name(relid);

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", name),
				 errdetail("Only rows of tables can start automations.")));
	if (get_rel_namespace(relid) == execlog_schema_oid())
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("table \"%s\" of execlog cannot be watched", name),
				 errdetail("A watch on execlog's own tables would start automations from their own bookkeeping.")));
	if (IsCatalogRelationOid(relid) || IsToastNamespace(get_rel_namespace(relid)) ||
		get_rel_namespace(relid) == PG_CATALOG_NAMESPACE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("system catalog \"%s\" cannot be watched", name)));
	if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("temporary table \"%s\" cannot be watched", name),
				 errdetail("Its rows are written by one session and go with it.")));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_TRIGGER) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", name),
				 errhint("Watching a table needs the TRIGGER privilege on it.")));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), name);
}

/* The body of execlog.watch, run by api_call. */
static Datum
watch_body(PG_FUNCTION_ARGS)
{
	ExeclogPrivState priv;
	char	   *name;
	char	   *table;
	char	   *condition = NULL;
	bool		enabled;
	bool		isnull;
	int64		automation_id;
	int64		trigger_id;
	Datum		values[4];
	char		nulls[5] = "    ";
	StringInfoData sql;

	require_arg(fcinfo, 0, "table");
	require_arg(fcinfo, 1, "automation name");
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(2))
		condition = text_to_cstring(PG_GETARG_TEXT_PP(2));

	begin_api_call(&priv);
	automation_id = lookup_automation(name, NULL, &enabled,
									  "Rename one of them: watches name the automation alone.");
	require_may_change(automation_id);
	table = watched_table(PG_GETARG_OID(0));
	values[0] = Int64GetDatum(automation_id);
	values[1] = ObjectIdGetDatum(PG_GETARG_OID(0));
	if (execlog_run_saved(&watch_overlap, values, NULL, true) > 0)
	{
		char	   *other = result_text(1);

		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 DatumGetBool(result_datum(0, 2, &isnull)) ?
				 errmsg("automation \"%s\" already watches table %s, of which %s is a partition",
						name, other, table) :
				 errmsg("automation \"%s\" already watches table %s, a partition of %s",
						name, other, table),
				 errhint("A watch on a partitioned table covers all its partitions: unwatch the other table first.")));
	}

	/*
	 * The row trigger is created as the caller, who may create triggers on
	 * the table: the condition can do nothing the caller could not.
	 */
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE OR REPLACE TRIGGER %s AFTER INSERT OR UPDATE ON %s FOR EACH ROW",
					 quote_identifier(psprintf("execlog_watch_" INT64_FORMAT, automation_id)),
					 table);
	if (condition != NULL)
		appendStringInfo(&sql, " WHEN (%s\n)", condition);
	appendStringInfo(&sql, " EXECUTE FUNCTION execlog._watch_fire('" INT64_FORMAT "')",
					 automation_id);
	if (SPI_execute(sql.data, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create the trigger of the watch");

	execlog_become_owner(&priv);
	values[0] = Int64GetDatum(automation_id);
	values[1] = CStringGetTextDatum(table);
	values[2] = condition ? CStringGetTextDatum(condition) : (Datum) 0;
	nulls[2] = condition ? ' ' : 'n';
	values[3] = ObjectIdGetDatum(PG_GETARG_OID(0));
	execlog_run_saved(&set_watch, values, nulls, false);
	trigger_id = DatumGetInt64(result_datum(0, 1, &isnull));
	end_api_call(&priv);
	PG_RETURN_INT64(trigger_id);
}

/*
 * execlog.watch(tbl regclass, automation text, condition text) returns bigint
 *		Start the automation for every row of tbl inserted or updated that
 *		meets the condition; returns the data trigger's id.
 */
Datum
execlog_watch(PG_FUNCTION_ARGS)
{
	return api_call(watch_body, fcinfo);
}

/* The body of execlog.unwatch, run by api_call. */
static Datum
unwatch_body(PG_FUNCTION_ARGS)
{
	ExeclogPrivState priv;
	char	   *name;
	char	   *table;
	bool		enabled;
	Datum		values[2];

	require_arg(fcinfo, 0, "table");
	require_arg(fcinfo, 1, "automation name");
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));

	begin_api_call(&priv);
	values[0] = Int64GetDatum(lookup_automation(name, NULL, &enabled,
												"Rename one of them: watches name the automation alone."));
	require_may_change(DatumGetInt64(values[0]));
	table = watched_table(PG_GETARG_OID(0));
	values[1] = ObjectIdGetDatum(PG_GETARG_OID(0));
	execlog_become_owner(&priv);
	/* the trigger on execlog.triggers drops the table's row trigger */
	if (execlog_run_saved(&drop_watch, values, NULL, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("automation \"%s\" does not watch table %s", name, table)));
	end_api_call(&priv);
	PG_RETURN_VOID();
}

/*
 * execlog.unwatch(tbl regclass, automation text) returns void
 */
Datum
execlog_unwatch(PG_FUNCTION_ARGS)
{
	return api_call(unwatch_body, fcinfo);
}
