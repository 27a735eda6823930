/* ------------------------------------------------------------------------
 * Process mining (SPEC sections 7 and 8): the event log and its incremental
 * merge, Celonis-style views, the activity log, and the flattening of
 * process contexts into relational tables.
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * Event log
 *
 * execlog.event_log holds one row per execution.  It is kept up to date by
 * execlog.merge_event_log(), which costs what changed since its last run,
 * not the size of executions:
 *
 *	- statement-level triggers on executions (and on automations, for
 *	  renames) append the ids of changed executions to event_log_queue,
 *	  with one set-based INSERT per statement that reads the transition
 *	  table;
 *	- merge_event_log() consumes the queue with DELETE ... RETURNING and, in
 *	  the same statement and snapshot, reads the current state of those
 *	  executions; then it MERGEs that into event_log.
 *
 * A queue row becomes visible together with the change that wrote it (same
 * transaction), so a merge that consumes it also sees the change.  A change
 * committed after the merge took its snapshot leaves its queue row in place
 * for the next merge, whatever its updated_at says.  Merges are serialized
 * with a transaction-level advisory lock, so each one starts from what the
 * previous one committed.
 * ------------------------------------------------------------------------ */
CREATE TABLE execlog.event_log (
	execution_template_name text NOT NULL,
	instance_id bigint PRIMARY KEY,
	created_at	timestamptz NOT NULL,
	last_modified timestamptz NOT NULL,
	status		execlog.status NOT NULL,
	account_id	bigint NOT NULL
);
CREATE INDEX event_log_last_modified ON execlog.event_log (last_modified);
COMMENT ON TABLE execlog.event_log IS 'process-mining event log: one row per execution, kept up to date by execlog.merge_event_log()';
COMMENT ON COLUMN execlog.event_log.execution_template_name IS 'name of the automation (execution template)';
COMMENT ON COLUMN execlog.event_log.instance_id IS 'execution id';
COMMENT ON COLUMN execlog.event_log.created_at IS 'when the execution was created';
COMMENT ON COLUMN execlog.event_log.last_modified IS 'last change of the execution (executions.updated_at)';
COMMENT ON COLUMN execlog.event_log.status IS 'status of the execution';
COMMENT ON COLUMN execlog.event_log.account_id IS 'the execution''s account (row-level security)';

/*
 * Ids of executions changed since the last merge (duplicates allowed).  No
 * index: inserts stay cheap, and the merge reads it whole.  Vacuumed
 * eagerly, so the merge does not wade through the rows it consumed before.
 */
CREATE TABLE execlog.event_log_queue (
	execution_id bigint NOT NULL
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);
COMMENT ON TABLE execlog.event_log_queue IS 'ids of executions changed since the last execlog.merge_event_log() (internal)';
COMMENT ON COLUMN execlog.event_log_queue.execution_id IS 'a changed (inserted, updated or deleted) execution';

/*
 * Hot path: one INSERT ... SELECT per statement on executions, whatever the
 * number of rows.  SECURITY DEFINER, so any role allowed to write
 * executions can queue without a grant on the queue.
 */
CREATE FUNCTION execlog._event_log_enqueue() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* restoring a dump: a superuser's COPY into this table (README) */
	IF pg_catalog.current_setting('is_superuser')::boolean
	   AND pg_catalog.starts_with(pg_catalog.ltrim(pg_catalog.current_query()), 'COPY execlog.executions ') THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'DELETE' THEN
		INSERT INTO execlog.event_log_queue (execution_id) SELECT o.id FROM old_rows o;
	ELSE
		INSERT INTO execlog.event_log_queue (execution_id) SELECT n.id FROM new_rows n;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._event_log_enqueue() IS 'queues changed executions for execlog.merge_event_log() (internal)';

CREATE TRIGGER executions_event_log_insert AFTER INSERT ON execlog.executions
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._event_log_enqueue();
CREATE TRIGGER executions_event_log_update AFTER UPDATE ON execlog.executions
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._event_log_enqueue();
CREATE TRIGGER executions_event_log_delete AFTER DELETE ON execlog.executions
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._event_log_enqueue();

