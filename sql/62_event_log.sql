-- execlog.event_log and execlog.merge_event_log(), the Celonis-style views
-- and the activity log (SPEC 7)
DROP EXTENSION IF EXISTS execlog CASCADE;
CREATE EXTENSION execlog;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- A full recomputation of the event log, to compare with (both ways).
CREATE VIEW event_log_diff AS
WITH full_log AS (
	SELECT a.name AS execution_template_name, e.id AS instance_id, e.created_at,
		   e.updated_at AS last_modified, e.status, e.account_id
	  FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
)
SELECT 'missing' AS problem, * FROM (SELECT * FROM full_log EXCEPT SELECT * FROM execlog.event_log) m
UNION ALL
SELECT 'extra', * FROM (SELECT * FROM execlog.event_log EXCEPT SELECT * FROM full_log) x;

INSERT INTO execlog.accounts (name) VALUES ('acme'), ('globex');
INSERT INTO execlog.automations (account_id, name, max_retries, run_as)
VALUES (1, 'invoice', 2, 'execlog_operator'), (2, 'onboarding', 0, 'execlog_operator');

-- the event log is not in use until the first merge: nothing is queued
SELECT execlog.event_log_in_use();
SELECT execlog.start('invoice', '{}') IS NOT NULL AS started;
SELECT count(*) AS queued FROM execlog.event_log_queue;
-- the first merge recomputes it whole and starts the queue
SELECT * FROM execlog.merge_event_log();
SELECT execlog.event_log_in_use();
SELECT * FROM event_log_diff;
DELETE FROM execlog.executions;
SELECT setval(pg_get_serial_sequence('execlog.executions', 'id'), 1, false) IS NOT NULL AS restarted;
-- an empty queue merges nothing (the delete above was queued)
SELECT * FROM execlog.merge_event_log();
SELECT * FROM execlog.merge_event_log();

-- inserts
SELECT execlog.start('invoice', '{}') FROM generate_series(1, 5);
SELECT execlog.start('onboarding', '{}') FROM generate_series(1, 2);
SELECT * FROM execlog.merge_event_log();
SELECT * FROM event_log_diff;
SELECT * FROM execlog.merge_event_log();

-- updates: several changes of one execution between two merges count once
UPDATE execlog.executions SET status = 'running' WHERE id IN (1, 2, 3, 6);
UPDATE execlog.executions SET status = 'failed' WHERE id = 1;
UPDATE execlog.executions SET status = 'success' WHERE id = 2;
UPDATE execlog.executions SET status = 'cancelled' WHERE id = 4;
SELECT * FROM execlog.merge_event_log();
SELECT * FROM event_log_diff;
SELECT instance_id, execution_template_name, status FROM execlog.event_log ORDER BY 1;

-- retries
SELECT execlog.retry(1);
SELECT * FROM execlog.merge_event_log();
UPDATE execlog.executions SET status = 'running' WHERE id = 1;
UPDATE execlog.executions SET status = 'rejected' WHERE id = 1;
SELECT execlog.retry(1, from_start => true);
SELECT * FROM execlog.merge_event_log();
SELECT * FROM event_log_diff;
SELECT instance_id, status FROM execlog.event_log WHERE instance_id = 1;
SELECT attempt FROM execlog.executions WHERE id = 1;

-- inserts and updates in one merge; a change that is undone still merges
SELECT execlog.start('invoice', '{}');
UPDATE execlog.executions SET status = 'running' WHERE id = 5;
UPDATE execlog.executions SET context = '{"x": 1}' WHERE id = 3;
SELECT * FROM execlog.merge_event_log();
SELECT * FROM event_log_diff;

-- a rolled-back change leaves nothing to merge
BEGIN;
UPDATE execlog.executions SET status = 'cancelled' WHERE id = 7;
ROLLBACK;
SELECT * FROM execlog.merge_event_log();

