--
-- Issue 13 (scale): execlog.start_many(), the set-based enqueue; the
-- count of finished executions returns at once for new executions.
--
CREATE FUNCTION execlog.start_many(automation text, payloads jsonb[], account text DEFAULT NULL)
	RETURNS SETOF bigint LANGUAGE c AS 'MODULE_PATHNAME', 'execlog_start_many';
COMMENT ON FUNCTION execlog.start_many(text, jsonb[], text) IS 'start an automation once per payload (manual trigger) in one statement; returns the execution ids in the order of the payloads';
REVOKE ALL ON FUNCTION execlog.start_many(text, jsonb[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION execlog.start_many(text, jsonb[], text) TO execlog_operator;

CREATE OR REPLACE FUNCTION execlog._count_executions() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/*
	 * Only changes to a final status count: none when executions are
	 * created, so execlog.start() stops here (one scan of its new rows).
	 */
	IF NOT EXISTS (SELECT FROM new_rows n
				   WHERE n.to_status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')) THEN
		RETURN NULL;
	END IF;
	/* restoring a dump (a superuser's COPY into this table): the counters come with it */
	IF pg_catalog.starts_with(pg_catalog.ltrim(pg_catalog.current_query()),
							  'COPY execlog.' OPERATOR(pg_catalog.||) TG_TABLE_NAME OPERATOR(pg_catalog.||) ' ')
	   AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles
				   WHERE rolname OPERATOR(pg_catalog.=) SESSION_USER AND rolsuper) THEN
		RETURN NULL;
	END IF;
	INSERT INTO execlog.metric_counters AS c (metric, subject, status, shard, value)
	SELECT 'executions', e.automation_id::text, n.to_status::text,
		   pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%) 8, pg_catalog.count(*)
	  FROM new_rows n
	  JOIN execlog.executions e ON e.id OPERATOR(pg_catalog.=) n.execution_id
	 WHERE n.to_status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
	 GROUP BY 2, 3
	ON CONFLICT (metric, subject, status, shard)
		DO UPDATE SET value = c.value OPERATOR(pg_catalog.+) excluded.value;
	RETURN NULL;
END
$$;
