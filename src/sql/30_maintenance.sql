
/* ------------------------------------------------------------------------
 * Maintenance: pruning old executions
 * ------------------------------------------------------------------------ */

/*
 * Delete finished executions (with their steps, transitions, tasks and
 * alerts) that ended longer ago than older_than.  Runs with the caller's
 * rights: row-level security limits it to the caller's accounts.  An
 * execution waiting for an automatic retry is not finished.
 */
CREATE FUNCTION execlog.prune(older_than interval) RETURNS bigint
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	IF older_than IS NULL OR older_than < interval '0' THEN
		RAISE EXCEPTION 'older_than must be an interval of zero or more, not %', coalesce(older_than::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF older_than > interval '100 years' THEN
		RAISE EXCEPTION 'older_than must be at most 100 years, not %', older_than
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	DELETE FROM execlog.executions
	 WHERE status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
	   AND run_after IS NULL
	   AND coalesce(finished_at, updated_at) < pg_catalog.now() - older_than;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION execlog.prune(interval) IS 'delete finished executions older than that, with their steps, payloads and transitions; returns how many';

CREATE INDEX executions_finished ON execlog.executions (finished_at)
	WHERE status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled');

GRANT DELETE ON execlog.executions TO execlog_admin;
GRANT EXECUTE ON FUNCTION execlog.prune(interval) TO execlog_admin;
