-- 71_rollup: execlog.daily_stats (issue 13, point 3) equals the same
-- aggregate computed from executions after every kind of change (finish,
-- retry, cancel, delete, prune, truncate), and the views over it equal
-- what the raw tables say.  Workers are off: statuses are driven by hand.
-- Roles are named t71_* and dropped at the end.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP ROLE IF EXISTS t71_reader;
RESET client_min_messages;
CREATE EXTENSION execlog;

INSERT INTO execlog.accounts (id, name) VALUES (1, 'acme'), (2, 'globex');
INSERT INTO execlog.automations (id, account_id, name, max_retries) VALUES
	(1, 1, 'invoice', 3), (2, 1, 'report', 0), (3, 2, 'invoice', 1);

-- the rollup, its shards summed, against a recomputation from executions
CREATE TEMP VIEW rollup AS
SELECT account_id, automation_id, day, status, bucket,
	   sum(executions) AS executions, sum(duration_us) AS duration_us
  FROM execlog.daily_stats GROUP BY 1, 2, 3, 4, 5
HAVING sum(executions) <> 0 OR sum(duration_us) <> 0;
CREATE TEMP VIEW recomputed AS
SELECT account_id, automation_id, (finished_at AT TIME ZONE 'UTC')::date AS day, status,
	   execlog._duration_bucket(started_at, finished_at) AS bucket,
	   count(*)::numeric AS executions,
	   coalesce(sum((extract(epoch FROM finished_at - started_at) * 1000000)::bigint), 0)::numeric AS duration_us
  FROM execlog.executions
 WHERE status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
 GROUP BY 1, 2, 3, 4, 5;
CREATE TEMP VIEW check_rollup AS
SELECT (SELECT count(*) FROM (TABLE rollup EXCEPT TABLE recomputed) x) AS only_in_rollup,
	   (SELECT count(*) FROM (TABLE recomputed EXCEPT TABLE rollup) x) AS only_recomputed,
	   (SELECT count(*) FROM recomputed) AS groups,
	   (SELECT coalesce(sum(executions), 0) FROM recomputed) AS finished;

/*
 * The duration buckets: four per doubling of milliseconds
 */
SELECT d, execlog._duration_bucket(t, t + d) AS bucket, execlog._bucket_upper(execlog._duration_bucket(t, t + d)) AS upper
  FROM (VALUES (interval '0'), ('0.5 ms'), ('1 ms'), ('1.18 ms'), ('1.19 ms'), ('2 ms'), ('1 s'), ('1 hour'), ('-1 s')) v (d),
	   (VALUES (timestamptz '2024-01-01 00:00:00+00')) w (t);
SELECT execlog._duration_bucket(NULL, now()) AS never_ran;

/*
 * New executions are not counted; finishing them is
 */
SELECT array_agg(id) AS ids FROM execlog.start_many('invoice', array_fill('{}'::jsonb, ARRAY[12]), 'acme') AS id \gset
SELECT array_agg(id) AS rep FROM execlog.start_many('report', array_fill('{}'::jsonb, ARRAY[4])) AS id \gset
SELECT array_agg(id) AS glob FROM execlog.start_many('invoice', array_fill('{}'::jsonb, ARRAY[3]), 'globex') AS id \gset
SELECT count(*) AS rollup_rows FROM execlog.daily_stats;
-- cancel two before they ran: counted, with no duration (bucket -1); one
-- (the 10th) stays running, not counted
UPDATE execlog.executions SET status = 'cancelled' WHERE id IN ((:'ids'::bigint[])[11], (:'ids'::bigint[])[12]);
UPDATE execlog.executions SET status = 'running' WHERE status = 'pending';
-- varied durations and days, several statuses in one statement
UPDATE execlog.executions e
   SET status = v.status::execlog.status, finished_at = e.started_at + v.d
  FROM (VALUES (1, 'success', interval '10 ms'), (2, 'success', '12 ms'), (3, 'success', '2 s'),
			   (4, 'failed', '40 ms'), (5, 'failed', '1 day 3 hours'), (6, 'partially_executed', '5 s'),
			   (7, 'rejected', '15 minutes'), (8, 'success', '0.2 ms')) v (k, status, d)
 WHERE e.id = (:'ids'::bigint[])[v.k];
UPDATE execlog.executions
   SET status = 'success',
	   finished_at = started_at + CASE WHEN id = (:'rep'::bigint[])[4] THEN interval '2 days' ELSE '3 s' END
 WHERE id = ANY (:'rep'::bigint[]) OR id = ANY (:'glob'::bigint[]);
-- one cancelled while running
UPDATE execlog.executions SET status = 'cancelled', finished_at = started_at + interval '20 ms'
 WHERE id = (:'ids'::bigint[])[9];
SELECT * FROM check_rollup;
-- an update of finished rows that changes nothing counted leaves it alone
UPDATE execlog.executions SET context = '{"note": 1}' WHERE status = 'success';
SELECT * FROM check_rollup;

