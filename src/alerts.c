/*-------------------------------------------------------------------------
 *
 * alerts.c
 *	  Alert rows: what an alert specification ({"channel", "target",
 *	  "message"}) becomes in execlog.alerts.
 *
 * An alert names a channel of the execution's account (the row keeps the
 * channel's id, kind and name, never its secret config), or is "email"
 * with a literal address as target.  The specification was validated
 * when the automation was written (_on_failure_check); the row is built
 * here, in one place, whatever creates it (an execution's follow-ups, a
 * recovered execution, an alert step).
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

/*
 * One row per way of resolving an alert: a named channel of the account,
 * or a literal e-mail address (channel "email" with a target).  At most
 * one branch matches: a target is only accepted with channel "email".
 */
static SavedStmt add_alert = {
	"INSERT INTO execlog.alerts (execution_id, account_id, channel_id, channel, target,"
	"                            message, next_attempt_at)"
	" SELECT $1, $2, c.id, c.kind, c.name,"
	"        coalesce($5, 'execution ' OPERATOR(pg_catalog.||) $1::pg_catalog.text"
	"                                OPERATOR(pg_catalog.||) ' failed'), pg_catalog.now()"
	"   FROM execlog.channels c"
	"  WHERE $4 IS NULL AND c.account_id OPERATOR(pg_catalog.=) $2"
	"    AND c.name OPERATOR(pg_catalog.=) $3"
	" UNION ALL"
	" SELECT $1, $2, NULL, 'email', $4,"
	"        coalesce($5, 'execution ' OPERATOR(pg_catalog.||) $1::pg_catalog.text"
	"                                OPERATOR(pg_catalog.||) ' failed'), pg_catalog.now()"
	"  WHERE $3 OPERATOR(pg_catalog.=) 'email' AND $4 IS NOT NULL",
	5, {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID}
};

/*
 * execlog_add_alert
 *		Create the alert row of an alert specification for an execution;
 *		returns false (with a warning) when its channel is gone.
 */
bool
execlog_add_alert(int64 execution_id, int64 account_id, Jsonb *spec)
{
	char	   *channel = execlog_jsonb_get_text(spec, "channel");
	char	   *target = execlog_jsonb_get_text(spec, "target");
	char	   *message = execlog_jsonb_get_text(spec, "message");
	Datum		values[5];
	char		nulls[6] = "     ";

	if (channel == NULL)
	{
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alert of execution %lld names no channel",
						(long long) execution_id)));
		return false;
	}
	values[0] = Int64GetDatum(execution_id);
	values[1] = Int64GetDatum(account_id);
	values[2] = CStringGetTextDatum(channel);
	values[3] = target ? CStringGetTextDatum(target) : (Datum) 0;
	nulls[3] = target ? ' ' : 'n';
	values[4] = message ? CStringGetTextDatum(message) : (Datum) 0;
	nulls[4] = message ? ' ' : 'n';
	if (execlog_run_saved(&add_alert, values, nulls, false) == 0)
	{
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("alert of execution %lld not created: channel \"%s\" does not exist in its account",
						(long long) execution_id, channel)));
		return false;
	}
	return true;
}
