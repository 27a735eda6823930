
/* ------------------------------------------------------------------------
 * issue 11, item 6: watched tables are identified by OID
 *
 * A data trigger names its table in execlog.triggers.watched_table (a
 * regclass: an OID, dumped and restored by name), so a watch on a
 * partitioned table fires for rows of its partitions and renaming a watched
 * table or its schema keeps the watch.  The watches of 0.1 (config ->>
 * 'table', a name) are converted: their row triggers stay as they are; a
 * watch whose table no longer exists is deleted (it could not fire again).
 * Their config and revision are left as they were, so the executions they
 * started can still be retried.
 * ------------------------------------------------------------------------ */
ALTER TABLE execlog.triggers ADD COLUMN watched_table pg_catalog.regclass;
COMMENT ON COLUMN execlog.triggers.config IS 'kind-specific settings (schedule: cron and job; data: table, as named when watched, and condition)';
COMMENT ON COLUMN execlog.triggers.watched_table IS 'data triggers: the watched table, by OID (it follows renames; the row goes when the table is dropped)';

ALTER TABLE execlog.triggers DISABLE TRIGGER triggers_guard;
UPDATE execlog.triggers SET watched_table = pg_catalog.to_regclass(config ->> 'table')
 WHERE kind = 'data';
DELETE FROM execlog.triggers WHERE kind = 'data' AND watched_table IS NULL;
ALTER TABLE execlog.triggers ENABLE TRIGGER triggers_guard;
ALTER TABLE execlog.triggers
	ADD CONSTRAINT triggers_watched_table_check CHECK ((kind = 'data') = (watched_table IS NOT NULL));

DROP INDEX execlog.triggers_one_watch;
CREATE UNIQUE INDEX triggers_one_watch ON execlog.triggers (automation_id, watched_table)
	WHERE kind = 'data';

COMMENT ON FUNCTION execlog.watch(regclass, text, text) IS 'start the automation for each row inserted or updated in the table (or any of its partitions) that meets the condition (a WHEN expression over NEW); returns the data trigger id';

/*
 * The row trigger's function.  It starts only what a data trigger of the
 * automation configures for this very table (or, for a partition, the
 * nearest of its ancestors that is watched: pg_partition_ancestors) and
 * trigger name, and never
 * fails the writer's statement because of execlog's state: an unwatched or
 * disabled automation starts nothing.  triggered_by is the watched table's
 * name at the time of the change.
 */
CREATE OR REPLACE FUNCTION execlog._watch_fire() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	aid bigint;
	t record;
BEGIN
	IF TG_LEVEL <> 'ROW' OR TG_WHEN <> 'AFTER' OR TG_NARGS <> 1 THEN
		RAISE EXCEPTION 'execlog._watch_fire() must be fired AFTER, FOR EACH ROW, by execlog.watch()'
			USING ERRCODE = 'trigger_protocol_violated';
	END IF;
	aid := TG_ARGV[0]::bigint;
	IF TG_NAME <> 'execlog_watch_' || aid THEN
		RETURN NULL;
	END IF;
	SELECT tr.id, a.enabled, pg_catalog.format('%I.%I', n.nspname, c.relname) AS tbl INTO t
	  FROM (SELECT TG_RELID::pg_catalog.regclass, 0::bigint
	        UNION ALL
	        SELECT * FROM pg_catalog.pg_partition_ancestors(TG_RELID) WITH ORDINALITY) AS up(rel, depth)
	  JOIN execlog.triggers tr ON tr.watched_table = up.rel
	  JOIN execlog.automations a ON a.id = tr.automation_id
	  JOIN pg_catalog.pg_class c ON c.oid = up.rel
	  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	 WHERE tr.automation_id = aid AND tr.kind = 'data'
	 ORDER BY up.depth
	 LIMIT 1;
	IF NOT FOUND OR NOT t.enabled THEN
		RETURN NULL;
	END IF;
	INSERT INTO execlog.executions (automation_id, trigger_id, triggered_by, payload)
	VALUES (aid, t.id, t.tbl, pg_catalog.to_jsonb(NEW));
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._watch_fire() IS 'row trigger of a watched table or of a partition of one: starts the automation with the row (internal)';

/* A data trigger that goes takes its row trigger along. */
CREATE OR REPLACE FUNCTION execlog._watch_dropped() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	name text := 'execlog_watch_' || OLD.automation_id;
	rel record;
BEGIN
	/* (a table being dropped has taken it along already) */
	SELECT n.nspname, c.relname INTO rel
	  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	 WHERE c.oid = OLD.watched_table
	   AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
	                WHERE g.tgrelid = c.oid AND g.tgname = name AND g.tgparentid = 0);
	IF FOUND THEN
		EXECUTE pg_catalog.format('DROP TRIGGER %I ON %I.%I', name, rel.nspname, rel.relname);
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._watch_dropped() IS 'drops the row trigger of a deleted data trigger (internal)';

/*
 * A watched table that is dropped (DROP TABLE, DROP SCHEMA ... CASCADE, DROP
 * OWNED) takes its data triggers along, in the same transaction: no data
 * trigger names a table that is gone.  The executions they started stay,
 * with trigger_id NULL (as after unwatch()).  Run for every DROP in the
 * database, by whoever drops: one small DELETE, nothing when no watched
 * table is among the dropped objects.
 */
CREATE FUNCTION execlog._watched_tables_dropped() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM execlog.triggers tr
	 USING pg_catalog.pg_event_trigger_dropped_objects() d
	 WHERE tr.kind = 'data'
	   AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = 0
	   AND tr.watched_table OPERATOR(pg_catalog.=) d.objid;
END
$$;
COMMENT ON FUNCTION execlog._watched_tables_dropped() IS 'deletes the data triggers of dropped tables (internal)';

CREATE EVENT TRIGGER execlog_watched_tables_dropped ON sql_drop
	EXECUTE FUNCTION execlog._watched_tables_dropped();
COMMENT ON EVENT TRIGGER execlog_watched_tables_dropped IS 'a dropped watched table takes its data triggers along';

REVOKE ALL ON FUNCTION execlog._watched_tables_dropped() FROM PUBLIC;
