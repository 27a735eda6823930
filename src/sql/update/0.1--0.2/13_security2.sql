--
-- Issue 10, the rest: an account's admin deletes executions with their
-- steps and transitions (the cascade runs as the owner); the event-log
-- merge and the context exports serialise through execlog's own lock
-- kind, which no sql step can take or block.
--
ALTER FUNCTION execlog._executions_cascade() SECURITY DEFINER;

CREATE FUNCTION execlog._serialize(what text, key oid) RETURNS void
	LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'execlog_serialize';
COMMENT ON FUNCTION execlog._serialize(text, oid) IS 'waits for and takes the transaction lock of merge_event_log() (''merge_event_log'', 0) or of an export into a schema (''export_contexts'', schema oid) (internal)';
REVOKE ALL ON FUNCTION execlog._serialize(text, oid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION execlog._serialize(text, oid) TO execlog_reader;

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

CREATE OR REPLACE FUNCTION execlog.export_contexts(target_schema name,
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
