/* ------------------------------------------------------------------------
 * issue 12, human steps: alert and task step kinds, tasks of task steps
 * (step_position, outcome, due_at, escalated_at, escalate), complete_task
 * with an outcome, dismiss_task, escalation, my_tasks
 * ------------------------------------------------------------------------ */
ALTER TABLE execlog.steps DROP CONSTRAINT steps_kind_check,
	ADD CONSTRAINT steps_kind_check CHECK (kind IN ('sql', 'http', 'pause', 'response', 'feedback', 'alert', 'task'));
COMMENT ON COLUMN execlog.steps.kind IS 'sql, http, pause, response, feedback, alert or task';

ALTER TABLE execlog.tasks
	ADD COLUMN step_position integer,
	ADD COLUMN outcome text,
	ADD COLUMN due_at timestamptz,
	ADD COLUMN escalated_at timestamptz,
	ADD COLUMN escalate jsonb;
COMMENT ON TABLE execlog.tasks IS 'manual follow-ups created when an execution fails for good, and tasks of task steps';
COMMENT ON COLUMN execlog.tasks.step_position IS 'position of the task step that created it; NULL for an on_failure task';
COMMENT ON COLUMN execlog.tasks.outcome IS 'outcome given by execlog.complete_task (such as approve or reject); NULL until done';
COMMENT ON COLUMN execlog.tasks.due_at IS 'when it is due (created_at + due); NULL: no due time';
COMMENT ON COLUMN execlog.tasks.escalated_at IS 'when the workers sent its escalation alert (once, past due_at)';
COMMENT ON COLUMN execlog.tasks.escalate IS 'where its escalation alert goes: {"channel", "target"}; NULL: nowhere';

DROP FUNCTION execlog.complete_task(bigint, text);
CREATE FUNCTION execlog.complete_task(task_id bigint, note text DEFAULT NULL, outcome text DEFAULT 'done')
	RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'execlog_complete_task';
