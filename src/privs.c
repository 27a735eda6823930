/*-------------------------------------------------------------------------
 *
 * privs.c
 *	  Running SPI safely on behalf of a caller, and saved statements.
 *
 * The SQL API functions are not SECURITY DEFINER: they first look rows up
 * as the caller, so that privileges and row-level security decide what the
 * caller may see, and only then switch to the extension owner to write.
 * While they run, search_path is pinned to pg_catalog, pg_temp so objects
 * created by others cannot capture any name they use.
 *
 *-------------------------------------------------------------------------
 */
#include "execlog.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "plans.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

/*
 * execlog_schema_oid
 *		OID of the execlog schema; errors out when the extension is missing.
 */
Oid
execlog_schema_oid(void)
{
	return get_namespace_oid("execlog", false);
}

/*
 * execlog_owner
 *		The role that owns the execlog schema (the extension owner).
 */
Oid
execlog_owner(void)
{
	HeapTuple	tup;
	Oid			owner;
	Oid			nsp = execlog_schema_oid();

	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * execlog_pin_search_path
 *		Pin search_path to pg_catalog, pg_temp until execlog_restore.
 */
void
execlog_pin_search_path(ExeclogPrivState *state)
{
	GetUserIdAndSecContext(&state->save_userid, &state->save_sec_context);
	state->switched = false;
	state->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * execlog_become_owner
 *		Switch to the extension owner (after execlog_pin_search_path).
 *
 * An error unwinds the switch with the transaction, like SECURITY DEFINER.
 */
void
execlog_become_owner(ExeclogPrivState *state)
{
	SetUserIdAndSecContext(execlog_owner(),
						   state->save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	state->switched = true;
}

/*
 * execlog_restore
 *		Undo execlog_become_owner and execlog_pin_search_path.
 */
void
execlog_restore(ExeclogPrivState *state)
{
	if (state->switched)
		SetUserIdAndSecContext(state->save_userid, state->save_sec_context);
	state->switched = false;
	AtEOXact_GUC(true, state->save_nestlevel);
}

/*
 * execlog_run_saved
 *		Execute a saved statement (preparing it on first use); returns
 *		SPI_processed.  SPI must be connected.
 */
uint64
execlog_run_saved(SavedStmt *stmt, Datum *values, const char *nulls, bool read_only)
{
	int			rc;
	int			i;

	if (stmt->plan == NULL)
	{
		for (i = 0; i < stmt->nargs; i++)
			if (type_is_array(stmt->argtypes[i]))
				stmt->keyed = true;
		if (stmt->keyed)
			stmt->plan = execlog_keyed_prepare(stmt->sql, stmt->nargs, stmt->argtypes);
		else
		{
			SPIPlanPtr	p = SPI_prepare(stmt->sql, stmt->nargs, stmt->argtypes);

			if (p == NULL)
				elog(ERROR, "SPI_prepare failed for \"%s\": %s", stmt->sql,
					 SPI_result_code_string(SPI_result));
			SPI_keepplan(p);
			stmt->plan = p;
		}
	}
	/* statements that find a batch of rows by key: index lookups, see plans.c */
	if (stmt->keyed)
		execlog_keyed_plan(stmt->plan);
	rc = SPI_execute_plan(stmt->plan, values, nulls, read_only, 0);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * execlog_try
 *		Run fn(arg) in an internal subtransaction: its effects are kept when
 *		it returns, rolled back when it raises an error.  Returns that error
 *		(copied into the caller's memory context), or NULL.
 */
ErrorData *
execlog_try(void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}
