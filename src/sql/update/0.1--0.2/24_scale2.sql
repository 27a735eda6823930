--
-- Issue 13 (scale), second part: the event-log queue exists only while the
-- event log is in use (its triggers start disabled; the first
-- merge_event_log() enables them and recomputes the log whole;
-- disable_event_log() stops it), and the finished-execution counter joins
-- executions by index whatever its caller set.  The update stops the queue
-- (keeping its rows): the first merge after it recomputes the event log and
-- empties the queue.
--
ALTER FUNCTION execlog._count_executions() SET enable_nestloop = on SET enable_hashjoin = off SET enable_mergejoin = off;

/* Whether the event log is in use (its change queue is being written). */
CREATE FUNCTION execlog.event_log_in_use() RETURNS boolean
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT t.tgenabled <> 'D' FROM pg_catalog.pg_trigger t
	 WHERE t.tgrelid = 'execlog.executions'::pg_catalog.regclass
	   AND t.tgname = 'executions_event_log_insert'
$$;
COMMENT ON FUNCTION execlog.event_log_in_use() IS 'true while the event log is in use: changes of executions are queued for execlog.merge_event_log() (from its first call until execlog.disable_event_log())';

/*
 * Start the queue and recompute the event log whole, set-based (hash joins
 * over executions, no queue).  ALTER TABLE takes SHARE ROW EXCLUSIVE on
 * executions and automations: it waits for the writers in flight, and the
 * writers after it wait for this transaction, so every change is either
 * seen here or queued for the next merge.  Caller: merge_event_log(), under
 * its lock.
 */
CREATE FUNCTION execlog._event_log_resync(OUT inserted bigint, OUT updated bigint)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	/*
	 * Whole tables: hash joins (merge_event_log() turns them off for its
	 * deltas), never a nested loop (an empty event_log would be scanned
	 * again for every row inserted into it)
	 */
	SET enable_hashjoin = on
	SET enable_mergejoin = on
	SET enable_nestloop = off
AS $$
BEGIN
	ALTER TABLE execlog.executions ENABLE TRIGGER executions_event_log_insert,
		ENABLE TRIGGER executions_event_log_update, ENABLE TRIGGER executions_event_log_delete;
	ALTER TABLE execlog.automations ENABLE TRIGGER automations_event_log;
	TRUNCATE execlog.event_log_queue;
	DELETE FROM execlog.event_log l
	 WHERE NOT EXISTS (SELECT FROM execlog.executions e WHERE e.id = l.instance_id);
	UPDATE execlog.event_log l
	   SET execution_template_name = a.name, account_id = e.account_id, created_at = e.created_at,
		   last_modified = e.updated_at, status = e.status
	  FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
	 WHERE e.id = l.instance_id
	   AND (l.execution_template_name, l.account_id, l.created_at, l.last_modified, l.status)
		   IS DISTINCT FROM (a.name, e.account_id, e.created_at, e.updated_at, e.status);
	GET DIAGNOSTICS updated = ROW_COUNT;
	INSERT INTO execlog.event_log (execution_template_name, instance_id, created_at, last_modified, status, account_id)
	SELECT a.name, e.id, e.created_at, e.updated_at, e.status, e.account_id
	  FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
	 WHERE NOT EXISTS (SELECT FROM execlog.event_log l WHERE l.instance_id = e.id);
	GET DIAGNOSTICS inserted = ROW_COUNT;
END
$$;
COMMENT ON FUNCTION execlog._event_log_resync() IS 'starts the event-log queue and recomputes execlog.event_log whole (internal, first merge)';

/*
 * Stop queueing: the event log keeps its rows as of the last merge, and the
 * next merge_event_log() recomputes it whole.
 */
CREATE FUNCTION execlog.disable_event_log() RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM execlog._serialize('merge_event_log', 0);
	ALTER TABLE execlog.executions DISABLE TRIGGER executions_event_log_insert,
		DISABLE TRIGGER executions_event_log_update, DISABLE TRIGGER executions_event_log_delete;
	ALTER TABLE execlog.automations DISABLE TRIGGER automations_event_log;
	TRUNCATE execlog.event_log_queue;
