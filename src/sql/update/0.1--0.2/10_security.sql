/*
 * 10_security: issue 10 (privilege boundary).
 */

/* Defect 1: every change of an automation, its steps or triggers needs run_as membership. */
/* execlog._automations_guard: its final body is in 11_robust.sql (both issues changed it) */

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
/* execlog._steps_guard: its final body is in 11_robust.sql (both issues changed it) */

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
