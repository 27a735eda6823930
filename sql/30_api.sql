-- 30_api: execlog.start(), cancel(), resume() and complete_task() (SPEC
-- section 4): what each does and each refusal.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP ROLE IF EXISTS t30_op;
RESET client_min_messages;
CREATE EXTENSION execlog;

INSERT INTO execlog.accounts (id, name) VALUES (1, 'acme'), (2, 'globex'), (3, 'initech');
INSERT INTO execlog.automations (id, account_id, name) VALUES
	(1, 1, 'invoice'), (2, 2, 'invoice'), (3, 1, 'report');
INSERT INTO execlog.automations (id, account_id, name, enabled) VALUES (4, 1, 'off', false);
INSERT INTO execlog.automations (id, account_id, name, throttle) VALUES (5, 1, 'slow', 1);

/*
 * start by name
 */
SELECT execlog.start('report') AS x \gset
SELECT e.automation_id, e.account_id, e.status, e.attempt, e.payload,
	   e.trigger_id = t.id AS manual_trigger, e.trigger_kind, e.trigger_revision,
	   e.triggered_by = session_user AS by_session_user
  FROM execlog.executions e JOIN execlog.triggers t ON t.automation_id = e.automation_id
 WHERE e.id = :x;
SELECT from_status, to_status, attempt, by = current_user AS by_me
  FROM execlog.transitions WHERE execution_id = :x;
SELECT execlog.start('report', '{"month": "2024-05"}') AS x \gset
SELECT payload FROM execlog.executions WHERE id = :x;
SELECT execlog.start('report', NULL) AS x \gset
-- a payload is a JSON object (SQL NULL: an empty one); anything else is refused
SELECT execlog.start('report', 'null');
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.start('report', '[1, 2]');
SELECT execlog.start('report', '17');
SELECT execlog.start('report', '"x"');
SELECT payload FROM execlog.executions WHERE id = :x;
-- the same name in two accounts needs the account
SELECT execlog.start('invoice');
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.start('invoice', '{"n": 1}', 'globex') AS x \gset
SELECT automation_id, account_id, payload FROM execlog.executions WHERE id = :x;
SELECT execlog.start('invoice', account => 'acme') AS x \gset
SELECT automation_id, account_id FROM execlog.executions WHERE id = :x;
-- a throttled automation queues
SELECT execlog.start('slow') AS x \gset
SELECT status FROM execlog.executions WHERE id = :x;
-- refusals
SELECT execlog.start('nope');
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.start('report', '{}', 'globex');
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.start('invoice', '{}', 'initech');
SELECT execlog.start('invoice', '{}', 'nobody');
SELECT execlog.start('off');
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.start(NULL::text);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.start(NULL::text, '{}', 'acme');
SELECT execlog.start('');

/*
 * start by id
 */
SELECT execlog.start(3::bigint, '{"by": "id"}') AS x \gset
SELECT automation_id, payload, trigger_kind, triggered_by = session_user AS by_session_user
  FROM execlog.executions WHERE id = :x;
SELECT execlog.start(2::bigint) AS x \gset
SELECT automation_id, account_id, payload FROM execlog.executions WHERE id = :x;
SELECT execlog.start(4::bigint);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.start(999::bigint);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.start(NULL::bigint);
-- enabling it again makes it startable
UPDATE execlog.automations SET enabled = true WHERE id = 4;
SELECT execlog.start('off') > 0 AS started;
-- nothing was created by the refusals
SELECT count(*) AS executions FROM execlog.executions;

/*
 * triggered_by is the session user; transitions.by is the role acting
 */
CREATE ROLE t30_op NOLOGIN IN ROLE execlog_operator;
INSERT INTO execlog.account_members VALUES (1, 't30_op');
SET ROLE t30_op;
SELECT execlog.start('report', '{"as": "operator"}') AS x \gset
RESET ROLE;
SELECT triggered_by = session_user AS by_session_user, triggered_by <> 't30_op' AS not_role
  FROM execlog.executions WHERE id = :x;
SELECT to_status, by FROM execlog.transitions WHERE execution_id = :x;

/*
 * cancel: pending, queued, running or paused -> cancelled
 */
SELECT execlog.start('report') AS x \gset
SELECT execlog.cancel(:x);
SELECT status, finished_at IS NOT NULL AS finished FROM execlog.executions WHERE id = :x;
SELECT from_status, to_status, attempt, by = current_user AS by_me
  FROM execlog.transitions WHERE execution_id = :x ORDER BY id;
