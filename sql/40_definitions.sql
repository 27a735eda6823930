-- 40_definitions: automations, steps and triggers (SPEC section 2 and 5):
-- the manual trigger, revisions, step validation and run_as.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP ROLE IF EXISTS t40_admin;
DROP ROLE IF EXISTS t40_runner;
DROP ROLE IF EXISTS t40_other;
RESET client_min_messages;
CREATE EXTENSION execlog;

INSERT INTO execlog.accounts (id, name) VALUES (1, 't40'), (2, 't40b');

/*
 * Creating an automation creates exactly one manual trigger
 */
INSERT INTO execlog.automations (account_id, name, revision, created_at)
VALUES (1, 'onboard', 42, '2000-01-01');
SELECT name, revision, created_at > '2000-01-01' AS created_now, run_as = current_user AS run_as_me,
	   enabled, max_retries, time_limit, throttle, auto_retries
  FROM execlog.automations WHERE id = 1;
SELECT kind, config, revision FROM execlog.triggers WHERE automation_id = 1;
INSERT INTO execlog.triggers (automation_id, kind) VALUES (1, 'manual');
INSERT INTO execlog.triggers (automation_id, kind, config) VALUES (1, 'schedule', '{"cron": "0 * * * *"}');
SELECT kind, revision FROM execlog.triggers WHERE automation_id = 1 ORDER BY id;
-- names are unique per account
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'onboard');
INSERT INTO execlog.automations (account_id, name) VALUES (2, 'onboard') RETURNING id AS other \gset
SELECT count(*) AS manual_triggers FROM execlog.triggers WHERE kind = 'manual';

/*
 * The automation's revision: every change of it or of its steps
 */
UPDATE execlog.automations SET description = 'new hires' WHERE id = 1;
SELECT revision FROM execlog.automations WHERE id = 1;
UPDATE execlog.automations SET revision = 1 WHERE id = 1;
SELECT revision FROM execlog.automations WHERE id = 1;
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 1, 'account', 'sql', '{"query": "SELECT 1"}');
SELECT revision FROM execlog.automations WHERE id = 1;
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES
	(1, 2, 'welcome', 'http', '{"url": "https://example.com/hook", "method": "POST"}'),
	(1, 3, 'wait', 'pause', '{"for": "10 minutes"}');
SELECT revision FROM execlog.automations WHERE id = 1;
UPDATE execlog.steps SET config = '{"query": "SELECT 2"}' WHERE automation_id = 1 AND name = 'account';
SELECT revision FROM execlog.automations WHERE id = 1;
DELETE FROM execlog.steps WHERE automation_id = 1 AND name = 'wait';
SELECT revision FROM execlog.automations WHERE id = 1;
-- moving a step bumps both automations
UPDATE execlog.steps SET automation_id = :other WHERE automation_id = 1 AND name = 'welcome';
SELECT account_id, name, revision FROM execlog.automations ORDER BY id;
-- a refused step changes nothing
INSERT INTO execlog.steps (automation_id, position, name, kind) VALUES (1, 5, 'bad', 'foo');
SELECT revision FROM execlog.automations WHERE id = 1;
-- new executions record the revision they ran
INSERT INTO execlog.executions (automation_id) VALUES (1) RETURNING automation_revision;
-- an automation keeps its id and account
UPDATE execlog.automations SET account_id = 2 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE execlog.automations SET id = 10 WHERE id = 1;

/*
 * A trigger's revision: only kind and config count
 */
SELECT id AS manual FROM execlog.triggers WHERE automation_id = 1 AND kind = 'manual' \gset
SELECT id AS sched FROM execlog.triggers WHERE automation_id = 1 AND kind = 'schedule' \gset
UPDATE execlog.triggers SET config = config WHERE id = :sched;
SELECT revision FROM execlog.triggers WHERE id = :sched;
UPDATE execlog.triggers SET revision = 7 WHERE id = :sched;
SELECT revision FROM execlog.triggers WHERE id = :sched;
UPDATE execlog.triggers SET config = '{"cron": "*/5 * * * *"}' WHERE id = :sched;
SELECT revision FROM execlog.triggers WHERE id = :sched;
UPDATE execlog.triggers SET kind = 'api' WHERE id = :sched;
SELECT kind, revision FROM execlog.triggers WHERE id = :sched;
UPDATE execlog.triggers SET kind = 'api', config = '{"cron": "*/5 * * * *"}' WHERE id = :sched;
SELECT kind, revision FROM execlog.triggers WHERE id = :sched;
UPDATE execlog.triggers SET automation_id = :other WHERE id = :sched;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
INSERT INTO execlog.triggers (automation_id, kind) VALUES (1, 'webhook');
\set VERBOSITY default
-- changing the automation does not reconfigure its triggers
UPDATE execlog.automations SET description = 'again' WHERE id = 1;
SELECT revision FROM execlog.triggers WHERE id = :manual;

