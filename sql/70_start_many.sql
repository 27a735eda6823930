-- 70_start_many: execlog.start_many() (issue 13, point 5) applies every
-- rule of execlog.start(), for many payloads in one statement.  Workers are
-- off here: the rows are checked.  Roles are named t70_* and dropped at the
-- end.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP ROLE IF EXISTS t70_alice;
DROP ROLE IF EXISTS t70_team_a;
RESET client_min_messages;
CREATE EXTENSION execlog;

INSERT INTO execlog.accounts (id, name) VALUES (1, 'acme'), (2, 'globex');
INSERT INTO execlog.automations (id, account_id, name) VALUES
	(1, 1, 'invoice'), (2, 2, 'invoice'), (3, 1, 'report'), (6, 2, 'secret');
INSERT INTO execlog.automations (id, account_id, name, enabled) VALUES (4, 1, 'off', false);
INSERT INTO execlog.automations (id, account_id, name, throttle) VALUES (5, 1, 'slow', 2);
-- a revision above 1, to see it recorded
UPDATE execlog.automations SET description = 'monthly' WHERE id = 3;
SELECT revision FROM execlog.automations WHERE id = 3;

/*
 * Ids in the order of the payloads, one row each, every column as start()
 * writes it: account, revision, the manual trigger and its revision,
 * status, attempt, triggered_by; SQL NULL elements are empty objects
 */
CREATE TEMP TABLE started AS
SELECT row_number() OVER () AS n, id
  FROM execlog.start_many('report', ARRAY['{"n": 1}', NULL, '{"n": 3}']::jsonb[]) AS id;
SELECT s.n, e.payload, e.automation_id, e.account_id, e.automation_revision, e.status, e.attempt,
	   e.trigger_id = t.id AS manual_trigger, e.trigger_kind,
	   e.trigger_revision = t.revision AS trigger_revision,
	   e.triggered_by = session_user AS by_session_user,
	   e.created_at = e.updated_at AS updated_is_created,
	   e.started_at, e.finished_at, e.worker
  FROM started s JOIN execlog.executions e USING (id)
  JOIN execlog.triggers t ON t.automation_id = e.automation_id AND t.kind = 'manual'
 ORDER BY n;
-- ids ascend with the payloads
SELECT bool_and(id > prev) AS ascending
  FROM (SELECT id, lag(id) OVER (ORDER BY n) AS prev FROM started) x WHERE prev IS NOT NULL;
-- one first transition each, by the caller
SELECT s.n, t.from_status, t.to_status, t.attempt, t.by = current_user AS by_me,
	   t.at = e.created_at AS at_created, t.account_id
  FROM started s JOIN execlog.transitions t ON t.execution_id = s.id
  JOIN execlog.executions e ON e.id = s.id ORDER BY s.n;
-- the same as start() of the same payload writes, column by column
SELECT execlog.start('report', '{"n": 1}') AS single \gset
SELECT count(DISTINCT (automation_id, account_id, automation_revision, trigger_id, trigger_revision,
					   trigger_kind, triggered_by, status, attempt, payload, context)) AS same_row
  FROM execlog.executions WHERE id IN (:single, (SELECT id FROM started WHERE n = 1));
-- the event log is not in use: nothing is queued
SELECT count(*) FROM execlog.event_log_queue q JOIN started s ON s.id = q.execution_id;
-- once it is (after the first merge), the queue has them
SELECT inserted > 0 AS merged FROM execlog.merge_event_log();
CREATE TEMP TABLE started_queued AS
SELECT id FROM execlog.start_many('report', ARRAY['{"q": 1}', '{"q": 2}', '{"q": 3}']::jsonb[]) AS s (id);
SELECT count(*) FROM execlog.event_log_queue q JOIN started_queued s ON s.id = q.execution_id;
SELECT execlog.disable_event_log();
DELETE FROM execlog.executions WHERE id IN (SELECT id FROM started_queued);

/*
 * The account, as for start(): needed when the name is in two accounts
 */
SELECT count(*) FROM execlog.start_many('invoice', ARRAY['{}']::jsonb[]);
\echo :LAST_ERROR_SQLSTATE
-- (a statement does not see the rows its functions insert: ids first)
SELECT array_agg(id) AS ids FROM execlog.start_many('invoice', ARRAY['{}', '{}']::jsonb[], 'globex') AS id \gset
SELECT account_id, automation_id FROM execlog.executions WHERE id = ANY (:'ids') ORDER BY id;
SELECT array_agg(id) AS ids FROM execlog.start_many('invoice', ARRAY['{}']::jsonb[], account => 'acme') AS id \gset
SELECT account_id, automation_id FROM execlog.executions WHERE id = ANY (:'ids') ORDER BY id;

/*
 * Throttle: every new execution of a throttled automation is queued (the
 * workers run them as the throttle allows), as start() does
 */
SELECT array_agg(id) AS ids FROM execlog.start_many('slow', array_fill('{}'::jsonb, ARRAY[5])) AS id \gset
SELECT status, count(*) FROM execlog.executions WHERE id = ANY (:'ids') GROUP BY 1;
SELECT to_status, count(*) FROM execlog.transitions t
  JOIN execlog.executions e ON e.id = t.execution_id WHERE e.automation_id = 5 GROUP BY 1;

