/*-------------------------------------------------------------------------
 *
 * status.c
 *	  The trigger that enforces the execution status machine.
 *
 * execlog._executions_guard() is a BEFORE INSERT OR UPDATE row trigger on
 * execlog.executions.  It applies to every writer, plain UPDATEs included:
 *
 *	- a new execution starts as "pending", or "queued" when its automation
 *	  has a throttle, with attempt 1; the automation's account, revision and
 *	  (unless given) its manual trigger and that trigger's revision are
 *	  filled in;
 *	- a status change must follow the transition table below, or it raises
 *	  an error naming both statuses and changes nothing;
 *	- failed / partially_executed / rejected go back to pending / queued
 *	  only as a retry: attempt goes up by exactly one and never past
 *	  max_retries + 1; any other change of attempt is refused;
 *	- the identifying columns and the payload never change;
 *	- updated_at, started_at and finished_at are maintained.
 *
 * Accepted changes are appended to execlog.transitions by a statement-level
 * trigger (see the install script) that reads the transition tables, so a
 * batch update by a worker costs one INSERT, not one per row.
 *
 *-------------------------------------------------------------------------
 */
#include "execlog.h"

#include <ctype.h>

#include "status.h"
#include "policy.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(execlog_executions_guard);
PG_FUNCTION_INFO_V1(execlog_actor_name);

static const char *const status_names[ES_COUNT] = {
	"pending", "queued", "running", "paused", "success",
	"partially_executed", "failed", "rejected", "cancelled"
};

/*
 * execlog_status_name
 *		The execlog.status label of a status.
 */
const char *
execlog_status_name(ExecStatus status)
{
	Assert(status >= 0 && status < ES_COUNT);
	return status_names[status];
}

/*
 * execlog_status_of_name
 *		The status of an execlog.status label.
 */
ExecStatus
execlog_status_of_name(const char *name)
{
	int			i;

	for (i = 0; i < ES_COUNT; i++)
		if (strcmp(status_names[i], name) == 0)
			return (ExecStatus) i;
	elog(ERROR, "unknown execution status \"%s\"", name);
	return ES_FAILED;			/* keep the compiler quiet */
}

/* legal[from][to]: transitions allowed outside a retry (SPEC section 3) */
static const bool legal[ES_COUNT][ES_COUNT] = {
	/* pending */ {[ES_RUNNING] = true,[ES_CANCELLED] = true},
	/* queued */ {[ES_RUNNING] = true,[ES_CANCELLED] = true},
	/* running */ {[ES_PAUSED] = true,[ES_SUCCESS] = true,[ES_PARTIAL] = true,
	[ES_FAILED] = true,[ES_REJECTED] = true,[ES_CANCELLED] = true},
	/* paused */ {[ES_RUNNING] = true,[ES_REJECTED] = true,[ES_CANCELLED] = true},
	/* success */ {0},
	/* partially_executed */ {0},
	/* failed */ {0},
	/* rejected */ {0},
	/* cancelled */ {0},
};

/* Attribute numbers of the columns the guard reads or writes. */
typedef struct ExecAttrs
{
	int			id;
	int			automation_id;
	int			account_id;
	int			automation_revision;
	int			trigger_id;
	int			trigger_revision;
	int			trigger_kind;
	int			triggered_by;
	int			status;
	int			attempt;
	int			payload;
	int			error;
	int			created_at;
	int			started_at;
	int			finished_at;
	int			updated_at;
	int			run_after;
	int			worker;
} ExecAttrs;

/* Pending modifications of the row being written. */
typedef struct RowEdit
{
	int			natts;
	Datum	   *values;
	bool	   *nulls;
	bool	   *replace;
} RowEdit;

/*
 * The automation of a new execution and its trigger: the manual one, or
 * the one given.  Two statements rather than one with "$2 IS NULL", whose
 * plan would be made again for every insert.
 *
 * executions has no foreign keys (their per-row checks were half the cost
 * of a bulk start, README "Performance"): these lookups are the check that
 * the automation and the trigger exist, and they lock both FOR KEY SHARE,
 * as the foreign key's check did, so that neither can be deleted (or its
 * id changed) until the new execution's transaction ends; the delete side
 * is execlog_executions_referenced (references.c).  The API's own INSERT
 * (execlog_guard_preset) takes those locks in its statement, once.
 */
