/*-------------------------------------------------------------------------
 *
 * execlog.h
 *	  Declarations shared by the modules of the execlog extension.
 *
 * execlog runs automations inside PostgreSQL and keeps a complete record
 * of every execution.  The modules are:
 *
 *	execlog.c	library entry point, shared memory, wake-at-commit
 *	guc.c		the execlog.* settings
 *	status.c	the trigger that enforces the execution status machine
 *	api.c		start / retry / cancel / resume / complete_task / dismiss_task
 *	privs.c		helpers to run SPI as the extension owner, safely
 *	version.c	the installed schema version against the library's
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXECLOG_H
#define EXECLOG_H

#include "postgres.h"

#include "executor/spi.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/spin.h"

/* Upper bound for execlog.workers; also sizes the shared memory area. */
#define EXECLOG_MAX_WORKERS 32

/*
 * The error of an http step whose request was aborted because its
 * execution was cancelled: written by execlog.cancel() (api.c) and by the
 * worker that aborts the request (steps_http_flight.c).
 */
#define EXECLOG_HTTP_CANCELLED_ERROR "request aborted: the execution is cancelled, no longer running"

/* ----------
 * Settings (guc.c)
 * ----------
 */
extern char *execlog_database;
extern int	execlog_workers;
extern int	execlog_max_connections_per_host;
extern int	execlog_http_timeout_ms;
extern int	execlog_max_payload_bytes;
extern char *execlog_http_allow;
extern char *execlog_http_deny;
extern char *execlog_smtp_url;
extern char *execlog_ssl_ca_file;
extern char *execlog_smtp_from;
extern int	execlog_alert_max_attempts;
extern int	execlog_alert_retry_delay_ms;
extern int	execlog_alert_coalesce_s;
extern bool execlog_alert_delivery;
extern int	execlog_retention_min;
extern int	execlog_partition_interval_min;
extern int	execlog_batch_size;

extern void execlog_define_gucs(void);

/* ----------
 * Shared state (execlog.c)
 * ----------
 */
typedef struct ExeclogWorkerSlot
{
	pid_t		pid;			/* 0 when the slot is not running */
	Latch	   *latch;			/* the worker's process latch */
	Oid			database;		/* database it is connected to */
	int64		execution_id;	/* execution being run right now, or 0 */
	pg_atomic_uint32 cancel_gen;	/* bumped (under mutex) by a committed
									 * cancel of execution_id; read without
									 * the lock by the worker (worker.c) */
	uint32		http_cancels;	/* bumped by a committed cancel of one of its
								 * executions waiting for an HTTP answer */
	bool		exit_requested; /* its database is being dropped */
} ExeclogWorkerSlot;

typedef struct ExeclogShared
{
	slock_t		mutex;			/* protects everything below */
	uint64		wakeups;		/* bumped by every wake-at-commit */
	ExeclogWorkerSlot slots[EXECLOG_MAX_WORKERS];
} ExeclogShared;

extern ExeclogShared *execlog_shared;
extern bool execlog_preloaded;

extern void execlog_wake_at_commit(void);
extern void execlog_cancel_at_commit(int slot, int64 execution_id);
extern void execlog_register_workers(void);
extern void execlog_wake_workers(void);

/* A clear error for ATTACH PARTITION of watched tables (watch_attach.c) */
extern void execlog_watch_attach_init(void);

/* partition_restore.c */
extern bool execlog_partition_restore_done(Node *parsetree);

/* ----------
 * Privilege helpers (privs.c)
 * ----------
 */
typedef struct ExeclogPrivState
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	bool		switched;
} ExeclogPrivState;

extern void execlog_pin_search_path(ExeclogPrivState *state);
extern void execlog_become_owner(ExeclogPrivState *state);
extern void execlog_restore(ExeclogPrivState *state);
extern Oid	execlog_owner(void);
extern ErrorData *execlog_try(void (*fn) (void *), void *arg);

/*
 * A statement run through SPI with a plan saved on first use in a backend;
 * the plan cache re-plans it when the role or the schema changes.
 */
typedef struct SavedStmt
{
	const char *sql;
	int			nargs;
	Oid			argtypes[14];
	SPIPlanPtr	plan;
	bool		keyed;			/* planned as index lookups (plans.c); implied
								 * by array arguments */
} SavedStmt;

extern uint64 execlog_run_saved(SavedStmt *stmt, Datum *values, const char *nulls,
								bool read_only);
extern Oid	execlog_schema_oid(void);

/*
 * An automation and its manual trigger as a new execution records them
 * (status.c, execlog_guard_preset).
 */
typedef struct ExeclogStartInfo
{
	int64		automation_id;
	int64		account_id;
	int32		revision;
	bool		throttled;
	int64		trigger_id;
	int32		trigger_revision;
	char		trigger_kind[NAMEDATALEN];
} ExeclogStartInfo;

extern void execlog_guard_preset(const ExeclogStartInfo *info);

/* ----------
 * Schema version (version.c)
 * ----------
 */
#ifndef EXECLOG_VERSION
#error "EXECLOG_VERSION must be defined by the Makefile"
#endif

typedef enum ExeclogSchemaState
{
	EXECLOG_SCHEMA_MISSING,		/* no extension in this database */
	EXECLOG_SCHEMA_OLDER,		/* ALTER EXTENSION execlog UPDATE is due */
	EXECLOG_SCHEMA_CURRENT,
	EXECLOG_SCHEMA_NEWER		/* the library is older than the schema */
} ExeclogSchemaState;

extern ExeclogSchemaState execlog_schema_state(const char **version);
extern void execlog_require_current_schema(void);

/*
 * Name recorded in transitions.by for changes made by this backend.  API
 * functions set it to the calling role before they switch to the extension
 * owner; workers set it to their own name.  NULL means "current_user".
 */
extern const char *execlog_actor;
extern const char *execlog_default_actor;

#endif							/* EXECLOG_H */