COMMENT ON FUNCTION execlog.complete_task(bigint, text, text) IS 'close an open task as done with an outcome; resumes the execution waiting on it';
REVOKE ALL ON FUNCTION execlog.complete_task(bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION execlog.complete_task(bigint, text, text) TO execlog_operator;

CREATE OR REPLACE FUNCTION execlog._steps_guard() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c jsonb;
BEGIN
	/* restoring a dump: a superuser's COPY into this table (README) */
	IF pg_catalog.current_setting('is_superuser')::boolean
	   AND pg_catalog.starts_with(pg_catalog.ltrim(pg_catalog.current_query()), 'COPY execlog.steps ') THEN
		RETURN NEW;
	END IF;
	IF TG_OP <> 'DELETE' THEN
		c := NEW.config;
		/* NULL kind and on_error are left to their NOT NULL constraints */
		IF NEW.kind NOT IN ('sql', 'http', 'pause', 'response', 'feedback', 'alert', 'task') THEN
			RAISE EXCEPTION 'unknown step kind "%"', NEW.kind
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Step kinds are sql, http, pause, response, feedback, alert and task.';
		END IF;
		IF c IS NULL OR jsonb_typeof(c) <> 'object' THEN
			RAISE EXCEPTION 'config of step "%" must be a JSON object', NEW.name
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF NEW.on_error NOT IN ('stop', 'continue') THEN
			RAISE EXCEPTION 'on_error of step "%" must be "stop" or "continue", not "%"', NEW.name, NEW.on_error
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		CASE NEW.kind
		WHEN 'sql' THEN
			IF jsonb_typeof(c -> 'query') IS DISTINCT FROM 'string' THEN
				RAISE EXCEPTION 'sql step "%" needs a "query" string in its config', NEW.name
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			IF c ? 'args' AND jsonb_typeof(c -> 'args') <> 'array' THEN
				RAISE EXCEPTION '"args" of sql step "%" must be an array', NEW.name
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			/* a placeholder would be pasted into the SQL text (same test as steps.c) */
			IF (c ->> 'query') ~ '\{\{.*\}\}' THEN
				RAISE EXCEPTION 'placeholders are not allowed in the query of sql step "%"', NEW.name
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'Pass values in "args" and use them as $1, $2, ... in the query.';
			END IF;
		WHEN 'http' THEN
			IF jsonb_typeof(c -> 'url') IS DISTINCT FROM 'string'
			   AND jsonb_typeof(c -> 'connection') IS DISTINCT FROM 'string' THEN
				RAISE EXCEPTION 'http step "%" needs a "url" or a "connection" in its config', NEW.name
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			IF c ? 'method' AND (jsonb_typeof(c -> 'method') <> 'string'
								OR (c ->> 'method') !~ '^[A-Za-z]+$') THEN
				RAISE EXCEPTION 'invalid HTTP method in step "%"', NEW.name
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			IF upper(c ->> 'method') NOT IN ('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS') THEN
				RAISE EXCEPTION 'HTTP method "%" is not allowed in step "%"', c ->> 'method', NEW.name
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'Use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS.';
			END IF;
			IF c ? 'headers' AND jsonb_typeof(c -> 'headers') <> 'object' THEN
				RAISE EXCEPTION '"headers" of http step "%" must be an object', NEW.name
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			IF c ? 'expect' AND jsonb_typeof(c -> 'expect') <> 'array' THEN
				RAISE EXCEPTION '"expect" of http step "%" must be an array of status codes', NEW.name
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			IF c ? 'timeout' THEN
				BEGIN
					PERFORM (c ->> 'timeout')::interval;
				EXCEPTION WHEN others THEN
					RAISE EXCEPTION '"timeout" of http step "%" must be an interval, such as "5 seconds"', NEW.name
						USING ERRCODE = 'invalid_parameter_value';
				END;
			END IF;
		WHEN 'pause' THEN
			IF c ? 'for' THEN
				BEGIN
					PERFORM (c ->> 'for')::interval;
				EXCEPTION WHEN others THEN
					RAISE EXCEPTION '"for" of pause step "%" must be an interval, such as "10 minutes"', NEW.name
						USING ERRCODE = 'invalid_parameter_value';
				END;
				IF (c ->> 'for')::interval < interval '0' OR (c ->> 'for')::interval > interval '1 year' THEN
					RAISE EXCEPTION '"for" of pause step "%" must be between 0 and 1 year, not %', NEW.name, c ->> 'for'
						USING ERRCODE = 'invalid_parameter_value';
				END IF;
			END IF;
		WHEN 'feedback' THEN
			IF jsonb_typeof(c -> 'fields') IS DISTINCT FROM 'object' THEN
				RAISE EXCEPTION 'feedback step "%" needs a "fields" object in its config', NEW.name
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			IF c ? 'key' AND (jsonb_typeof(c -> 'key') IS DISTINCT FROM 'string' OR c ->> 'key' = '') THEN
				RAISE EXCEPTION '"key" of feedback step "%" must be a non-empty string, not %', NEW.name, c -> 'key'
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		WHEN 'alert' THEN
			PERFORM execlog._alert_step_check(NEW.automation_id, NEW.name, c);
		WHEN 'task' THEN
			PERFORM execlog._task_step_check(NEW.automation_id, NEW.name, c);
		ELSE
			NULL;
		END CASE;
		UPDATE execlog.automations SET revision = revision + 1 WHERE id = NEW.automation_id;
		IF TG_OP = 'UPDATE' AND NEW.automation_id <> OLD.automation_id THEN
			UPDATE execlog.automations SET revision = revision + 1 WHERE id = OLD.automation_id;
		END IF;
		RETURN NEW;
	END IF;
	UPDATE execlog.automations SET revision = revision + 1 WHERE id = OLD.automation_id;
	RETURN OLD;
END
$$;

/* ------------------------------------------------------------------------
 * Human steps: alert and task steps, tasks that pause an execution,
 * escalation and my_tasks (SPEC section 6)
 * ------------------------------------------------------------------------ */

/* Whether a text holds a {{ jsonpath }} placeholder (same test as steps.c). */
CREATE FUNCTION execlog._has_placeholder(t text) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
	SELECT t OPERATOR(pg_catalog.~) '\{\{.*\}\}'
$$;
COMMENT ON FUNCTION execlog._has_placeholder(text) IS 'whether the text holds a {{ jsonpath }} placeholder (internal)';

/*
 * Check the config of an alert step: {"channel", "target"?, "message"}.
 * The channel is a channel of the automation's account (no placeholder), or
 * "email" with an address (or a placeholder) as target; a URL is refused.
 */
CREATE FUNCTION execlog._alert_step_check(automation_id bigint, step text, c jsonb) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k text;
	v jsonb;
	channel text := c ->> 'channel';
	account bigint;
BEGIN
	FOR k, v IN SELECT * FROM jsonb_each(c) LOOP
		IF k NOT IN ('channel', 'target', 'message') THEN
			RAISE EXCEPTION 'unknown key "%" in the config of alert step "%"', k, step
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'An alert step takes "channel", "target" and "message".';
		END IF;
		IF jsonb_typeof(v) <> 'string' THEN
			RAISE EXCEPTION '"%" of alert step "%" must be a string', k, step
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	IF channel IS NULL THEN
		RAISE EXCEPTION 'alert step "%" needs "channel"', step
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name a channel of execlog.channels, or use "email" with an address as "target".';
	END IF;
	IF channel ~* '^[a-z][a-z0-9+.-]*://' OR (c ->> 'target') ~* '^[a-z][a-z0-9+.-]*://' THEN
		RAISE EXCEPTION 'alert step "%" cannot hold a URL', step
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Create a channel (INSERT INTO execlog.channels (account_id, name, kind, config) ...) and name it in "channel": its URL is kept secret there.';
	END IF;
	IF execlog._has_placeholder(channel) THEN
		RAISE EXCEPTION '"channel" of alert step "%" cannot hold a placeholder', step
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name a channel of the automation''s account; placeholders go in "message" (and in "target" of "email").';
	END IF;
	IF coalesce(c ->> 'message', '') = '' THEN
		RAISE EXCEPTION 'alert step "%" needs a "message"', step
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example "invoice {{ $.payload.invoice }} needs a look".';
	END IF;
	IF c ? 'target' THEN
		IF channel <> 'email' THEN
			RAISE EXCEPTION 'alert step "%" has a "target" but channel "%" is not "email"', step, channel
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Only "channel": "email" takes a literal address as "target"; other alerts name a channel.';
		END IF;
		IF NOT execlog._has_placeholder(c ->> 'target') AND NOT execlog._is_email(c ->> 'target') THEN
			RAISE EXCEPTION '"target" of alert step "%" is not an e-mail address', step
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Give a plain address such as "ops@example.com", or a placeholder.';
		END IF;
		RETURN;
	END IF;
	SELECT a.account_id INTO account FROM execlog.automations a WHERE a.id = _alert_step_check.automation_id;
	IF NOT FOUND THEN
		RETURN;					/* an automation the writer cannot see: RLS refuses */
	END IF;
	IF NOT EXISTS (SELECT 1 FROM execlog.channels ch WHERE ch.account_id = account AND ch.name = channel) THEN
		RAISE EXCEPTION 'channel "%" of alert step "%" does not exist in its account', channel, step
			USING ERRCODE = 'undefined_object',
				  HINT = CASE WHEN channel = 'email'
							  THEN 'Give the address as "target", or create a channel in execlog.channels.'
							  ELSE 'Create it in execlog.channels first.' END;
	END IF;
END
$$;
COMMENT ON FUNCTION execlog._alert_step_check(bigint, text, jsonb) IS 'validates the config of an alert step when it is written (internal)';

/*
 * Check the config of a task step: {"assignee", "title", "body", "due",
 * "wait", "escalate"}.  The assignee is a role (or a placeholder), due a
 * positive interval of at most a year (or a placeholder), wait a boolean,
 * escalate a channel of the automation's account, given with due.
 */
CREATE FUNCTION execlog._task_step_check(automation_id bigint, step text, c jsonb) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k text;
	v jsonb;
	due interval;
	account bigint;
BEGIN
	FOR k, v IN SELECT * FROM jsonb_each(c) LOOP
		IF k NOT IN ('assignee', 'title', 'body', 'due', 'wait', 'escalate') THEN
			RAISE EXCEPTION 'unknown key "%" in the config of task step "%"', k, step
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'A task step takes "assignee", "title", "body", "due", "wait" and "escalate".';
		END IF;
		IF k = 'wait' THEN
			IF jsonb_typeof(v) <> 'boolean' THEN
				RAISE EXCEPTION '"wait" of task step "%" must be true or false, not %', step, v
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		ELSIF jsonb_typeof(v) <> 'string' THEN
			RAISE EXCEPTION '"%" of task step "%" must be a string', k, step
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	IF coalesce(c ->> 'assignee', '') = '' THEN
		RAISE EXCEPTION 'task step "%" needs an "assignee"', step
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give the role that should act (its members see the task in execlog.my_tasks), or a placeholder.';
	END IF;
	IF NOT execlog._has_placeholder(c ->> 'assignee')
	   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = c ->> 'assignee') THEN
		RAISE EXCEPTION 'assignee "%" of task step "%" is not a role', c ->> 'assignee', step
			USING ERRCODE = 'undefined_object',
				  HINT = 'A task is shown in execlog.my_tasks to its assignee role and that role''s members.';
	END IF;
	IF c ? 'title' AND c ->> 'title' = '' THEN
		RAISE EXCEPTION '"title" of task step "%" must not be empty', step
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF c ? 'due' AND NOT execlog._has_placeholder(c ->> 'due') THEN
		BEGIN
			due := (c ->> 'due')::interval;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
			RAISE EXCEPTION '"due" of task step "%" must be an interval, such as "4 hours"', step
				USING ERRCODE = 'invalid_parameter_value';
		END;
		IF due <= interval '0' OR due > interval '1 year' THEN
			RAISE EXCEPTION '"due" of task step "%" must be more than 0 and at most 1 year, not %', step, c ->> 'due'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END IF;
	IF c ? 'escalate' THEN
		IF NOT c ? 'due' THEN
			RAISE EXCEPTION 'task step "%" has "escalate" but no "due"', step
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'A task escalates when it is still open at its due time: give "due", such as "4 hours".';
		END IF;
		IF (c ->> 'escalate') ~* '^[a-z][a-z0-9+.-]*://' THEN
			RAISE EXCEPTION '"escalate" of task step "%" cannot hold a URL', step
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Create a channel (INSERT INTO execlog.channels (account_id, name, kind, config) ...) and name it in "escalate": its URL is kept secret there.';
		END IF;
		SELECT a.account_id INTO account FROM execlog.automations a WHERE a.id = _task_step_check.automation_id;
		IF FOUND AND NOT EXISTS (SELECT 1 FROM execlog.channels ch
								  WHERE ch.account_id = account AND ch.name = c ->> 'escalate') THEN
			RAISE EXCEPTION 'channel "%" of "escalate" of task step "%" does not exist in its account', c ->> 'escalate', step
				USING ERRCODE = 'undefined_object',
					  HINT = 'Create it in execlog.channels first.';
		END IF;
	END IF;