END
$$;
COMMENT ON FUNCTION execlog.disable_event_log() IS 'stops queueing changes for the event log and empties the queue; the next execlog.merge_event_log() recomputes the event log whole';

/*
 * Merge the executions changed since the last run into event_log.
 *
 * The queue is consumed in batches of at most 100,000 rows, so a large
 * backlog (a merge job stopped for days) does not need unbounded memory.
 * For each batch, statement 1 consumes queue rows and, with the same
 * snapshot, reads the current state of those executions and compares it
 * with event_log; statement 2 MERGEs the differences.  Only merges write
 * event_log, and they hold the advisory lock, so event_log cannot change in
 * between: the counts returned are exactly what the MERGE did.
 *
 * Hash and merge joins are off: they would read executions and event_log
 * whole.  Index lookups per queued id keep the cost proportional to the
 * number of changes, whatever the (often stale) statistics of the queue.
 */
CREATE OR REPLACE FUNCTION execlog.merge_event_log()
	RETURNS TABLE (inserted bigint, updated bigint)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET enable_hashjoin = off
	SET enable_mergejoin = off
AS $$
#variable_conflict use_column
DECLARE
	c_batch		CONSTANT integer := 100000;
	v_consumed	bigint;
	v_ids		bigint[];
	v_present	boolean[];
	v_names		text[];
	v_accounts	bigint[];
	v_created	timestamptz[];
	v_modified	timestamptz[];
	v_status	execlog.status[];
	v_inserted	bigint;
	v_updated	bigint;
BEGIN
	/*
	 * Under REPEATABLE READ or SERIALIZABLE the whole call would use a
	 * snapshot taken before the lock, and could try to consume queue rows
	 * that a concurrent merge already consumed.
	 */
	IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
		RAISE EXCEPTION 'execlog.merge_event_log() must run at isolation level READ COMMITTED'
			USING ERRCODE = 'active_sql_transaction',
				  HINT = 'Call it in its own transaction, or in one at the default isolation level.';
	END IF;

	/* one merge at a time; the next one starts from what this one commits */
	PERFORM execlog._serialize('merge_event_log', 0);

	/* not in use until now: start queueing, and recompute the log whole */
	IF NOT execlog.event_log_in_use() THEN
		SELECT r.inserted, r.updated INTO v_inserted, v_updated FROM execlog._event_log_resync() r;
		inserted := v_inserted;
		updated := v_updated;
		RETURN NEXT;
		RETURN;
	END IF;

	inserted := 0;
	updated := 0;
	LOOP
		WITH consumed AS (
			DELETE FROM execlog.event_log_queue q
			 WHERE q.ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT b.ctid FROM execlog.event_log_queue b LIMIT c_batch))
			RETURNING q.execution_id
		), changed AS (
			SELECT DISTINCT c.execution_id AS id FROM consumed c
		), fresh AS (
			SELECT ch.id, e.id IS NOT NULL AS present, a.name, e.account_id,
				   e.created_at, e.updated_at, e.status
			  FROM changed ch
			  LEFT JOIN execlog.executions e ON e.id = ch.id
			  LEFT JOIN execlog.automations a ON a.id = e.automation_id
		), todo AS (
			SELECT f.*, l.instance_id IS NOT NULL AS logged
			  FROM fresh f
			  LEFT JOIN execlog.event_log l ON l.instance_id = f.id
			 WHERE CASE WHEN NOT f.present THEN l.instance_id IS NOT NULL
						WHEN l.instance_id IS NULL THEN true
						ELSE (l.execution_template_name, l.account_id, l.created_at, l.last_modified, l.status)
							 IS DISTINCT FROM (f.name, f.account_id, f.created_at, f.updated_at, f.status)
				   END
		)
		SELECT (SELECT pg_catalog.count(*) FROM consumed),
			   pg_catalog.array_agg(t.id), pg_catalog.array_agg(t.present), pg_catalog.array_agg(t.name),
			   pg_catalog.array_agg(t.account_id), pg_catalog.array_agg(t.created_at),
			   pg_catalog.array_agg(t.updated_at), pg_catalog.array_agg(t.status),
			   pg_catalog.count(*) FILTER (WHERE t.present AND NOT t.logged),
			   pg_catalog.count(*) FILTER (WHERE t.present AND t.logged)
		  INTO v_consumed, v_ids, v_present, v_names, v_accounts, v_created, v_modified, v_status,
			   v_inserted, v_updated
		  FROM todo t;

		IF v_ids IS NOT NULL THEN
			MERGE INTO execlog.event_log l
			USING ROWS FROM (pg_catalog.unnest(v_ids), pg_catalog.unnest(v_present),
							 pg_catalog.unnest(v_names), pg_catalog.unnest(v_accounts),
							 pg_catalog.unnest(v_created), pg_catalog.unnest(v_modified),
							 pg_catalog.unnest(v_status))
				  AS s (id, present, name, account_id, created_at, updated_at, status)
			   ON l.instance_id = s.id
			 WHEN MATCHED AND NOT s.present THEN
				DELETE
			 WHEN MATCHED THEN
				UPDATE SET execution_template_name = s.name, account_id = s.account_id,
						   created_at = s.created_at, last_modified = s.updated_at, status = s.status
			 WHEN NOT MATCHED AND s.present THEN
				INSERT (execution_template_name, instance_id, created_at, last_modified, status, account_id)
				VALUES (s.name, s.id, s.created_at, s.updated_at, s.status, s.account_id);
		END IF;

		inserted := inserted + v_inserted;
		updated := updated + v_updated;
		EXIT WHEN v_consumed < c_batch;
	END LOOP;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION execlog.merge_event_log() IS 'merges the executions changed since the last call into execlog.event_log; returns the rows inserted and updated';

