--
-- Issue 13 (scale), second part: the event-log queue exists only while the
-- event log is in use (its triggers start disabled; the first
-- merge_event_log() enables them and recomputes the log whole;
-- disable_event_log() stops it), and the finished-execution counter joins
-- executions by index whatever its caller set.  The update stops the queue:
-- the first merge after it recomputes the event log.
--
ALTER FUNCTION execlog._count_executions() SET enable_nestloop = on SET enable_hashjoin = off SET enable_mergejoin = off;

/* Whether the event log is in use (its change queue is being written). */
CREATE FUNCTION execlog.event_log_in_use() RETURNS boolean
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT t.tgenabled <> 'D' FROM pg_catalog.pg_trigger t
	 WHERE t.tgrelid = 'execlog.executions'::pg_catalog.regclass
	   AND t.tgname = 'executions_event_log_insert'
$$;
COMMENT ON FUNCTION execlog.event_log_in_use() IS 'true while the event log is in use: changes of executions are queued for execlog.merge_event_log() (from its first call until execlog.disable_event_log())';

/*
 * Start the queue and recompute the event log whole, set-based (hash joins
 * over executions, no queue).  ALTER TABLE takes SHARE ROW EXCLUSIVE on
 * executions and automations: it waits for the writers in flight, and the
 * writers after it wait for this transaction, so every change is either
 * seen here or queued for the next merge.  Caller: merge_event_log(), under
 * its lock.
 */
CREATE FUNCTION execlog._event_log_resync(OUT inserted bigint, OUT updated bigint)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	ALTER TABLE execlog.executions ENABLE TRIGGER executions_event_log_insert,
		ENABLE TRIGGER executions_event_log_update, ENABLE TRIGGER executions_event_log_delete;
	ALTER TABLE execlog.automations ENABLE TRIGGER automations_event_log;
	TRUNCATE execlog.event_log_queue;
	DELETE FROM execlog.event_log l
	 WHERE NOT EXISTS (SELECT FROM execlog.executions e WHERE e.id = l.instance_id);
	UPDATE execlog.event_log l
	   SET execution_template_name = a.name, account_id = e.account_id, created_at = e.created_at,
		   last_modified = e.updated_at, status = e.status
	  FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
	 WHERE e.id = l.instance_id
	   AND (l.execution_template_name, l.account_id, l.created_at, l.last_modified, l.status)
		   IS DISTINCT FROM (a.name, e.account_id, e.created_at, e.updated_at, e.status);
	GET DIAGNOSTICS updated = ROW_COUNT;
	INSERT INTO execlog.event_log (execution_template_name, instance_id, created_at, last_modified, status, account_id)
	SELECT a.name, e.id, e.created_at, e.updated_at, e.status, e.account_id
	  FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
	 WHERE NOT EXISTS (SELECT FROM execlog.event_log l WHERE l.instance_id = e.id);
	GET DIAGNOSTICS inserted = ROW_COUNT;
END
$$;
COMMENT ON FUNCTION execlog._event_log_resync() IS 'starts the event-log queue and recomputes execlog.event_log whole (internal, first merge)';

/*
 * Stop queueing: the event log keeps its rows as of the last merge, and the
 * next merge_event_log() recomputes it whole.
 */
CREATE FUNCTION execlog.disable_event_log() RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM execlog._serialize('merge_event_log', 0);
	ALTER TABLE execlog.executions DISABLE TRIGGER executions_event_log_insert,
		DISABLE TRIGGER executions_event_log_update, DISABLE TRIGGER executions_event_log_delete;
	ALTER TABLE execlog.automations DISABLE TRIGGER automations_event_log;
	TRUNCATE execlog.event_log_queue;
END
$$;
COMMENT ON FUNCTION execlog.disable_event_log() IS 'stops queueing changes for the event log and empties the queue; the next execlog.merge_event_log() recomputes the event log whole';

/*
 * Merge the executions changed since the last run into event_log.
 *
 * The queue is consumed in batches of at most 100,000 rows, so a large
 * backlog (a merge job stopped for days) does not need unbounded memory.
 * For each batch, statement 1 consumes queue rows and, with the same
 * snapshot, reads the current state of those executions and compares it
 * with event_log; statement 2 MERGEs the differences.  Only merges write
 * event_log, and they hold the advisory lock, so event_log cannot change in
 * between: the counts returned are exactly what the MERGE did.
 *
 * Hash and merge joins are off: they would read executions and event_log
 * whole.  Index lookups per queued id keep the cost proportional to the
 * number of changes, whatever the (often stale) statistics of the queue.
 */
CREATE OR REPLACE FUNCTION execlog.merge_event_log()
	RETURNS TABLE (inserted bigint, updated bigint)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	SET enable_hashjoin = off
	SET enable_mergejoin = off
AS $$
#variable_conflict use_column
DECLARE
	c_batch		CONSTANT integer := 100000;
	v_consumed	bigint;
	v_ids		bigint[];
	v_present	boolean[];
	v_names		text[];
	v_accounts	bigint[];
	v_created	timestamptz[];
	v_modified	timestamptz[];
	v_status	execlog.status[];
	v_inserted	bigint;
	v_updated	bigint;
