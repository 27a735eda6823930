
/* ------------------------------------------------------------------------
 * Scale (issue 13): bulk enqueue
 * ------------------------------------------------------------------------ */
CREATE FUNCTION execlog.start_many(automation text, payloads jsonb[], account text DEFAULT NULL)
	RETURNS SETOF bigint LANGUAGE c AS 'MODULE_PATHNAME', 'execlog_start_many';
COMMENT ON FUNCTION execlog.start_many(text, jsonb[], text) IS 'start an automation once per payload (manual trigger) in one statement; returns the execution ids in the order of the payloads';
REVOKE ALL ON FUNCTION execlog.start_many(text, jsonb[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION execlog.start_many(text, jsonb[], text) TO execlog_operator;

/* ------------------------------------------------------------------------
 * Scale (issue 13): the daily rollup of finished executions
 *
 * execlog.daily_stats counts the executions that are in a final status by
 * account, automation, day they finished (UTC), status and duration bucket,
 * with the sum of their durations (finished_at - started_at of the current
 * attempt, in microseconds).  It is kept by statement-level triggers on
 * executions that add what the statement's rows bring into a final status
 * and subtract what they take out of one (a retry, a delete, a prune), so it
 * always equals the same aggregate computed from executions, and no
 * statement ever rescans the history.  Writers add to their own shard
 * (backend pid modulo 8, as execlog.metric_counters does), so two workers
 * finishing executions of one automation do not wait for each other's row
 * lock; the views sum the shards.
 *
 * Duration buckets: -1 for an execution that never ran (no started_at), 0
 * for less than 1 ms, and b >= 1 for [2^((b-1)/4), 2^(b/4)) ms: four buckets
 * per doubling, so a percentile read from them is at most 19% above the
 * exact one.
 * ------------------------------------------------------------------------ */
CREATE TABLE execlog.daily_stats (
	account_id	bigint NOT NULL,
	automation_id bigint NOT NULL,
	day			date NOT NULL,
	status		execlog.status NOT NULL,
	bucket		smallint NOT NULL,
	shard		smallint NOT NULL,
	executions	bigint NOT NULL,
	duration_us bigint NOT NULL,
	PRIMARY KEY (account_id, automation_id, day, status, bucket, shard)
);
CREATE INDEX daily_stats_day ON execlog.daily_stats (day);

/* the failures of the last days, newest first, without reading the successes */
CREATE INDEX executions_failures ON execlog.executions (created_at)
	WHERE status IN ('failed', 'rejected', 'partially_executed');
COMMENT ON TABLE execlog.daily_stats IS 'finished executions by account, automation, day, status and duration bucket, kept incrementally (read the views daily_status_counts and daily_durations, or execlog.duration_percentiles())';
COMMENT ON COLUMN execlog.daily_stats.account_id IS 'the executions'' account';
COMMENT ON COLUMN execlog.daily_stats.automation_id IS 'the automation run';
COMMENT ON COLUMN execlog.daily_stats.day IS 'day the executions finished (finished_at in UTC)';
COMMENT ON COLUMN execlog.daily_stats.status IS 'their final status';
COMMENT ON COLUMN execlog.daily_stats.bucket IS 'duration bucket: -1 never ran, 0 under 1 ms, b >= 1 from 2^((b-1)/4) to 2^(b/4) ms';
COMMENT ON COLUMN execlog.daily_stats.shard IS 'backend pid modulo 8 of the writers that added to it (sum the shards)';
COMMENT ON COLUMN execlog.daily_stats.executions IS 'how many executions (a shard may be negative; the sum over shards is not)';
COMMENT ON COLUMN execlog.daily_stats.duration_us IS 'sum of their durations, microseconds';

/* The duration bucket of an execution (see daily_stats.bucket). */
CREATE FUNCTION execlog._duration_bucket(started_at timestamptz, finished_at timestamptz)
	RETURNS smallint LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE
		WHEN $1 IS NULL OR $2 IS NULL THEN -1
		WHEN $2 OPERATOR(pg_catalog.-) $1 OPERATOR(pg_catalog.<) interval '1 millisecond' THEN 0
		ELSE LEAST(1000, 1 OPERATOR(pg_catalog.+) pg_catalog.floor(
			4 OPERATOR(pg_catalog.*) pg_catalog.ln(pg_catalog.date_part('epoch', $2 OPERATOR(pg_catalog.-) $1)
												   OPERATOR(pg_catalog.*) 1000)
			OPERATOR(pg_catalog./) pg_catalog.ln(2::double precision)))::smallint
	END
$$;
COMMENT ON FUNCTION execlog._duration_bucket(timestamptz, timestamptz) IS 'duration bucket of an execution for daily_stats (internal)';

/* The upper bound of a duration bucket. */
CREATE FUNCTION execlog._bucket_upper(bucket smallint) RETURNS interval
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN $1 OPERATOR(pg_catalog.<) 0 THEN NULL
				ELSE pg_catalog.make_interval(secs => pg_catalog.power(2::double precision, $1 OPERATOR(pg_catalog./) 4.0::double precision)
														OPERATOR(pg_catalog./) 1000) END
$$;
COMMENT ON FUNCTION execlog._bucket_upper(smallint) IS 'upper bound of a daily_stats duration bucket (internal)';

/*
 * The rows an UPDATE or DELETE of executions takes out of a final status
 * count -1, the rows an UPDATE brings into one +1; one upsert per
 * statement, in key order (two writers on one shard lock rows in the same
 * order).  Claims, pauses and resumes touch no final row: two scans of the
 * statement's rows and out.
 */
CREATE FUNCTION execlog._daily_stats_change() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		IF NOT EXISTS (SELECT FROM new_rows n
					   WHERE n.status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled'))
		   AND NOT EXISTS (SELECT FROM old_rows o
						   WHERE o.status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')) THEN
			RETURN NULL;
		END IF;
		INSERT INTO execlog.daily_stats AS d
			(account_id, automation_id, day, status, bucket, shard, executions, duration_us)
		SELECT c.account_id, c.automation_id, c.day, c.status, c.bucket,
			   pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%) 8, pg_catalog.sum(c.n), pg_catalog.sum(c.us)
		  FROM (SELECT o.account_id, o.automation_id,
					   (pg_catalog.timezone('UTC', coalesce(o.finished_at, o.updated_at)))::date AS day,
					   o.status, execlog._duration_bucket(o.started_at, o.finished_at) AS bucket,
					   -1 AS n,
					   -coalesce((EXTRACT(epoch FROM o.finished_at OPERATOR(pg_catalog.-) o.started_at)
								  OPERATOR(pg_catalog.*) 1000000)::bigint, 0) AS us
				  FROM old_rows o
				 WHERE o.status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
				UNION ALL
				SELECT n.account_id, n.automation_id,
					   (pg_catalog.timezone('UTC', coalesce(n.finished_at, n.updated_at)))::date,
					   n.status, execlog._duration_bucket(n.started_at, n.finished_at),
					   1,
					   coalesce((EXTRACT(epoch FROM n.finished_at OPERATOR(pg_catalog.-) n.started_at)
								 OPERATOR(pg_catalog.*) 1000000)::bigint, 0)
				  FROM new_rows n
				 WHERE n.status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')) c
		 GROUP BY 1, 2, 3, 4, 5
		HAVING pg_catalog.sum(c.n) OPERATOR(pg_catalog.<>) 0 OR pg_catalog.sum(c.us) OPERATOR(pg_catalog.<>) 0
		 ORDER BY 1, 2, 3, 4, 5
		ON CONFLICT (account_id, automation_id, day, status, bucket, shard) DO UPDATE
			SET executions = d.executions OPERATOR(pg_catalog.+) excluded.executions,
				duration_us = d.duration_us OPERATOR(pg_catalog.+) excluded.duration_us;
	ELSE
		IF NOT EXISTS (SELECT FROM old_rows o
					   WHERE o.status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')) THEN
			RETURN NULL;
		END IF;
		INSERT INTO execlog.daily_stats AS d
			(account_id, automation_id, day, status, bucket, shard, executions, duration_us)
		SELECT o.account_id, o.automation_id,
			   (pg_catalog.timezone('UTC', coalesce(o.finished_at, o.updated_at)))::date,
			   o.status, execlog._duration_bucket(o.started_at, o.finished_at),
			   pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%) 8, -pg_catalog.count(*),
			   -pg_catalog.sum(coalesce((EXTRACT(epoch FROM o.finished_at OPERATOR(pg_catalog.-) o.started_at)
										 OPERATOR(pg_catalog.*) 1000000)::bigint, 0))
		  FROM old_rows o
		 WHERE o.status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
		 GROUP BY 1, 2, 3, 4, 5
		 ORDER BY 1, 2, 3, 4, 5
		ON CONFLICT (account_id, automation_id, day, status, bucket, shard) DO UPDATE
			SET executions = d.executions OPERATOR(pg_catalog.+) excluded.executions,
				duration_us = d.duration_us OPERATOR(pg_catalog.+) excluded.duration_us;
	END IF;
	/* what a retry or a delete brought back to nothing */
	DELETE FROM execlog.daily_stats d
	 WHERE d.shard OPERATOR(pg_catalog.=) (pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%) 8)
	   AND d.executions OPERATOR(pg_catalog.=) 0 AND d.duration_us OPERATOR(pg_catalog.=) 0
	   AND (d.account_id, d.automation_id) IN (SELECT o.account_id, o.automation_id FROM old_rows o
												WHERE o.status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled'));
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._daily_stats_change() IS 'keeps execlog.daily_stats from the rows a statement on executions brings into or takes out of a final status (internal)';

CREATE TRIGGER executions_daily_stats_update AFTER UPDATE ON execlog.executions
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._daily_stats_change();
CREATE TRIGGER executions_daily_stats_delete AFTER DELETE ON execlog.executions
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._daily_stats_change();

/* TRUNCATE has no transition table: empty the rollup with executions. */
CREATE FUNCTION execlog._daily_stats_truncated() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM execlog.daily_stats;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._daily_stats_truncated() IS 'empties execlog.daily_stats when executions is truncated (internal)';

CREATE TRIGGER executions_daily_stats_truncate AFTER TRUNCATE ON execlog.executions
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._daily_stats_truncated();

/*
 * Views and a function over the rollup (security_invoker: the reader's
 * row-level security applies).  Their columns are stable.
 */
CREATE VIEW execlog.daily_status_counts WITH (security_invoker = true) AS
SELECT d.account_id,
	   d.automation_id,
	   a.name AS automation,
	   d.day,
	   d.status,
	   pg_catalog.sum(d.executions)::bigint AS executions,
	   (pg_catalog.sum(d.duration_us) OPERATOR(pg_catalog./) 1000000.0)::double precision AS total_seconds,
	   pg_catalog.make_interval(secs => (pg_catalog.sum(d.duration_us)
		   OPERATOR(pg_catalog./) NULLIF(pg_catalog.sum(d.executions) FILTER (WHERE d.bucket OPERATOR(pg_catalog.>=) 0), 0)
		   OPERATOR(pg_catalog./) 1000000.0)::double precision) AS avg_duration
  FROM execlog.daily_stats d
  LEFT JOIN execlog.automations a ON a.id OPERATOR(pg_catalog.=) d.automation_id
 GROUP BY d.account_id, d.automation_id, a.name, d.day, d.status
HAVING pg_catalog.sum(d.executions) OPERATOR(pg_catalog.<>) 0;
COMMENT ON VIEW execlog.daily_status_counts IS 'finished executions per account, automation, day (UTC) and final status, from execlog.daily_stats';
COMMENT ON COLUMN execlog.daily_status_counts.account_id IS 'the account';
COMMENT ON COLUMN execlog.daily_status_counts.automation_id IS 'the automation';
COMMENT ON COLUMN execlog.daily_status_counts.automation IS 'its name';
COMMENT ON COLUMN execlog.daily_status_counts.day IS 'day they finished, UTC';
COMMENT ON COLUMN execlog.daily_status_counts.status IS 'final status';
COMMENT ON COLUMN execlog.daily_status_counts.executions IS 'how many';
COMMENT ON COLUMN execlog.daily_status_counts.total_seconds IS 'sum of their durations (finished_at - started_at), seconds';
COMMENT ON COLUMN execlog.daily_status_counts.avg_duration IS 'average duration of those that ran (NULL if none did)';

/* p50 and p95 per account and automation over days from_day to to_day. */
CREATE FUNCTION execlog.duration_percentiles(from_day date, to_day date)
	RETURNS TABLE (account_id bigint, automation_id bigint, automation text, executions bigint,
				   p50 interval, p95 interval, avg_duration interval)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH h AS (
		SELECT d.account_id, d.automation_id, d.bucket,
			   sum(d.executions) AS n, sum(d.duration_us) AS us
		  FROM execlog.daily_stats d
		 WHERE d.day BETWEEN $1 AND $2 AND d.bucket >= 0
		 GROUP BY 1, 2, 3
		HAVING sum(d.executions) <> 0),
	c AS (
		SELECT h.*, sum(h.n) OVER (PARTITION BY h.account_id, h.automation_id ORDER BY h.bucket) AS cum,
			   sum(h.n) OVER (PARTITION BY h.account_id, h.automation_id) AS total
		  FROM h)
	SELECT c.account_id, c.automation_id, a.name, max(c.total)::bigint,
		   execlog._bucket_upper(min(c.bucket) FILTER (WHERE c.cum >= 0.5 * c.total)),
		   execlog._bucket_upper(min(c.bucket) FILTER (WHERE c.cum >= 0.95 * c.total)),
		   make_interval(secs => (sum(c.us) / max(c.total) / 1000000.0)::double precision)
	  FROM c LEFT JOIN execlog.automations a ON a.id = c.automation_id
	 GROUP BY c.account_id, c.automation_id, a.name
$$;
COMMENT ON FUNCTION execlog.duration_percentiles(date, date) IS 'p50, p95 (upper bound of the duration bucket: at most 19% above the exact value) and average duration of the finished executions that ran, per account and automation, over days from_day to to_day (UTC), from execlog.daily_stats';

CREATE VIEW execlog.daily_durations WITH (security_invoker = true) AS
WITH h AS (
	SELECT d.account_id, d.automation_id, d.day, d.bucket,
		   pg_catalog.sum(d.executions) AS n, pg_catalog.sum(d.duration_us) AS us
	  FROM execlog.daily_stats d
	 WHERE d.bucket OPERATOR(pg_catalog.>=) 0
	 GROUP BY 1, 2, 3, 4
	HAVING pg_catalog.sum(d.executions) OPERATOR(pg_catalog.<>) 0),
c AS (
	SELECT h.*, pg_catalog.sum(h.n) OVER (PARTITION BY h.account_id, h.automation_id, h.day ORDER BY h.bucket) AS cum,
		   pg_catalog.sum(h.n) OVER (PARTITION BY h.account_id, h.automation_id, h.day) AS total
	  FROM h)
SELECT c.account_id,
	   c.automation_id,
	   a.name AS automation,
	   c.day,
	   pg_catalog.max(c.total)::bigint AS executions,
	   execlog._bucket_upper(pg_catalog.min(c.bucket) FILTER (WHERE c.cum OPERATOR(pg_catalog.>=) (0.5 OPERATOR(pg_catalog.*) c.total))) AS p50,
	   execlog._bucket_upper(pg_catalog.min(c.bucket) FILTER (WHERE c.cum OPERATOR(pg_catalog.>=) (0.95 OPERATOR(pg_catalog.*) c.total))) AS p95,
	   pg_catalog.make_interval(secs => (pg_catalog.sum(c.us) OPERATOR(pg_catalog./) pg_catalog.max(c.total)
										 OPERATOR(pg_catalog./) 1000000.0)::double precision) AS avg_duration
  FROM c LEFT JOIN execlog.automations a ON a.id OPERATOR(pg_catalog.=) c.automation_id
 GROUP BY c.account_id, c.automation_id, a.name, c.day;
COMMENT ON VIEW execlog.daily_durations IS 'p50, p95 and average duration of the finished executions that ran, per account, automation and day (UTC), from execlog.daily_stats';
COMMENT ON COLUMN execlog.daily_durations.account_id IS 'the account';
COMMENT ON COLUMN execlog.daily_durations.automation_id IS 'the automation';
COMMENT ON COLUMN execlog.daily_durations.automation IS 'its name';
COMMENT ON COLUMN execlog.daily_durations.day IS 'day they finished, UTC';
COMMENT ON COLUMN execlog.daily_durations.executions IS 'how many finished executions ran (had a start)';
COMMENT ON COLUMN execlog.daily_durations.p50 IS 'median duration: upper bound of its bucket, at most 19% above the exact value';
COMMENT ON COLUMN execlog.daily_durations.p95 IS '95th percentile duration, the same way';
COMMENT ON COLUMN execlog.daily_durations.avg_duration IS 'average duration (exact)';

ALTER TABLE execlog.daily_stats ENABLE ROW LEVEL SECURITY;
ALTER TABLE execlog.daily_stats FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON execlog.daily_stats
	USING (account_id = ANY ((SELECT execlog.my_accounts())::bigint[]));

REVOKE ALL ON execlog.daily_stats, execlog.daily_status_counts, execlog.daily_durations FROM PUBLIC;
GRANT SELECT ON execlog.daily_stats, execlog.daily_status_counts, execlog.daily_durations TO execlog_reader;
REVOKE ALL ON FUNCTION execlog._duration_bucket(timestamptz, timestamptz), execlog._bucket_upper(smallint),
	execlog._daily_stats_change(), execlog._daily_stats_truncated(),
	execlog.duration_percentiles(date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION execlog._bucket_upper(smallint), execlog.duration_percentiles(date, date) TO execlog_reader;

/* pg_dump keeps the rollup with the executions it counts */
SELECT pg_catalog.pg_extension_config_dump('execlog.daily_stats', '');

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
