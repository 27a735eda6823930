
/* ------------------------------------------------------------------------
 * Scale (issue 13): executions refer to automations and triggers without
 * foreign keys (their two per-row checks were half the cost of a bulk
 * start).  The status trigger's lookup of a new execution's automation and
 * trigger is the check, locking both FOR KEY SHARE (once per start_many());
 * these triggers are the referenced side, with the foreign keys' semantics
 * and messages (src/references.c): an automation with executions cannot be
 * deleted, a deleted trigger sets trigger_id NULL, a referenced id cannot
 * change, TRUNCATE is refused while executions refer to the table.
 * ------------------------------------------------------------------------ */
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
