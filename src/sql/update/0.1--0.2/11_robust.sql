/*
 * issue 11: intervals are bounded (time_limit at most 1 year, retry_delay
 * at most 7 days, a pause "for" between 0 and 1 year, prune's older_than at
 * most 100 years).  Definitions past the new bounds are brought within them
 * first, so that no row is lost.
 */
UPDATE execlog.automations SET time_limit = interval '1 year' WHERE time_limit > interval '1 year';
UPDATE execlog.automations SET retry_delay = interval '7 days' WHERE retry_delay > interval '7 days';
ALTER TABLE execlog.automations DROP CONSTRAINT automations_time_limit_check,
	ADD CONSTRAINT automations_time_limit_check CHECK (time_limit > interval '0' AND time_limit <= interval '1 year');
ALTER TABLE execlog.automations DROP CONSTRAINT automations_retry_delay_check,
	ADD CONSTRAINT automations_retry_delay_check CHECK (retry_delay >= interval '0' AND retry_delay <= interval '7 days');
COMMENT ON COLUMN execlog.automations.time_limit IS 'allocated time of one attempt, from its start (more than 0, at most 1 year); past it the execution is rejected';
COMMENT ON COLUMN execlog.automations.retry_delay IS 'delay before the first automatic retry (0 to 7 days); doubled each time';

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
		IF NEW.kind NOT IN ('sql', 'http', 'pause', 'response', 'feedback') THEN
			RAISE EXCEPTION 'unknown step kind "%"', NEW.kind
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Step kinds are sql, http, pause, response and feedback.';
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

CREATE OR REPLACE FUNCTION execlog.prune(older_than interval) RETURNS bigint
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	IF older_than IS NULL OR older_than < interval '0' THEN
		RAISE EXCEPTION 'older_than must be an interval of zero or more, not %', coalesce(older_than::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF older_than > interval '100 years' THEN
		RAISE EXCEPTION 'older_than must be at most 100 years, not %', older_than
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	DELETE FROM execlog.executions
	 WHERE status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
	   AND run_after IS NULL
	   AND coalesce(finished_at, updated_at) < pg_catalog.now() - older_than;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

/*
 * issue 11: a dump restores (pg_restore, or a plain dump through psql): a
 * superuser's COPY into an execlog table is taken as dumped.
 */
CREATE OR REPLACE FUNCTION execlog._automations_guard() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* restoring a dump: a superuser's COPY into this table (README) */
	IF pg_catalog.current_setting('is_superuser')::boolean
	   AND pg_catalog.starts_with(pg_catalog.ltrim(pg_catalog.current_query()), 'COPY execlog.automations ') THEN
		RETURN NEW;
	END IF;
	IF TG_OP = 'INSERT' OR NEW.run_as IS DISTINCT FROM OLD.run_as THEN
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = NEW.run_as) THEN
			RAISE EXCEPTION 'role "%" does not exist', NEW.run_as
				USING ERRCODE = 'undefined_object';
		END IF;
		IF NOT pg_catalog.pg_has_role(NEW.run_as, 'MEMBER') THEN
			RAISE EXCEPTION 'permission denied to run automation "%" as role "%"', NEW.name, NEW.run_as
				USING ERRCODE = 'insufficient_privilege',
					  HINT = 'run_as must be a role you are a member of.';
		END IF;
	END IF;
	/* the same rule as setting run_as (see _definition_run_as) */
	IF TG_OP = 'UPDATE'
	   AND NOT (CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = OLD.run_as)
					 THEN pg_catalog.pg_has_role(OLD.run_as, 'MEMBER')
					 ELSE EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER AND rolsuper) END) THEN
		RAISE EXCEPTION 'permission denied to change automation "%" that runs as role "%"', OLD.name, OLD.run_as
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'Changing an automation, its steps or its triggers needs membership in its run_as role.';
	END IF;
	IF TG_OP = 'INSERT' THEN
		NEW.revision := 1;
		NEW.created_at := pg_catalog.now();
	ELSE
		IF NEW.id <> OLD.id OR NEW.account_id <> OLD.account_id THEN
			RAISE EXCEPTION 'automation "%" cannot move to another id or account', OLD.name
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
		NEW.created_at := OLD.created_at;
		NEW.revision := OLD.revision + 1;
	END IF;
	NEW.updated_at := pg_catalog.now();
	RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION execlog._automations_manual_trigger() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* restoring a dump: a superuser's COPY into this table (README) */
	IF pg_catalog.current_setting('is_superuser')::boolean
	   AND pg_catalog.starts_with(pg_catalog.ltrim(pg_catalog.current_query()), 'COPY execlog.automations ') THEN
		RETURN NULL;
	END IF;
	INSERT INTO execlog.triggers (automation_id, kind) VALUES (NEW.id, 'manual');
	RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION execlog._triggers_guard() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* restoring a dump: a superuser's COPY into this table (README) */
	IF pg_catalog.current_setting('is_superuser')::boolean
	   AND pg_catalog.starts_with(pg_catalog.ltrim(pg_catalog.current_query()), 'COPY execlog.triggers ') THEN
		RETURN NEW;
	END IF;
	IF TG_OP = 'INSERT' THEN
		NEW.revision := 1;
		NEW.created_at := pg_catalog.now();
	ELSE
		IF NEW.automation_id <> OLD.automation_id THEN
			RAISE EXCEPTION 'trigger % cannot move to another automation', OLD.id
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
		IF OLD.kind = 'manual' AND NEW.kind IS DISTINCT FROM 'manual' THEN
			RAISE EXCEPTION 'the manual trigger of an automation cannot change its kind'
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  HINT = 'Add another trigger of the kind you need.';
		END IF;
		NEW.created_at := OLD.created_at;
		IF NEW.kind IS DISTINCT FROM OLD.kind OR NEW.config IS DISTINCT FROM OLD.config THEN
			NEW.revision := OLD.revision + 1;
		ELSE
			NEW.revision := OLD.revision;
		END IF;
	END IF;
	NEW.updated_at := pg_catalog.now();
	RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION execlog._executions_log() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	/* transition tables have no statistics: never pair them by nested loop */
	SET enable_nestloop = off
