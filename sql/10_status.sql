-- 10_status: the execution status machine of SPEC section 3.  A trigger on
-- execlog.executions enforces it for every writer; workers are off in this
-- cluster, so plain UPDATEs (as a worker would issue them) drive statuses.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
RESET client_min_messages;
CREATE EXTENSION execlog;

INSERT INTO execlog.accounts (name) VALUES ('t10');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'plain');
INSERT INTO execlog.automations (account_id, name, throttle) VALUES (1, 'throttled', 100);

-- t10_make(s): a new execution brought to status s along a legal path
-- (queued ones belong to the throttled automation).
CREATE FUNCTION t10_make(s execlog.status) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	x bigint;
	p execlog.status;
BEGIN
	INSERT INTO execlog.executions (automation_id)
	VALUES (CASE WHEN s = 'queued' THEN 2 ELSE 1 END)
	RETURNING id INTO x;
	FOREACH p IN ARRAY CASE
			WHEN s IN ('pending', 'queued') THEN '{}'
			WHEN s = 'running' THEN '{running}'
			WHEN s = 'paused' THEN '{running,paused}'
			WHEN s = 'cancelled' THEN '{cancelled}'
			ELSE ARRAY['running', s] END::execlog.status[]
	LOOP
		UPDATE execlog.executions SET status = p WHERE id = x;
	END LOOP;
	RETURN x;
END
$$;

-- t10_try(f, t): make an execution in status f, then UPDATE it to t.
--	'ok'  accepted, exactly one transitions row f -> t with the right
--		  attempt and by;
--	'='   f = t: accepted as a change of other columns, no transitions row;
--	'-'   refused with SQLSTATE 55000 and the message of SPEC section 3,
--		  leaving the row and its transitions untouched;
--	anything else describes what went wrong.
CREATE FUNCTION t10_try(f execlog.status, t execlog.status) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	x bigint := t10_make(f);
	row_before jsonb;
	log_before jsonb;
	msg text;
	state text;
	logged jsonb;
BEGIN
	SELECT to_jsonb(e) INTO row_before FROM execlog.executions e WHERE e.id = x;
	SELECT jsonb_agg(tr ORDER BY tr.id) INTO log_before
	  FROM execlog.transitions tr WHERE tr.execution_id = x;
	BEGIN
		UPDATE execlog.executions SET status = t WHERE id = x;
	EXCEPTION WHEN others THEN
		GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
	END;
	IF msg IS NOT NULL THEN
		IF (SELECT to_jsonb(e) FROM execlog.executions e WHERE e.id = x) <> row_before
		   OR (SELECT jsonb_agg(tr ORDER BY tr.id) FROM execlog.transitions tr
				WHERE tr.execution_id = x) <> log_before THEN
			RETURN 'refused but changed';
		END IF;
		IF state = '55000' AND
		   msg = format('execution %s cannot change status from "%s" to "%s"', x, f, t) THEN
			RETURN '-';
		END IF;
		RETURN state || ': ' || msg;
	END IF;

	SELECT jsonb_agg(jsonb_build_array(tr.from_status, tr.to_status, tr.attempt,
									   tr.by = current_user, tr.at = e.updated_at))
	  INTO logged
	  FROM execlog.transitions tr JOIN execlog.executions e ON e.id = tr.execution_id
	 WHERE tr.execution_id = x AND tr.id > (SELECT max((l ->> 'id')::bigint)
											  FROM jsonb_array_elements(log_before) l);
	IF f = t THEN
		RETURN CASE WHEN logged IS NULL THEN '=' ELSE 'no-op logged ' || logged::text END;
	END IF;
	IF logged = jsonb_build_array(jsonb_build_array(f, t, 1, true, true))
	   AND (SELECT status FROM execlog.executions WHERE id = x) = t THEN
		RETURN 'ok';
	END IF;
	RETURN 'accepted, logged ' || coalesce(logged::text, 'nothing');
END
$$;

