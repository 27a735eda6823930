/* ------------------------------------------------------------------------
 * issue 11, item 6: watched tables are identified by OID
 *
 * A data trigger names its table in execlog.triggers.watched_table (a
 * regclass: an OID, dumped and restored by name), so a watch on a
 * partitioned table fires for rows of its partitions and renaming a watched
 * table or its schema keeps the watch.  The watches of 0.1 (config ->>
 * 'table', a name) are converted below, by their row triggers rather than
 * by name.  Their config and revision are left as they were, so the
 * executions they started can still be retried.
 * ------------------------------------------------------------------------ */
ALTER TABLE execlog.triggers ADD COLUMN watched_table pg_catalog.regclass;
COMMENT ON COLUMN execlog.triggers.config IS 'kind-specific settings (schedule: cron and job; data: table, as named when watched, and condition)';
COMMENT ON COLUMN execlog.triggers.watched_table IS 'data triggers: the watched table, by OID (it follows renames; the row goes when the table is dropped)';

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
 * Converting the watches of 0.1.  The functions above come first: a data
 * trigger deleted here must be handled by the new _watch_dropped() (the one
 * of 0.1 looks its table up by a name that may now be another table's).
 *
 * A watch of 0.1 is its data trigger (automation, table name) and its row
 * trigger execlog_watch_<automation id> calling execlog._watch_fire() (not a
 * partition's clone), found by that name, not by the table's.  In 0.1 a
 * renamed table kept its row trigger but its watch stopped firing, and the
 * name could since be another table's.  So a data trigger goes with, in
 * this order:
 *  1. the row trigger of its automation on the table its name resolves to;
 *  2. else a row trigger of its automation that no data trigger resolved to
 *     and that was created by the same transaction (xmin) as the data
 *     trigger: watch() made both, and a rename changes neither;
 *  3. else the one row trigger of its automation left, if it is the one data
 *     trigger of its automation left.
 * A data trigger with none (its table was dropped) is deleted, with a
 * warning if its automation has row triggers left (which could not be told
 * apart); then every row trigger of a watch that no data trigger has is
 * dropped: none is left to fire for nothing or to hold on to
 * _watch_fire() (DROP EXTENSION).
 */
ALTER TABLE execlog.triggers DISABLE TRIGGER triggers_guard;
DO $$
DECLARE
	fire pg_catalog.regproc := 'execlog._watch_fire'::pg_catalog.regproc;
	r record;
BEGIN
	-- 1. by name
	UPDATE execlog.triggers tr SET watched_table = g.tgrelid
	  FROM pg_catalog.pg_trigger g
	 WHERE tr.kind = 'data'
	   AND g.tgname = 'execlog_watch_' || tr.automation_id AND g.tgfoid = fire AND g.tgparentid = 0
	   AND g.tgrelid = pg_catalog.to_regclass(tr.config ->> 'table');

	-- 2. by the transaction that made both (one data trigger, one row trigger)
	UPDATE execlog.triggers tr SET watched_table = g.tgrelid
	  FROM pg_catalog.pg_trigger g
	 WHERE tr.kind = 'data' AND tr.watched_table IS NULL
	   AND g.tgname = 'execlog_watch_' || tr.automation_id AND g.tgfoid = fire AND g.tgparentid = 0
	   AND g.xmin = tr.xmin
	   AND NOT EXISTS (SELECT 1 FROM execlog.triggers o
	                    WHERE o.kind = 'data' AND o.automation_id = tr.automation_id
	                      AND o.watched_table = g.tgrelid)
	   AND (SELECT pg_catalog.count(*) FROM execlog.triggers o
	         WHERE o.kind = 'data' AND o.automation_id = tr.automation_id
	           AND o.watched_table IS NULL AND o.xmin = tr.xmin) = 1
	   AND (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger g2
	         WHERE g2.tgname = g.tgname AND g2.tgfoid = fire AND g2.tgparentid = 0
	           AND g2.xmin = tr.xmin
	           AND NOT EXISTS (SELECT 1 FROM execlog.triggers o
	                            WHERE o.kind = 'data' AND o.automation_id = tr.automation_id
	                              AND o.watched_table = g2.tgrelid)) = 1;

	-- 3. the one data trigger left with the one row trigger left
	UPDATE execlog.triggers tr SET watched_table = g.tgrelid
	  FROM pg_catalog.pg_trigger g
	 WHERE tr.kind = 'data' AND tr.watched_table IS NULL
	   AND g.tgname = 'execlog_watch_' || tr.automation_id AND g.tgfoid = fire AND g.tgparentid = 0
	   AND NOT EXISTS (SELECT 1 FROM execlog.triggers o
	                    WHERE o.kind = 'data' AND o.automation_id = tr.automation_id
	                      AND o.watched_table = g.tgrelid)
	   AND (SELECT pg_catalog.count(*) FROM execlog.triggers o
	         WHERE o.kind = 'data' AND o.automation_id = tr.automation_id
	           AND o.watched_table IS NULL) = 1
	   AND (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger g2
	         WHERE g2.tgname = g.tgname AND g2.tgfoid = fire AND g2.tgparentid = 0
	           AND NOT EXISTS (SELECT 1 FROM execlog.triggers o
	                            WHERE o.kind = 'data' AND o.automation_id = tr.automation_id
	                              AND o.watched_table = g2.tgrelid)) = 1;

	-- the data triggers left: their table was dropped (or cannot be told)
	FOR r IN SELECT tr.automation_id, tr.config ->> 'table' AS tbl
	           FROM execlog.triggers tr
	          WHERE tr.kind = 'data' AND tr.watched_table IS NULL
	            AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
	                         WHERE g.tgname = 'execlog_watch_' || tr.automation_id
	                           AND g.tgfoid = fire AND g.tgparentid = 0
	                           AND NOT EXISTS (SELECT 1 FROM execlog.triggers o
	                                            WHERE o.kind = 'data' AND o.automation_id = tr.automation_id
	                                              AND o.watched_table = g.tgrelid))
	          ORDER BY tr.id LOOP
		RAISE WARNING 'the watch of table % by automation % is deleted: its table was renamed or dropped, and cannot be told apart from the other renamed tables the automation watched',
			r.tbl, r.automation_id
			USING HINT = 'Watch the renamed table again with execlog.watch().';
	END LOOP;
	DELETE FROM execlog.triggers WHERE kind = 'data' AND watched_table IS NULL;

	-- the row triggers of no watch
	FOR r IN SELECT g.tgname, n.nspname, c.relname
	           FROM pg_catalog.pg_trigger g
	           JOIN pg_catalog.pg_class c ON c.oid = g.tgrelid
	           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	          WHERE g.tgname ~ '^execlog_watch_[0-9]+$' AND g.tgfoid = fire AND g.tgparentid = 0
	            AND NOT EXISTS (SELECT 1 FROM execlog.triggers tr
	                             WHERE tr.kind = 'data' AND g.tgname = 'execlog_watch_' || tr.automation_id
	                               AND tr.watched_table = g.tgrelid)
	          ORDER BY g.oid LOOP
		EXECUTE pg_catalog.format('DROP TRIGGER %I ON %I.%I', r.tgname, r.nspname, r.relname);
	END LOOP;
END
$$;
ALTER TABLE execlog.triggers ENABLE TRIGGER triggers_guard;
ALTER TABLE execlog.triggers
	ADD CONSTRAINT triggers_watched_table_check CHECK ((kind = 'data') = (watched_table IS NOT NULL));

DROP INDEX execlog.triggers_one_watch;
CREATE UNIQUE INDEX triggers_one_watch ON execlog.triggers (automation_id, watched_table)
	WHERE kind = 'data';

/*
 * A watched table that is dropped (DROP TABLE, DROP SCHEMA ... CASCADE, DROP
 * OWNED) takes its data triggers along, in the same transaction: no data
 * trigger names a table that is gone.  So does a row trigger
 * execlog_watch_<automation id> dropped by itself (DROP TRIGGER, or ALTER
 * TABLE ... DROP COLUMN ... CASCADE of a column the condition uses): the
 * data trigger of that automation whose table no longer has that row
 * trigger goes, since it could never fire again (a partition's clone,
 * dropped by DETACH PARTITION, leaves the watch of its parent alone).  The
 * executions they started stay, with trigger_id NULL (as after unwatch()).
 * Run for every DROP in the database, by whoever drops: one small DELETE,
 * nothing when no watched table nor row trigger of a watch is among the
 * dropped objects.
 */
CREATE FUNCTION execlog._watched_tables_dropped() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM execlog.triggers tr
	 USING pg_catalog.pg_event_trigger_dropped_objects() d
	 WHERE tr.kind = 'data'
	   AND ((d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = 0
	         AND tr.watched_table OPERATOR(pg_catalog.=) d.objid)
	     OR (d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass
	         AND d.address_names[3] = 'execlog_watch_' || tr.automation_id
	         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
	                          WHERE g.tgrelid OPERATOR(pg_catalog.=) tr.watched_table
	                            AND g.tgname = d.address_names[3] AND g.tgparentid = 0)));
END
$$;
COMMENT ON FUNCTION execlog._watched_tables_dropped() IS 'deletes the data triggers of dropped tables and of dropped row triggers of watches (internal)';

CREATE EVENT TRIGGER execlog_watched_tables_dropped ON sql_drop
	EXECUTE FUNCTION execlog._watched_tables_dropped();
COMMENT ON EVENT TRIGGER execlog_watched_tables_dropped IS 'a dropped watched table, or a dropped row trigger of a watch, takes its data triggers along';

REVOKE ALL ON FUNCTION execlog._watched_tables_dropped() FROM PUBLIC;