/*
 * The step events in two branches, one per lifecycle, so that a condition
 * on event_time reaches the step rows' started_at or finished_at and their
 * indexes; each event then looks its execution's automation up by key (a
 * LATERAL with LIMIT, never a hash join over the history): a day of a long
 * history reads that day, not the history.
 */
CREATE OR REPLACE VIEW execlog.activity_log WITH (security_invoker = true) AS
SELECT s.execution_id::text AS case_id,
	   s.name AS activity,
	   s.event_time,
	   s.lifecycle,
	   s.status,
	   CASE WHEN s.kind = 'http'
			THEN coalesce(pg_catalog.substring(s.input OPERATOR(pg_catalog.->>) 'url',
											   '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(\[[^]/?#]*\]|[^/?#:]+)'),
						  s.input OPERATOR(pg_catalog.->>) 'connection')
			ELSE r.run_as::text
	   END AS resource,
	   s.attempt,
	   s.position
  FROM (SELECT st.execution_id, st.name, st.started_at AS event_time, 'start'::text AS lifecycle,
			   'running'::execlog.step_status AS status, st.kind, st.input, st.attempt, st.position
		  FROM execlog.execution_steps st
		 WHERE st.started_at IS NOT NULL AND st.reused_from IS NULL
		UNION ALL
		SELECT st.execution_id, st.name, st.finished_at, 'complete'::text,
			   st.status, st.kind, st.input, st.attempt, st.position
		  FROM execlog.execution_steps st
		 WHERE st.finished_at IS NOT NULL AND st.reused_from IS NULL) s
 CROSS JOIN LATERAL (SELECT a.run_as
					   FROM execlog.executions e
					   JOIN execlog.automations a ON a.id = e.automation_id
					  WHERE e.id = s.execution_id
					  LIMIT 1) r;