/*
 * Step validation
 */
INSERT INTO execlog.steps (automation_id, position, name, kind) VALUES (1, 10, 's', 'foo');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
INSERT INTO execlog.steps (automation_id, position, name, kind) VALUES (1, 10, 's', NULL);
\set VERBOSITY default
INSERT INTO execlog.steps (automation_id, position, name, kind) VALUES (1, 10, 's', 'SQL');
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES (1, 10, 's', 'sql', '[]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES (1, 10, 's', 'sql', '"SELECT 1"');
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES (1, 10, 's', 'sql', NULL);
INSERT INTO execlog.steps (automation_id, position, name, kind, config, on_error)
VALUES (1, 10, 's', 'sql', '{"query": "SELECT 1"}', 'ignore');
\echo :LAST_ERROR_SQLSTATE
-- sql
INSERT INTO execlog.steps (automation_id, position, name, kind) VALUES (1, 10, 's', 'sql');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES (1, 10, 's', 'sql', '{"query": 1}');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 10, 's', 'sql', '{"query": "SELECT $1", "args": "x"}');
-- http
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES (1, 10, 's', 'http', '{"method": "GET"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 10, 's', 'http', '{"url": "https://example.com", "method": "GET\r\nX-Evil: 1"}');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 10, 's', 'http', '{"url": "https://example.com", "headers": ["a"]}');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 10, 's', 'http', '{"url": "https://example.com", "expect": 200}');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 10, 's', 'http', '{"url": "https://example.com", "timeout": "soon"}');
-- pause
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES (1, 10, 's', 'pause', '{"for": "soon"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES (1, 10, 's', 'pause', '{"for": "10 parsecs"}');
-- feedback
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES (1, 10, 's', 'feedback', '{}');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 10, 's', 'feedback', '{"fields": ["a"]}');
-- a feedback "key" is a non-empty string
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 10, 's', 'feedback', '{"fields": {"a": 1}, "key": ""}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 10, 's', 'feedback', '{"fields": {"a": 1}, "key": 17}');
-- condition
INSERT INTO execlog.steps (automation_id, position, name, kind, condition) VALUES (1, 10, 's', 'response', '$.payload ?? x');
-- a change is checked like a new step
UPDATE execlog.steps SET kind = 'pause', config = '{"for": "later"}' WHERE automation_id = 1 AND name = 'account';
UPDATE execlog.steps SET config = '{}' WHERE automation_id = 1 AND name = 'account';
-- names and positions are unique per automation; positions start at 1
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES (1, 1, 'other', 'response', '{}');
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES (1, 11, 'account', 'response', '{}');
\set VERBOSITY terse
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES (1, 0, 'zero', 'response', '{}');
INSERT INTO execlog.steps (automation_id, position, name, kind, config, on_error)
VALUES (1, 10, 's', 'sql', '{"query": "SELECT 1"}', NULL);
\set VERBOSITY default
-- accepted
INSERT INTO execlog.steps (automation_id, position, name, kind, config, on_error, condition) VALUES
	(1, 11, 'by-connection', 'http', '{"connection": "crm", "path": "/x", "expect": [200, 404], "timeout": "5 seconds", "headers": {"A": "b"}}', 'continue', NULL),
	(1, 12, 'hold', 'pause', '{}', 'stop', NULL),
	(1, 13, 'hold-for', 'pause', '{"for": "1 day"}', 'stop', '$.payload.wait == true'),
	(1, 14, 'feedback', 'feedback', '{"fields": {"quote": "{{ $.payload.q }}"}}', 'stop', NULL),
	(1, 15, 'answer', 'response', '{"body": {"ok": true}}', 'continue', NULL),
	(1, 16, 'args', 'sql', '{"query": "SELECT $1::int", "args": ["{{ $.payload.n }}"]}', 'stop', NULL);
SELECT position, name, kind, on_error, condition FROM execlog.steps WHERE automation_id = 1 ORDER BY position;
SELECT revision FROM execlog.automations WHERE id = 1;

/*
 * run_as must be a role the writer is a member of
 */
CREATE ROLE t40_admin NOLOGIN IN ROLE execlog_admin;
CREATE ROLE t40_runner NOLOGIN;
GRANT t40_runner TO t40_admin;
CREATE ROLE t40_other NOLOGIN;
INSERT INTO execlog.account_members VALUES (1, 't40_admin');
SET ROLE t40_admin;
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'mine') RETURNING run_as;
INSERT INTO execlog.automations (account_id, name, run_as) VALUES (1, 'as-runner', 't40_runner') RETURNING run_as;
INSERT INTO execlog.automations (account_id, name, run_as) VALUES (1, 'as-other', 't40_other');
\echo :LAST_ERROR_SQLSTATE
-- not even the bootstrap superuser (its name depends on the installation)
\set VERBOSITY sqlstate
INSERT INTO execlog.automations (account_id, name, run_as) VALUES (1, 'as-superuser', (SELECT rolname FROM pg_roles WHERE oid = 10));
\set VERBOSITY default
INSERT INTO execlog.automations (account_id, name, run_as) VALUES (1, 'as-ghost', 't40_no_such_role');
\echo :LAST_ERROR_SQLSTATE
UPDATE execlog.automations SET run_as = 't40_other' WHERE name = 'mine';
-- every change needs membership in the run_as it has (issue 10; see 51_run_as)
RESET ROLE;
UPDATE execlog.automations SET run_as = 't40_other' WHERE name = 'as-runner';
SET ROLE t40_admin;
UPDATE execlog.automations SET description = 'would still run as t40_other' WHERE name = 'as-runner'
RETURNING run_as;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT name, CASE WHEN run_as = current_user THEN '(superuser)' ELSE run_as END AS run_as
  FROM execlog.automations WHERE account_id = 1 ORDER BY id;

