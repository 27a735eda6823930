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