/* Renaming an automation changes execution_template_name of its executions. */
CREATE FUNCTION execlog._event_log_automation_renamed() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO execlog.event_log_queue (execution_id)
	SELECT e.id
	  FROM new_rows n
	  JOIN old_rows o ON o.id = n.id
	  JOIN execlog.executions e ON e.automation_id = n.id
	 WHERE n.name IS DISTINCT FROM o.name;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._event_log_automation_renamed() IS 'queues the executions of renamed automations for execlog.merge_event_log() (internal)';

CREATE TRIGGER automations_event_log AFTER UPDATE ON execlog.automations
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._event_log_automation_renamed();

/*
 * The queue exists only while the event log is in use: its triggers start
 * disabled, the first execlog.merge_event_log() enables them (and
 * recomputes the log whole), execlog.disable_event_log() disables them
 * again and empties the queue.
 */
ALTER TABLE execlog.executions DISABLE TRIGGER executions_event_log_insert,
	DISABLE TRIGGER executions_event_log_update, DISABLE TRIGGER executions_event_log_delete;
ALTER TABLE execlog.automations DISABLE TRIGGER automations_event_log;

/* TRUNCATE has no transition table: empty the event log with executions. */
CREATE FUNCTION execlog._event_log_truncated() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM execlog.event_log_queue;
	DELETE FROM execlog.event_log;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION execlog._event_log_truncated() IS 'empties the event log when executions is truncated (internal)';

CREATE TRIGGER executions_event_log_truncate AFTER TRUNCATE ON execlog.executions
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._event_log_truncated();

/*
 * The lock of merge_event_log() and of an export into one schema, in
 * execlog's own advisory lock kind: pg_advisory_lock() (in a session, or in
 * an sql step) can neither take nor hold it.
 */
CREATE FUNCTION execlog._serialize(what text, key oid) RETURNS void
	LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'execlog_serialize';
COMMENT ON FUNCTION execlog._serialize(text, oid) IS 'waits for and takes the transaction lock of merge_event_log() (''merge_event_log'', 0) or of an export into a schema (''export_contexts'', schema oid) (internal)';

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
	/*
	 * Whole tables: hash joins (merge_event_log() turns them off for its
	 * deltas), never a nested loop (an empty event_log would be scanned
	 * again for every row inserted into it)
	 */
	SET enable_hashjoin = on
	SET enable_mergejoin = on
	SET enable_nestloop = off
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
CREATE FUNCTION execlog.merge_event_log()
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

ALTER TABLE execlog.event_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE execlog.event_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON execlog.event_log
	USING (account_id = ANY ((SELECT execlog.my_accounts())::bigint[]));

/* ------------------------------------------------------------------------
 * Celonis-style views and the activity log (security_invoker: the reader's
 * row-level security applies).  Ids are text here, as in the process
 * context document, so these views and the exported tables join without
 * casts.
 * ------------------------------------------------------------------------ */
CREATE VIEW execlog.execution_templates WITH (security_invoker = true) AS
SELECT a.id::text AS id,
	   a.name,
	   ac.name AS tenant
  FROM execlog.automations a
  JOIN execlog.accounts ac ON ac.id = a.account_id;
COMMENT ON VIEW execlog.execution_templates IS 'automations under their Celonis name (execution templates)';
COMMENT ON COLUMN execlog.execution_templates.id IS 'automation id (as text)';
COMMENT ON COLUMN execlog.execution_templates.name IS 'automation name';
COMMENT ON COLUMN execlog.execution_templates.tenant IS 'account name';

CREATE VIEW execlog."execution_templates$trigger" WITH (security_invoker = true) AS
SELECT t.automation_id::text AS execution_templates_id,
	   t.kind,
	   t.config
  FROM execlog.triggers t;
COMMENT ON VIEW execlog."execution_templates$trigger" IS 'triggers of the execution templates (automations)';
COMMENT ON COLUMN execlog."execution_templates$trigger".execution_templates_id IS 'automation id (as text), execution_templates.id';
COMMENT ON COLUMN execlog."execution_templates$trigger".kind IS 'manual, schedule, data or api';
COMMENT ON COLUMN execlog."execution_templates$trigger".config IS 'kind-specific settings of the trigger';