-- The full matrix: every (from, to) pair.  Legal transitions (SPEC section
-- 3) are 'ok'; retries need attempt + 1 and are tested below.
SELECT f AS "from \ to",
	   max(r) FILTER (WHERE t = 'pending') AS pending,
	   max(r) FILTER (WHERE t = 'queued') AS queued,
	   max(r) FILTER (WHERE t = 'running') AS running,
	   max(r) FILTER (WHERE t = 'paused') AS paused,
	   max(r) FILTER (WHERE t = 'success') AS success,
	   max(r) FILTER (WHERE t = 'partially_executed') AS partial,
	   max(r) FILTER (WHERE t = 'failed') AS failed,
	   max(r) FILTER (WHERE t = 'rejected') AS rejected,
	   max(r) FILTER (WHERE t = 'cancelled') AS cancelled
  FROM (SELECT f, t, t10_try(f, t) AS r
		  FROM unnest(enum_range(NULL::execlog.status)) f,
			   unnest(enum_range(NULL::execlog.status)) t) m
 GROUP BY f ORDER BY f;

-- the same refusal as a client sees it
SELECT t10_make('success') AS x \gset
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
\echo :LAST_ERROR_SQLSTATE
SELECT t10_make('cancelled') AS x \gset
UPDATE execlog.executions SET status = 'pending', attempt = attempt + 1 WHERE id = :x;
UPDATE execlog.executions SET status = NULL WHERE id = :x;
\echo :LAST_ERROR_SQLSTATE
SELECT status, attempt FROM execlog.executions WHERE id = :x;

-- one statement changing several executions logs each of them once
SELECT t10_make('pending') AS a, t10_make('pending') AS b \gset
UPDATE execlog.executions SET status = 'running' WHERE id IN (:a, :b);
SELECT execution_id - :a AS which, from_status, to_status, attempt
  FROM execlog.transitions WHERE execution_id IN (:a, :b) ORDER BY id;

/*
 * New executions
 */
-- filled in from the automation and its manual trigger
UPDATE execlog.automations SET description = 'bumps the revision' WHERE id = 1;
UPDATE execlog.triggers SET config = '{"note": "bumps the trigger revision"}'
 WHERE automation_id = 1 AND kind = 'manual';
INSERT INTO execlog.executions (automation_id, payload, account_id, attempt, created_at, started_at)
VALUES (1, '{"invoice": 7}', 42, 1, '2000-01-01', '2000-01-01')
RETURNING id AS x \gset
SELECT e.account_id, e.automation_revision, e.trigger_id = t.id AS manual_trigger,
	   e.trigger_revision, e.trigger_kind, e.triggered_by = session_user AS by_session_user,
	   e.status, e.attempt, e.payload, e.created_at = e.updated_at AS created_now,
	   e.created_at > '2000-01-01' AS created_at_set, e.started_at IS NULL AS not_started,
	   e.finished_at IS NULL AS not_finished
  FROM execlog.executions e, execlog.triggers t
 WHERE e.id = :x AND t.automation_id = 1 AND t.kind = 'manual';
SELECT from_status, to_status, tr.attempt, by = current_user AS by_me, at = e.created_at AS at_created
  FROM execlog.transitions tr JOIN execlog.executions e ON e.id = tr.execution_id
 WHERE execution_id = :x;
-- a throttled automation queues its executions
INSERT INTO execlog.executions (automation_id) VALUES (2) RETURNING status, attempt;
-- a caller may name who triggered it (schedules, data triggers)
INSERT INTO execlog.executions (automation_id, triggered_by) VALUES (1, 'cron job 7')
RETURNING triggered_by, trigger_kind;
-- an explicit trigger of the automation is recorded with its kind and revision
INSERT INTO execlog.triggers (automation_id, kind, config) VALUES (1, 'api', '{"path": "/x"}')
RETURNING id AS api_trigger \gset
INSERT INTO execlog.executions (automation_id, trigger_id) VALUES (1, :api_trigger)
RETURNING id AS via_api \gset
SELECT trigger_id = :api_trigger AS api_trigger, trigger_kind, trigger_revision
  FROM execlog.executions WHERE id = :via_api;