BEGIN
	/*
	 * Under REPEATABLE READ or SERIALIZABLE the whole call would use a
	 * snapshot taken before the lock, and could try to consume queue rows
	 * that a concurrent merge already consumed.
	 */
	IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
		RAISE EXCEPTION 'execlog.merge_event_log() must run at isolation level READ COMMITTED'
			USING ERRCODE = 'active_sql_transaction',
				  HINT = 'Call it in its own transaction, or in one at the default isolation level.';
	END IF;

	/* one merge at a time; the next one starts from what this one commits */
	PERFORM execlog._serialize('merge_event_log', 0);

	/* not in use until now: start queueing, and recompute the log whole */
	IF NOT execlog.event_log_in_use() THEN
		SELECT r.inserted, r.updated INTO v_inserted, v_updated FROM execlog._event_log_resync() r;
		inserted := v_inserted;
		updated := v_updated;
		RETURN NEXT;
		RETURN;
	END IF;

	inserted := 0;
	updated := 0;
	LOOP
		WITH consumed AS (
			DELETE FROM execlog.event_log_queue q
			 WHERE q.ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT b.ctid FROM execlog.event_log_queue b LIMIT c_batch))
			RETURNING q.execution_id
		), changed AS (
			SELECT DISTINCT c.execution_id AS id FROM consumed c
		), fresh AS (
			SELECT ch.id, e.id IS NOT NULL AS present, a.name, e.account_id,
				   e.created_at, e.updated_at, e.status
			  FROM changed ch
			  LEFT JOIN execlog.executions e ON e.id = ch.id
			  LEFT JOIN execlog.automations a ON a.id = e.automation_id
		), todo AS (
			SELECT f.*, l.instance_id IS NOT NULL AS logged
			  FROM fresh f
			  LEFT JOIN execlog.event_log l ON l.instance_id = f.id
			 WHERE CASE WHEN NOT f.present THEN l.instance_id IS NOT NULL
						WHEN l.instance_id IS NULL THEN true
						ELSE (l.execution_template_name, l.account_id, l.created_at, l.last_modified, l.status)
							 IS DISTINCT FROM (f.name, f.account_id, f.created_at, f.updated_at, f.status)
				   END
		)
		SELECT (SELECT pg_catalog.count(*) FROM consumed),
			   pg_catalog.array_agg(t.id), pg_catalog.array_agg(t.present), pg_catalog.array_agg(t.name),
			   pg_catalog.array_agg(t.account_id), pg_catalog.array_agg(t.created_at),
			   pg_catalog.array_agg(t.updated_at), pg_catalog.array_agg(t.status),
			   pg_catalog.count(*) FILTER (WHERE t.present AND NOT t.logged),
			   pg_catalog.count(*) FILTER (WHERE t.present AND t.logged)
		  INTO v_consumed, v_ids, v_present, v_names, v_accounts, v_created, v_modified, v_status,
			   v_inserted, v_updated
		  FROM todo t;

		IF v_ids IS NOT NULL THEN
			MERGE INTO execlog.event_log l
			USING ROWS FROM (pg_catalog.unnest(v_ids), pg_catalog.unnest(v_present),
							 pg_catalog.unnest(v_names), pg_catalog.unnest(v_accounts),
							 pg_catalog.unnest(v_created), pg_catalog.unnest(v_modified),
							 pg_catalog.unnest(v_status))
				  AS s (id, present, name, account_id, created_at, updated_at, status)
			   ON l.instance_id = s.id
			 WHEN MATCHED AND NOT s.present THEN
				DELETE
			 WHEN MATCHED THEN
				UPDATE SET execution_template_name = s.name, account_id = s.account_id,
						   created_at = s.created_at, last_modified = s.updated_at, status = s.status
			 WHEN NOT MATCHED AND s.present THEN
				INSERT (execution_template_name, instance_id, created_at, last_modified, status, account_id)
				VALUES (s.name, s.id, s.created_at, s.updated_at, s.status, s.account_id);
		END IF;

		inserted := inserted + v_inserted;
		updated := updated + v_updated;
		EXIT WHEN v_consumed < c_batch;
	END LOOP;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION execlog.merge_event_log() IS 'merges the executions changed since the last call into execlog.event_log; returns the rows inserted and updated';

ALTER TABLE execlog.executions DISABLE TRIGGER executions_event_log_insert,
	DISABLE TRIGGER executions_event_log_update, DISABLE TRIGGER executions_event_log_delete;
ALTER TABLE execlog.automations DISABLE TRIGGER automations_event_log;
TRUNCATE execlog.event_log_queue;

REVOKE ALL ON FUNCTION execlog.event_log_in_use(), execlog._event_log_resync(), execlog.disable_event_log() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION execlog.event_log_in_use() TO execlog_reader;
GRANT EXECUTE ON FUNCTION execlog.disable_event_log() TO execlog_admin;