CREATE VIEW execlog.execution_context WITH (security_invoker = true) AS
SELECT e.id::text AS "context$processId",
	   e.automation_id::text AS "context$executionTemplateID",
	   e.created_at AS "metadata$createdAt",
	   e.updated_at AS "metadata$updatedAt",
	   e.status
  FROM execlog.executions e;
COMMENT ON VIEW execlog.execution_context IS 'one row per execution (process context), with the column names of the flattened context';
COMMENT ON COLUMN execlog.execution_context."context$processId" IS 'execution id (as text)';
COMMENT ON COLUMN execlog.execution_context."context$executionTemplateID" IS 'automation id (as text), execution_templates.id';
COMMENT ON COLUMN execlog.execution_context."metadata$createdAt" IS 'when the execution was created';
COMMENT ON COLUMN execlog.execution_context."metadata$updatedAt" IS 'last change of the execution';
COMMENT ON COLUMN execlog.execution_context.status IS 'status of the execution';

/*
 * The step events in two branches, one per lifecycle, so that a condition
 * on event_time reaches the step rows' started_at or finished_at and their
 * indexes; each event then looks its execution's automation up by key (a
 * LATERAL with LIMIT, never a hash join over the history): a day of a long
 * history reads that day, not the history.
 */
CREATE VIEW execlog.activity_log WITH (security_invoker = true) AS
SELECT s.execution_id::text AS case_id,
	   s.name AS activity,
	   s.event_time,
	   s.lifecycle,
	   s.status,
	   CASE WHEN s.kind = 'http'
			THEN coalesce(pg_catalog.substring(s.input OPERATOR(pg_catalog.->>) 'url',
											   '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(\[[^]/?#]*\]|[^/?#:]+)'),
						  s.input OPERATOR(pg_catalog.->>) 'connection')
			ELSE r.run_as::text
	   END AS resource,
	   s.attempt,
	   s.position
  FROM (SELECT st.execution_id, st.name, st.started_at AS event_time, 'start'::text AS lifecycle,
			   'running'::execlog.step_status AS status, st.kind, st.input, st.attempt, st.position
		  FROM execlog.execution_steps st
		 WHERE st.started_at IS NOT NULL AND st.reused_from IS NULL
		UNION ALL
		SELECT st.execution_id, st.name, st.finished_at, 'complete'::text,
			   st.status, st.kind, st.input, st.attempt, st.position
		  FROM execlog.execution_steps st
		 WHERE st.finished_at IS NOT NULL AND st.reused_from IS NULL) s
 CROSS JOIN LATERAL (SELECT a.run_as
					   FROM execlog.executions e
					   JOIN execlog.automations a ON a.id = e.automation_id
					  WHERE e.id = s.execution_id
					  LIMIT 1) r;
COMMENT ON VIEW execlog.activity_log IS 'process-mining activity table: one row per step start and per step completion';
COMMENT ON COLUMN execlog.activity_log.case_id IS 'execution id (as text), execution_context."context$processId"';
COMMENT ON COLUMN execlog.activity_log.activity IS 'step name';
COMMENT ON COLUMN execlog.activity_log.event_time IS 'when the step started (start) or ended (complete)';
COMMENT ON COLUMN execlog.activity_log.lifecycle IS 'start or complete';
COMMENT ON COLUMN execlog.activity_log.status IS 'running on start rows; the outcome (success, failed, skipped) on complete rows';
COMMENT ON COLUMN execlog.activity_log.resource IS 'who performed the step: the host an http step called, otherwise the role the automation runs as';
COMMENT ON COLUMN execlog.activity_log.attempt IS 'attempt of the execution the step belongs to';
COMMENT ON COLUMN execlog.activity_log.position IS 'position of the step in its automation';

/* the activity log of a day or an hour reads that time range */
CREATE INDEX execution_steps_started ON execlog.execution_steps (started_at) WHERE reused_from IS NULL;
CREATE INDEX execution_steps_finished ON execlog.execution_steps (finished_at) WHERE reused_from IS NULL;

/* ------------------------------------------------------------------------
 * Flattening (C, src/flatten.c) and the export of process contexts
 * ------------------------------------------------------------------------ */

