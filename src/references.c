/*-------------------------------------------------------------------------
 *
 * references.c
 *	  The referenced side of executions' references to automations and
 *	  triggers, which are not foreign keys.
 *
 * A foreign key checks every inserted row with one query (two for
 * executions: automation_id and trigger_id), which made half the cost of a
 * bulk start.  Instead, the status trigger's lookup of a new execution's
 * automation and trigger (status.c, guard_insert) is the check, and it
 * locks both rows FOR KEY SHARE as the foreign key's check does; a bulk
 * start takes that lock once.  This file holds what the foreign keys did
 * on the other side, with their semantics and messages:
 *
 *	- deleting an automation, or changing its id, while executions refer
 *	  to it is refused (NO ACTION);
 *	- deleting a trigger sets trigger_id of its executions to NULL (ON
 *	  DELETE SET NULL); changing its id while referenced is refused;
 *	- TRUNCATE of automations or triggers is refused while executions has
 *	  rows that refer to them.
 *
 * Locking is that of ri_triggers.c: the deleting statement holds the
 * referenced row's lock, so a new execution's FOR KEY SHARE waits for it
 * (and then finds the row gone), and the check here runs after the row is
 * locked, seeing what committed before.  Under REPEATABLE READ or
 * SERIALIZABLE it runs with the latest snapshot and the transaction's as
 * crosscheck, so an execution that committed after the transaction's
 * snapshot is seen too (a serialization failure for the set-null update).
 * Restoring a dump does not go through here: the row triggers fire only
 * on DELETE, UPDATE and TRUNCATE.
 *
 *-------------------------------------------------------------------------
 */
#include "execlog.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(execlog_executions_referenced);

/* The queries, prepared once per backend. */
typedef struct RefQuery
{
	const char *sql;
	int			nargs;
	SPIPlanPtr	plan;
} RefQuery;

static RefQuery automation_used = {
	"SELECT 1 FROM execlog.executions x"
	" WHERE x.automation_id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x", 1
};

static RefQuery trigger_used = {
	"SELECT 1 FROM execlog.executions x"
	" WHERE x.trigger_id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x", 1
};

static RefQuery trigger_set_null = {
	"UPDATE execlog.executions SET trigger_id = NULL"
	" WHERE trigger_id OPERATOR(pg_catalog.=) $1", 1
};

static RefQuery any_execution = {
	"SELECT 1 FROM execlog.executions x LIMIT 1", 0
};

static RefQuery any_triggered_execution = {
	"SELECT 1 FROM execlog.executions x WHERE x.trigger_id IS NOT NULL LIMIT 1", 0
};

/*
 * run_ref_query
 *		Run one of the queries as the extension owner, for key (unless the
 *		query takes none); limit 1 for a check.  Returns SPI_processed.
 */
static uint64
run_ref_query(RefQuery *q, int64 key, long limit)
{
	ExeclogPrivState priv;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	Snapshot	test_snapshot = InvalidSnapshot;
	Snapshot	crosscheck_snapshot = InvalidSnapshot;
	int			rc;

	execlog_pin_search_path(&priv);
	execlog_become_owner(&priv);
	if (q->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(q->sql, q->nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", q->sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		q->plan = plan;
	}
	values[0] = Int64GetDatum(key);
	if (IsolationUsesXactSnapshot())
	{
		CommandCounterIncrement();
		test_snapshot = GetLatestSnapshot();
		crosscheck_snapshot = GetTransactionSnapshot();
	}
	rc = SPI_execute_snapshot(q->plan, values, NULL, test_snapshot,
							  crosscheck_snapshot, false, false, limit);
	if (rc < 0)
		elog(ERROR, "SPI_execute_snapshot failed for \"%s\": %s", q->sql,
			 SPI_result_code_string(rc));
	execlog_restore(&priv);
	return SPI_processed;
}

/*
 * refuse_referenced
 *		The foreign key's error for a referenced key deleted or changed.
 */
static void
refuse_referenced(const char *table, const char *constraint, int64 key)
{
	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("update or delete on table \"%s\" violates foreign key constraint \"%s\" on table \"executions\"",
					table, constraint),
			 errdetail("Key (id)=(%lld) is still referenced from table \"executions\".",
					   (long long) key)));
}

/*
 * execlog_executions_referenced
 *		AFTER DELETE OR UPDATE OF id FOR EACH ROW and BEFORE TRUNCATE FOR
 *		EACH STATEMENT trigger on execlog.automations and execlog.triggers.
 */
Datum
execlog_executions_referenced(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *table;
	bool		automations;
	const char *constraint;
	HeapTuple	oldtup;
	HeapTuple	newtup;
	TupleDesc	desc;
	int			idcol;
	int64		key;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("execlog._executions_referenced() must be called as a trigger")));
	table = RelationGetRelationName(trigdata->tg_relation);
	automations = strcmp(table, "automations") == 0;
	if (!automations && strcmp(table, "triggers") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("execlog._executions_referenced() must be fired on execlog.automations or execlog.triggers")));
	constraint = automations ? "executions_automation_id_fkey" : "executions_trigger_id_fkey";

	SPI_connect();
	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		if (run_ref_query(automations ? &any_execution : &any_triggered_execution, 0, 1) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot truncate a table referenced in a foreign key constraint"),
					 errdetail("Table \"executions\" references \"%s\".", table),
					 errhint("Truncate table \"executions\" first.")));
		SPI_finish();
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("execlog._executions_referenced() must be fired AFTER, FOR EACH ROW")));

	desc = RelationGetDescr(trigdata->tg_relation);
	idcol = SPI_fnumber(desc, "id");
	if (idcol <= 0)
		elog(ERROR, "table \"%s\" has no column \"id\"", table);
	oldtup = trigdata->tg_trigtuple;
	key = DatumGetInt64(heap_getattr(oldtup, idcol, desc, &isnull));
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		newtup = trigdata->tg_newtuple;
		if (DatumGetInt64(heap_getattr(newtup, idcol, desc, &isnull)) != key &&
			run_ref_query(automations ? &automation_used : &trigger_used, key, 1) > 0)
			refuse_referenced(table, constraint, key);
	}
	else if (automations)
	{
		if (run_ref_query(&automation_used, key, 1) > 0)
			refuse_referenced(table, constraint, key);
	}
	else
		(void) run_ref_query(&trigger_set_null, key, 0);
	SPI_finish();
	return PointerGetDatum(NULL);
}
