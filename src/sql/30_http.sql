
/* ------------------------------------------------------------------------
 * HTTP steps
 * ------------------------------------------------------------------------ */

/*
 * Timed pauses by due time, for the workers' look for pauses that ended.
 * Executions waiting for an HTTP answer are "running", often by the
 * hundred: without this index that look walks all of them on every pass.
 */
CREATE INDEX executions_paused_due ON execlog.executions (run_after)
	WHERE status = 'paused';