/* Timestamps in process contexts: ISO 8601 in UTC, whatever the TimeZone. */
CREATE FUNCTION execlog._iso_utc(ts timestamptz) RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT pg_catalog.to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
COMMENT ON FUNCTION execlog._iso_utc(timestamptz) IS 'a timestamp as ISO 8601 text in UTC, as in process contexts (internal)';

/*
 * The process context document of an execution.  processId and
 * executionTemplateID win over keys of the same name in executions.context;
 * a context that is not an object is kept under "value".
 */
CREATE FUNCTION execlog.context_document(e execlog.executions) RETURNS jsonb
	LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT pg_catalog.jsonb_build_object(
		'context',
		CASE WHEN pg_catalog.jsonb_typeof(e.context) = 'object' THEN e.context
			 ELSE pg_catalog.jsonb_build_object('value', e.context)
		END OPERATOR(pg_catalog.||)
		pg_catalog.jsonb_build_object('processId', e.id::text,
									  'executionTemplateID', e.automation_id::text),
		'metadata',
		pg_catalog.jsonb_build_object('createdAt', execlog._iso_utc(e.created_at),
									  'updatedAt', execlog._iso_utc(e.updated_at)),
		'status', e.status)
$$;
COMMENT ON FUNCTION execlog.context_document(execlog.executions) IS 'process context document of an execution: {"context": {"processId", "executionTemplateID", ...}, "metadata": {"createdAt", "updatedAt"}, "status"}';

CREATE FUNCTION execlog.context_document(execution_id bigint) RETURNS jsonb
	LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT execlog.context_document(e) FROM execlog.executions e WHERE e.id = execution_id
$$;
COMMENT ON FUNCTION execlog.context_document(bigint) IS 'process context document of the execution with this id (NULL if the caller cannot see it)';

CREATE FUNCTION execlog.flatten(doc jsonb, root text DEFAULT 'execution_context',
								key text DEFAULT 'context$processId')
	RETURNS TABLE (table_name text, row_key text, parent_key text, ordinal integer, record jsonb)
	LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'execlog_flatten';
COMMENT ON FUNCTION execlog.flatten(jsonb, text, text) IS 'flattens a JSON object into rows of a root table and of child tables (one per array); see README "Process mining"';

CREATE FUNCTION execlog._flatten_schema_trans(internal, jsonb, text, text) RETURNS internal
	LANGUAGE c CALLED ON NULL INPUT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'execlog_flatten_schema_trans';
COMMENT ON FUNCTION execlog._flatten_schema_trans(internal, jsonb, text, text) IS 'transition function of execlog._flatten_schema (internal)';

CREATE FUNCTION execlog._flatten_schema_final(internal) RETURNS jsonb
	LANGUAGE c STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'execlog_flatten_schema_final';
COMMENT ON FUNCTION execlog._flatten_schema_final(internal) IS 'final function of execlog._flatten_schema (internal)';

CREATE AGGREGATE execlog._flatten_schema(jsonb, text, text) (
	SFUNC = execlog._flatten_schema_trans,
	STYPE = internal,
	FINALFUNC = execlog._flatten_schema_final
);
COMMENT ON AGGREGATE execlog._flatten_schema(jsonb, text, text) IS 'tables, parents, row counts and column types of the flattened documents (internal, for export_contexts)';

/*
 * flatten(context_document(e)) from the parts of an execution, without
 * building the document (export_contexts reads many of them).
 */
CREATE FUNCTION execlog._flatten_execution(id bigint, automation_id bigint, context jsonb,
										   created_at text, updated_at text, status text)
	RETURNS TABLE (table_name text, row_key text, parent_key text, ordinal integer, record jsonb)
	LANGUAGE c IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'execlog_flatten_execution';
COMMENT ON FUNCTION execlog._flatten_execution(bigint, bigint, jsonb, text, text, text) IS 'execlog.flatten(execlog.context_document(e)) from the parts of an execution (internal)';

CREATE FUNCTION execlog._flatten_execution_schema_trans(internal, bigint, bigint, jsonb, text, text, text)
	RETURNS internal
	LANGUAGE c CALLED ON NULL INPUT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'execlog_flatten_execution_schema_trans';
