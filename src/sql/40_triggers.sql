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
 * execlog.watch() gives an automation a "data" trigger (config: table,
 * condition) and creates, as the caller, a row trigger
 * execlog_watch_<automation id> on the table, AFTER INSERT OR UPDATE, WHEN
 * the condition holds, that starts the automation with the row as payload.
 * Deleting the data trigger (execlog.unwatch(), or with its automation)
 * drops the row trigger.
 * ------------------------------------------------------------------------ */
CREATE UNIQUE INDEX triggers_one_watch ON execlog.triggers (automation_id, (config ->> 'table'))
	WHERE kind = 'data';

CREATE FUNCTION execlog.watch(tbl regclass, automation text, condition text DEFAULT NULL)
	RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'execlog_watch';
COMMENT ON FUNCTION execlog.watch(regclass, text, text) IS 'start the automation for each row inserted or updated in the table that meets the condition (a WHEN expression over NEW); returns the data trigger id';

CREATE FUNCTION execlog.unwatch(tbl regclass, automation text)
	RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'execlog_unwatch';
COMMENT ON FUNCTION execlog.unwatch(regclass, text) IS 'stop watching the table for the automation';

/*
 * The row trigger's function.  It starts only what a data trigger of the
 * automation configures for this very table and trigger name, and never
 * fails the writer's statement because of execlog's state: an unwatched or
 * disabled automation starts nothing.
 */
CREATE FUNCTION execlog._watch_fire() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tbl text := pg_catalog.format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
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
	SELECT tr.id, a.enabled INTO t
	  FROM execlog.triggers tr JOIN execlog.automations a ON a.id = tr.automation_id
	 WHERE tr.automation_id = aid AND tr.kind = 'data' AND tr.config ->> 'table' = tbl;
	IF NOT FOUND OR NOT t.enabled THEN
		RETURN NULL;
	END IF;
	INSERT INTO execlog.executions (automation_id, trigger_id, triggered_by, payload)
	VALUES (aid, t.id, tbl, pg_catalog.to_jsonb(NEW));
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._watch_fire() IS 'row trigger of a watched table: starts the automation with the row (internal)';

/* A data trigger that goes takes its row trigger along. */
CREATE FUNCTION execlog._watch_dropped() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rel regclass := pg_catalog.to_regclass(OLD.config ->> 'table');
	name text := 'execlog_watch_' || OLD.automation_id;
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = rel AND tgname = name) THEN
		EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', name, rel);
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._watch_dropped() IS 'drops the row trigger of a deleted data trigger (internal)';

CREATE TRIGGER triggers_unwatch AFTER DELETE ON execlog.triggers
	FOR EACH ROW WHEN (OLD.kind = 'data')
	EXECUTE FUNCTION execlog._watch_dropped();

GRANT EXECUTE ON FUNCTION execlog.watch(regclass, text, text), execlog.unwatch(regclass, text),
	execlog._watch_fire()
	TO execlog_admin;
