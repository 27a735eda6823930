/*-------------------------------------------------------------------------
 *
 * engine.h
 *	  The execution engine: what a worker knows about the executions it
 *	  runs, and the step kinds.
 *
 *	worker.c	background workers: signals, main loop, claims, recovery
 *	executor.c	runs a claimed batch of executions step by step
 *	steps.c		step kinds, placeholders, conditions, the JSON document
 *	steps_http.c	http steps: validation, connections, recording results
 *	steps_http_flight.c	http steps in flight: batches, cancels, slow rows
 *	http_transport.c	the worker's libcurl multi handle (http.h)
 *	oauth2.c	OAuth2 token fetches and the tokens shared by the workers
 *	http_policy.c	execlog.http_allow / execlog.http_deny
 *	alerts.c		alert rows; the kinds of channel and their payloads
 *	alert_send.c	alert delivery by the workers (alerts.h)
 *	tasks.c		alert and task steps, escalation of overdue tasks
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXECLOG_ENGINE_H
#define EXECLOG_ENGINE_H

#include "execlog.h"

#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* One step definition, as loaded for a batch. */
typedef struct StepDef
{
	int32		position;
	char	   *name;
	char	   *kind;
	Jsonb	   *config;
	bool		continue_on_error;
	Datum		condition;		/* jsonpath, or 0 when none */
} StepDef;

/* One row of execution_steps to write at the end of the batch. */
typedef struct StepRow
{
	int32		position;
	char	   *name;
	char	   *kind;
	const char *status;
	TimestampTz started_at;		/* 0: NULL */
	TimestampTz finished_at;	/* 0: NULL */
	Jsonb	   *input;
	Jsonb	   *output;
	char	   *error;
	int32		http_status;	/* 0: NULL */
	int32		reused_from;	/* 0: NULL */
	bool		in_flight;		/* an http step's row, kept in memory (http.h) */
} StepRow;

/* A step output kept for the document ($.steps.<name>.output). */
typedef struct StepOutput
{
	char	   *name;
	Jsonb	   *output;
} StepOutput;

/* Everything about one execution while a worker runs it. */
typedef struct ExecRun
{
	int64		id;
	int64		automation_id;
	int64		account_id;
	int32		attempt;
	bool		from_start;
	bool		has_history;	/* a retry, or rows of this attempt exist */
	bool		expired;		/* its time limit passed while it was paused */
	bool		partial;		/* a step of this attempt failed, on_error = continue */
	char	   *stop_error;		/* a resumed step failed, on_error = stop */
	Jsonb	   *payload;
	Jsonb	   *context;
	Jsonb	   *resume;			/* NULL when none */
	TimestampTz started_at;
	TimestampTz deadline;		/* started_at + time_limit */
	char	   *time_limit_text;
	char	   *run_as;
	int32		max_retries;
	int32		auto_retries;
	int64		retry_delay_ms;
	bool		has_response_step;
	Jsonb	   *on_failure;		/* NULL when none */
	List	   *steps;			/* StepDef *, in position order */

	/* results */
	List	   *outputs;		/* StepOutput * */
	List	   *rows;			/* StepRow * to upsert */
	const char *status;			/* final or paused status */
	char	   *error;
	Jsonb	   *response;		/* NULL: unchanged */
	bool		context_changed;
	TimestampTz run_after;		/* 0: NULL */
	bool		cancelled;		/* cancelled while running: discard */

	/* http steps (see http.h) */
	struct HttpStep *http_request;	/* to send once the batch commits */
	struct HttpStepResult *http_result; /* result of the request it waited for */
	StepRow    *http_row;		/* that step's row, finished from http_result */
	int			http_index;		/* that step's index in steps */
	TimestampTz retry_not_before;	/* Retry-After of a 429/503 answer; 0: none */
} ExecRun;

/* steps.c */
extern Jsonb *execlog_document(ExecRun *run);
extern Jsonb *execlog_resolve_config(Jsonb *config, ExecRun *run);
extern bool execlog_condition_holds(Datum condition, Jsonb *doc);
extern void execlog_refuse_query_placeholders(StepDef *step);
extern Jsonb *execlog_run_sql_step(ExecRun *run, StepDef *step, Jsonb *input);
extern Jsonb *execlog_feedback_step(ExecRun *run, Jsonb *input);
extern Jsonb *execlog_jsonb_from_cstring(const char *s);
extern Jsonb *execlog_cap_payload(Jsonb *val);
extern Jsonb *execlog_jsonb_get(Jsonb *obj, const char *key);
extern char *execlog_jsonb_get_text(Jsonb *obj, const char *key);
extern Jsonb *execlog_jsonb_object(int n, const char **keys, Jsonb **vals);
extern Jsonb *execlog_jsonb_string(const char *s);
extern Jsonb *execlog_jsonb_int(int64 i);
extern void execlog_jsonb_push_key(JsonbParseState **state, const char *key);
extern void execlog_jsonb_push_value(JsonbParseState **state, JsonbIteratorToken tok,
									 Jsonb *val);

/* alerts.c */
extern bool execlog_add_alert(int64 execution_id, int64 account_id, Jsonb *spec);

/* tasks.c */
extern Jsonb *execlog_alert_step(ExecRun *run, StepDef *def, Jsonb *input);
extern bool execlog_task_step(ExecRun *run, StepDef *def, StepRow *row, Jsonb *input);
extern bool execlog_task_waits(Jsonb *input);
extern uint64 execlog_escalate_tasks(void);

/* executor.c */
extern void execlog_run_batch(int slot, List *ids);

/* worker.c */
extern int	execlog_worker_slot;
extern bool execlog_cancel_requested(int64 execution_id);
extern void execlog_set_current_execution(int slot, int64 execution_id);
extern void execlog_step_interruptible(bool on);
extern void execlog_batch_cancels_begin(void);
extern bool execlog_cancelled_at_boundary(int64 execution_id);

#endif							/* EXECLOG_ENGINE_H */
