/*
 * 10_security: issue 10 (privilege boundary).
 */

/* Defect 1: every change of an automation, its steps or triggers needs run_as membership. */
CREATE OR REPLACE FUNCTION execlog._automations_guard() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
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

CREATE FUNCTION execlog._definition_run_as() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a record;
BEGIN
	FOR a IN SELECT au.name, au.run_as FROM execlog.automations au
			  WHERE au.id = CASE WHEN TG_OP = 'DELETE' THEN OLD.automation_id ELSE NEW.automation_id END
				 OR (TG_OP = 'UPDATE' AND au.id = OLD.automation_id)
	LOOP
		IF NOT (CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = a.run_as)
					 THEN pg_catalog.pg_has_role(a.run_as, 'MEMBER')
					 ELSE EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER AND rolsuper) END) THEN
			RAISE EXCEPTION 'permission denied to change automation "%" that runs as role "%"', a.name, a.run_as
				USING ERRCODE = 'insufficient_privilege',
					  HINT = 'Changing an automation, its steps or its triggers needs membership in its run_as role.';
		END IF;
	END LOOP;
	IF TG_OP = 'DELETE' THEN
		RETURN OLD;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION execlog._definition_run_as() IS 'refuses a write of steps or triggers by a role that is not a member of the automation''s run_as (internal)';
REVOKE ALL ON FUNCTION execlog._definition_run_as() FROM PUBLIC;

CREATE TRIGGER steps_check_run_as BEFORE INSERT OR UPDATE OR DELETE ON execlog.steps
	FOR EACH ROW EXECUTE FUNCTION execlog._definition_run_as();
CREATE TRIGGER triggers_check_run_as BEFORE INSERT OR UPDATE OR DELETE ON execlog.triggers
	FOR EACH ROW EXECUTE FUNCTION execlog._definition_run_as();

/* Defects 3 and 8: no placeholder in the query of an sql step; HTTP methods whitelisted. */
CREATE OR REPLACE FUNCTION execlog._steps_guard() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c jsonb;
BEGIN
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
			END IF;
		WHEN 'feedback' THEN
			IF jsonb_typeof(c -> 'fields') IS DISTINCT FROM 'object' THEN
				RAISE EXCEPTION 'feedback step "%" needs a "fields" object in its config', NEW.name
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

/* Defect 5: a connection's credentials stay with their host. */
/*
 * Credentials go only to the host they were given for: a new scheme, host
 * or port in base_url needs auth given again (a changed value) in the same
 * UPDATE.  (token_url is inside auth, so it can only change with it.)
 */
CREATE FUNCTION execlog._connections_credentials() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF OLD.auth IS NOT NULL AND NEW.auth IS NOT DISTINCT FROM OLD.auth
	   AND lower(substring(NEW.base_url FROM '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*'))
		   IS DISTINCT FROM lower(substring(OLD.base_url FROM '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*')) THEN
		RAISE EXCEPTION 'the credentials of connection "%" were given for another host', OLD.name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Set auth again in the same UPDATE as the new base_url.';
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION execlog._connections_credentials() IS 'refuses a new host in base_url unless auth is given again (internal)';
REVOKE ALL ON FUNCTION execlog._connections_credentials() FROM PUBLIC;

CREATE TRIGGER connections_credentials BEFORE UPDATE ON execlog.connections
	FOR EACH ROW EXECUTE FUNCTION execlog._connections_credentials();