/*
 * Retries take executions out of their final status: out of the rollup
 * until they end again
 */
SELECT execlog.retry((:'ids'::bigint[])[4]) AS r1, execlog.retry((:'ids'::bigint[])[5]) AS r2,
	   execlog.retry((:'ids'::bigint[])[7]) AS r3 \gset
SELECT * FROM check_rollup;
UPDATE execlog.executions SET status = 'running' WHERE id IN (:r1, :r2);
UPDATE execlog.executions SET status = 'success', finished_at = started_at + interval '7 ms' WHERE id = :r1;
UPDATE execlog.executions SET status = 'failed', finished_at = started_at + interval '30 s' WHERE id = :r2;
SELECT execlog.cancel(:r3);
SELECT * FROM check_rollup;

/*
 * Deletes (an admin's, and prune) subtract what they delete
 */
DELETE FROM execlog.executions WHERE id IN ((:'ids'::bigint[])[1], (:'ids'::bigint[])[11], (:'rep'::bigint[])[1]);
SELECT * FROM check_rollup;
-- the views, against the raw tables: counts by status per day
SELECT (SELECT count(*) FROM (
	SELECT account_id, automation_id, day, status, executions FROM execlog.daily_status_counts
	EXCEPT
	SELECT account_id, automation_id, (finished_at AT TIME ZONE 'UTC')::date, status, count(*)
	  FROM execlog.executions WHERE finished_at IS NOT NULL
	   AND status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
	 GROUP BY 1, 2, 3, 4) x) AS differ,
	   (SELECT count(*) FROM execlog.daily_status_counts) AS rows;
SELECT automation, status, executions, avg_duration
  FROM execlog.daily_status_counts WHERE day = (now() AT TIME ZONE 'UTC')::date
 ORDER BY account_id, automation_id, status;
-- p50 and p95 from the histogram: at least the exact percentile, at most 19% above
SELECT p.automation, p.executions, p.p50, p.p95,
	   p.p50 >= x.p50 AND p.p50 <= x.p50 * 1.19 AS p50_ok,
	   p.p95 >= x.p95 AND p.p95 <= x.p95 * 1.19 AS p95_ok,
	   p.avg_duration = x.avg AS avg_exact
  FROM execlog.duration_percentiles('2000-01-01', '2100-01-01') p
  JOIN (SELECT account_id, automation_id,
			   percentile_disc(0.5) WITHIN GROUP (ORDER BY finished_at - started_at) AS p50,
			   percentile_disc(0.95) WITHIN GROUP (ORDER BY finished_at - started_at) AS p95,
			   make_interval(secs => (sum(extract(epoch FROM finished_at - started_at)) / count(*))::float8) AS avg
		  FROM execlog.executions
		 WHERE started_at IS NOT NULL
		   AND status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
		 GROUP BY 1, 2) x USING (account_id, automation_id)
 ORDER BY p.account_id, p.automation_id;
SELECT automation, day = (now() AT TIME ZONE 'UTC')::date AS today, executions, p50, p95
  FROM execlog.daily_durations ORDER BY account_id, automation_id, day;

/*
 * Row-level security: a reader of acme sees acme's rows only
 */
CREATE ROLE t71_reader NOLOGIN IN ROLE execlog_reader;
INSERT INTO execlog.account_members VALUES (1, 't71_reader');
SET ROLE t71_reader;
SELECT DISTINCT account_id FROM execlog.daily_stats;
SELECT DISTINCT account_id FROM execlog.daily_status_counts;
SELECT DISTINCT account_id FROM execlog.daily_durations;
SELECT DISTINCT account_id FROM execlog.duration_percentiles('2000-01-01', '2100-01-01');
INSERT INTO execlog.daily_stats VALUES (1, 1, '2024-01-01', 'success', 0, 0, 1, 0);
RESET ROLE;
SELECT has_table_privilege('execlog_operator', 'execlog.daily_stats', 'INSERT') AS operator_insert;

-- prune in a later transaction: what finished before it began is deleted
SELECT execlog.prune(interval '0') > 0 AS pruned;
SELECT * FROM check_rollup;
SELECT count(*) AS rollup_rows FROM execlog.daily_stats;

/*
 * A rollup kept through many statements at once (a batch of 300)
 */
SELECT count(*) FROM execlog.start_many('invoice', array_fill('{}'::jsonb, ARRAY[300]), 'acme');
UPDATE execlog.executions SET status = 'running' WHERE status = 'pending';
UPDATE execlog.executions SET status = (ARRAY['success', 'failed', 'rejected'])[id % 3 + 1]::execlog.status,
	   finished_at = started_at + (id % 50) * interval '13 ms'
 WHERE status = 'running';
SELECT * FROM check_rollup;
SELECT execlog.retry(id) IS NOT NULL FROM execlog.executions WHERE status = 'failed' AND id % 2 = 0 LIMIT 1;
SELECT count(*) FROM (SELECT execlog.retry(id) FROM execlog.executions WHERE status = 'failed' AND attempt = 1) r;
SELECT * FROM check_rollup;

