-- 49_tasks: alert and task steps validated when written, complete_task
-- with an outcome, dismiss_task, my_tasks, and who may act (SPEC section 6).
-- Workers are off here: executions are driven by hand, as a worker would.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP ROLE IF EXISTS t49_admin;
DROP ROLE IF EXISTS t49_op1;
DROP ROLE IF EXISTS t49_op2;
DROP ROLE IF EXISTS t49_reader;
DROP ROLE IF EXISTS t49_approvers;
RESET client_min_messages;
CREATE EXTENSION execlog;
CREATE ROLE t49_approvers NOLOGIN;
CREATE ROLE t49_admin NOLOGIN IN ROLE execlog_admin;
CREATE ROLE t49_op1 NOLOGIN IN ROLE execlog_operator, t49_approvers;
CREATE ROLE t49_op2 NOLOGIN IN ROLE execlog_operator;
CREATE ROLE t49_reader NOLOGIN IN ROLE execlog_reader, t49_approvers;
INSERT INTO execlog.accounts (id, name) VALUES (1, 't49'), (2, 't49b');
INSERT INTO execlog.account_members VALUES
	(1, 't49_admin'), (1, 't49_op1'), (1, 't49_reader'), (2, 't49_op2');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES
	(1, 'ops-slack', 'slack', '{"url": "https://hooks.slack.example/services/T0/B0/secret"}'),
	(2, 'other-slack', 'slack', '{"url": "https://hooks.slack.example/services/T1/B1/secret"}');
GRANT t49_approvers TO t49_admin;
SET ROLE t49_admin;
INSERT INTO execlog.automations (id, account_id, name, run_as) VALUES (1, 1, 'approve', 't49_admin');
RESET ROLE;

/*
 * alert steps: {"channel", "target"?, "message"}, written by an admin
 */
SET ROLE t49_admin;
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES
	(1, 1, 'tell', 'alert', '{"channel": "ops-slack", "message": "invoice {{ $.payload.invoice }} waits"}'),
	(1, 2, 'mail', 'alert', '{"channel": "email", "target": "maria@example.com", "message": "look"}'),
	(1, 3, 'mail2', 'alert', '{"channel": "email", "target": "{{ $.payload.owner }}", "message": "look"}');