#define INSERT_LOOKUP \
	"SELECT a.account_id, a.revision, a.throttle IS NOT NULL," \
	"       t.id, t.revision, t.kind, t.automation_id = a.id" \
	"  FROM execlog.automations a LEFT JOIN LATERAL" \
	"       (SELECT t.id, t.revision, t.kind, t.automation_id FROM execlog.triggers t"

static SavedStmt insert_lookup_manual = {
	INSERT_LOOKUP " WHERE t.automation_id = a.id AND t.kind = 'manual' FOR KEY SHARE) t ON true"
	" WHERE a.id = $1 FOR KEY SHARE OF a",
	1, {INT8OID}
};

static SavedStmt insert_lookup_given = {
	INSERT_LOOKUP " WHERE t.id = $2 FOR KEY SHARE) t ON true"
	" WHERE a.id = $1 FOR KEY SHARE OF a",
	2, {INT8OID, INT8OID}
};

/*
 * What execlog.start() and start_many() already looked up about the
 * automation they insert executions of (execlog_guard_preset): while set,
 * the guard takes new executions of that automation through its manual
 * trigger from here instead of running insert_lookup_manual once per row.
 */
static bool preset_active = false;
static ExeclogStartInfo preset;

static SavedStmt retry_lookup = {
	"SELECT max_retries, throttle IS NOT NULL"
	"  FROM execlog.automations WHERE id = $1",
	1, {INT8OID}
};

static int
attnum_of(TupleDesc desc, const char *name)
{
	int			n = SPI_fnumber(desc, name);

	if (n <= 0)
		elog(ERROR, "execlog.executions has no column \"%s\"", name);
	return n;
}

static void
load_attrs(TupleDesc desc, ExecAttrs *a)
{
	a->id = attnum_of(desc, "id");
	a->automation_id = attnum_of(desc, "automation_id");
	a->account_id = attnum_of(desc, "account_id");
	a->automation_revision = attnum_of(desc, "automation_revision");
	a->trigger_id = attnum_of(desc, "trigger_id");
	a->trigger_revision = attnum_of(desc, "trigger_revision");
	a->trigger_kind = attnum_of(desc, "trigger_kind");
	a->triggered_by = attnum_of(desc, "triggered_by");
	a->status = attnum_of(desc, "status");
	a->attempt = attnum_of(desc, "attempt");
	a->payload = attnum_of(desc, "payload");
	a->error = attnum_of(desc, "error");
	a->created_at = attnum_of(desc, "created_at");
	a->started_at = attnum_of(desc, "started_at");
	a->finished_at = attnum_of(desc, "finished_at");
	a->updated_at = attnum_of(desc, "updated_at");
	a->run_after = attnum_of(desc, "run_after");
	a->worker = attnum_of(desc, "worker");
}

static void
edit_set(RowEdit *e, int attnum, Datum value, bool isnull)
{
	e->values[attnum - 1] = value;
	e->nulls[attnum - 1] = isnull;
	e->replace[attnum - 1] = true;
}

/*
 * The OIDs of the execlog.status labels, looked up once per enum type (a
 * new one when the extension is created again).
 */
static Oid	status_enum_type = InvalidOid;
static Oid	status_oids[ES_COUNT];

/* Forget the labels when any type changes (dropped, created again). */
static void
status_forget(Datum arg, int cacheid, uint32 hashvalue)
{
	status_enum_type = InvalidOid;
}

static void
status_lookup(Oid enumtype)
{
	static bool registered = false;
	int			i;

	if (enumtype == status_enum_type)
		return;
	if (!registered)
	{
		CacheRegisterSyscacheCallback(TYPEOID, status_forget, (Datum) 0);
		registered = true;
	}
	for (i = 0; i < ES_COUNT; i++)
		status_oids[i] = DatumGetObjectId(DirectFunctionCall2(enum_in,
															  CStringGetDatum(status_names[i]),
															  ObjectIdGetDatum(enumtype)));
	status_enum_type = enumtype;
}

/*
 * The attribute numbers, looked up once per relation until its relcache
 * entry is invalidated (ALTER TABLE, the extension created again).
 */
static Oid	attrs_relid = InvalidOid;
static ExecAttrs attrs_cache;

static void
attrs_forget(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == attrs_relid)
		attrs_relid = InvalidOid;
}

