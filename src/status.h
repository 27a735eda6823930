/*-------------------------------------------------------------------------
 *
 * status.h
 *	  The execution statuses (the execlog.status enum) as C values, so that
 *	  C code compares statuses, not strings.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXECLOG_STATUS_H
#define EXECLOG_STATUS_H

/* Execution statuses, in the order of the execlog.status enum. */
typedef enum ExecStatus
{
	ES_PENDING,
	ES_QUEUED,
	ES_RUNNING,
	ES_PAUSED,
	ES_SUCCESS,
	ES_PARTIAL,
	ES_FAILED,
	ES_REJECTED,
	ES_CANCELLED,
	ES_COUNT
} ExecStatus;

/* Its label in execlog.status ("partially_executed" for ES_PARTIAL). */
extern const char *execlog_status_name(ExecStatus status);

/* The status of a label; an unknown label is an internal error. */
extern ExecStatus execlog_status_of_name(const char *name);

/* Whether an execution in this status ended (SPEC section 3). */
#define EXECLOG_STATUS_IS_FINAL(s) ((s) >= ES_SUCCESS)

/* Whether it ended without success: what a retry may start again. */
#define EXECLOG_STATUS_IS_RETRYABLE(s) \
	((s) == ES_FAILED || (s) == ES_REJECTED || (s) == ES_PARTIAL)

#endif							/* EXECLOG_STATUS_H */
