/*-------------------------------------------------------------------------
 *
 * policy.h
 *	  What happens after an execution fails: the retry budget, whether a
 *	  retry is allowed at all, when the next automatic retry is due, and the
 *	  on_failure follow-ups.  One home (policy.c) for the executor, crash
 *	  recovery, a broken batch, execlog.retry() and the status guard.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXECLOG_POLICY_H
#define EXECLOG_POLICY_H

#include "engine.h"
#include "status.h"

#include "utils/array.h"

/* Whether attempt 'attempt' may be followed by another (max_retries + 1 in all). */
extern bool execlog_policy_budget_left(int32 attempt, int32 max_retries);

/* Whether a response step forbids retrying (it does: see policy.c). */
extern bool execlog_policy_response_forbids_retry(bool has_response_step);

/* Whether a retry after attempt 'attempt' is allowed (budget, no response step). */
extern bool execlog_policy_may_retry(int32 attempt, int32 max_retries,
									 bool has_response_step);

/* The retry-limit error of execution 'id' after attempt 'attempt', if reached. */
extern void execlog_policy_check_budget(int64 id, int32 attempt, int32 max_retries);

/* When the automatic retry after attempt 'attempt' is due. */
extern TimestampTz execlog_policy_retry_time(TimestampTz now, int64 retry_delay_ms,
											 int32 attempt, TimestampTz not_before);

/*
 * After the executor ended an execution: schedule its automatic retry
 * (run->run_after) or create its on_failure follow-ups (the alert is added
 * to 'alerts', created when the caller flushes it).
 */
extern void execlog_policy_after_failure(ExecRun *run, AlertBatch *alerts);

/*
 * The on_failure task and alert of a failed execution, placeholders
 * resolved: the task is created now, the alert added to 'alerts'.
 */
extern void execlog_policy_follow_ups(ExecRun *run, AlertBatch *alerts);

/*
 * After 'alerts' was flushed: append to the error of each run (ExecRun *
 * in 'runs') whose alert could not be written why.
 */
extern void execlog_policy_alert_errors(AlertBatch *alerts, List *runs);

/*
 * Fail the executions a worker slot left running, with 'error': those of
 * 'slot' or of a slot past execlog.workers (crash recovery, ids == NULL),
 * or the given ones still running on 'slot' (a broken batch).  Each is
 * retried at once when the budget allows, otherwise its follow-ups are
 * created.  Returns how many were failed.
 */
extern uint64 execlog_policy_fail_running(int slot, int nslots, ArrayType *ids,
										  const char *error);

#endif							/* EXECLOG_POLICY_H */