COMMENT ON VIEW execlog.activity_log IS 'process-mining activity table: one row per step start and per step completion';
COMMENT ON COLUMN execlog.activity_log.case_id IS 'execution id (as text), execution_context."context$processId"';
COMMENT ON COLUMN execlog.activity_log.activity IS 'step name';
COMMENT ON COLUMN execlog.activity_log.event_time IS 'when the step started (start) or ended (complete)';
COMMENT ON COLUMN execlog.activity_log.lifecycle IS 'start or complete';
COMMENT ON COLUMN execlog.activity_log.status IS 'running on start rows; the outcome (success, failed, skipped) on complete rows';
COMMENT ON COLUMN execlog.activity_log.resource IS 'who performed the step: the host an http step called, otherwise the role the automation runs as';
COMMENT ON COLUMN execlog.activity_log.attempt IS 'attempt of the execution the step belongs to';
COMMENT ON COLUMN execlog.activity_log.position IS 'position of the step in its automation';

/* the failures of the last days, newest first, without reading the successes */
CREATE INDEX executions_failures ON execlog.executions (created_at)
	WHERE status IN ('failed', 'rejected', 'partially_executed');

/* the activity log of a day or an hour reads that time range */
CREATE INDEX execution_steps_started ON execlog.execution_steps (started_at) WHERE reused_from IS NULL;
CREATE INDEX execution_steps_finished ON execlog.execution_steps (finished_at) WHERE reused_from IS NULL;

ALTER TABLE execlog.executions DISABLE TRIGGER executions_event_log_insert,
	DISABLE TRIGGER executions_event_log_update, DISABLE TRIGGER executions_event_log_delete;
ALTER TABLE execlog.automations DISABLE TRIGGER automations_event_log;

REVOKE ALL ON FUNCTION execlog.event_log_in_use(), execlog._event_log_resync(), execlog.disable_event_log() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION execlog.event_log_in_use() TO execlog_reader;
GRANT EXECUTE ON FUNCTION execlog.disable_event_log() TO execlog_admin;

/* ------------------------------------------------------------------------
 * Scale (issue 13): the daily rollup of finished steps
 *
 * execlog.daily_step_stats counts the step rows that ran to an end
 * (finished_at set, not reused from an earlier attempt) by account, day
 * they finished (UTC), step name and step status, with the sum of their
 * durations (finished_at - started_at, microseconds; 0 without a start).
 * Statement-level triggers on execution_steps add what a statement's rows
 * bring in and subtract what they take out (an update, a delete), in the
 * writer's shard (backend pid modulo 8); a dump's COPY brings the rollup
 * with it.  It always equals the same aggregate computed from
 * execution_steps, and no statement rescans the history.
 * ------------------------------------------------------------------------ */
CREATE TABLE execlog.daily_step_stats (
	account_id	bigint NOT NULL,
	day			date NOT NULL,
	name		text NOT NULL,
	status		execlog.step_status NOT NULL,
	shard		smallint NOT NULL,
	steps		bigint NOT NULL,
	duration_us bigint NOT NULL,
	PRIMARY KEY (account_id, day, name, status, shard)
);
COMMENT ON TABLE execlog.daily_step_stats IS 'finished step rows by account, day, step name and status, kept incrementally (read the view daily_step_durations)';
COMMENT ON COLUMN execlog.daily_step_stats.account_id IS 'the steps'' account';
COMMENT ON COLUMN execlog.daily_step_stats.day IS 'day the steps finished (finished_at in UTC)';
COMMENT ON COLUMN execlog.daily_step_stats.name IS 'step name';
COMMENT ON COLUMN execlog.daily_step_stats.status IS 'step status (success, failed or skipped)';
COMMENT ON COLUMN execlog.daily_step_stats.shard IS 'backend pid modulo 8 of the writers that added to it (sum the shards)';
COMMENT ON COLUMN execlog.daily_step_stats.steps IS 'how many step rows (a shard may be negative; the sum over shards is not)';
COMMENT ON COLUMN execlog.daily_step_stats.duration_us IS 'sum of their durations, microseconds';

/*
 * One upsert per statement, in key order (two writers on one shard lock
 * rows in the same order): +1 for each row a statement brings in (inserted
 * or updated with finished_at), -1 for each it takes out (deleted or
 * updated from a counted state).  A statement that touches no counted row
 * (a step starting) scans its rows and stops.
 */