static void
cached_attrs(Relation rel, ExecAttrs *a)
{
	static bool registered = false;

	if (!registered)
	{
		CacheRegisterRelcacheCallback(attrs_forget, (Datum) 0);
		registered = true;
	}
	if (RelationGetRelid(rel) != attrs_relid)
	{
		load_attrs(RelationGetDescr(rel), &attrs_cache);
		attrs_relid = RelationGetRelid(rel);
	}
	*a = attrs_cache;
}

/*
 * status_of
 *		Map an execlog.status enum datum to ExecStatus.
 */
static ExecStatus
status_of(Oid enumtype, Datum d)
{
	int			i;

	status_lookup(enumtype);
	for (i = 0; i < ES_COUNT; i++)
		if (status_oids[i] == DatumGetObjectId(d))
			return (ExecStatus) i;
	elog(ERROR, "unrecognized execution status %u", DatumGetObjectId(d));
	return ES_PENDING;			/* keep compiler quiet */
}

/*
 * status_datum
 *		The execlog.status enum datum for a status.
 */
static Datum
status_datum(Oid enumtype, ExecStatus s)
{
	status_lookup(enumtype);
	return ObjectIdGetDatum(status_oids[s]);
}

static int64
get_int8(HeapTuple tup, TupleDesc desc, int attnum, bool *isnull)
{
	Datum		d = heap_getattr(tup, attnum, desc, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

static int32
get_int4(HeapTuple tup, TupleDesc desc, int attnum, bool *isnull)
{
	Datum		d = heap_getattr(tup, attnum, desc, isnull);

	return *isnull ? 0 : DatumGetInt32(d);
}

/*
 * column_changed
 *		Whether a column differs between the old and new row.
 */
static bool
column_changed(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc, int attnum)
{
	bool		onull,
				nnull;
	Datum		od = heap_getattr(oldtup, attnum, desc, &onull);
	Datum		nd = heap_getattr(newtup, attnum, desc, &nnull);
	Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);

	if (onull || nnull)
		return onull != nnull;
	return !datum_image_eq(od, nd, att->attbyval, att->attlen);
}

/*
 * run_lookup
 *		Run one of the guard's saved lookups as the extension owner.
 *
 * Returns the number of rows found; results are in SPI_tuptable until
 * SPI_finish.  A lookup that locks rows is not read_only.
 */
static uint64
run_lookup(SavedStmt *stmt, Datum *values, const char *nulls, bool read_only)
{
	ExeclogPrivState priv;
	uint64		n;

	execlog_pin_search_path(&priv);
	execlog_become_owner(&priv);
	n = execlog_run_saved(stmt, values, nulls, read_only);
	execlog_restore(&priv);
	return n;
}

static const char *
session_user_name(void)
{
	return GetUserNameFromId(GetSessionUserId(), false);
}

/*
 * guard_insert
 *		Fill in and check a new execution.
 */
static void
guard_insert(TupleDesc desc, HeapTuple tup, ExecAttrs *a, RowEdit *e)
{
	bool		isnull;
	int64		automation_id;
	int64		trigger_id;
	bool		trigger_given;
	Datum		args[2];
	char		nulls[3] = "  ";
	HeapTuple	res;
	TupleDesc	rdesc;
	bool		throttled;
	int32		attempt;
	Oid			status_type = TupleDescAttr(desc, a->status - 1)->atttypid;
	TimestampTz now = GetCurrentTimestamp();
	int64		id = get_int8(tup, desc, a->id, &isnull);

	automation_id = get_int8(tup, desc, a->automation_id, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("execution must name an automation")));
	trigger_id = get_int8(tup, desc, a->trigger_id, &trigger_given);
	trigger_given = !trigger_given;

	if (!trigger_given && preset_active && preset.automation_id == automation_id)
	{
		edit_set(e, a->account_id, Int64GetDatum(preset.account_id), false);
		edit_set(e, a->automation_revision, Int32GetDatum(preset.revision), false);
		throttled = preset.throttled;
		edit_set(e, a->trigger_id, Int64GetDatum(preset.trigger_id), false);
		edit_set(e, a->trigger_revision, Int32GetDatum(preset.trigger_revision), false);
		edit_set(e, a->trigger_kind, CStringGetTextDatum(preset.trigger_kind), false);
		goto looked_up;
	}

	args[0] = Int64GetDatum(automation_id);
	args[1] = Int64GetDatum(trigger_id);
	if (!trigger_given)
		nulls[1] = 'n';

	SPI_connect();
	if (run_lookup(trigger_given ? &insert_lookup_given : &insert_lookup_manual,
				   args, nulls, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("automation %lld does not exist", (long long) automation_id)));

	res = SPI_tuptable->vals[0];
	rdesc = SPI_tuptable->tupdesc;

	/* trigger: the given one must belong to the automation */
	(void) heap_getattr(res, 4, rdesc, &isnull);
	if (isnull)
	{
		if (trigger_given)
			ereport(ERROR,
					(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
					 errmsg("trigger %lld does not exist", (long long) trigger_id)));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("automation %lld has no manual trigger", (long long) automation_id)));
	}
	if (!DatumGetBool(heap_getattr(res, 7, rdesc, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trigger %lld does not belong to automation %lld",
						(long long) trigger_id, (long long) automation_id)));

	edit_set(e, a->account_id, heap_getattr(res, 1, rdesc, &isnull), false);
	edit_set(e, a->automation_revision, heap_getattr(res, 2, rdesc, &isnull), false);
	throttled = DatumGetBool(heap_getattr(res, 3, rdesc, &isnull));
	edit_set(e, a->trigger_id, heap_getattr(res, 4, rdesc, &isnull), false);
	edit_set(e, a->trigger_revision, heap_getattr(res, 5, rdesc, &isnull), false);
	edit_set(e, a->trigger_kind,
			 SPI_datumTransfer(heap_getattr(res, 6, rdesc, &isnull), false, -1),
			 false);
	SPI_finish();

