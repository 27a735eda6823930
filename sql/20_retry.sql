-- 20_retry: execlog.retry() (SPEC section 4): what a retry changes, and
-- every refusal with its message, DETAIL, HINT and SQLSTATE.  A refusal
-- changes nothing.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
RESET client_min_messages;
CREATE EXTENSION execlog;

INSERT INTO execlog.accounts (name) VALUES ('t20');
INSERT INTO execlog.automations (id, account_id, name) VALUES (1, 1, 'flaky');
INSERT INTO execlog.automations (id, account_id, name, throttle) VALUES (2, 1, 'throttled', 2);
INSERT INTO execlog.automations (id, account_id, name) VALUES (3, 1, 'responder');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (3, 1, 'answer', 'response', '{"body": {"ok": true}}');
INSERT INTO execlog.automations (id, account_id, name, max_retries) VALUES (4, 1, 'once', 0);
INSERT INTO execlog.automations (id, account_id, name) VALUES (5, 1, 'reconfigured');

-- t20_make(automation, s): a new execution of that automation brought to
-- status s along a legal path, as the workers would.
CREATE FUNCTION t20_make(automation bigint, s execlog.status) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	x bigint;
	p execlog.status;
BEGIN
	INSERT INTO execlog.executions (automation_id, payload)
	VALUES (automation, '{"n": 1}') RETURNING id INTO x;
	FOREACH p IN ARRAY CASE
			WHEN s IN ('pending', 'queued') THEN '{}'
			WHEN s = 'running' THEN '{running}'
			WHEN s = 'paused' THEN '{running,paused}'
			WHEN s = 'cancelled' THEN '{cancelled}'
			ELSE ARRAY['running', s] END::execlog.status[]
	LOOP
		UPDATE execlog.executions SET status = p WHERE id = x;
	END LOOP;
	IF s IN ('failed', 'partially_executed', 'rejected') THEN
		UPDATE execlog.executions
		   SET error = 'step "x" failed', run_after = now() + interval '1 hour'
		 WHERE id = x;
	END IF;
	RETURN x;
END
$$;

-- t20_state(x): the execution and its log, to show a refusal changed nothing
CREATE FUNCTION t20_state(x bigint) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jsonb_build_object(
		'execution', (SELECT to_jsonb(e) FROM execlog.executions e WHERE e.id = x),
		'log', (SELECT jsonb_agg(t ORDER BY t.id) FROM execlog.transitions t
				 WHERE t.execution_id = x))
$$;

/*
 * A successful retry: attempt + 1, back to pending, per-attempt columns
 * cleared, same payload, one transition logged
 */
SELECT t20_make(1, 'failed') AS x \gset
SELECT execlog.retry(:x) = :x AS returns_its_id;
SELECT status, attempt, payload, error, started_at IS NULL AS no_start,
	   finished_at IS NULL AS no_finish, run_after IS NULL AS no_run_after,
	   from_start, resume
  FROM execlog.executions WHERE id = :x;
SELECT from_status, to_status, attempt, by = current_user AS by_me
  FROM execlog.transitions WHERE execution_id = :x ORDER BY id;

-- partially_executed and rejected are retried too; from_start is kept
SELECT t20_make(1, 'partially_executed') AS x \gset
SELECT execlog.retry(:x, from_start => true) = :x AS retried;
SELECT status, attempt, from_start FROM execlog.executions WHERE id = :x;
-- the next retry resumes again by default
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
UPDATE execlog.executions SET status = 'failed' WHERE id = :x;
SELECT execlog.retry(:x) = :x AS retried;
SELECT status, attempt, from_start FROM execlog.executions WHERE id = :x;
SELECT t20_make(1, 'rejected') AS x \gset
SELECT execlog.retry(:x, NULL) = :x AS retried;
SELECT status, attempt, from_start FROM execlog.executions WHERE id = :x;

-- a throttled automation's retry is queued
SELECT t20_make(2, 'failed') AS x \gset
SELECT execlog.retry(:x) = :x AS retried;
SELECT status, attempt FROM execlog.executions WHERE id = :x;
SELECT from_status, to_status, attempt FROM execlog.transitions
 WHERE execution_id = :x ORDER BY id;

/*
 * The retry limit: max_retries 2 allows three attempts
 */
SELECT t20_make(1, 'failed') AS x \gset
SELECT execlog.retry(:x) = :x AS second_attempt;
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
UPDATE execlog.executions SET status = 'failed', error = 'again' WHERE id = :x;
SELECT execlog.retry(:x) = :x AS third_attempt;
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
UPDATE execlog.executions SET status = 'failed', error = 'still' WHERE id = :x;
SELECT t20_state(:x) AS before \gset
SELECT execlog.retry(:x);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.retry(:x, true);
SELECT t20_state(:x) = :'before' AS unchanged;
SELECT status, attempt, error FROM execlog.executions WHERE id = :x;
SELECT from_status, to_status, attempt FROM execlog.transitions
 WHERE execution_id = :x ORDER BY id;