COMMENT ON FUNCTION execlog._flatten_execution_schema_trans(internal, bigint, bigint, jsonb, text, text, text) IS 'transition function of execlog._flatten_execution_schema (internal)';

CREATE AGGREGATE execlog._flatten_execution_schema(bigint, bigint, jsonb, text, text, text) (
	SFUNC = execlog._flatten_execution_schema_trans,
	STYPE = internal,
	FINALFUNC = execlog._flatten_schema_final
);
COMMENT ON AGGREGATE execlog._flatten_execution_schema(bigint, bigint, jsonb, text, text, text) IS 'execlog._flatten_schema of the process contexts of executions, from their parts (internal)';

/*
 * The identifier a flattened table or column name gets: the name itself
 * when it fits in 63 bytes (NAMEDATALEN - 1); else its first bytes, "_",
 * 8 hex digits of its md5, "_" and its last bytes, so that long names stay
 * readable at both ends, distinct and the same from export to export.
 */
CREATE FUNCTION execlog._export_name(flat_name text) RETURNS text
	LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer;
	head text;
	tail text;
BEGIN
	IF flat_name <> '' AND octet_length(flat_name) <= 63 THEN
		RETURN flat_name;
	END IF;
	n := least(length(flat_name) / 2, 27);
	LOOP
		head := left(flat_name, n);
		EXIT WHEN octet_length(head) <= 27;
		n := n - 1;
	END LOOP;
	n := least(length(flat_name) - length(head), 26);
	LOOP
		tail := right(flat_name, n);
		EXIT WHEN octet_length(tail) <= 26;
		n := n - 1;
	END LOOP;
	RETURN head || '_' || left(md5(flat_name), 8) || '_' || tail;
END
$$;
COMMENT ON FUNCTION execlog._export_name(text) IS 'identifier of a flattened table or column name: itself, or shortened with a hash past 63 bytes (internal)';

/*
 * Materialise the flattened process contexts as tables in target_schema.
 *
 * SECURITY INVOKER: the caller's privileges and row-level security decide
 * which executions are exported, and the tables belong to the caller.
 * The selected contexts are copied once into a temporary table, so the
 * schema pass and the load see the same data.
 */
CREATE FUNCTION execlog.export_contexts(target_schema name,
										automation text DEFAULT NULL,
										created_since timestamptz DEFAULT NULL,
										updated_since timestamptz DEFAULT NULL,
										only_finished boolean DEFAULT false)
	RETURNS TABLE (table_name text, "rows" bigint)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	SET jit = off
AS $$
#variable_conflict use_column
DECLARE
	c_root		CONSTANT text := 'execution_context';
	c_key		CONSTANT text := 'context$processId';
	c_system	CONSTANT text[] := ARRAY['row_key', 'parent_key', 'ordinal'];
	v_nsp		oid;
	v_schema	jsonb;
	v_table		jsonb;
	v_col		record;
	v_name		text;
	v_level		integer;
	v_rel		oid;
	v_cols		text;
	v_exprs		text;
	v_ctes		text := '';
	v_i			integer := 0;
	v_new		text[] := '{}';
	v_root_existed boolean := false;
	v_missing	text;
	v_required	text[];