looked_up:
	/* status: pending, or queued when throttled */
	(void) heap_getattr(tup, a->status, desc, &isnull);
	if (!isnull)
	{
		ExecStatus	s = status_of(status_type, heap_getattr(tup, a->status, desc, &isnull));

		if (s != ES_PENDING && s != ES_QUEUED)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("execution %lld cannot be created with status \"%s\"",
							(long long) id, status_names[s]),
					 errdetail("A new execution starts as \"pending\", or \"queued\" when its automation has a throttle.")));
	}
	edit_set(e, a->status,
			 status_datum(status_type, throttled ? ES_QUEUED : ES_PENDING), false);

	attempt = get_int4(tup, desc, a->attempt, &isnull);
	if (!isnull && attempt != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("execution %lld cannot be created with attempt %d",
						(long long) id, attempt),
				 errdetail("A new execution starts with attempt 1; later attempts come from execlog.retry().")));
	edit_set(e, a->attempt, Int32GetDatum(1), false);

	(void) heap_getattr(tup, a->triggered_by, desc, &isnull);
	if (isnull)
		edit_set(e, a->triggered_by,
				 CStringGetTextDatum(session_user_name()), false);

	edit_set(e, a->created_at, TimestampTzGetDatum(now), false);
	edit_set(e, a->updated_at, TimestampTzGetDatum(now), false);
	edit_set(e, a->started_at, (Datum) 0, true);
	edit_set(e, a->finished_at, (Datum) 0, true);
	edit_set(e, a->worker, (Datum) 0, true);

	execlog_wake_at_commit();
}

/*
 * execlog_guard_preset
 *		Let the guard take new executions of info->automation_id through its
 *		manual trigger from *info (copied), until called with NULL.
 *
 * For the API's own INSERT of one or many executions, whose statement
 * looked the automation and its manual trigger up already, as the caller,
 * with the same query the guard would run: the guard then costs no SPI
 * call per row.  That INSERT must lock the automation and the trigger FOR
 * KEY SHARE itself (api.c, insert_execution), as the guard's lookup does.
 * The caller must clear it however its INSERT ends (PG_FINALLY): rows of
 * any other statement are looked up as usual.
 */
void
execlog_guard_preset(const ExeclogStartInfo *info)
{
	if (info == NULL)
	{
		preset_active = false;
		return;
	}
	preset = *info;
	preset_active = true;
}

/*
 * immutable_check
 *		Refuse changes of columns that identify an execution.
 */
