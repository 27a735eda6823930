/* ------------------------------------------------------------------------
 * Schedules (pg_cron)
 *
 * execlog.schedule() gives an automation a "schedule" trigger and a pg_cron
 * job, owned by the extension owner, that runs execlog._run_schedule() in
 * this database; one schedule per automation.  Deleting the trigger (by
 * execlog.unschedule(), or with its automation) removes the job.
 * ------------------------------------------------------------------------ */
CREATE UNIQUE INDEX triggers_one_schedule ON execlog.triggers (automation_id) WHERE kind = 'schedule';

CREATE FUNCTION execlog.schedule(automation text, cron text, payload jsonb DEFAULT '{}')
	RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'execlog_schedule';
COMMENT ON FUNCTION execlog.schedule(text, text, jsonb) IS 'start the automation on a pg_cron schedule (replacing its schedule); returns the schedule trigger id';

CREATE FUNCTION execlog.unschedule(automation text)
	RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'execlog_unschedule';
COMMENT ON FUNCTION execlog.unschedule(text) IS 'remove the automation''s schedule and its pg_cron job';

/* What the pg_cron job runs (as the extension owner). */
CREATE FUNCTION execlog._run_schedule(automation_id bigint) RETURNS bigint
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	new_id bigint;
BEGIN
	SELECT tr.id, tr.config, a.enabled, a.name INTO t
	  FROM execlog.triggers tr JOIN execlog.automations a ON a.id = tr.automation_id
	 WHERE tr.automation_id = _run_schedule.automation_id AND tr.kind = 'schedule';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'automation % has no schedule', _run_schedule.automation_id
			USING ERRCODE = 'undefined_object';
	END IF;
	IF NOT t.enabled THEN
		RAISE EXCEPTION 'automation "%" is disabled', t.name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Enable it, or remove its schedule with execlog.unschedule().';
	END IF;
	INSERT INTO execlog.executions (automation_id, trigger_id, triggered_by, payload)
	VALUES (_run_schedule.automation_id, t.id,
			'pg_cron job ' || coalesce(t.config ->> 'job', '?'),
			coalesce(t.config -> 'payload', '{}'))
	RETURNING id INTO new_id;
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION execlog._run_schedule(bigint) IS 'starts a scheduled automation; run by its pg_cron job (internal)';

/* A schedule trigger that goes takes its pg_cron job along. */
CREATE FUNCTION execlog._schedule_dropped() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
		/* only the job execlog made for this automation, as its owner */
		EXECUTE 'SELECT cron.unschedule(j.jobid) FROM cron.job j
		          WHERE j.jobname = $1 AND j.username = current_user'
		  USING 'execlog schedule ' || OLD.automation_id;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._schedule_dropped() IS 'removes the pg_cron job of a deleted schedule trigger (internal)';

CREATE TRIGGER triggers_unschedule AFTER DELETE ON execlog.triggers
	FOR EACH ROW WHEN (OLD.kind = 'schedule')
	EXECUTE FUNCTION execlog._schedule_dropped();

GRANT EXECUTE ON FUNCTION execlog.schedule(text, text, jsonb), execlog.unschedule(text)
	TO execlog_admin;

/* ------------------------------------------------------------------------
 * Watches (data-condition triggers)
 *
 * execlog.watch() gives an automation a "data" trigger (watched_table: the
 * table, by OID; config: table as named then, and condition) and creates,
 * as the caller, a row trigger execlog_watch_<automation id> on the table,
 * AFTER INSERT OR UPDATE, WHEN the condition holds, that starts the
 * automation with the row as payload.  A partitioned table's row trigger is
 * cloned by PostgreSQL to every partition, also those attached later; the
 * row trigger of a partition finds the watch through the partition's
 * ancestors.  Renaming the table or its schema changes nothing (the OID
 * stays).  Deleting the data trigger (execlog.unwatch(), or with its
 * automation) drops the row trigger; dropping the table deletes the data
 * trigger (the event trigger below).
 * ------------------------------------------------------------------------ */
CREATE UNIQUE INDEX triggers_one_watch ON execlog.triggers (automation_id, watched_table)
	WHERE kind = 'data';

CREATE FUNCTION execlog.watch(tbl regclass, automation text, condition text DEFAULT NULL)
	RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'execlog_watch';
COMMENT ON FUNCTION execlog.watch(regclass, text, text) IS 'start the automation for each row inserted or updated in the table (or any of its partitions) that meets the condition (a WHEN expression over NEW); returns the data trigger id';

CREATE FUNCTION execlog.unwatch(tbl regclass, automation text)
	RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'execlog_unwatch';
COMMENT ON FUNCTION execlog.unwatch(regclass, text) IS 'stop watching the table for the automation';

/*
 * The row trigger's function.  It starts only what a data trigger of the
 * automation configures for this very table (or, for a partition, the
 * nearest of its ancestors that is watched: pg_partition_ancestors) and
 * trigger name, and never
 * fails the writer's statement because of execlog's state: an unwatched or
 * disabled automation starts nothing.  triggered_by is the watched table's
 * name at the time of the change.
 */
CREATE FUNCTION execlog._watch_fire() RETURNS trigger
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
CREATE FUNCTION execlog._watch_dropped() RETURNS trigger
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

CREATE TRIGGER triggers_unwatch AFTER DELETE ON execlog.triggers
	FOR EACH ROW WHEN (OLD.kind = 'data')
	EXECUTE FUNCTION execlog._watch_dropped();

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

GRANT EXECUTE ON FUNCTION execlog.watch(regclass, text, text), execlog.unwatch(regclass, text),
	execlog._watch_fire()
	TO execlog_admin;