END
$$;
COMMENT ON FUNCTION execlog._task_step_check(bigint, text, jsonb) IS 'validates the config of a task step when it is written (internal)';

/*
 * Due time of an on_failure task: now + its "due", or NULL when there is
 * none or it is not a positive interval (a definition of 0.1, which did
 * not check it): a bad value never fails the follow-up or crash recovery.
 */
CREATE FUNCTION execlog._due_at(due text) RETURNS timestamptz
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF due IS NULL OR due::interval <= interval '0' THEN
		RETURN NULL;
	END IF;
	RETURN now() + due::interval;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._due_at(text) IS 'due time of an on_failure task, NULL when it has no valid due (internal)';

/* Where an overdue on_failure task escalates: the on_failure alert's channel (or address). */
CREATE FUNCTION execlog._on_failure_escalation(on_failure jsonb) RETURNS jsonb
	LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN on_failure -> 'alert' ->> 'channel' IS NOT NULL
				THEN jsonb_strip_nulls(jsonb_build_object('channel', on_failure -> 'alert' ->> 'channel',
														  'target', on_failure -> 'alert' ->> 'target')) END
$$;
COMMENT ON FUNCTION execlog._on_failure_escalation(jsonb) IS 'escalation target of an on_failure task: its alert channel (internal)';