-- a merge in the same transaction as the change sees it; rolling the
-- merge back leaves the change queued for the next one
BEGIN;
UPDATE execlog.executions SET status = 'cancelled' WHERE id = 7;
SELECT * FROM execlog.merge_event_log();
ROLLBACK;
SELECT * FROM execlog.merge_event_log();
BEGIN;
UPDATE execlog.executions SET status = 'running' WHERE id = 7;
COMMIT;
BEGIN;
SELECT * FROM execlog.merge_event_log();
ROLLBACK;
SELECT * FROM execlog.merge_event_log();
SELECT * FROM event_log_diff;

-- renaming an automation renames its executions' template
UPDATE execlog.automations SET name = 'invoice-v2' WHERE name = 'invoice';
SELECT * FROM execlog.merge_event_log();
SELECT DISTINCT execution_template_name FROM execlog.event_log ORDER BY 1;
SELECT * FROM event_log_diff;

-- deleted executions (execlog.prune deletes) leave the event log; deletions
-- are not counted in (inserted, updated)
DELETE FROM execlog.executions WHERE id IN (2, 4);
SELECT * FROM execlog.merge_event_log();
SELECT count(*) FROM execlog.event_log;
SELECT * FROM event_log_diff;

-- a change is picked up whatever its updated_at (no timestamp watermark)
ALTER TABLE execlog.executions DISABLE TRIGGER executions_guard;
UPDATE execlog.executions SET status = 'success', updated_at = '2000-01-01' WHERE id = 3;
ALTER TABLE execlog.executions ENABLE TRIGGER executions_guard;
SELECT * FROM execlog.merge_event_log();
SELECT * FROM event_log_diff;

-- TRUNCATE empties the event log with it
BEGIN;
TRUNCATE execlog.executions CASCADE;
SELECT count(*) FROM execlog.event_log;
SELECT * FROM execlog.merge_event_log();
ROLLBACK;
SELECT count(*) FROM execlog.event_log;

-- a large backlog is consumed in batches of 100,000 queue rows
INSERT INTO execlog.event_log_queue SELECT 1 + g % 8 FROM generate_series(1, 250000) g;
UPDATE execlog.executions SET status = 'running' WHERE id = 8;
SELECT * FROM execlog.merge_event_log();
SELECT count(*) AS left_in_queue FROM execlog.event_log_queue;
SELECT * FROM event_log_diff;

-- disable_event_log() stops the queue and empties it; what changes
-- meanwhile (updates, inserts, deletes, renames) is not queued, and the
-- next merge recomputes the event log whole
SELECT execlog.disable_event_log();
SELECT execlog.event_log_in_use(), (SELECT count(*) FROM execlog.event_log_queue) AS queued;
UPDATE execlog.executions SET context = '{"y": 2}' WHERE id = 3;
SELECT execlog.start('onboarding', '{}') IS NOT NULL AS started;
DELETE FROM execlog.executions WHERE id = 5;
UPDATE execlog.automations SET name = 'invoice-v3' WHERE name = 'invoice-v2';
SELECT count(*) AS queued FROM execlog.event_log_queue;
SELECT count(*) > 0 AS stale FROM event_log_diff;
SELECT * FROM execlog.merge_event_log();
SELECT execlog.event_log_in_use(), (SELECT count(*) FROM execlog.event_log_queue) AS queued;
SELECT * FROM event_log_diff;
-- then one change is one queued row again
UPDATE execlog.executions SET context = '{"y": 3}' WHERE id = 3;
SELECT count(*) AS queued FROM execlog.event_log_queue;
SELECT * FROM execlog.merge_event_log();
SELECT * FROM event_log_diff;
-- a rolled-back disable leaves the queue running
BEGIN;
SELECT execlog.disable_event_log();
ROLLBACK;
SELECT execlog.event_log_in_use();
-- only an admin may stop it
CREATE ROLE regress_pm_op2 IN ROLE execlog_operator;
SET ROLE regress_pm_op2;
SELECT execlog.disable_event_log();
RESET ROLE;
DROP ROLE regress_pm_op2;