/*
 * The step rollup, daily_step_stats, against a recomputation from
 * execution_steps: step rows written as the workers write them (a start,
 * then its end; several in one statement; one reused from an earlier
 * attempt, not counted), changed, deleted with their execution, truncated
 */
CREATE TEMP VIEW step_rollup AS
SELECT account_id, day, name, status, sum(steps) AS steps, sum(duration_us) AS duration_us
  FROM execlog.daily_step_stats GROUP BY 1, 2, 3, 4
HAVING sum(steps) <> 0 OR sum(duration_us) <> 0;
CREATE TEMP VIEW step_recomputed AS
SELECT account_id, (finished_at AT TIME ZONE 'UTC')::date AS day, name, status, count(*)::numeric AS steps,
	   coalesce(sum((extract(epoch FROM finished_at - started_at) * 1000000)::bigint), 0)::numeric AS duration_us
  FROM execlog.execution_steps
 WHERE finished_at IS NOT NULL AND reused_from IS NULL
 GROUP BY 1, 2, 3, 4;
CREATE TEMP VIEW check_step_rollup AS
SELECT (SELECT count(*) FROM (TABLE step_rollup EXCEPT TABLE step_recomputed) x) AS only_in_rollup,
	   (SELECT count(*) FROM (TABLE step_recomputed EXCEPT TABLE step_rollup) x) AS only_recomputed,
	   (SELECT count(*) FROM step_recomputed) AS groups,
	   (SELECT coalesce(sum(steps), 0) FROM step_recomputed) AS finished;
SELECT array_agg(id ORDER BY id) AS ex FROM (SELECT id FROM execlog.executions ORDER BY id LIMIT 4) e \gset
INSERT INTO execlog.execution_steps (execution_id, attempt, position, account_id, name, kind, status, started_at)
SELECT e, 1, p, 1, (ARRAY['fetch', 'post'])[p], 'sql', 'running', timestamptz '2024-03-01 23:59:59+00'
  FROM unnest(:'ex'::bigint[]) e, generate_series(1, 2) p;
SELECT * FROM check_step_rollup;
UPDATE execlog.execution_steps
   SET status = CASE WHEN position = 2 AND execution_id = (:'ex'::bigint[])[2] THEN 'failed' ELSE 'success' END::execlog.step_status,
	   finished_at = started_at + (execution_id % 7 + position) * interval '300 ms'
 WHERE execution_id = ANY (:'ex'::bigint[]);
SELECT * FROM check_step_rollup;
-- finished in one insert, and a reused row (not counted)
INSERT INTO execlog.execution_steps (execution_id, attempt, position, account_id, name, kind, status,
	   started_at, finished_at, reused_from)
VALUES ((:'ex'::bigint[])[1], 2, 1, 1, 'fetch', 'sql', 'success', '2024-03-02 10:00', '2024-03-02 10:00:02', 1),
	   ((:'ex'::bigint[])[1], 2, 2, 1, 'post', 'sql', 'skipped', NULL, '2024-03-02 10:00:03', NULL),
	   ((:'ex'::bigint[])[4], 2, 1, 2, 'fetch', 'sql', 'success', '2024-03-02 10:00', '2024-03-02 10:00:01', NULL);
SELECT * FROM check_step_rollup;
-- a change of a finished row moves it (day, status, duration)
UPDATE execlog.execution_steps SET finished_at = finished_at + interval '1 day', status = 'failed'
 WHERE execution_id = (:'ex'::bigint[])[3] AND position = 1;
SELECT * FROM check_step_rollup;
SELECT account_id, step, status, steps, avg_duration FROM execlog.daily_step_durations ORDER BY day, step, status, account_id;
-- deleting executions deletes their steps (the cascade) and subtracts them
DELETE FROM execlog.executions WHERE id = (:'ex'::bigint[])[2];
SELECT * FROM check_step_rollup;
SET ROLE t71_reader;
SELECT DISTINCT account_id FROM execlog.daily_step_durations;
RESET ROLE;

-- TRUNCATE empties it with executions
TRUNCATE execlog.executions CASCADE;
SELECT count(*) AS rollup_rows FROM execlog.daily_stats;
-- (execution_steps has no foreign key: its own TRUNCATE empties the step rollup)
TRUNCATE execlog.execution_steps;
SELECT count(*) AS step_rollup_rows FROM execlog.daily_step_stats;

-- pg_dump keeps it
SELECT c.relname FROM pg_extension x, unnest(x.extconfig) r JOIN pg_class c ON c.oid = r
 WHERE x.extname = 'execlog' AND c.relname IN ('daily_stats', 'daily_step_stats') ORDER BY 1;

DROP VIEW check_step_rollup, step_rollup, step_recomputed, check_rollup, rollup, recomputed;
DROP EXTENSION execlog CASCADE;
DROP ROLE t71_reader;