-- refused
INSERT INTO execlog.executions (automation_id, status) VALUES (1, 'success');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.executions (automation_id, status) VALUES (1, 'running');
INSERT INTO execlog.executions (automation_id, attempt) VALUES (1, 2);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.executions (automation_id) VALUES (999);
INSERT INTO execlog.executions (automation_id, trigger_id) VALUES (1, 999);
INSERT INTO execlog.executions (automation_id, trigger_id)
SELECT 1, id FROM execlog.triggers WHERE automation_id = 2 AND kind = 'manual';
INSERT INTO execlog.executions (automation_id) VALUES (NULL);
SELECT count(*) AS executions_of_refused_inserts FROM execlog.executions WHERE id > :via_api;

/*
 * Retries through plain UPDATEs (what execlog.retry() and the workers'
 * automatic retries do): failed, partially_executed and rejected go back to
 * pending/queued with attempt + 1, never past max_retries + 1 (plain has
 * the default max_retries 2).
 */
SELECT t10_make('failed') AS x \gset
UPDATE execlog.executions SET error = 'boom', run_after = now() WHERE id = :x;
UPDATE execlog.executions SET status = 'pending' WHERE id = :x;
UPDATE execlog.executions SET status = 'pending', attempt = attempt + 2 WHERE id = :x;
UPDATE execlog.executions SET status = 'running', attempt = attempt + 1 WHERE id = :x;
UPDATE execlog.executions SET status = 'failed', attempt = attempt + 1 WHERE id = :x;
SELECT status, attempt, error FROM execlog.executions WHERE id = :x;
UPDATE execlog.executions SET status = 'pending', attempt = attempt + 1 WHERE id = :x;
SELECT status, attempt, error, started_at IS NULL AS no_start, finished_at IS NULL AS no_finish
  FROM execlog.executions WHERE id = :x;
-- queued is accepted too, and becomes pending when there is no throttle
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
UPDATE execlog.executions SET status = 'partially_executed' WHERE id = :x;
UPDATE execlog.executions SET status = 'queued', attempt = 3 WHERE id = :x;
SELECT status, attempt FROM execlog.executions WHERE id = :x;
-- the third attempt was the last one
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
UPDATE execlog.executions SET status = 'rejected', error = 'time limit' WHERE id = :x;
UPDATE execlog.executions SET status = 'pending', attempt = 4 WHERE id = :x;
\echo :LAST_ERROR_SQLSTATE
SELECT status, attempt, error FROM execlog.executions WHERE id = :x;
SELECT from_status, to_status, attempt FROM execlog.transitions
 WHERE execution_id = :x ORDER BY id;
-- a throttled automation's retry is queued
SELECT t10_make('queued') AS x \gset
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
UPDATE execlog.executions SET status = 'failed' WHERE id = :x;
UPDATE execlog.executions SET status = 'pending', attempt = 2 WHERE id = :x;
SELECT status, attempt FROM execlog.executions WHERE id = :x;
-- max_retries 0: no retry at all
UPDATE execlog.automations SET max_retries = 0 WHERE id = 1;
SELECT t10_make('failed') AS x \gset
UPDATE execlog.executions SET status = 'pending', attempt = 2 WHERE id = :x;
UPDATE execlog.automations SET max_retries = 2 WHERE id = 1;

/*
 * attempt changes only through a retry
 */
SELECT t10_make('pending') AS x \gset
UPDATE execlog.executions SET attempt = 2 WHERE id = :x;
\echo :LAST_ERROR_SQLSTATE
UPDATE execlog.executions SET status = 'running', attempt = 2 WHERE id = :x;
SELECT t10_make('running') AS x \gset
UPDATE execlog.executions SET status = 'success', attempt = 2 WHERE id = :x;
SELECT t10_make('failed') AS x \gset
UPDATE execlog.executions SET attempt = 2 WHERE id = :x;
SELECT status, attempt FROM execlog.executions WHERE id = :x;