static void
immutable_check(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
				ExecAttrs *a, int64 id)
{
	int			cols[] = {a->id, a->automation_id, a->account_id,
		a->automation_revision, a->trigger_revision, a->trigger_kind,
	a->triggered_by, a->payload, a->created_at};
	int			i;

	for (i = 0; i < (int) lengthof(cols); i++)
	{
		if (column_changed(oldtup, newtup, desc, cols[i]))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("column \"%s\" of execution %lld cannot be changed",
							NameStr(TupleDescAttr(desc, cols[i] - 1)->attname),
							(long long) id)));
	}

	/* trigger_id may only be cleared (ON DELETE SET NULL of its trigger) */
	if (column_changed(oldtup, newtup, desc, a->trigger_id))
	{
		bool		isnull;

		(void) heap_getattr(newtup, a->trigger_id, desc, &isnull);
		if (!isnull)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("column \"trigger_id\" of execution %lld cannot be changed",
							(long long) id)));
	}
}

/*
 * guard_retry
 *		Check a retry (failed/partially_executed/rejected -> pending/queued)
 *		and reset the per-attempt columns.
 */
static void
guard_retry(TupleDesc desc, HeapTuple newtup, ExecAttrs *a, RowEdit *e,
			int64 id, int32 old_attempt, int32 new_attempt, ExecStatus from,
			ExecStatus to)
{
	Datum		args[1];
	bool		isnull;
	int32		max_retries;
	bool		throttled;
	Oid			status_type = TupleDescAttr(desc, a->status - 1)->atttypid;
	int64		automation_id = get_int8(newtup, desc, a->automation_id, &isnull);

	if (new_attempt != old_attempt + 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("execution %lld cannot change status from \"%s\" to \"%s\"",
						(long long) id, status_names[from], status_names[to]),
				 errdetail("A retry must raise attempt by exactly one, from %d to %d.",
						   old_attempt, old_attempt + 1),
				 errhint("Use execlog.retry().")));

	args[0] = Int64GetDatum(automation_id);
	SPI_connect();
	if (run_lookup(&retry_lookup, args, NULL, true) == 0)
		elog(ERROR, "automation %lld of execution %lld does not exist",
			 (long long) automation_id, (long long) id);
	max_retries = DatumGetInt32(heap_getattr(SPI_tuptable->vals[0], 1,
											 SPI_tuptable->tupdesc, &isnull));
	throttled = DatumGetBool(heap_getattr(SPI_tuptable->vals[0], 2,
										  SPI_tuptable->tupdesc, &isnull));
	SPI_finish();

	/* old_attempt + 1 == new_attempt: the retry after old_attempt */
	execlog_policy_check_budget(id, old_attempt, max_retries);

	edit_set(e, a->status,
			 status_datum(status_type, throttled ? ES_QUEUED : ES_PENDING), false);
	edit_set(e, a->started_at, (Datum) 0, true);
	edit_set(e, a->finished_at, (Datum) 0, true);
	edit_set(e, a->error, (Datum) 0, true);
	edit_set(e, a->worker, (Datum) 0, true);
}

/*
 * guard_update
 *		Check an update of an execution against the status machine.
 */