/*
 * A channel named by an alert step or by a task step's "escalate" cannot be
 * deleted or renamed away (as for on_failure, see _channels_in_use).
 */
CREATE FUNCTION execlog._channels_in_use_by_steps() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s record;
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.name = OLD.name AND NEW.account_id = OLD.account_id THEN
		RETURN NEW;
	END IF;
	SELECT st.name AS step, au.name AS automation INTO s
	  FROM execlog.steps st JOIN execlog.automations au ON au.id = st.automation_id
	 WHERE au.account_id = OLD.account_id
	   AND ((st.kind = 'alert' AND st.config ->> 'channel' = OLD.name AND NOT (st.config ? 'target'))
			OR (st.kind = 'task' AND st.config ->> 'escalate' = OLD.name))
	 ORDER BY au.name, st.position LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'channel "%" is used by step "%" of automation "%"', OLD.name, s.step, s.automation
			USING ERRCODE = 'dependent_objects_still_exist',
				  HINT = 'Change or delete that step first.';
	END IF;
	RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION execlog._channels_in_use_by_steps() IS 'keeps channels named by alert steps and task escalations (internal)';

CREATE TRIGGER channels_in_use_by_steps BEFORE DELETE OR UPDATE OF name, account_id ON execlog.channels
	FOR EACH ROW EXECUTE FUNCTION execlog._channels_in_use_by_steps();