/*
 * Dropping an automation drops its steps and triggers, but never history
 */
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'temporary') RETURNING id AS tmp \gset
INSERT INTO execlog.steps (automation_id, position, name, kind) VALUES (:tmp, 1, 'r', 'response');
DELETE FROM execlog.automations WHERE id = :tmp;
SELECT (SELECT count(*) FROM execlog.triggers WHERE automation_id = :tmp) AS triggers_left,
	   (SELECT count(*) FROM execlog.steps WHERE automation_id = :tmp) AS steps_left;
DELETE FROM execlog.automations WHERE id = 1;
SELECT count(*) AS steps FROM execlog.steps WHERE automation_id = 1;

-- settings are checked
\set VERBOSITY terse
UPDATE execlog.automations SET max_retries = 101 WHERE id = :other;
UPDATE execlog.automations SET auto_retries = 5 WHERE id = :other;
UPDATE execlog.automations SET throttle = 0 WHERE id = :other;
-- intervals are bounded: time_limit at most 1 year, retry_delay at most 7 days
UPDATE execlog.automations SET time_limit = '1000000 years' WHERE id = :other;
UPDATE execlog.automations SET time_limit = '-1 hour' WHERE id = :other;
UPDATE execlog.automations SET retry_delay = '1000000 years' WHERE id = :other;
\set VERBOSITY default
UPDATE execlog.automations SET time_limit = '1 year', retry_delay = '7 days' WHERE id = :other
	RETURNING time_limit, retry_delay;
-- a pause "for" is between 0 and 1 year
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (:other, 90, 'long', 'pause', '{"for": "1000000 years"}');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (:other, 90, 'back', 'pause', '{"for": "-1 hour"}');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (:other, 90, 'year', 'pause', '{"for": "1 year"}') RETURNING name;
DELETE FROM execlog.steps WHERE automation_id = :other AND position = 90;

DROP OWNED BY t40_admin;
DROP ROLE t40_admin;
DROP ROLE t40_runner;
DROP ROLE t40_other;