BEGIN
	IF target_schema IS NULL THEN
		RAISE EXCEPTION 'target schema must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT n.oid INTO v_nsp FROM pg_catalog.pg_namespace n WHERE n.nspname = target_schema;
	IF v_nsp IS NULL THEN
		RAISE EXCEPTION 'schema "%" does not exist', target_schema
			USING ERRCODE = 'invalid_schema_name';
	END IF;
	IF target_schema IN ('execlog', 'pg_catalog', 'information_schema', 'pg_toast')
	   OR target_schema LIKE 'pg\_temp\_%' OR target_schema LIKE 'pg\_toast\_temp\_%' THEN
		RAISE EXCEPTION 'cannot export process contexts into schema "%"', target_schema
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Export into a schema of your own.';
	END IF;
	IF NOT pg_catalog.has_schema_privilege(v_nsp, 'CREATE') THEN
		RAISE EXCEPTION 'permission denied for schema %', target_schema
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	IF automation IS NOT NULL
	   AND NOT EXISTS (SELECT 1 FROM execlog.automations a WHERE a.name = automation) THEN
		RAISE EXCEPTION 'automation "%" does not exist', automation
			USING ERRCODE = 'undefined_object';
	END IF;

	/* one export into a schema at a time */
	PERFORM execlog._serialize('export_contexts', v_nsp);

	/*
	 * The contexts to export, read once (as the caller: RLS applies), so
	 * that the schema pass and the load see the same data.  The parts of
	 * the process context document are kept rather than the document;
	 * _flatten_execution flattens them as flatten(context_document(e)).
	 */
	CREATE TEMPORARY TABLE execlog_export_docs (
		key text, id bigint, automation_id bigint, context jsonb,
		created_at text, updated_at text, status text) ON COMMIT DROP;
	INSERT INTO pg_temp.execlog_export_docs
	SELECT e.id::text, e.id, e.automation_id,
		   CASE WHEN pg_catalog.jsonb_typeof(e.context) = 'object' THEN e.context
				ELSE pg_catalog.jsonb_build_object('value', e.context)
		   END,
		   execlog._iso_utc(e.created_at), execlog._iso_utc(e.updated_at), e.status::text
	  FROM execlog.executions e
	  JOIN execlog.automations a ON a.id = e.automation_id
	 WHERE (export_contexts.automation IS NULL OR a.name = export_contexts.automation)
	   AND (export_contexts.created_since IS NULL OR e.created_at >= export_contexts.created_since)
	   AND (export_contexts.updated_since IS NULL OR e.updated_at >= export_contexts.updated_since)
	   AND (NOT export_contexts.only_finished
			OR e.status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled'));

	SELECT execlog._flatten_execution_schema(d.id, d.automation_id, d.context,
											 d.created_at, d.updated_at, d.status)
	  INTO v_schema
	  FROM pg_temp.execlog_export_docs d;
	IF v_schema IS NULL THEN
		DROP TABLE pg_temp.execlog_export_docs;
		RETURN;
	END IF;

	/* create the tables, or add and widen their columns */
	FOR v_table IN SELECT j.value FROM pg_catalog.jsonb_array_elements(v_schema) j LOOP
		v_name := execlog._export_name(v_table ->> 'table');
		v_level := (v_table ->> 'level')::integer;

		IF v_level > 0 THEN
			SELECT j.key INTO v_missing
			  FROM pg_catalog.jsonb_object_keys(v_table -> 'columns') j (key)
			 WHERE j.key = ANY (c_system)
			 LIMIT 1;
			IF v_missing IS NOT NULL THEN
				RAISE EXCEPTION 'column "%" of flattened table "%" has the name of a column that export_contexts adds',
					v_missing, v_table ->> 'table'
					USING ERRCODE = 'duplicate_column',
						  HINT = 'Child tables get the columns row_key, parent_key and ordinal; rename that key in the process contexts.';
			END IF;
		END IF;

		SELECT c.oid INTO v_rel
		  FROM pg_catalog.pg_class c
		 WHERE c.relnamespace = v_nsp AND c.relname = v_name;
		IF v_rel IS NULL THEN
			SELECT pg_catalog.string_agg(pg_catalog.format(', %I %s', execlog._export_name(j.key), j.value), '' ORDER BY j.key)
			  INTO v_cols
			  FROM pg_catalog.jsonb_each_text(v_table -> 'columns') j
			 WHERE j.key <> c_key;
			/* keys compare bytewise ("C"): faster indexes, same equality */
			IF v_level = 0 THEN
				EXECUTE pg_catalog.format('CREATE TABLE %I.%I (%I text COLLATE "C" NOT NULL%s)',
										  target_schema, v_name, c_key, coalesce(v_cols, ''));
			ELSE
				EXECUTE pg_catalog.format('CREATE TABLE %I.%I (%I text COLLATE "C" NOT NULL, row_key text COLLATE "C" NOT NULL,'
										  ' parent_key text COLLATE "C" NOT NULL, ordinal integer NOT NULL%s)',
										  target_schema, v_name, c_key, coalesce(v_cols, ''));
			END IF;
			EXECUTE pg_catalog.format('COMMENT ON TABLE %I.%I IS %L', target_schema, v_name,
									  pg_catalog.format('flattened process contexts: %s (execlog.export_contexts)', v_table ->> 'table'));
			v_new := v_new || v_name;
		ELSE
			/* ours? it must have the key (and, for a child, the link columns) */
			v_required := ARRAY[c_key];
			IF v_level > 0 THEN
				v_required := v_required || c_system;
			END IF;
			IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = v_rel AND c.relkind IN ('r', 'p'))
			   OR (SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute a
					WHERE a.attrelid = v_rel AND a.attnum > 0 AND NOT a.attisdropped
					  AND a.attname = ANY (v_required)) <> pg_catalog.cardinality(v_required) THEN
				RAISE EXCEPTION 'relation "%.%" exists but was not created by execlog.export_contexts()',
					target_schema, v_name
					USING ERRCODE = 'duplicate_table',
						  HINT = 'Drop or rename it, or export into another schema.';
			END IF;
			IF v_level = 0 THEN
				v_root_existed := true;
			END IF;
			FOR v_col IN
				SELECT j.key, j.value AS type, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS have
				  FROM pg_catalog.jsonb_each_text(v_table -> 'columns') j
				  LEFT JOIN pg_catalog.pg_attribute a
					ON a.attrelid = v_rel AND a.attname = execlog._export_name(j.key)
				   AND a.attnum > 0 AND NOT a.attisdropped
				 WHERE j.key <> c_key
				 ORDER BY j.key
			LOOP
				IF v_col.attname IS NULL THEN
					EXECUTE pg_catalog.format('ALTER TABLE %I.%I ADD COLUMN %I %s', target_schema, v_name,
											  execlog._export_name(v_col.key), v_col.type);
				ELSIF v_col.have <> v_col.type AND v_col.have IN ('numeric', 'boolean') THEN
					/* mixed types: widen to text, which keeps every value */
					EXECUTE pg_catalog.format('ALTER TABLE %I.%I ALTER COLUMN %I TYPE text USING %I::text',
											  target_schema, v_name, v_col.attname, v_col.attname);
				END IF;
			END LOOP;
		END IF;

		/* remember what a shortened column stands for */
		FOR v_col IN
			SELECT j.key FROM pg_catalog.jsonb_object_keys(v_table -> 'columns') j (key)
			 WHERE execlog._export_name(j.key) <> j.key
		LOOP
			EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.%I.%I IS %L', target_schema, v_name,
									  execlog._export_name(v_col.key),
									  pg_catalog.format('flattened column %s', v_col.key));
		END LOOP;

		/* the INSERT for this table, cast to the column types it has now */
		SELECT pg_catalog.string_agg(pg_catalog.format('%I', execlog._export_name(j.key)), ', ' ORDER BY j.key),
			   pg_catalog.string_agg(pg_catalog.format('(f.record OPERATOR(pg_catalog.->>) %L)::%s', j.key,
													   pg_catalog.format_type(a.atttypid, a.atttypmod)),
									 ', ' ORDER BY j.key)
		  INTO v_cols, v_exprs
		  FROM pg_catalog.jsonb_object_keys(v_table -> 'columns') j (key)
		  JOIN pg_catalog.pg_attribute a
			ON a.attrelid = pg_catalog.format('%I.%I', target_schema, v_name)::regclass
		   AND a.attname = execlog._export_name(j.key) AND a.attnum > 0 AND NOT a.attisdropped;
		IF v_level > 0 THEN
			v_cols := v_cols || ', row_key, parent_key, ordinal';
			v_exprs := v_exprs || ', f.row_key, f.parent_key, f.ordinal';
		END IF;
		v_i := v_i + 1;
		v_ctes := v_ctes || pg_catalog.format(
			', t%s AS (INSERT INTO %I.%I (%s) SELECT %s FROM f WHERE f.table_name = %L)',
			v_i, target_schema, v_name, v_cols, v_exprs, v_table ->> 'table');
	END LOOP;

	/* replace the exported contexts' rows; children go by ON DELETE CASCADE */
	IF v_root_existed THEN
		EXECUTE pg_catalog.format('DELETE FROM %I.%I r USING pg_temp.execlog_export_docs d WHERE r.%I = d.key',
								  target_schema, execlog._export_name(c_root), c_key);
	END IF;

	/* load every table in one statement, flattening each document once */
	EXECUTE pg_catalog.format(
		'WITH f AS MATERIALIZED (SELECT x.table_name, x.row_key, x.parent_key, x.ordinal, x.record'
		'  FROM pg_temp.execlog_export_docs d,'
		'       execlog._flatten_execution(d.id, d.automation_id, d.context, d.created_at, d.updated_at, d.status) x)%s'
		' SELECT',
		v_ctes);

	/*
	 * Keys and links of the new tables, built after the load (faster).  A
	 * child's primary key (root key, row_key) also serves the cascades from
	 * the root; below the first level, (root key, parent_key) references the
	 * parent table's primary key.
	 */
	FOR v_table IN SELECT j.value FROM pg_catalog.jsonb_array_elements(v_schema) j LOOP
		v_name := execlog._export_name(v_table ->> 'table');
		CONTINUE WHEN NOT v_name = ANY (v_new);
		v_level := (v_table ->> 'level')::integer;
		IF v_level = 0 THEN
			EXECUTE pg_catalog.format('ALTER TABLE %I.%I ADD PRIMARY KEY (%I)', target_schema, v_name, c_key);
		ELSE
			EXECUTE pg_catalog.format('ALTER TABLE %I.%I ADD PRIMARY KEY (%I, row_key)', target_schema, v_name, c_key);
			EXECUTE pg_catalog.format('ALTER TABLE %I.%I ADD FOREIGN KEY (%I) REFERENCES %I.%I (%I) ON DELETE CASCADE',
									  target_schema, v_name, c_key, target_schema,
									  execlog._export_name(c_root), c_key);
			IF v_level > 1 THEN
				EXECUTE pg_catalog.format('ALTER TABLE %I.%I ADD FOREIGN KEY (%I, parent_key) REFERENCES %I.%I (%I, row_key) ON DELETE CASCADE',
										  target_schema, v_name, c_key, target_schema,
										  execlog._export_name(v_table ->> 'parent'), c_key);
			END IF;
		END IF;
	END LOOP;

	DROP TABLE pg_temp.execlog_export_docs;

	RETURN QUERY
	SELECT execlog._export_name(j.value ->> 'table'), (j.value ->> 'rows')::bigint
	  FROM pg_catalog.jsonb_array_elements(v_schema) j
	 ORDER BY (j.value ->> 'level')::integer, execlog._export_name(j.value ->> 'table') COLLATE "C";