/* open tasks the workers escalate at their due time */
CREATE INDEX tasks_to_escalate ON execlog.tasks (due_at)
	WHERE status = 'open' AND escalated_at IS NULL AND escalate IS NOT NULL;

CREATE FUNCTION execlog.dismiss_task(task_id bigint, note text DEFAULT NULL)
	RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'execlog_dismiss_task';
COMMENT ON FUNCTION execlog.dismiss_task(bigint, text) IS 'close an open task as dismissed; the step waiting on it fails';

/*
 * The open tasks of the current role: assigned to it or to a role it is a
 * member of (security_invoker: only the tasks of its accounts).
 */
CREATE VIEW execlog.my_tasks WITH (security_invoker = true) AS
SELECT t.id,
	   t.execution_id,
	   a.name AS automation,
	   t.title,
	   t.body,
	   t.created_at,
	   t.due_at,
	   coalesce(t.due_at <= pg_catalog.now(), false) AS overdue
  FROM execlog.tasks t
  JOIN execlog.executions e ON e.id = t.execution_id
  JOIN execlog.automations a ON a.id = e.automation_id
 WHERE t.status = 'open'
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
				WHERE r.rolname = t.assignee
				  AND pg_catalog.pg_has_role(r.oid, 'MEMBER'));
COMMENT ON VIEW execlog.my_tasks IS 'open tasks assigned to the current role or a role it is a member of';
COMMENT ON COLUMN execlog.my_tasks.id IS 'task id (for execlog.complete_task and execlog.dismiss_task)';
COMMENT ON COLUMN execlog.my_tasks.execution_id IS 'the execution';
COMMENT ON COLUMN execlog.my_tasks.automation IS 'automation name';
COMMENT ON COLUMN execlog.my_tasks.title IS 'short description';
COMMENT ON COLUMN execlog.my_tasks.body IS 'details';
COMMENT ON COLUMN execlog.my_tasks.created_at IS 'when it was created';
COMMENT ON COLUMN execlog.my_tasks.due_at IS 'when it is due (NULL: no due time)';
COMMENT ON COLUMN execlog.my_tasks.overdue IS 'whether its due time has passed';

GRANT SELECT ON execlog.my_tasks TO execlog_reader;
GRANT EXECUTE ON FUNCTION execlog.dismiss_task(bigint, text) TO execlog_operator;
/* step checks run as the writer of the step (and on_failure's, for _is_email) */
GRANT EXECUTE ON FUNCTION execlog._has_placeholder(text), execlog._alert_step_check(bigint, text, jsonb),
	execlog._task_step_check(bigint, text, jsonb), execlog._is_email(text) TO execlog_admin;

REVOKE ALL ON FUNCTION execlog._has_placeholder(text), execlog._alert_step_check(bigint, text, jsonb),
	execlog._task_step_check(bigint, text, jsonb), execlog.dismiss_task(bigint, text),
	execlog._due_at(text), execlog._on_failure_escalation(jsonb), execlog._channels_in_use_by_steps() FROM PUBLIC;