/*
 * Columns that identify an execution never change
 */
SELECT t10_make('running') AS x \gset
SELECT to_jsonb(e) AS before FROM execlog.executions e WHERE id = :x \gset
UPDATE execlog.executions SET id = id + 1000 WHERE id = :x;
UPDATE execlog.executions SET automation_id = 2 WHERE id = :x;
UPDATE execlog.executions SET account_id = account_id + 1 WHERE id = :x;
UPDATE execlog.executions SET automation_revision = automation_revision + 1 WHERE id = :x;
UPDATE execlog.executions SET trigger_id = :api_trigger WHERE id = :x;
UPDATE execlog.executions SET trigger_revision = trigger_revision + 1 WHERE id = :x;
UPDATE execlog.executions SET trigger_kind = 'api' WHERE id = :x;
UPDATE execlog.executions SET triggered_by = 'someone else' WHERE id = :x;
UPDATE execlog.executions SET payload = '{"changed": true}' WHERE id = :x;
UPDATE execlog.executions SET created_at = now() - interval '1 day' WHERE id = :x;
\echo :LAST_ERROR_SQLSTATE
SELECT to_jsonb(e) = :'before' AS unchanged FROM execlog.executions e WHERE id = :x;
-- but trigger_id is cleared when its trigger is dropped
DELETE FROM execlog.triggers WHERE id = :api_trigger;
SELECT trigger_id IS NULL AS trigger_cleared, trigger_kind, status
  FROM execlog.executions WHERE id = :via_api;

/*
 * Timestamps: updated_at on every change, started_at when an attempt starts
 * running, finished_at when it ends
 */
SELECT t10_make('pending') AS x \gset
SELECT updated_at AS u, started_at IS NULL AS no_start FROM execlog.executions WHERE id = :x \gset
\echo :no_start
UPDATE execlog.executions SET context = '{"k": 1}' WHERE id = :x;
SELECT updated_at > :'u' AS updated, started_at IS NULL AS no_start
  FROM execlog.executions WHERE id = :x;
SELECT updated_at AS u FROM execlog.executions WHERE id = :x \gset
UPDATE execlog.executions SET updated_at = '2000-01-01' WHERE id = :x;
SELECT updated_at > :'u' AS updated_anyway FROM execlog.executions WHERE id = :x;
SELECT updated_at AS u FROM execlog.executions WHERE id = :x \gset
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
SELECT updated_at > :'u' AS updated, started_at IS NOT NULL AS started,
	   finished_at IS NULL AS not_finished
  FROM execlog.executions WHERE id = :x;
SELECT started_at AS s, updated_at AS u FROM execlog.executions WHERE id = :x \gset
UPDATE execlog.executions SET status = 'paused' WHERE id = :x;
UPDATE execlog.executions SET status = 'running' WHERE id = :x;
SELECT updated_at > :'u' AS updated, started_at = :'s' AS same_start,
	   finished_at IS NULL AS not_finished
  FROM execlog.executions WHERE id = :x;
UPDATE execlog.executions SET status = 'success' WHERE id = :x;
SELECT finished_at IS NOT NULL AS finished, finished_at >= started_at AS after_start
  FROM execlog.executions WHERE id = :x;
-- still updatable in a final status (post-action feedback), but not its status
SELECT updated_at AS u FROM execlog.executions WHERE id = :x \gset
UPDATE execlog.executions SET context = '{"feedback": true}' WHERE id = :x;
SELECT status, updated_at > :'u' AS updated FROM execlog.executions WHERE id = :x;
-- the log of that execution
SELECT from_status, to_status, attempt, by = current_user AS by_me
  FROM execlog.transitions WHERE execution_id = :x ORDER BY id;

/*
 * Transitions are append-only
 */
UPDATE execlog.transitions SET to_status = 'failed' WHERE execution_id = :x;
\echo :LAST_ERROR_SQLSTATE

DROP FUNCTION t10_try(execlog.status, execlog.status);
DROP FUNCTION t10_make(execlog.status);