SELECT execlog.start('slow') AS x \gset
SELECT execlog.cancel(:x);
SELECT status FROM execlog.executions WHERE id = :x;
SELECT execlog.start('report') AS x \gset
UPDATE execlog.executions SET status = 'running', worker = 1 WHERE id = :x;
SELECT execlog.cancel(:x);
SELECT status, finished_at IS NOT NULL AS finished FROM execlog.executions WHERE id = :x;
SELECT execlog.start('report') AS x \gset
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
UPDATE execlog.executions SET status = 'paused', run_after = now() + interval '1 hour' WHERE id = :x;
INSERT INTO execlog.execution_steps (execution_id, attempt, position, account_id, name, kind, status, started_at)
SELECT id, attempt, 1, account_id, 'wait', 'pause', 'running', now() FROM execlog.executions WHERE id = :x;
SELECT execlog.cancel(:x);
SELECT status, run_after IS NULL AS no_run_after FROM execlog.executions WHERE id = :x;
-- the step it waited in is not left running (final execution: no pending or running step)
SELECT name, status, error, finished_at IS NOT NULL AS finished FROM execlog.execution_steps WHERE execution_id = :x;
SELECT from_status, to_status FROM execlog.transitions WHERE execution_id = :x ORDER BY id;
-- refusals, changing nothing
SELECT execlog.cancel(:x);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.start('report') AS x \gset
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
UPDATE execlog.executions SET status = 'success' WHERE id = :x;
SELECT execlog.cancel(:x);
SELECT execlog.start('report') AS x \gset
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
UPDATE execlog.executions SET status = 'failed' WHERE id = :x;
SELECT execlog.cancel(:x);
SELECT execlog.start('report') AS x \gset
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
UPDATE execlog.executions SET status = 'partially_executed' WHERE id = :x;
SELECT execlog.cancel(:x);
SELECT execlog.start('report') AS x \gset
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
UPDATE execlog.executions SET status = 'rejected' WHERE id = :x;
SELECT execlog.cancel(:x);
SELECT status, (SELECT count(*) FROM execlog.transitions WHERE execution_id = :x) AS transitions
  FROM execlog.executions WHERE id = :x;
SELECT execlog.cancel(999);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.cancel(NULL);
\echo :LAST_ERROR_SQLSTATE

/*
 * resume: paused -> running, the payload kept as $.resume
 */
SELECT execlog.start('report') AS x \gset
UPDATE execlog.executions SET status = 'running', worker = 3 WHERE id = :x;
SELECT started_at AS s FROM execlog.executions WHERE id = :x \gset
UPDATE execlog.executions SET status = 'paused', worker = NULL WHERE id = :x;
SELECT execlog.resume(:x, '{"approved_by": "maria"}');
SELECT status, resume, started_at = :'s' AS same_start, finished_at IS NULL AS not_finished,
	   worker IS NULL AS awaits_worker
  FROM execlog.executions WHERE id = :x;
SELECT from_status, to_status, by = current_user AS by_me
  FROM execlog.transitions WHERE execution_id = :x ORDER BY id;
-- resumed twice: the second one is refused
SELECT execlog.resume(:x, '{"approved_by": "tom"}');
\echo :LAST_ERROR_SQLSTATE
SELECT resume FROM execlog.executions WHERE id = :x;
-- default and NULL payloads are an empty object
UPDATE execlog.executions SET status = 'paused' WHERE id = :x;
SELECT execlog.resume(:x);
SELECT resume FROM execlog.executions WHERE id = :x;
UPDATE execlog.executions SET status = 'paused' WHERE id = :x;
SELECT execlog.resume(:x, NULL);
SELECT resume FROM execlog.executions WHERE id = :x;
-- refusals
SELECT execlog.start('report') AS x \gset
SELECT execlog.resume(:x);
SELECT execlog.start('slow') AS x \gset
SELECT execlog.resume(:x);
SELECT execlog.cancel(:x);
SELECT execlog.resume(:x);
SELECT execlog.resume(999);
SELECT execlog.resume(NULL);

/*
 * complete_task
 */
SELECT execlog.start('report') AS x \gset
INSERT INTO execlog.tasks (execution_id, account_id, assignee, title)
VALUES (:x, 1, 'maria', 'check invoice') RETURNING id AS task \gset
INSERT INTO execlog.tasks (execution_id, account_id, assignee, title, status)
VALUES (:x, 1, 'tom', 'dismissed one', 'dismissed') RETURNING id AS dismissed \gset
SELECT execlog.complete_task(:task, 'paid by hand');
SELECT status, note, closed_at IS NOT NULL AS closed, closed_by = current_user AS closed_by_me
  FROM execlog.tasks WHERE id = :task;
SELECT execlog.complete_task(:task, 'again');
\echo :LAST_ERROR_SQLSTATE
SELECT status, note FROM execlog.tasks WHERE id = :task;
SELECT execlog.complete_task(:dismissed);
SELECT status, note, closed_at FROM execlog.tasks WHERE id = :dismissed;
-- without a note; closed by the calling role
INSERT INTO execlog.tasks (execution_id, account_id, title)
VALUES (:x, 1, 'no note') RETURNING id AS task \gset
SET ROLE t30_op;
SELECT execlog.complete_task(:task);
RESET ROLE;
SELECT status, note, closed_by FROM execlog.tasks WHERE id = :task;
SELECT execlog.complete_task(999);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.complete_task(NULL);

DROP OWNED BY t30_op;
DROP ROLE t30_op;
