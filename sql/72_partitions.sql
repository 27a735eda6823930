-- 72_partitions: executions, execution_steps and transitions are
-- partitioned by ranges of execution ids with the same bounds; partitions
-- are kept ahead, the next one is opened when an interval begins, and
-- prune() drops whole partitions whose executions are all final and old,
-- with their tasks, alerts, event log rows and rollup counts.
DROP EXTENSION IF EXISTS execlog CASCADE;
CREATE EXTENSION execlog;
DROP ROLE IF EXISTS t72_admin;
CREATE ROLE t72_admin NOLOGIN IN ROLE execlog_admin;

-- the partitions made at install: 0 (from the lowest id) and the two after it
CREATE VIEW t72_parts AS
SELECT h.inhparent::regclass AS parent, c.relname AS partition,
	   pg_get_expr(c.relpartbound, c.oid) AS bounds
  FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
 WHERE h.inhparent IN ('execlog.executions'::regclass, 'execlog.execution_steps'::regclass,
					   'execlog.transitions'::regclass);
SELECT * FROM t72_parts ORDER BY 1, 2;
-- their indexes are named after their parents'
SELECT indexrelid::regclass FROM pg_index WHERE indrelid = 'execlog.executions_p1'::regclass ORDER BY indexrelid::regclass::text COLLATE "C";

-- execlog.partition_interval: a day by default, from 1 minute to 366 days
SHOW execlog.partition_interval;
ALTER SYSTEM SET execlog.partition_interval = 0;
ALTER SYSTEM SET execlog.partition_interval = '367d';
SET execlog.partition_interval = '1h';

-- a maintenance pass with nothing to do: the partitions are there, no
-- execution yet, so no interval began
SELECT execlog._partitions_maintain('1 day');
SELECT execlog._partition_create(-1);
SELECT execlog._partition_create(9007199);

INSERT INTO execlog.accounts (name) VALUES ('t72a'), ('t72b');
INSERT INTO execlog.account_members VALUES (1, 't72_admin');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'a'), (2, 'b');

-- t72_finish(id): pending -> running -> success, with a step row
CREATE FUNCTION t72_finish(bigint) RETURNS void LANGUAGE sql AS $$
	UPDATE execlog.executions SET status = 'running' WHERE id = $1;
	INSERT INTO execlog.execution_steps (execution_id, attempt, position, account_id, name, kind, status)
	SELECT id, 1, 1, account_id, 's', 'sql', 'success' FROM execlog.executions WHERE id = $1;
	UPDATE execlog.executions SET status = 'success' WHERE id = $1;
$$;
-- t72_age(): a day passes (the executions were created a day earlier;
-- only the clock is simulated, no trigger fires)
CREATE FUNCTION t72_age() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	SET LOCAL session_replication_role = replica;
	UPDATE execlog.executions SET created_at = created_at - interval '1 day';
END
$$;
-- the rollup against the same aggregate computed from executions
CREATE VIEW t72_rollup_differs AS
WITH r AS (
	SELECT account_id, automation_id, day, status, bucket, sum(executions) AS n, sum(duration_us) AS us
	  FROM execlog.daily_stats GROUP BY 1, 2, 3, 4, 5 HAVING sum(executions) <> 0 OR sum(duration_us) <> 0),
c AS (
	SELECT account_id, automation_id, (finished_at AT TIME ZONE 'UTC')::date, status,
		   execlog._duration_bucket(started_at, finished_at), count(*)::numeric,
		   coalesce(sum((extract(epoch FROM finished_at - started_at) * 1000000)::bigint), 0)::numeric
	  FROM execlog.executions
	 WHERE status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
	 GROUP BY 1, 2, 3, 4, 5)
SELECT count(*) AS rollup_differs FROM ((TABLE r EXCEPT TABLE c) UNION ALL (TABLE c EXCEPT TABLE r)) d;
-- the step rollup against the same aggregate computed from execution_steps
CREATE VIEW t72_step_rollup_differs AS
WITH r AS (
	SELECT account_id, day, name, status, sum(steps) AS n, sum(duration_us) AS us
	  FROM execlog.daily_step_stats GROUP BY 1, 2, 3, 4 HAVING sum(steps) <> 0 OR sum(duration_us) <> 0),
c AS (
	SELECT account_id, (finished_at AT TIME ZONE 'UTC')::date, name, status, count(*)::numeric,
		   coalesce(sum((extract(epoch FROM finished_at - started_at) * 1000000)::bigint), 0)::numeric
	  FROM execlog.execution_steps
	 WHERE finished_at IS NOT NULL AND reused_from IS NULL
	 GROUP BY 1, 2, 3, 4)
SELECT count(*) AS step_rollup_differs, (SELECT count(*) FROM c) AS step_groups
  FROM ((TABLE r EXCEPT TABLE c) UNION ALL (TABLE c EXCEPT TABLE r)) d;

-- partition 0: executions of account 1, all final, in the event log
SELECT execlog.start('a') FROM generate_series(1, 3);
SELECT t72_finish(id) FROM execlog.executions ORDER BY id;
SELECT * FROM execlog.merge_event_log();
-- the same day: nothing moves
SELECT execlog._partitions_maintain('1 day');
SELECT execlog.start('a') AS still_partition_0;
SELECT t72_finish(4);
-- a day later: partition 3 is made, new ids start at partition 1
SELECT t72_age();
SELECT execlog._partitions_maintain('1 day') AS made;
SELECT execlog.start('a') AS first_of_partition_1;
SELECT t72_finish(1000000000);
SELECT execlog.start('b') AS active_in_partition_1;
SELECT tableoid::regclass, count(*) FROM execlog.executions GROUP BY 1 ORDER BY 1;
SELECT tableoid::regclass, count(*) FROM execlog.transitions GROUP BY 1 ORDER BY 1;
-- and a day later again: partition 2
SELECT t72_age();
SELECT execlog._partitions_maintain('1 day') AS made;
SELECT execlog.start('a') AS first_of_partition_2;
SELECT t72_finish(2000000000);
SELECT partition FROM t72_parts WHERE parent = 'execlog.executions'::regclass ORDER BY 1;