CREATE FUNCTION execlog._daily_step_stats_change() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		/* restoring a dump (a superuser's COPY into this table): the rollup comes with it */
		IF pg_catalog.starts_with(pg_catalog.ltrim(pg_catalog.current_query()), 'COPY execlog.execution_steps ')
		   AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = SESSION_USER AND rolsuper) THEN
			RETURN NULL;
		END IF;
		INSERT INTO execlog.daily_step_stats AS d (account_id, day, name, status, shard, steps, duration_us)
		SELECT n.account_id, (pg_catalog.timezone('UTC', n.finished_at))::date, n.name, n.status,
			   pg_catalog.pg_backend_pid() % 8, pg_catalog.count(*),
			   pg_catalog.sum(coalesce((EXTRACT(epoch FROM n.finished_at - n.started_at) * 1000000)::bigint, 0))
		  FROM new_rows n
		 WHERE n.finished_at IS NOT NULL AND n.reused_from IS NULL
		 GROUP BY 1, 2, 3, 4
		 ORDER BY 1, 2, 3, 4
		ON CONFLICT (account_id, day, name, status, shard) DO UPDATE
			SET steps = d.steps + excluded.steps, duration_us = d.duration_us + excluded.duration_us;
	ELSIF TG_OP = 'DELETE' THEN
		INSERT INTO execlog.daily_step_stats AS d (account_id, day, name, status, shard, steps, duration_us)
		SELECT o.account_id, (pg_catalog.timezone('UTC', o.finished_at))::date, o.name, o.status,
			   pg_catalog.pg_backend_pid() % 8, -pg_catalog.count(*),
			   -pg_catalog.sum(coalesce((EXTRACT(epoch FROM o.finished_at - o.started_at) * 1000000)::bigint, 0))
		  FROM old_rows o
		 WHERE o.finished_at IS NOT NULL AND o.reused_from IS NULL
		 GROUP BY 1, 2, 3, 4
		 ORDER BY 1, 2, 3, 4
		ON CONFLICT (account_id, day, name, status, shard) DO UPDATE
			SET steps = d.steps + excluded.steps, duration_us = d.duration_us + excluded.duration_us;
	ELSE
		IF NOT EXISTS (SELECT FROM new_rows n WHERE n.finished_at IS NOT NULL AND n.reused_from IS NULL)
		   AND NOT EXISTS (SELECT FROM old_rows o WHERE o.finished_at IS NOT NULL AND o.reused_from IS NULL) THEN
			RETURN NULL;
		END IF;
		INSERT INTO execlog.daily_step_stats AS d (account_id, day, name, status, shard, steps, duration_us)
		SELECT c.account_id, c.day, c.name, c.status, pg_catalog.pg_backend_pid() % 8,
			   pg_catalog.sum(c.n), pg_catalog.sum(c.us)
		  FROM (SELECT o.account_id, (pg_catalog.timezone('UTC', o.finished_at))::date AS day, o.name, o.status,
					   -1 AS n, -coalesce((EXTRACT(epoch FROM o.finished_at - o.started_at) * 1000000)::bigint, 0) AS us
				  FROM old_rows o
				 WHERE o.finished_at IS NOT NULL AND o.reused_from IS NULL
				UNION ALL
				SELECT n.account_id, (pg_catalog.timezone('UTC', n.finished_at))::date, n.name, n.status,
					   1, coalesce((EXTRACT(epoch FROM n.finished_at - n.started_at) * 1000000)::bigint, 0)
				  FROM new_rows n
				 WHERE n.finished_at IS NOT NULL AND n.reused_from IS NULL) c
		 GROUP BY 1, 2, 3, 4
		HAVING pg_catalog.sum(c.n) <> 0 OR pg_catalog.sum(c.us) <> 0
		 ORDER BY 1, 2, 3, 4
		ON CONFLICT (account_id, day, name, status, shard) DO UPDATE
			SET steps = d.steps + excluded.steps, duration_us = d.duration_us + excluded.duration_us;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._daily_step_stats_change() IS 'keeps execlog.daily_step_stats from the step rows a statement brings in or takes out (internal)';