static void
guard_update(TupleDesc desc, HeapTuple oldtup, HeapTuple newtup,
			 ExecAttrs *a, RowEdit *e)
{
	bool		isnull;
	int64		id = get_int8(oldtup, desc, a->id, &isnull);
	Oid			status_type = TupleDescAttr(desc, a->status - 1)->atttypid;
	ExecStatus	from = status_of(status_type, heap_getattr(oldtup, a->status, desc, &isnull));
	ExecStatus	to;
	int32		old_attempt = get_int4(oldtup, desc, a->attempt, &isnull);
	int32		new_attempt = get_int4(newtup, desc, a->attempt, &isnull);
	TimestampTz now = GetCurrentTimestamp();
	bool		wake = false;

	(void) heap_getattr(newtup, a->status, desc, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("status of execution %lld cannot be null", (long long) id)));
	to = status_of(status_type, heap_getattr(newtup, a->status, desc, &isnull));

	immutable_check(oldtup, newtup, desc, a, id);

	if (from == to)
	{
		if (new_attempt != old_attempt)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("attempt of execution %lld can only change through a retry",
							(long long) id),
					 errhint("Use execlog.retry().")));
	}
	else if ((from == ES_FAILED || from == ES_PARTIAL || from == ES_REJECTED) &&
			 (to == ES_PENDING || to == ES_QUEUED))
	{
		guard_retry(desc, newtup, a, e, id, old_attempt, new_attempt, from, to);
		wake = true;
	}
	else if (!legal[from][to])
	{
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("execution %lld cannot change status from \"%s\" to \"%s\"",
						(long long) id, status_names[from], status_names[to])));
	}
	else if (new_attempt != old_attempt)
	{
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("attempt of execution %lld can only change through a retry",
						(long long) id),
				 errhint("Use execlog.retry().")));
	}
	else
	{
		if (to == ES_RUNNING && (from == ES_PENDING || from == ES_QUEUED))
			edit_set(e, a->started_at, TimestampTzGetDatum(now), false);
		if (to == ES_SUCCESS || to == ES_PARTIAL || to == ES_FAILED ||
			to == ES_REJECTED || to == ES_CANCELLED)
		{
			(void) heap_getattr(newtup, a->finished_at, desc, &isnull);
			if (isnull)
				edit_set(e, a->finished_at, TimestampTzGetDatum(now), false);
		}
		/* a resumed execution waits for a worker to continue it */
		if (to == ES_RUNNING && from == ES_PAUSED)
		{
			(void) heap_getattr(newtup, a->worker, desc, &isnull);
			wake = isnull;
		}
	}

	/* work scheduled for later (pause for, automatic retry) */
	if (column_changed(oldtup, newtup, desc, a->run_after))
	{
		(void) heap_getattr(newtup, a->run_after, desc, &isnull);
		if (!isnull)
			wake = true;
	}

	edit_set(e, a->updated_at, TimestampTzGetDatum(now), false);
	if (wake)
		execlog_wake_at_commit();
}

/*
 * restoring_dump
 *		Whether the row comes from restoring a dump: a superuser's COPY into
 *		execlog.executions or one of its partitions (see execlog._restoring()).  Such rows are taken
 *		as dumped; every other writer goes through the status machine.
 */
static bool
restoring_dump(void)
{
	const char *q = debug_query_string;
	static const char prefix[] = "COPY execlog.executions";

	if (q == NULL || !superuser())
		return false;
	while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
		q++;
	if (strncmp(q, prefix, sizeof(prefix) - 1) != 0)
		return false;
	q += sizeof(prefix) - 1;
	/* the table, or one of its partitions (executions_p<k>, as dumped) */
	if (*q == ' ')
		return true;
	if (q[0] != '_' || q[1] != 'p' || !isdigit((unsigned char) q[2]))
		return false;
	q += 2;
	while (isdigit((unsigned char) *q))
		q++;
	return *q == ' ';
}

/*
 * execlog_executions_guard
 *		BEFORE INSERT OR UPDATE FOR EACH ROW trigger on execlog.executions.
 */
Datum
execlog_executions_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	newtup;
	ExecAttrs	a;
	RowEdit		e;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("execlog._executions_guard() must be called as a trigger")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("execlog._executions_guard() must be fired BEFORE, FOR EACH ROW")));

	desc = RelationGetDescr(trigdata->tg_relation);
	cached_attrs(trigdata->tg_relation, &a);

	e.natts = desc->natts;
	e.values = palloc0(sizeof(Datum) * desc->natts);
	e.nulls = palloc0(sizeof(bool) * desc->natts);
	e.replace = palloc0(sizeof(bool) * desc->natts);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) && restoring_dump())
		return PointerGetDatum(trigdata->tg_trigtuple);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		newtup = trigdata->tg_trigtuple;
		guard_insert(desc, newtup, &a, &e);
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		newtup = trigdata->tg_newtuple;
		guard_update(desc, trigdata->tg_trigtuple, newtup, &a, &e);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("execlog._executions_guard() must be fired for INSERT or UPDATE")));

	newtup = heap_modify_tuple(newtup, desc, e.values, e.nulls, e.replace);
	return PointerGetDatum(newtup);
}

/*
 * execlog_actor_name
 *		The name recorded in transitions.by for changes made right now.
 */
Datum
execlog_actor_name(PG_FUNCTION_ARGS)
{
	if (execlog_actor)
		PG_RETURN_TEXT_P(cstring_to_text(execlog_actor));
	PG_RETURN_TEXT_P(cstring_to_text(GetUserNameFromId(GetUserId(), false)));
}