END
$$;
COMMENT ON FUNCTION execlog.export_contexts(name, text, timestamptz, timestamptz, boolean) IS 'materialises the flattened process contexts as tables in target_schema (as the caller); returns the rows written per table';

/* ------------------------------------------------------------------------
 * Privileges and pg_dump
 * ------------------------------------------------------------------------ */
GRANT SELECT ON execlog.event_log, execlog.execution_templates, execlog."execution_templates$trigger",
	execlog.execution_context, execlog.activity_log
	TO execlog_reader;
GRANT EXECUTE ON FUNCTION execlog.context_document(execlog.executions), execlog.context_document(bigint),
	execlog.flatten(jsonb, text, text), execlog._flatten_schema(jsonb, text, text),
	execlog._flatten_execution(bigint, bigint, jsonb, text, text, text),
	execlog._flatten_execution_schema(bigint, bigint, jsonb, text, text, text),
	execlog._iso_utc(timestamptz), execlog._export_name(text),
	execlog.export_contexts(name, text, timestamptz, timestamptz, boolean),
	execlog._serialize(text, oid)
	TO execlog_reader;
GRANT EXECUTE ON FUNCTION execlog.merge_event_log() TO execlog_operator;
GRANT EXECUTE ON FUNCTION execlog.event_log_in_use() TO execlog_reader;
GRANT EXECUTE ON FUNCTION execlog.disable_event_log() TO execlog_admin;

SELECT pg_catalog.pg_extension_config_dump('execlog.event_log', '');
SELECT pg_catalog.pg_extension_config_dump('execlog.event_log_queue', '');
