
/* ------------------------------------------------------------------------
 * Monitoring: cumulative counters and execlog.metrics()
 *
 * Counters are kept by statement-level triggers with transition tables, so
 * a scrape reads a few small rows instead of the history:
 *	- executions finished, by automation and final status: counted from the
 *	  rows appended to transitions (one per accepted status change);
 *	- steps finished, by kind and status: rows of execution_steps entering
 *	  success, failed or skipped (rows an attempt reused are not counted
 *	  again);
 *	- alerts, by channel and status: rows of alerts entering any status other
 *	  than pending.
 * Each backend adds to its own shard of a counter (pid modulo 8), so two
 * workers finishing executions of one automation do not wait for each
 * other's row lock; execlog.metrics() sums the shards.
 * (The same text is in src/sql/60_metrics.sql and src/sql/update/0.1--0.2/09_metrics.sql.)
 * ------------------------------------------------------------------------ */
CREATE TABLE execlog.metric_counters (
	metric		text NOT NULL CHECK (metric IN ('executions', 'steps', 'alerts')),
	subject		text NOT NULL,
	status		text NOT NULL,
	shard		integer NOT NULL,
	value		bigint NOT NULL,
	PRIMARY KEY (metric, subject, status, shard)
);
COMMENT ON TABLE execlog.metric_counters IS 'cumulative counters behind execlog.metrics() (internal; read execlog.metrics())';
COMMENT ON COLUMN execlog.metric_counters.metric IS 'executions (finished), steps (finished) or alerts (status reached)';
COMMENT ON COLUMN execlog.metric_counters.subject IS 'automation id for executions, step kind for steps, channel kind for alerts';
COMMENT ON COLUMN execlog.metric_counters.status IS 'the status reached';
COMMENT ON COLUMN execlog.metric_counters.shard IS 'backend pid modulo 8 of the writers that added to it';
COMMENT ON COLUMN execlog.metric_counters.value IS 'how many times since the counter was created';

/*
 * Count executions reaching a final status, from the appended transitions.
 * The join with executions must be index lookups per transition whatever
 * the caller set (_executions_log turns nested loops off): a hash join
 * would read the whole history at every finish.
 */
CREATE FUNCTION execlog._count_executions() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET enable_nestloop = on
	SET enable_hashjoin = off
	SET enable_mergejoin = off
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
COMMENT ON FUNCTION execlog._count_executions() IS 'counts finished executions for execlog.metrics() (internal)';

CREATE TRIGGER transitions_count AFTER INSERT ON execlog.transitions
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._count_executions();

/* Count step rows entering a final status (inserted so, or updated to it). */
CREATE FUNCTION execlog._count_steps() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* restoring a dump (a superuser's COPY into this table): the counters come with it */
	IF pg_catalog.starts_with(pg_catalog.ltrim(pg_catalog.current_query()),
							  'COPY execlog.' OPERATOR(pg_catalog.||) TG_TABLE_NAME OPERATOR(pg_catalog.||) ' ')
	   AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles
				   WHERE rolname OPERATOR(pg_catalog.=) SESSION_USER AND rolsuper) THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'INSERT' THEN
		INSERT INTO execlog.metric_counters AS c (metric, subject, status, shard, value)
		SELECT 'steps', n.kind, n.status::text,
			   pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%) 8, pg_catalog.count(*)
		  FROM new_rows n
		 WHERE n.status IN ('success', 'failed', 'skipped') AND n.reused_from IS NULL
		 GROUP BY 2, 3
		ON CONFLICT (metric, subject, status, shard)
			DO UPDATE SET value = c.value OPERATOR(pg_catalog.+) excluded.value;
	ELSE
		INSERT INTO execlog.metric_counters AS c (metric, subject, status, shard, value)
		SELECT 'steps', n.kind, n.status::text,
			   pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%) 8, pg_catalog.count(*)
		  FROM new_rows n
		  JOIN old_rows o ON o.execution_id OPERATOR(pg_catalog.=) n.execution_id
			   AND o.attempt OPERATOR(pg_catalog.=) n.attempt
			   AND o.position OPERATOR(pg_catalog.=) n.position
		 WHERE n.status IN ('success', 'failed', 'skipped') AND n.reused_from IS NULL
		   AND o.status IS DISTINCT FROM n.status
		 GROUP BY 2, 3
		ON CONFLICT (metric, subject, status, shard)
			DO UPDATE SET value = c.value OPERATOR(pg_catalog.+) excluded.value;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._count_steps() IS 'counts finished steps for execlog.metrics() (internal)';

CREATE TRIGGER execution_steps_count_insert AFTER INSERT ON execlog.execution_steps
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._count_steps();
CREATE TRIGGER execution_steps_count_update AFTER UPDATE ON execlog.execution_steps
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._count_steps();