-- only at READ COMMITTED (a transaction snapshot could predate another merge)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM execlog.merge_event_log();
ROLLBACK;

-- the Celonis-style views
SELECT * FROM execlog.execution_templates ORDER BY id;
SELECT * FROM execlog."execution_templates$trigger" ORDER BY 1, 2;
SELECT "context$processId", "context$executionTemplateID", status,
	   "metadata$createdAt" <= "metadata$updatedAt" AS ordered
  FROM execlog.execution_context ORDER BY "context$processId"::bigint;
SELECT c.relname, c.reloptions FROM pg_class c
 WHERE c.relnamespace = 'execlog'::regnamespace
   AND c.relname IN ('execution_templates', 'execution_templates$trigger', 'execution_context', 'activity_log')
 ORDER BY 1;
-- every column of them is commented
SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'execlog'::regnamespace
   AND c.relname IN ('execution_templates', 'execution_templates$trigger', 'execution_context', 'activity_log', 'event_log')
   AND col_description(c.oid, a.attnum) IS NULL;

-- the activity log: one row per step start and per step completion
INSERT INTO execlog.execution_steps (execution_id, attempt, position, account_id, name, kind, status,
									 started_at, finished_at, input, reused_from)
VALUES (1, 1, 1, 1, 'lookup', 'sql', 'success', '2024-05-01 10:00:00+00', '2024-05-01 10:00:01+00', '{}', NULL),
	   (1, 1, 2, 1, 'notify', 'http', 'failed', '2024-05-01 10:00:01+00', '2024-05-01 10:00:03+00',
		'{"url": "https://user:secret@api.example.com:8443/hook?x=1"}', NULL),
	   (1, 1, 3, 1, 'archive', 'http', 'skipped', NULL, NULL, '{}', NULL),
	   (1, 2, 1, 1, 'lookup', 'sql', 'success', '2024-05-01 11:00:00+00', '2024-05-01 11:00:00+00', '{}', 1),
	   (1, 2, 2, 1, 'notify', 'http', 'running', '2024-05-01 11:00:01+00', NULL,
		'{"connection": "crm", "path": "/hook"}', NULL);
SET TimeZone = 'UTC';
SELECT * FROM execlog.activity_log ORDER BY event_time, lifecycle DESC;
RESET TimeZone;

-- row-level security: a tenant sees only its accounts' rows
CREATE ROLE regress_pm_reader;
GRANT execlog_reader TO regress_pm_reader;
INSERT INTO execlog.account_members VALUES (2, 'regress_pm_reader');
SET ROLE regress_pm_reader;
SELECT instance_id, execution_template_name FROM execlog.event_log ORDER BY 1;
SELECT id, name, tenant FROM execlog.execution_templates;
SELECT count(*) FROM execlog.activity_log;
SELECT "context$processId" FROM execlog.execution_context ORDER BY 1;
-- readers cannot merge
SELECT * FROM execlog.merge_event_log();
RESET ROLE;

-- operators can merge (SECURITY DEFINER: the whole log, whatever they see)
CREATE ROLE regress_pm_operator;
GRANT execlog_operator TO regress_pm_operator;
UPDATE execlog.executions SET status = 'cancelled' WHERE id = 7;
SET ROLE regress_pm_operator;
SELECT * FROM execlog.merge_event_log();
RESET ROLE;
SELECT * FROM event_log_diff;
SELECT p.proname, p.prosecdef, p.proconfig FROM pg_proc p
 WHERE p.pronamespace = 'execlog'::regnamespace AND p.proname LIKE '%event_log%' ORDER BY 1;

-- the event log and its queue are dumped by pg_dump
SELECT c.relname FROM pg_extension x, unnest(x.extconfig) t (oid) JOIN pg_class c ON c.oid = t.oid
 WHERE x.extname = 'execlog' AND c.relname LIKE 'event_log%' ORDER BY 1;

DROP VIEW event_log_diff;
DROP ROLE regress_pm_reader, regress_pm_operator;
