--
-- Issue 13 (scale, point 5): executions loses its two foreign keys (to
-- automations and to triggers), whose per-row checks were half the cost of
-- a bulk start; the status trigger's lookup locks what a new execution
-- refers to, and execlog._executions_referenced() keeps the referenced
-- side (src/sql/72_references.sql).  The constraints are found by what
-- they reference, whatever shape executions has by now.
--
DO $fkeys$
DECLARE
	c name;
BEGIN
	FOR c IN SELECT k.conname FROM pg_catalog.pg_constraint k
			  WHERE k.conrelid OPERATOR(pg_catalog.=) 'execlog.executions'::pg_catalog.regclass
				AND k.contype OPERATOR(pg_catalog.=) 'f'
				AND k.confrelid OPERATOR(pg_catalog.=) ANY (ARRAY['execlog.automations'::pg_catalog.regclass,
																  'execlog.triggers'::pg_catalog.regclass])
				AND k.conparentid OPERATOR(pg_catalog.=) 0
			  ORDER BY k.conname LOOP
		EXECUTE pg_catalog.format('ALTER TABLE execlog.executions DROP CONSTRAINT %I', c);
	END LOOP;
END
$fkeys$;

CREATE FUNCTION execlog._executions_referenced() RETURNS trigger
	LANGUAGE c AS 'MODULE_PATHNAME', 'execlog_executions_referenced';
COMMENT ON FUNCTION execlog._executions_referenced() IS 'the referenced side of executions.automation_id and executions.trigger_id: refuses to delete or renumber what executions refer to, sets trigger_id NULL when its trigger is deleted (internal)';

CREATE TRIGGER executions_automation_id_fkey AFTER DELETE OR UPDATE OF id ON execlog.automations
	FOR EACH ROW EXECUTE FUNCTION execlog._executions_referenced();
CREATE TRIGGER executions_automation_id_fkey_truncate BEFORE TRUNCATE ON execlog.automations
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._executions_referenced();
CREATE TRIGGER executions_trigger_id_fkey AFTER DELETE OR UPDATE OF id ON execlog.triggers
	FOR EACH ROW EXECUTE FUNCTION execlog._executions_referenced();
CREATE TRIGGER executions_trigger_id_fkey_truncate BEFORE TRUNCATE ON execlog.triggers
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._executions_referenced();
REVOKE ALL ON FUNCTION execlog._executions_referenced() FROM PUBLIC;