AS $$
BEGIN
	/* restoring a dump: a superuser's COPY into this table (README) */
	IF pg_catalog.current_setting('is_superuser')::boolean
	   AND pg_catalog.starts_with(pg_catalog.ltrim(pg_catalog.current_query()), 'COPY execlog.executions ') THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'INSERT' THEN
		INSERT INTO execlog.transitions (execution_id, account_id, attempt, from_status, to_status, at, by)
		SELECT n.id, n.account_id, n.attempt, NULL, n.status, n.created_at, execlog._actor()
		  FROM new_rows n;
	ELSE
		INSERT INTO execlog.transitions (execution_id, account_id, attempt, from_status, to_status, at, by)
		SELECT n.id, n.account_id, n.attempt, o.status, n.status, n.updated_at, execlog._actor()
		  FROM old_rows o JOIN new_rows n ON n.id = o.id
		 WHERE n.status <> o.status
		 ORDER BY n.id;
	END IF;
	RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION execlog._event_log_enqueue() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* restoring a dump: a superuser's COPY into this table (README) */
	IF pg_catalog.current_setting('is_superuser')::boolean
	   AND pg_catalog.starts_with(pg_catalog.ltrim(pg_catalog.current_query()), 'COPY execlog.executions ') THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'DELETE' THEN
		INSERT INTO execlog.event_log_queue (execution_id) SELECT o.id FROM old_rows o;
	ELSE
		INSERT INTO execlog.event_log_queue (execution_id) SELECT n.id FROM new_rows n;
	END IF;
	RETURN NULL;
END
$$;