-- nothing is old enough: nothing goes
SELECT execlog.prune('1 hour');
-- an account's admin prunes its own account's rows, row by row (4 of
-- partition 0, 1 of partition 1, 1 of partition 2): partitions are shared
-- with other accounts, so none is dropped, not even partition 0 that it
-- empties; account 2's active execution stays
SET ROLE t72_admin;
SELECT execlog.prune('0') AS pruned_by_admin;
RESET ROLE;
SELECT partition FROM t72_parts WHERE parent = 'execlog.executions'::regclass ORDER BY 1;
SELECT id, account_id, status FROM execlog.executions ORDER BY id;

-- again, with old executions of both accounts in partition 0
SELECT execlog.start('a') AS a, execlog.start('b') AS b;
SELECT t72_finish(2000000001), t72_finish(2000000002);
SET session_replication_role = replica;
INSERT INTO execlog.executions (id, automation_id, account_id, automation_revision, trigger_revision,
								trigger_kind, triggered_by, status, created_at, started_at, finished_at, updated_at)
SELECT 10 + i, 1 + i % 2, 1 + i % 2, 1, 1, 'manual', 't72', 'success',
	   now() - interval '2 days', now() - interval '2 days', now() - interval '2 days' + interval '1 second',
	   now() - interval '2 days'
  FROM generate_series(1, 4) i;
INSERT INTO execlog.transitions (execution_id, account_id, attempt, to_status, at, by)
SELECT id, account_id, 1, status, created_at, 't72' FROM execlog.executions WHERE id BETWEEN 11 AND 14;
INSERT INTO execlog.execution_steps (execution_id, attempt, position, account_id, name, kind, status,
									 started_at, finished_at)
SELECT id, 1, 1, account_id, 'old', 'sql', 'success', started_at, finished_at
  FROM execlog.executions WHERE id BETWEEN 11 AND 14;
INSERT INTO execlog.daily_step_stats
SELECT account_id, (finished_at AT TIME ZONE 'UTC')::date, name, status, 0, count(*),
	   sum((extract(epoch FROM finished_at - started_at) * 1000000)::bigint)
  FROM execlog.execution_steps WHERE execution_id BETWEEN 11 AND 14 GROUP BY 1, 2, 3, 4;
SET session_replication_role = origin;
INSERT INTO execlog.tasks (execution_id, account_id, title) VALUES (12, 2, 'look');
INSERT INTO execlog.alerts (execution_id, account_id, channel, target, message)
	VALUES (12, 2, 'email', 'ops@example.com', 'failed');
-- (those rows are counted as the triggers would have)
INSERT INTO execlog.daily_stats
SELECT account_id, automation_id, (finished_at AT TIME ZONE 'UTC')::date, status,
	   execlog._duration_bucket(started_at, finished_at), 0, count(*),
	   sum((extract(epoch FROM finished_at - started_at) * 1000000)::bigint)
  FROM execlog.executions WHERE id BETWEEN 11 AND 14 GROUP BY 1, 2, 3, 4, 5;
SELECT * FROM t72_rollup_differs;
SELECT * FROM t72_step_rollup_differs;

-- the superuser's prune (execlog.retention runs as one): partition 0 holds
-- only final executions (of both accounts), so it goes whole, the three
-- tables together with its task, alert and event log rows (4 executions);
-- partition 1 holds an active execution: it stays; partition 2 is the
-- current one: its final executions go row by row (2)
SELECT execlog.prune('0') AS pruned;
SELECT partition FROM t72_parts ORDER BY 1;
SELECT id, account_id, status FROM execlog.executions ORDER BY id;
SELECT DISTINCT execution_id FROM execlog.transitions ORDER BY 1;
SELECT count(*) AS steps FROM execlog.execution_steps;
SELECT count(*) AS tasks FROM execlog.tasks;
SELECT count(*) AS alerts FROM execlog.alerts;
SELECT instance_id FROM execlog.event_log ORDER BY 1;
SELECT * FROM t72_rollup_differs;
SELECT * FROM t72_step_rollup_differs;
-- the active execution of the kept partition goes on
UPDATE execlog.executions SET status = 'running' WHERE id = 1000000001;
UPDATE execlog.executions SET status = 'cancelled' WHERE id = 1000000001;
SELECT id, status FROM execlog.executions WHERE id = 1000000001;
-- once it is final, its partition goes whole too (1 execution)
SELECT execlog.prune('0') AS pruned;
SELECT partition FROM t72_parts WHERE parent = 'execlog.executions'::regclass ORDER BY 1;
SELECT * FROM t72_rollup_differs;
SELECT * FROM t72_step_rollup_differs;
-- new executions still start, in the current partition
SELECT execlog.start('a') AS id;

DROP VIEW t72_parts, t72_rollup_differs, t72_step_rollup_differs;
DROP FUNCTION t72_finish(bigint), t72_age();
DROP EXTENSION execlog CASCADE;
DROP ROLE t72_admin;
