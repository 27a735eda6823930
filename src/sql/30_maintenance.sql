
/* ------------------------------------------------------------------------
 * Maintenance: pruning old executions
 * ------------------------------------------------------------------------ */

/* execlog.prune(): src/sql/80_partitions.sql */
CREATE INDEX executions_finished ON execlog.executions (finished_at)
	WHERE status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled');

GRANT DELETE ON execlog.executions TO execlog_admin;
