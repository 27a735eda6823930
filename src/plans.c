/*-------------------------------------------------------------------------
 *
 * plans.c
 *	  Saved SPI plans for the statements that find a batch of rows through
 *	  their keys: the workers' claims and the executor's set-based loads and
 *	  writes.
 *
 * Such a statement touches a few hundred rows of tables that grow without
 * bound.  Its plan is cached, and a plan made while the tables were small
 * (a sequential scan hashed against the batch's ids, say) would read the
 * whole table on every batch once they are large: a burst of executions
 * then costs time quadratic in its size.  These statements are therefore
 * planned, once and whenever their plan is invalidated, as index lookups
 * (no sequential scans, no hash or merge joins), whatever the statistics
 * say.  The settings apply while planning only: triggers fired when the
 * statement runs plan their own statements as usual.
 *
 *-------------------------------------------------------------------------
 */
#include "plans.h"

#include "utils/guc.h"
#include "utils/plancache.h"
#include "utils/resowner.h"

/*
 * execlog_keyed_prepare
 *		Prepare and keep a statement that always runs its generic plan.
 */
SPIPlanPtr
execlog_keyed_prepare(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	p = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

	if (p == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(p);
	return p;
}

/*
 * execlog_keyed_plan
 *		Before running a statement of execlog_keyed_prepare: make its generic
 *		plan as index lookups, unless a valid one exists.
 */
void
execlog_keyed_plan(SPIPlanPtr plan)
{
	static const char *const off[] = {"enable_seqscan", "enable_hashjoin",
	"enable_mergejoin"};
	CachedPlanSource *ps = (CachedPlanSource *) linitial(SPI_plan_get_plan_sources(plan));
	CachedPlan *cplan;
	int			nest;
	int			i;

	if (ps->is_valid && ps->gplan != NULL && ps->gplan->is_valid)
		return;
	nest = NewGUCNestLevel();
	for (i = 0; i < (int) lengthof(off); i++)
		(void) set_config_option(off[i], "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	cplan = SPI_plan_get_cached_plan(plan);
	if (cplan != NULL)
		ReleaseCachedPlan(cplan, CurrentResourceOwner);
	AtEOXact_GUC(true, nest);
}