SELECT position, name, kind FROM execlog.steps ORDER BY position;
\set SHOW_CONTEXT never
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 'a', 'alert', '{"message": "x"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 'a', 'alert', '{"channel": "ops-slack"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 'a', 'alert', '{"channel": "ops-slack", "message": ""}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 'a', 'alert', '{"channel": "ops-slack", "message": "x", "to": "y"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 'a', 'alert', '{"channel": "ops-slack", "message": 5}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 'a', 'alert', '{"channel": "https://hooks.slack.example/services/T0/B0/secret", "message": "x"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 'a', 'alert', '{"channel": "{{ $.payload.channel }}", "message": "x"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 'a', 'alert', '{"channel": "nowhere", "message": "x"}');
\echo :LAST_ERROR_SQLSTATE
-- another account's channel is not this automation's
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 'a', 'alert', '{"channel": "other-slack", "message": "x"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 'a', 'alert', '{"channel": "ops-slack", "target": "maria@example.com", "message": "x"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 'a', 'alert', '{"channel": "email", "target": "Maria <maria@example.com>", "message": "x"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 'a', 'alert', '{"channel": "email", "message": "x"}');
\echo :LAST_ERROR_SQLSTATE
UPDATE execlog.steps SET config = config - 'message' WHERE name = 'tell';
\echo :LAST_ERROR_SQLSTATE

/*
 * task steps: {"assignee", "title", "body", "due", "wait", "escalate"}
 */
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES
	(1, 4, 'approval', 'task', '{"assignee": "t49_approvers", "title": "approve invoice {{ $.payload.invoice }}", "due": "4 hours", "escalate": "ops-slack"}'),
	(1, 5, 'todo', 'task', '{"assignee": "{{ $.payload.owner }}", "wait": false}');
INSERT INTO execlog.steps (automation_id, position, name, kind, config, condition)
VALUES (1, 6, 'book', 'sql', '{"query": "SELECT 1"}', '$.steps.approval.output.outcome == "approve"');
SELECT position, name, kind, condition FROM execlog.steps ORDER BY position;
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'task', '{"title": "x"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'task', '{"assignee": ""}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'task', '{"assignee": "nobody_t49"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'task', '{"assignee": "t49_op1", "owner": "x"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'task', '{"assignee": "t49_op1", "title": 7}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'task', '{"assignee": "t49_op1", "title": ""}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'task', '{"assignee": "t49_op1", "wait": "no"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'task', '{"assignee": "t49_op1", "due": "soon"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'task', '{"assignee": "t49_op1", "due": "-1 hour"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'task', '{"assignee": "t49_op1", "due": "2 years"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'task', '{"assignee": "t49_op1", "escalate": "ops-slack"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'task', '{"assignee": "t49_op1", "due": "1 hour", "escalate": "nowhere"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'task', '{"assignee": "t49_op1", "due": "1 hour", "escalate": "https://hooks.example/x"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'approval', '{}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 9, 't', 'decide', '{}');
\echo :LAST_ERROR_SQLSTATE
-- on_failure with a literal address, by an admin
UPDATE execlog.automations SET on_failure = '{"alert": {"channel": "email", "target": "ops@example.com"}}' WHERE id = 1;
RESET ROLE;
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'steps_kind_check';

/*
 * A task step waiting: what a worker leaves behind (the step row running
 * with {"task_id"}, the execution paused), driven by hand
 */
INSERT INTO execlog.executions (id, automation_id, triggered_by, payload)
VALUES (10, 1, 'test', '{"invoice": 17}'), (11, 1, 'test', '{}'), (12, 1, 'test', '{}'), (13, 1, 'test', '{}');
UPDATE execlog.executions SET status = 'running', worker = 0 WHERE id IN (10, 11, 12, 13);
INSERT INTO execlog.tasks (id, execution_id, account_id, step_position, assignee, title, due_at)
VALUES (100, 10, 1, 4, 't49_approvers', 'approve invoice 17', now() + interval '4 hours'),
	   (101, 11, 1, 4, 't49_approvers', 'approve', NULL),
	   (102, 12, 1, 4, 't49_op2', 'approve', NULL),
	   (103, 13, 1, 4, 't49_approvers', 'approve', now() - interval '1 hour'),
	   (104, 13, 1, NULL, 'nobody', 'follow up', NULL);
INSERT INTO execlog.execution_steps (execution_id, attempt, position, account_id, name, kind, status, started_at, output)
SELECT id, 1, 4, 1, 'approval', 'task', 'running', now(), jsonb_build_object('task_id', id + 90)
  FROM execlog.executions WHERE id IN (10, 11, 12, 13);
UPDATE execlog.executions SET status = 'paused', worker = NULL WHERE id IN (10, 11, 12, 13);

-- resume() is refused while a task is awaited
SELECT execlog.resume(10);
\echo :LAST_ERROR_SQLSTATE

-- my_tasks: open tasks of the role or its groups, in its accounts
SET ROLE t49_op1;
SELECT id, execution_id, automation, title, overdue, due_at IS NOT NULL AS has_due FROM execlog.my_tasks ORDER BY id;
RESET ROLE;
SET ROLE t49_op2;
SELECT id FROM execlog.my_tasks ORDER BY id;   -- task 102 is assigned to it, but in account 1
SELECT count(*) FROM execlog.tasks;
RESET ROLE;
SET ROLE t49_reader;
SELECT id FROM execlog.my_tasks ORDER BY id;

-- readers cannot act
SELECT execlog.complete_task(100, 'ok', 'approve');
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.dismiss_task(100);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- operators act only on their accounts' tasks
SET ROLE t49_op2;
SELECT execlog.complete_task(100, 'ok', 'approve');
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.dismiss_task(100);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- refusals
SET ROLE t49_op1;
SELECT execlog.complete_task(999);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.dismiss_task(999);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.complete_task(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.complete_task(100, 'x', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.dismiss_task(NULL, 'x');
\echo :LAST_ERROR_SQLSTATE

-- complete: the task is done, the step gets its output, the execution runs again
SELECT execlog.complete_task(100, 'looks right', 'approve');
RESET ROLE;
SELECT id, status, outcome, note, closed_by, closed_at IS NOT NULL AS closed FROM execlog.tasks WHERE id = 100;
SELECT status, worker FROM execlog.executions WHERE id = 10;
SELECT status, output, error FROM execlog.execution_steps WHERE execution_id = 10;
SELECT from_status, to_status, by FROM execlog.transitions WHERE execution_id = 10 ORDER BY id DESC LIMIT 1;
SET ROLE t49_op1;
SELECT execlog.complete_task(100);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.dismiss_task(100);
\echo :LAST_ERROR_SQLSTATE

-- the default outcome is "done"
SELECT execlog.complete_task(101);
RESET ROLE;
SELECT outcome, note FROM execlog.tasks WHERE id = 101;
SELECT output FROM execlog.execution_steps WHERE execution_id = 11;

-- a task assigned to a role: an operator of the account who is not a
-- member of that role cannot close it (task 102 is t49_op2's)
SET ROLE t49_op1;
SELECT execlog.dismiss_task(102, 'not needed');
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.complete_task(102, 'mine now', 'approve');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT status, closed_by FROM execlog.tasks WHERE id = 102;
SELECT status FROM execlog.executions WHERE id = 12;

-- dismiss: by an administrator of the account (not a member of t49_op2);
-- the waiting step gets the error a worker fails it with
SET ROLE t49_admin;
SELECT execlog.dismiss_task(102, 'not needed');
SELECT execlog.complete_task(102);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT status, outcome, note, closed_by FROM execlog.tasks WHERE id = 102;
SELECT e.status, s.status AS step_status, s.output, s.error
  FROM execlog.executions e JOIN execlog.execution_steps s ON s.execution_id = e.id WHERE e.id = 12;

-- a task without a waiting step (an on_failure task) is closed and nothing
-- more; its assignee names no role (0.1 took any text): any operator of
-- the account may close it
SET ROLE t49_op1;
SELECT execlog.dismiss_task(104);
RESET ROLE;
SELECT status, closed_by FROM execlog.tasks WHERE id = 104;

-- cancelling an execution that waits dismisses its task and fails its step
SET ROLE t49_op1;
SELECT id, overdue FROM execlog.my_tasks ORDER BY id;
SELECT execlog.cancel(13);
SELECT id FROM execlog.my_tasks ORDER BY id;
RESET ROLE;
SELECT status, note, closed_by FROM execlog.tasks WHERE id = 103;
SELECT status, error FROM execlog.execution_steps WHERE execution_id = 13;

-- a channel named by an alert step or an escalate is kept
DELETE FROM execlog.channels WHERE account_id = 1 AND name = 'ops-slack';
\echo :LAST_ERROR_SQLSTATE
UPDATE execlog.channels SET name = 'slack-ops' WHERE account_id = 1 AND name = 'ops-slack';
\echo :LAST_ERROR_SQLSTATE
UPDATE execlog.steps SET config = '{"channel": "email", "target": "ops@example.com", "message": "m"}' WHERE name = 'tell';
DELETE FROM execlog.channels WHERE account_id = 1 AND name = 'ops-slack';
\echo :LAST_ERROR_SQLSTATE
UPDATE execlog.steps SET config = config - 'escalate' WHERE name = 'approval';
UPDATE execlog.channels SET name = 'slack-ops' WHERE account_id = 1 AND name = 'ops-slack' RETURNING name;

-- the due time of an on_failure task: NULL for a due that is not a positive interval
SELECT execlog._due_at(NULL) AS no_due, execlog._due_at('soon') AS bad, execlog._due_at('-1 hour') AS negative,
	   execlog._due_at('2 hours') = now() + interval '2 hours' AS two_hours;
SELECT execlog._on_failure_escalation('{"alert": {"channel": "email", "target": "a@example.com"}}') AS mail,
	   execlog._on_failure_escalation('{"alert": {"channel": "ops-slack", "message": "m"}}') AS slack,
	   execlog._on_failure_escalation('{"task": {}}') AS none;

/*
 * Columns, grants and privileges
 */
SELECT column_name FROM information_schema.columns
 WHERE table_schema = 'execlog' AND table_name = 'tasks' ORDER BY ordinal_position;
SELECT column_name FROM information_schema.columns
 WHERE table_schema = 'execlog' AND table_name = 'my_tasks' ORDER BY ordinal_position;
SELECT p.oid::regprocedure, p.proacl FROM pg_proc p
 WHERE p.proname IN ('complete_task', 'dismiss_task', '_alert_step_check', '_task_step_check', '_has_placeholder', '_due_at', '_on_failure_escalation')
 ORDER BY p.oid::regprocedure::text COLLATE "C";
SELECT has_table_privilege('public', 'execlog.my_tasks', 'SELECT') AS public_reads,
	   has_table_privilege('execlog_reader', 'execlog.my_tasks', 'SELECT') AS reader_reads;

DROP EXTENSION execlog CASCADE;
DROP ROLE t49_admin;
DROP ROLE t49_op1;
DROP ROLE t49_op2;
DROP ROLE t49_reader;
DROP ROLE t49_approvers;
