-- 42_schedule: execlog.schedule() and unschedule() refusals without pg_cron
-- (TAP 050_cron_merge runs them with pg_cron), and who may call them.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP ROLE IF EXISTS t42_admin, t42_op;
RESET client_min_messages;
CREATE EXTENSION execlog;

INSERT INTO execlog.accounts (id, name) VALUES (1, 'acme'), (2, 'globex');
INSERT INTO execlog.automations (id, account_id, name) VALUES
	(1, 1, 'invoice'), (2, 2, 'invoice'), (3, 1, 'report');

-- pg_cron is not installed here
SELECT execlog.schedule('report', '*/5 * * * *');
-- bad arguments are refused before that
SELECT execlog.schedule('nope', '*/5 * * * *');
SELECT execlog.schedule('invoice', '*/5 * * * *');
SELECT execlog.schedule(NULL, '*/5 * * * *');
SELECT execlog.schedule('report', NULL);
-- nothing to unschedule
SELECT execlog.unschedule('report');
SELECT execlog.unschedule('nope');
SELECT count(*) AS schedule_triggers FROM execlog.triggers WHERE kind = 'schedule';

-- the job's function is nobody's to call; schedules are for admins
CREATE ROLE t42_admin IN ROLE execlog_admin;
CREATE ROLE t42_op IN ROLE execlog_operator;
SELECT has_function_privilege('t42_admin', 'execlog.schedule(text, text, jsonb)', 'EXECUTE') AS admin_schedules,
	   has_function_privilege('t42_op', 'execlog.schedule(text, text, jsonb)', 'EXECUTE') AS operator_schedules,
	   has_function_privilege('t42_admin', 'execlog._run_schedule(bigint)', 'EXECUTE') AS admin_runs_job,
	   has_function_privilege('public', 'execlog.unschedule(text)', 'EXECUTE') AS public_unschedules;

-- the job's function refuses what has no schedule, and disabled automations
SELECT execlog._run_schedule(3);
INSERT INTO execlog.triggers (automation_id, kind, config)
	VALUES (3, 'schedule', '{"cron": "* * * * *", "payload": {"from": "cron"}, "job": 7}');
-- one schedule per automation
INSERT INTO execlog.triggers (automation_id, kind, config) VALUES (3, 'schedule', '{}');
SELECT execlog._run_schedule(3) AS x \gset
SELECT e.trigger_kind, e.triggered_by, e.payload, e.status, e.trigger_id = t.id AS schedule_trigger
  FROM execlog.executions e JOIN execlog.triggers t ON t.automation_id = e.automation_id AND t.kind = 'schedule'
 WHERE e.id = :x;
UPDATE execlog.automations SET enabled = false WHERE id = 3;
SELECT execlog._run_schedule(3);
-- without pg_cron, deleting a schedule trigger just deletes it
SELECT execlog.unschedule('report');
SELECT count(*) AS schedule_triggers FROM execlog.triggers WHERE kind = 'schedule';

DROP ROLE t42_admin, t42_op;