/*
 * Empty array: no executions, no error; a NULL array is refused
 */
SELECT count(*) AS before FROM execlog.executions \gset
SELECT count(*) FROM execlog.start_many('report', '{}'::jsonb[]);
SELECT count(*) FROM execlog.start_many('report', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM execlog.start_many(NULL, ARRAY['{}']::jsonb[]);
\echo :LAST_ERROR_SQLSTATE

/*
 * Refusals, with start()'s messages and SQLSTATEs; nothing is inserted
 */
SELECT count(*) FROM execlog.start_many('off', ARRAY['{}']::jsonb[]);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.start('off');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM execlog.start_many('nope', ARRAY['{}']::jsonb[]);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM execlog.start_many('report', ARRAY['{}']::jsonb[], 'globex');
\echo :LAST_ERROR_SQLSTATE
-- each payload must be a JSON object: the message names the element
SELECT count(*) FROM execlog.start_many('report', ARRAY['{}', '{}', '[1, 2]']::jsonb[]);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM execlog.start_many('report', ARRAY['{}', '17']::jsonb[]);
SELECT count(*) FROM execlog.start_many('report', ARRAY['null']::jsonb[]);
SELECT count(*) FROM execlog.start_many('report', '[0:1]={"{}","\"x\""}'::jsonb[]);
SELECT count(*) FROM execlog.start_many('report', ARRAY[ARRAY['{}'::jsonb]]);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) - :before AS inserted FROM execlog.executions;

/*
 * Tenancy: an operator sees and starts only its accounts' automations (the
 * other account's are "does not exist"); transitions name the caller
 */
CREATE ROLE t70_team_a NOLOGIN;
CREATE ROLE t70_alice NOLOGIN IN ROLE execlog_operator, t70_team_a;
INSERT INTO execlog.account_members VALUES (1, 't70_team_a');
SET ROLE t70_alice;
SELECT count(*) FROM execlog.start_many('secret', ARRAY['{}']::jsonb[]);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM execlog.start_many('invoice', ARRAY['{}']::jsonb[], 'globex');
-- 'invoice' is not ambiguous for her: she sees acme's only
SELECT count(*) FROM execlog.start_many('invoice', ARRAY['{"who": "alice"}']::jsonb[]);
RESET ROLE;
SELECT e.account_id, e.payload, t.by FROM execlog.executions e
  JOIN execlog.transitions t ON t.execution_id = e.id
 WHERE e.payload = '{"who": "alice"}';
-- a reader may not start anything
SELECT has_function_privilege('execlog_reader', 'execlog.start_many(text, jsonb[], text)', 'EXECUTE') AS reader,
	   has_function_privilege('execlog_operator', 'execlog.start_many(text, jsonb[], text)', 'EXECUTE') AS operator,
	   has_function_privilege('public', 'execlog.start_many(text, jsonb[], text)', 'EXECUTE') AS public;

/*
 * Rows inserted by any other statement in the same transaction are looked
 * up as usual (the preset lookup is for start_many's own INSERT only): a
 * change of the automation after a start_many is seen by the next start
 */
BEGIN;
SELECT count(*) FROM execlog.start_many('report', ARRAY['{}']::jsonb[]);
UPDATE execlog.automations SET throttle = 1 WHERE id = 3;
INSERT INTO execlog.executions (automation_id) VALUES (3) RETURNING status, automation_revision;
SELECT array_agg(id) AS ids FROM execlog.start_many('report', ARRAY['{}']::jsonb[]) AS id \gset
SELECT status, automation_revision FROM execlog.executions WHERE id = ANY (:'ids');
ROLLBACK;
-- an error in the middle of start_many's INSERT, caught by a subtransaction,
-- leaves no preset behind either (a check made to fail on one payload)
BEGIN;
ALTER TABLE execlog.executions ADD CONSTRAINT t70_no_boom CHECK (payload ->> 'n' IS DISTINCT FROM 'boom');
DO $$
BEGIN
	PERFORM execlog.start_many('report', ARRAY['{"n": "ok"}', '{"n": "boom"}']::jsonb[]);
EXCEPTION WHEN check_violation THEN
	RAISE NOTICE 'caught: %', SQLERRM;
END
$$;
UPDATE execlog.automations SET throttle = 1 WHERE id = 3;
INSERT INTO execlog.executions (automation_id) VALUES (3) RETURNING status, automation_revision;
SELECT count(*) FROM execlog.executions WHERE payload ->> 'n' = 'ok';
ROLLBACK;

/*
 * A larger batch: one row and one transition per payload
 */
SELECT count(*), count(DISTINCT id) FROM execlog.start_many('report',
	ARRAY(SELECT jsonb_build_object('n', g) FROM generate_series(1, 10000) g)) AS id;
SELECT count(*) FROM execlog.executions e
  JOIN execlog.transitions t ON t.execution_id = e.id AND t.from_status IS NULL
 WHERE e.automation_id = 3 AND e.payload ? 'n' AND (e.payload ->> 'n')::int > 3;

DROP EXTENSION execlog CASCADE;
DROP ROLE t70_alice;
DROP ROLE t70_team_a;