CREATE TRIGGER execution_steps_daily_stats_insert AFTER INSERT ON execlog.execution_steps
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._daily_step_stats_change();
CREATE TRIGGER execution_steps_daily_stats_update AFTER UPDATE ON execlog.execution_steps
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._daily_step_stats_change();
CREATE TRIGGER execution_steps_daily_stats_delete AFTER DELETE ON execlog.execution_steps
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._daily_step_stats_change();

/* TRUNCATE has no transition table: empty the rollup with the steps. */
CREATE FUNCTION execlog._daily_step_stats_truncated() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM execlog.daily_step_stats;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._daily_step_stats_truncated() IS 'empties execlog.daily_step_stats when execution_steps is truncated (internal)';

CREATE TRIGGER execution_steps_daily_stats_truncate AFTER TRUNCATE ON execlog.execution_steps
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._daily_step_stats_truncated();

CREATE VIEW execlog.daily_step_durations WITH (security_invoker = true) AS
SELECT d.account_id,
	   d.day,
	   d.name AS step,
	   d.status,
	   pg_catalog.sum(d.steps)::bigint AS steps,
	   (pg_catalog.sum(d.duration_us) OPERATOR(pg_catalog./) 1000000.0)::double precision AS total_seconds,
	   pg_catalog.make_interval(secs => (pg_catalog.sum(d.duration_us)
		   OPERATOR(pg_catalog./) NULLIF(pg_catalog.sum(d.steps), 0) OPERATOR(pg_catalog./) 1000000.0)::double precision) AS avg_duration
  FROM execlog.daily_step_stats d
 GROUP BY d.account_id, d.day, d.name, d.status
HAVING pg_catalog.sum(d.steps) OPERATOR(pg_catalog.<>) 0;
COMMENT ON VIEW execlog.daily_step_durations IS 'finished steps per account, day (UTC), step name and status, with their total and average duration, from execlog.daily_step_stats';
COMMENT ON COLUMN execlog.daily_step_durations.account_id IS 'the account';
COMMENT ON COLUMN execlog.daily_step_durations.day IS 'day they finished, UTC';
COMMENT ON COLUMN execlog.daily_step_durations.step IS 'step name';
COMMENT ON COLUMN execlog.daily_step_durations.status IS 'step status: success, failed or skipped';
COMMENT ON COLUMN execlog.daily_step_durations.steps IS 'how many step rows (reused ones not counted)';
COMMENT ON COLUMN execlog.daily_step_durations.total_seconds IS 'sum of their durations (finished_at - started_at), seconds';
COMMENT ON COLUMN execlog.daily_step_durations.avg_duration IS 'average duration';

ALTER TABLE execlog.daily_step_stats ENABLE ROW LEVEL SECURITY;
ALTER TABLE execlog.daily_step_stats FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON execlog.daily_step_stats
	USING (account_id = ANY ((SELECT execlog.my_accounts())::bigint[]));

REVOKE ALL ON execlog.daily_step_stats, execlog.daily_step_durations FROM PUBLIC;
GRANT SELECT ON execlog.daily_step_stats, execlog.daily_step_durations TO execlog_reader;
REVOKE ALL ON FUNCTION execlog._daily_step_stats_change(), execlog._daily_step_stats_truncated() FROM PUBLIC;

/* pg_dump keeps the rollup with the steps it counts */
SELECT pg_catalog.pg_extension_config_dump('execlog.daily_step_stats', '');

/* filled from the steps there are */
INSERT INTO execlog.daily_step_stats (account_id, day, name, status, shard, steps, duration_us)
SELECT s.account_id, (pg_catalog.timezone('UTC', s.finished_at))::date, s.name, s.status, 0, pg_catalog.count(*),
	   pg_catalog.sum(coalesce((EXTRACT(epoch FROM s.finished_at OPERATOR(pg_catalog.-) s.started_at)
								OPERATOR(pg_catalog.*) 1000000)::bigint, 0))
  FROM execlog.execution_steps s
 WHERE s.finished_at IS NOT NULL AND s.reused_from IS NULL
 GROUP BY 1, 2, 3, 4;