/* Count alert rows entering a status other than pending. */
CREATE FUNCTION execlog._count_alerts() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* restoring a dump (a superuser's COPY into this table): the counters come with it */
	IF pg_catalog.starts_with(pg_catalog.ltrim(pg_catalog.current_query()),
							  'COPY execlog.' OPERATOR(pg_catalog.||) TG_TABLE_NAME OPERATOR(pg_catalog.||) ' ')
	   AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles
				   WHERE rolname OPERATOR(pg_catalog.=) SESSION_USER AND rolsuper) THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'INSERT' THEN
		INSERT INTO execlog.metric_counters AS c (metric, subject, status, shard, value)
		SELECT 'alerts', n.channel, n.status,
			   pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%) 8, pg_catalog.count(*)
		  FROM new_rows n
		 WHERE n.status OPERATOR(pg_catalog.<>) 'pending'
		 GROUP BY 2, 3
		ON CONFLICT (metric, subject, status, shard)
			DO UPDATE SET value = c.value OPERATOR(pg_catalog.+) excluded.value;
	ELSE
		INSERT INTO execlog.metric_counters AS c (metric, subject, status, shard, value)
		SELECT 'alerts', n.channel, n.status,
			   pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%) 8, pg_catalog.count(*)
		  FROM new_rows n
		  JOIN old_rows o ON o.id OPERATOR(pg_catalog.=) n.id
		 WHERE n.status OPERATOR(pg_catalog.<>) 'pending' AND o.status IS DISTINCT FROM n.status
		 GROUP BY 2, 3
		ON CONFLICT (metric, subject, status, shard)
			DO UPDATE SET value = c.value OPERATOR(pg_catalog.+) excluded.value;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._count_alerts() IS 'counts alerts by channel and status reached for execlog.metrics() (internal)';

CREATE TRIGGER alerts_count_insert AFTER INSERT ON execlog.alerts
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._count_alerts();
CREATE TRIGGER alerts_count_update AFTER UPDATE ON execlog.alerts
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._count_alerts();

/*
 * What a monitoring system scrapes: the counters (summed over shards, with
 * account and automation names) and gauges read from small indexes and
 * pg_stat_activity.  SECURITY DEFINER so that a monitoring role sees every
 * account; it returns names and numbers only, never payloads.
 */
CREATE FUNCTION execlog.metrics()
	RETURNS TABLE (metric text, account text, automation text, step_kind text, channel text,
				   status text, value double precision)
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT 'executions_finished_total', coalesce(acc.name, ''),
		   coalesce(a.name, 'automation ' OPERATOR(pg_catalog.||) c.subject), '', '', c.status,
		   sum(c.value)::double precision
	  FROM execlog.metric_counters c
	  LEFT JOIN execlog.automations a ON a.id::text OPERATOR(pg_catalog.=) c.subject
	  LEFT JOIN execlog.accounts acc ON acc.id OPERATOR(pg_catalog.=) a.account_id
	 WHERE c.metric OPERATOR(pg_catalog.=) 'executions'
	 GROUP BY 2, 3, 6
	UNION ALL
	SELECT 'steps_finished_total', '', '', c.subject, '', c.status, sum(c.value)::double precision
	  FROM execlog.metric_counters c
	 WHERE c.metric OPERATOR(pg_catalog.=) 'steps'
	 GROUP BY 4, 6
	UNION ALL
	SELECT 'alerts_total', '', '', '', c.subject, c.status, sum(c.value)::double precision
	  FROM execlog.metric_counters c
	 WHERE c.metric OPERATOR(pg_catalog.=) 'alerts'
	 GROUP BY 5, 6
	UNION ALL
	SELECT 'executions_current', '', '', '', '', s.status::text,
		   (SELECT count(*) FROM execlog.executions e
			 WHERE e.status OPERATOR(pg_catalog.=) s.status)::double precision
	  FROM unnest(ARRAY['pending', 'queued', 'running', 'paused']::execlog.status[]) AS s(status)
	UNION ALL
	SELECT 'oldest_waiting_seconds', '', '', '', '', '',
		   coalesce(extract(epoch FROM now() OPERATOR(pg_catalog.-) min(e.created_at)), 0)::double precision
	  FROM execlog.executions e
	 WHERE e.status IN ('pending', 'queued')
	UNION ALL
	SELECT 'workers_alive', '', '', '', '', '', count(*)::double precision
	  FROM pg_stat_activity
	 WHERE backend_type OPERATOR(pg_catalog.=) 'execlog worker'
	UNION ALL
	SELECT 'event_log_backlog', '', '', '', '', '', count(*)::double precision
	  FROM execlog.event_log_queue
$$;
COMMENT ON FUNCTION execlog.metrics() IS 'counters and gauges for monitoring (contrib/prometheus/execlog.yaml): every account, no payloads';

REVOKE ALL ON FUNCTION execlog._count_executions(), execlog._count_steps(), execlog._count_alerts(),
	execlog.metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION execlog.metrics() TO execlog_reader;

SELECT pg_catalog.pg_extension_config_dump('execlog.metric_counters', '');