-- lowering max_retries ends retries earlier
SELECT t20_make(1, 'failed') AS x \gset
SELECT execlog.retry(:x) = :x AS second_attempt;
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
UPDATE execlog.executions SET status = 'rejected' WHERE id = :x;
UPDATE execlog.automations SET max_retries = 1 WHERE id = 1;
SELECT execlog.retry(:x);
UPDATE execlog.automations SET max_retries = 2 WHERE id = 1;
-- max_retries 0: the first attempt is the only one
SELECT t20_make(4, 'failed') AS x \gset
SELECT execlog.retry(:x);
SELECT status, attempt FROM execlog.executions WHERE id = :x;

/*
 * Statuses that cannot be retried
 */
SELECT t20_make(1, 'pending') AS x \gset
SELECT t20_state(:x) AS before \gset
SELECT execlog.retry(:x);
\echo :LAST_ERROR_SQLSTATE
SELECT t20_state(:x) = :'before' AS unchanged;
SELECT t20_make(2, 'queued') AS x \gset
SELECT execlog.retry(:x);
SELECT t20_make(1, 'running') AS x \gset
SELECT execlog.retry(:x);
SELECT t20_make(1, 'paused') AS x \gset
SELECT execlog.retry(:x);
SELECT t20_make(1, 'success') AS x \gset
SELECT execlog.retry(:x);
SELECT t20_make(1, 'cancelled') AS x \gset
SELECT t20_state(:x) AS before \gset
SELECT execlog.retry(:x);
SELECT t20_state(:x) = :'before' AS unchanged;

/*
 * The trigger was reconfigured after the execution started
 */
SELECT t20_make(5, 'failed') AS x \gset
-- touching the trigger without changing kind or config is no reconfiguration
UPDATE execlog.triggers SET config = config WHERE automation_id = 5;
SELECT revision FROM execlog.triggers WHERE automation_id = 5;
SELECT t20_make(5, 'failed') AS y \gset
UPDATE execlog.triggers SET config = '{"note": "changed"}' WHERE automation_id = 5;
SELECT revision FROM execlog.triggers WHERE automation_id = 5;
SELECT t20_state(:x) AS before \gset
SELECT execlog.retry(:x);
\echo :LAST_ERROR_SQLSTATE
SELECT t20_state(:x) = :'before' AS unchanged;
SELECT execlog.retry(:y);
-- executions started after the change can be retried
SELECT t20_make(5, 'failed') AS x \gset
SELECT execlog.retry(:x) = :x AS retried;
-- a trigger that is gone counts as reconfigured
INSERT INTO execlog.triggers (automation_id, kind) VALUES (1, 'api') RETURNING id AS api \gset
INSERT INTO execlog.executions (automation_id, trigger_id) VALUES (1, :api) RETURNING id AS x \gset
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
UPDATE execlog.executions SET status = 'failed' WHERE id = :x;
DELETE FROM execlog.triggers WHERE id = :api;
SELECT execlog.retry(:x);

/*
 * An automation with a response step cannot be retried
 */
SELECT t20_make(3, 'failed') AS x \gset
SELECT t20_state(:x) AS before \gset
SELECT execlog.retry(:x);
\echo :LAST_ERROR_SQLSTATE
SELECT t20_state(:x) = :'before' AS unchanged;
-- checked after the status, before the trigger and the limit
SELECT t20_make(3, 'success') AS x \gset
SELECT execlog.retry(:x);
SELECT t20_make(3, 'failed') AS x \gset
UPDATE execlog.triggers SET config = '{"note": "changed"}' WHERE automation_id = 3;
UPDATE execlog.automations SET max_retries = 0 WHERE id = 3;
SELECT execlog.retry(:x);
DELETE FROM execlog.steps WHERE automation_id = 3;
SELECT execlog.retry(:x);
-- and the limit comes last
SELECT t20_make(3, 'failed') AS x \gset
SELECT execlog.retry(:x);

/*
 * Bad arguments
 */
SELECT execlog.retry(999999);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.retry(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.retry(-1, true);

-- a refused retry in a transaction leaves the execution to others
SELECT t20_make(1, 'failed') AS x \gset
BEGIN;
SELECT execlog.retry(:x) = :x AS retried;
SELECT execlog.retry(:x);
ROLLBACK;
SELECT status, attempt FROM execlog.executions WHERE id = :x;
SELECT execlog.retry(:x) = :x AS retried;
SELECT count(*) AS retries_logged FROM execlog.transitions
 WHERE execution_id = :x AND from_status = 'failed';

DROP FUNCTION t20_state(bigint);
DROP FUNCTION t20_make(bigint, execlog.status);
