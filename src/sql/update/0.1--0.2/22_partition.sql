--
-- Issue 13 (scale): executions, execution_steps and transitions become
-- partitioned by ranges of execution ids (src/sql/80_partitions.sql):
-- the functions of partitioning and retention, then the conversion of
-- the three tables, whose rows move into partitions with their ids.
--
/* Ids per partition. */
CREATE FUNCTION execlog._partition_width() RETURNS bigint
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT 1000000000::bigint
$$;
COMMENT ON FUNCTION execlog._partition_width() IS 'execution ids per history partition (internal)';

/* The last execution id handed out (the one before the first, before any). */
CREATE FUNCTION execlog._executions_last_id() RETURNS bigint
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value OPERATOR(pg_catalog.-) 1 END
	  FROM execlog.executions_id_seq s
$$;
COMMENT ON FUNCTION execlog._executions_last_id() IS 'the last execution id handed out by the identity sequence (internal)';

/*
 * Create partition k of executions, execution_steps and transitions (those
 * of the three that are missing).  Its indexes are named after the
 * parent's (<parent index>_p<k>), whatever order they were made in.
 * Returns whether it created any.
 */
CREATE FUNCTION execlog._partition_create(k bigint) RETURNS boolean
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	/* creating a partition locks its parent: never wait long for that (every writer would wait behind) */
	SET lock_timeout = '200ms'
AS $$
DECLARE
	w bigint := execlog._partition_width();
	t text;
	part text;
	made boolean := false;
	ix record;
BEGIN
	IF k IS NULL OR k < 0 OR k > 9007198 THEN
		RAISE EXCEPTION 'partition number must be between 0 and 9007198, not %', coalesce(k::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOREACH t IN ARRAY ARRAY['executions', 'execution_steps', 'transitions'] LOOP
		part := t OPERATOR(pg_catalog.||) '_p' OPERATOR(pg_catalog.||) k;
		CONTINUE WHEN pg_catalog.to_regclass(pg_catalog.format('execlog.%I', part)) IS NOT NULL;
		EXECUTE pg_catalog.format('CREATE TABLE execlog.%I PARTITION OF execlog.%I FOR VALUES FROM (%s) TO (%s)',
								  part, t,
								  CASE WHEN k OPERATOR(pg_catalog.=) 0 THEN 'MINVALUE' ELSE (k OPERATOR(pg_catalog.*) w)::text END,
								  (k OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.*) w);
		FOR ix IN SELECT c.relname AS name, p.relname AS parent
					FROM pg_catalog.pg_index i
					JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
					JOIN pg_catalog.pg_inherits h ON h.inhrelid OPERATOR(pg_catalog.=) i.indexrelid
					JOIN pg_catalog.pg_class p ON p.oid OPERATOR(pg_catalog.=) h.inhparent
				   WHERE i.indrelid OPERATOR(pg_catalog.=) pg_catalog.format('execlog.%I', part)::regclass
				   ORDER BY p.relname LOOP
			EXECUTE pg_catalog.format('ALTER INDEX execlog.%I RENAME TO %I',
									  ix.name, ix.parent OPERATOR(pg_catalog.||) '_p' OPERATOR(pg_catalog.||) k);
		END LOOP;
		EXECUTE pg_catalog.format('REVOKE ALL ON TYPE execlog.%I FROM PUBLIC', part);
		EXECUTE pg_catalog.format('COMMENT ON TABLE execlog.%I IS %L', part,
								  pg_catalog.format('partition %s of execlog.%s: executions %s to %s (read the parent)',
													k, t, k OPERATOR(pg_catalog.*) w,
													(k OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.*) w OPERATOR(pg_catalog.-) 1));
		made := true;
	END LOOP;
	RETURN made;
END
$$;
COMMENT ON FUNCTION execlog._partition_create(bigint) IS 'creates history partition k of executions, execution_steps and transitions where missing (internal)';

/*
 * Worker 0's maintenance pass: keep the current partition and the two
 * after it, and when an interval of length every has begun since the first
 * execution of the current partition, move the identity sequence to the
 * next partition (only when the two after the current one existed before
 * this call: a rolled back creation never leaves the sequence in a missing
 * partition; setval is not transactional).  Returns how many partitions it
 * created.
 */
CREATE FUNCTION execlog._partitions_maintain(every interval) RETURNS integer
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	w bigint := execlog._partition_width();
	origin constant timestamptz := '2001-01-01 00:00:00+00';
	last bigint;
	j bigint;
	first timestamptz;
	made integer := 0;
	i integer;
BEGIN
	last := execlog._executions_last_id();
	j := GREATEST(last, 0) OPERATOR(pg_catalog./) w;
	FOR i IN 0..2 LOOP
		IF execlog._partition_create(j OPERATOR(pg_catalog.+) i) THEN
			made := made OPERATOR(pg_catalog.+) 1;
		END IF;
	END LOOP;
	IF made OPERATOR(pg_catalog.>) 0 OR every IS NULL OR every OPERATOR(pg_catalog.<=) interval '0' THEN
		RETURN made;
	END IF;
	SELECT e.created_at INTO first
	  FROM execlog.executions e
	 WHERE e.id OPERATOR(pg_catalog.>=) CASE WHEN j OPERATOR(pg_catalog.=) 0 THEN '-9223372036854775808'::bigint
											 ELSE j OPERATOR(pg_catalog.*) w END
	   AND e.id OPERATOR(pg_catalog.<) ((j OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.*) w)
	 ORDER BY e.id LIMIT 1;
	/* within a tenth of a partition of its end, the ids get there anyway */
	IF first IS NOT NULL
	   AND pg_catalog.date_bin(every, first, origin) OPERATOR(pg_catalog.<) pg_catalog.date_bin(every, pg_catalog.now(), origin)
	   AND last OPERATOR(pg_catalog.<) ((j OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.*) w
										OPERATOR(pg_catalog.-) (w OPERATOR(pg_catalog./) 10)) THEN
		IF execlog._partition_create(j OPERATOR(pg_catalog.+) 3) THEN
			made := made OPERATOR(pg_catalog.+) 1;
		END IF;
		PERFORM pg_catalog.setval('execlog.executions_id_seq', (j OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.*) w, false);
	END IF;
	RETURN made;
END
$$;
COMMENT ON FUNCTION execlog._partitions_maintain(interval) IS 'creates the history partitions ahead and opens the next one when an interval begins (worker 0, internal)';

/*
 * Take the final executions of one partition out of execlog.daily_stats
 * (what the delete trigger does for deleted rows; dropping a partition
 * fires no trigger).  Returns how many executions the partition holds in a
 * final status.
 */
CREATE FUNCTION execlog._daily_stats_forget(part regclass) RETURNS bigint
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	EXECUTE pg_catalog.format($q$
		WITH c AS (
			SELECT o.account_id, o.automation_id,
				   (pg_catalog.timezone('UTC', coalesce(o.finished_at, o.updated_at)))::date AS day,
				   o.status, execlog._duration_bucket(o.started_at, o.finished_at) AS bucket,
				   pg_catalog.count(*) AS n,
				   pg_catalog.sum(coalesce((EXTRACT(epoch FROM o.finished_at OPERATOR(pg_catalog.-) o.started_at)
											OPERATOR(pg_catalog.*) 1000000)::bigint, 0)) AS us
			  FROM %s o
			 WHERE o.status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
			 GROUP BY 1, 2, 3, 4, 5),
		i AS (
			INSERT INTO execlog.daily_stats AS d
				(account_id, automation_id, day, status, bucket, shard, executions, duration_us)
			SELECT c.account_id, c.automation_id, c.day, c.status, c.bucket,
				   pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%%) 8, -c.n, -c.us
			  FROM c ORDER BY 1, 2, 3, 4, 5
			ON CONFLICT (account_id, automation_id, day, status, bucket, shard) DO UPDATE
				SET executions = d.executions OPERATOR(pg_catalog.+) excluded.executions,
					duration_us = d.duration_us OPERATOR(pg_catalog.+) excluded.duration_us)
		SELECT coalesce(pg_catalog.sum(c.n), 0)::bigint FROM c$q$, part) INTO n;
	DELETE FROM execlog.daily_stats d
	 WHERE d.shard OPERATOR(pg_catalog.=) (pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%) 8)
	   AND d.executions OPERATOR(pg_catalog.=) 0 AND d.duration_us OPERATOR(pg_catalog.=) 0;
	RETURN n;
END
$$;
COMMENT ON FUNCTION execlog._daily_stats_forget(regclass) IS 'takes the final executions of a history partition out of execlog.daily_stats before it is dropped; returns how many (internal)';

/*
 * Take the finished step rows of one partition of execution_steps out of
 * execlog.daily_step_stats (what its delete trigger does for deleted rows;
 * dropping a partition fires no trigger).
 */
CREATE FUNCTION execlog._daily_step_stats_forget(part regclass) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	EXECUTE pg_catalog.format($q$
		INSERT INTO execlog.daily_step_stats AS d (account_id, day, name, status, shard, steps, duration_us)
		SELECT o.account_id, (pg_catalog.timezone('UTC', o.finished_at))::date, o.name, o.status,
			   pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%%) 8, -pg_catalog.count(*),
			   -pg_catalog.sum(coalesce((EXTRACT(epoch FROM o.finished_at OPERATOR(pg_catalog.-) o.started_at)
										 OPERATOR(pg_catalog.*) 1000000)::bigint, 0))
		  FROM %s o
		 WHERE o.finished_at IS NOT NULL AND o.reused_from IS NULL
		 GROUP BY 1, 2, 3, 4
		 ORDER BY 1, 2, 3, 4
		ON CONFLICT (account_id, day, name, status, shard) DO UPDATE
			SET steps = d.steps OPERATOR(pg_catalog.+) excluded.steps,
				duration_us = d.duration_us OPERATOR(pg_catalog.+) excluded.duration_us$q$, part);
	DELETE FROM execlog.daily_step_stats d
	 WHERE d.shard OPERATOR(pg_catalog.=) (pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%) 8)
	   AND d.steps OPERATOR(pg_catalog.=) 0 AND d.duration_us OPERATOR(pg_catalog.=) 0;
END
$$;
COMMENT ON FUNCTION execlog._daily_step_stats_forget(regclass) IS 'takes the finished step rows of a partition of execution_steps out of execlog.daily_step_stats before it is dropped (internal)';

/*
 * Drop the closed partitions (below the current one) whose executions are
 * all final, wait for no automatic retry and ended before horizon: the
 * three tables together, after their tasks, alerts, event log rows and
 * rollup counts.  Each partition in a subtransaction: one whose parent
 * cannot be locked within lock_timeout is left for the next call.  Only
 * for a superuser (who sees every account's rows); returns how many
 * executions the dropped partitions held.
 */
CREATE FUNCTION execlog._prune_partitions(horizon timestamptz) RETURNS bigint
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	SET lock_timeout = '200ms'
AS $$
DECLARE
	w bigint := execlog._partition_width();
	last bigint;
	p record;
	lo bigint;
	hi bigint;
	busy boolean;
	part text;
	n bigint;
	total bigint := 0;
BEGIN
	IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
		RETURN 0;
	END IF;
	last := execlog._executions_last_id();
	FOR p IN SELECT c.relname AS name, pg_catalog.substr(c.relname, 13)::bigint AS k
			   FROM pg_catalog.pg_inherits h
			   JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) h.inhrelid
			  WHERE h.inhparent OPERATOR(pg_catalog.=) 'execlog.executions'::regclass
				AND c.relname OPERATOR(pg_catalog.~) '^executions_p[0-9]+$'
			  ORDER BY 2 LOOP
		lo := CASE WHEN p.k OPERATOR(pg_catalog.=) 0 THEN '-9223372036854775808'::bigint ELSE p.k OPERATOR(pg_catalog.*) w END;
		hi := (p.k OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.*) w;
		/* the partition new ids go to, and those after it, stay */
		EXIT WHEN hi OPERATOR(pg_catalog.>) last;
		/* each probe on a small index of the partition */
		EXECUTE pg_catalog.format($q$
			SELECT EXISTS (SELECT 1 FROM execlog.%1$I WHERE status = 'pending')
				OR EXISTS (SELECT 1 FROM execlog.%1$I WHERE status = 'queued')
				OR EXISTS (SELECT 1 FROM execlog.%1$I WHERE status IN ('running', 'paused'))
				OR EXISTS (SELECT 1 FROM execlog.%1$I WHERE run_after IS NOT NULL)
				OR EXISTS (SELECT 1 FROM execlog.%1$I
							WHERE status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
							  AND finished_at >= $1)
				OR EXISTS (SELECT 1 FROM execlog.%1$I
							WHERE status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
							  AND finished_at IS NULL AND updated_at >= $1)$q$, p.name)
		  INTO busy USING horizon;
		CONTINUE WHEN busy;
		BEGIN
			n := execlog._daily_stats_forget(pg_catalog.format('execlog.%I', p.name)::regclass);
			IF pg_catalog.to_regclass(pg_catalog.format('execlog.execution_steps_p%s', p.k)) IS NOT NULL THEN
				PERFORM execlog._daily_step_stats_forget(pg_catalog.format('execlog.execution_steps_p%s', p.k)::regclass);
			END IF;
			DELETE FROM execlog.tasks t
			 WHERE t.execution_id OPERATOR(pg_catalog.>=) lo AND t.execution_id OPERATOR(pg_catalog.<) hi;
			DELETE FROM execlog.alerts a
			 WHERE a.execution_id OPERATOR(pg_catalog.>=) lo AND a.execution_id OPERATOR(pg_catalog.<) hi;
			DELETE FROM execlog.event_log l
			 WHERE l.instance_id OPERATOR(pg_catalog.>=) lo AND l.instance_id OPERATOR(pg_catalog.<) hi;
			EXECUTE pg_catalog.format('ALTER TABLE execlog.executions DETACH PARTITION execlog.%I', p.name);
			FOREACH part IN ARRAY ARRAY[p.name, 'execution_steps_p' OPERATOR(pg_catalog.||) p.k,
										'transitions_p' OPERATOR(pg_catalog.||) p.k] LOOP
				CONTINUE WHEN pg_catalog.to_regclass(pg_catalog.format('execlog.%I', part)) IS NULL;
				/* one made by the install script is a member of the extension */
				IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
							WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
							  AND d.objid OPERATOR(pg_catalog.=) pg_catalog.format('execlog.%I', part)::regclass
							  AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::regclass
							  AND d.deptype OPERATOR(pg_catalog.=) 'e') THEN
					EXECUTE pg_catalog.format('ALTER EXTENSION execlog DROP TABLE execlog.%I', part);
				END IF;
				EXECUTE pg_catalog.format('DROP TABLE execlog.%I', part);
			END LOOP;
			total := total OPERATOR(pg_catalog.+) n;
		EXCEPTION WHEN lock_not_available THEN
			RAISE LOG 'execlog: partition % kept for now: %', p.name, SQLERRM;
		END;
	END LOOP;
	RETURN total;
END
$$;
COMMENT ON FUNCTION execlog._prune_partitions(timestamptz) IS 'drops the history partitions whose executions are all final and ended before the horizon; returns how many executions they held (internal, superuser)';

/*
 * Delete finished executions (with their steps, transitions, tasks and
 * alerts) that ended longer ago than older_than.  Runs with the caller's
 * rights: row-level security limits it to the caller's accounts.  An
 * execution waiting for an automatic retry is not finished.  For a
 * superuser (execlog.retention runs as one), the partitions that hold
 * only such executions are dropped whole first; the rest are deleted row
 * by row.  An account's admin shares partitions with other accounts: its
 * prune deletes its own rows, row by row.
 */
CREATE OR REPLACE FUNCTION execlog.prune(older_than interval) RETURNS bigint
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	horizon timestamptz;
	dropped bigint;
	n bigint;
BEGIN
	IF older_than IS NULL OR older_than < interval '0' THEN
		RAISE EXCEPTION 'older_than must be an interval of zero or more, not %', coalesce(older_than::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF older_than > interval '100 years' THEN
		RAISE EXCEPTION 'older_than must be at most 100 years, not %', older_than
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	horizon := pg_catalog.now() - older_than;
	dropped := execlog._prune_partitions(horizon);
	DELETE FROM execlog.executions
	 WHERE status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
	   AND run_after IS NULL
	   AND coalesce(finished_at, updated_at) < horizon;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN dropped + n;
END
$$;
COMMENT ON FUNCTION execlog.prune(interval) IS 'delete finished executions older than that, with their steps, payloads and transitions; returns how many';
GRANT EXECUTE ON FUNCTION execlog.prune(interval) TO execlog_admin;
GRANT EXECUTE ON FUNCTION execlog._prune_partitions(timestamptz) TO execlog_admin;

/*
 * The conversion.  Each table is renamed aside (with its indexes and its
 * identity sequence) and made again, partitioned, with its columns,
 * defaults, checks, identity and comments (LIKE) and everything else as
 * the catalog says it was: indexes, triggers, policies, row-level
 * security, privileges and foreign keys, those of other tables that
 * reference it too.  The partitions that hold the existing ids and the two
 * after them are made, the rows copied with no trigger firing (they are
 * rows already checked, logged and counted), the sequences moved on.  The
 * views of the schema and the functions that take a row of these tables
 * are made again over the new tables before the old ones are dropped.
 * Deparsed with search_path = pg_catalog, so every name is qualified.
 */
DO $convert$
DECLARE
	tabs constant text[] := ARRAY['executions', 'execution_steps', 'transitions'];
	pks constant text[] := ARRAY['PRIMARY KEY (id)', 'PRIMARY KEY (execution_id, attempt, position)',
								 'PRIMARY KEY (execution_id, id)'];
	keys constant text[] := ARRAY['id', 'execution_id', 'execution_id'];
	old_path text := pg_catalog.current_setting('search_path');
	old_role text := pg_catalog.current_setting('session_replication_role');
	t text;
	i integer;
	r record;
	seq text;
	stmts text[] := '{}';
	refs text[] := '{}';
	fns text[] := '{}';
	fn_after text[] := '{}';
	fn_old oid[] := '{}';
	views text[] := '{}';
	seqs text[] := '{}';
	maxid bigint := 0;
	n bigint;
	k bigint;
	s text;
BEGIN
	PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

	/* views of the schema, in the order they were made */
	FOR r IN SELECT c.oid, c.relname, c.reloptions FROM pg_catalog.pg_class c
			  WHERE c.relnamespace OPERATOR(pg_catalog.=) 'execlog'::pg_catalog.regnamespace
				AND c.relkind OPERATOR(pg_catalog.=) 'v'
			  ORDER BY c.oid LOOP
		views := views OPERATOR(pg_catalog.||) pg_catalog.format('CREATE OR REPLACE VIEW execlog.%I%s AS %s',
			r.relname,
			CASE WHEN r.reloptions IS NULL THEN ''
				 ELSE ' WITH (' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(r.reloptions, ', ') OPERATOR(pg_catalog.||) ')' END,
			pg_catalog.pg_get_viewdef(r.oid));
	END LOOP;

	/* functions taking or returning a row of one of the tables */
	FOR r IN SELECT DISTINCT p.oid, p.oid::pg_catalog.regprocedure::text AS sig,
					pg_catalog.pg_get_functiondef(p.oid) AS def,
					pg_catalog.obj_description(p.oid, 'pg_proc') AS descr, p.proacl, p.proowner
			   FROM pg_catalog.pg_proc p
			   JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
										  AND d.objid OPERATOR(pg_catalog.=) p.oid
										  AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
			   JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) d.refobjid
			  WHERE ty.typrelid IN (SELECT pg_catalog.format('execlog.%I', x)::pg_catalog.regclass FROM pg_catalog.unnest(tabs) x)
			  ORDER BY p.oid LOOP
		fns := fns OPERATOR(pg_catalog.||) r.def;
		fn_old := fn_old OPERATOR(pg_catalog.||) r.oid;
		IF r.descr IS NOT NULL THEN
			fn_after := fn_after OPERATOR(pg_catalog.||) pg_catalog.format('COMMENT ON FUNCTION %s IS %L', r.sig, r.descr);
		END IF;
		FOR s IN SELECT pg_catalog.format('GRANT %s ON FUNCTION %s TO %s', a.privilege_type, r.sig,
										  CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
											   ELSE pg_catalog.quote_ident(a.grantee::pg_catalog.regrole::text) END)
				   FROM pg_catalog.aclexplode(r.proacl) a
				  WHERE a.grantee OPERATOR(pg_catalog.<>) r.proowner LOOP
			fn_after := fn_after OPERATOR(pg_catalog.||) s;
		END LOOP;
	END LOOP;

	FOR i IN 1..3 LOOP
		t := tabs[i];
		/* indexes (the primary key is made with the table) */
		FOR s IN SELECT pg_catalog.pg_get_indexdef(x.indexrelid) FROM pg_catalog.pg_index x
				  WHERE x.indrelid OPERATOR(pg_catalog.=) pg_catalog.format('execlog.%I', t)::pg_catalog.regclass
					AND NOT x.indisprimary
				  ORDER BY x.indexrelid LOOP
			stmts := stmts OPERATOR(pg_catalog.||) s;
		END LOOP;
		/* its own foreign keys */
		FOR r IN SELECT c.conname, pg_catalog.pg_get_constraintdef(c.oid) AS def FROM pg_catalog.pg_constraint c
				  WHERE c.conrelid OPERATOR(pg_catalog.=) pg_catalog.format('execlog.%I', t)::pg_catalog.regclass
					AND c.contype OPERATOR(pg_catalog.=) 'f'
				  ORDER BY c.oid LOOP
			stmts := stmts OPERATOR(pg_catalog.||) pg_catalog.format('ALTER TABLE execlog.%I ADD CONSTRAINT %I %s', t, r.conname, r.def);
		END LOOP;
		/* foreign keys of other tables that reference it: dropped now, made again at the end */
		FOR r IN SELECT c.conrelid::pg_catalog.regclass::text AS tbl, c.conname, pg_catalog.pg_get_constraintdef(c.oid) AS def
				   FROM pg_catalog.pg_constraint c
				  WHERE c.confrelid OPERATOR(pg_catalog.=) pg_catalog.format('execlog.%I', t)::pg_catalog.regclass
					AND c.contype OPERATOR(pg_catalog.=) 'f'
				  ORDER BY c.oid LOOP
			EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', r.tbl, r.conname);
			refs := refs OPERATOR(pg_catalog.||) pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.tbl, r.conname, r.def);
		END LOOP;
		/* triggers */
		FOR s IN SELECT pg_catalog.pg_get_triggerdef(g.oid) FROM pg_catalog.pg_trigger g
				  WHERE g.tgrelid OPERATOR(pg_catalog.=) pg_catalog.format('execlog.%I', t)::pg_catalog.regclass
					AND NOT g.tgisinternal
				  ORDER BY g.oid LOOP
			stmts := stmts OPERATOR(pg_catalog.||) s;
		END LOOP;
		/* row-level security and its policies */
		FOR r IN SELECT c.relrowsecurity, c.relforcerowsecurity, c.relacl, c.relowner,
						pg_catalog.obj_description(c.oid, 'pg_class') AS descr
				   FROM pg_catalog.pg_class c
				  WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.format('execlog.%I', t)::pg_catalog.regclass LOOP
			IF r.relrowsecurity THEN
				stmts := stmts OPERATOR(pg_catalog.||) pg_catalog.format('ALTER TABLE execlog.%I ENABLE ROW LEVEL SECURITY', t);
			END IF;
			IF r.relforcerowsecurity THEN
				stmts := stmts OPERATOR(pg_catalog.||) pg_catalog.format('ALTER TABLE execlog.%I FORCE ROW LEVEL SECURITY', t);
			END IF;
			IF r.descr IS NOT NULL THEN
				stmts := stmts OPERATOR(pg_catalog.||) pg_catalog.format('COMMENT ON TABLE execlog.%I IS %L', t, r.descr);
			END IF;
			FOR s IN SELECT pg_catalog.format('GRANT %s ON execlog.%I TO %s', a.privilege_type, t,
											  CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
												   ELSE pg_catalog.quote_ident(a.grantee::pg_catalog.regrole::text) END)
					   FROM pg_catalog.aclexplode(r.relacl) a
					  WHERE a.grantee OPERATOR(pg_catalog.<>) r.relowner LOOP
				stmts := stmts OPERATOR(pg_catalog.||) s;
			END LOOP;
		END LOOP;
		FOR s IN SELECT pg_catalog.format('GRANT %s (%I) ON execlog.%I TO %s', a.privilege_type, att.attname, t,
										  CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
											   ELSE pg_catalog.quote_ident(a.grantee::pg_catalog.regrole::text) END)
				   FROM pg_catalog.pg_attribute att, pg_catalog.aclexplode(att.attacl) a
				  WHERE att.attrelid OPERATOR(pg_catalog.=) pg_catalog.format('execlog.%I', t)::pg_catalog.regclass
					AND att.attacl IS NOT NULL
				  ORDER BY att.attnum LOOP
			stmts := stmts OPERATOR(pg_catalog.||) s;
		END LOOP;
		FOR r IN SELECT p.polname, p.polcmd, p.polpermissive, p.polroles,
						pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual,
						pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS chk
				   FROM pg_catalog.pg_policy p
				  WHERE p.polrelid OPERATOR(pg_catalog.=) pg_catalog.format('execlog.%I', t)::pg_catalog.regclass
				  ORDER BY p.oid LOOP
			stmts := stmts OPERATOR(pg_catalog.||) pg_catalog.format('CREATE POLICY %I ON execlog.%I AS %s FOR %s TO %s%s%s',
				r.polname, t,
				CASE WHEN r.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
				CASE r.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
							  WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
				(SELECT pg_catalog.string_agg(CASE WHEN x OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
												  ELSE pg_catalog.quote_ident(x::pg_catalog.regrole::text) END, ', ')
				   FROM pg_catalog.unnest(r.polroles) x),
				CASE WHEN r.qual IS NULL THEN '' ELSE ' USING (' OPERATOR(pg_catalog.||) r.qual OPERATOR(pg_catalog.||) ')' END,
				CASE WHEN r.chk IS NULL THEN '' ELSE ' WITH CHECK (' OPERATOR(pg_catalog.||) r.chk OPERATOR(pg_catalog.||) ')' END);
		END LOOP;

		/* aside: the table, its indexes, its identity sequence */
		EXECUTE pg_catalog.format('ALTER TABLE execlog.%I RENAME TO %I', t, t OPERATOR(pg_catalog.||) '_0_1');
		FOR s IN SELECT c.relname FROM pg_catalog.pg_index x
				   JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) x.indexrelid
				  WHERE x.indrelid OPERATOR(pg_catalog.=) pg_catalog.format('execlog.%I', t OPERATOR(pg_catalog.||) '_0_1')::pg_catalog.regclass LOOP
			EXECUTE pg_catalog.format('ALTER INDEX execlog.%I RENAME TO %I', s, pg_catalog.left(s, 50) OPERATOR(pg_catalog.||) '_0_1');
		END LOOP;
		seq := NULL;
		IF t OPERATOR(pg_catalog.<>) 'execution_steps' THEN
			seq := pg_catalog.pg_get_serial_sequence(pg_catalog.format('execlog.%I', t OPERATOR(pg_catalog.||) '_0_1'), 'id');
		END IF;
		IF seq IS NOT NULL THEN
			EXECUTE pg_catalog.format('ALTER SEQUENCE %s RENAME TO %I', seq, t OPERATOR(pg_catalog.||) '_id_seq_0_1');
			seqs := seqs OPERATOR(pg_catalog.||) t;
		END IF;

		EXECUTE pg_catalog.format('CREATE TABLE execlog.%I (LIKE execlog.%I INCLUDING COMMENTS INCLUDING CONSTRAINTS'
								  ' INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STATISTICS'
								  ' INCLUDING STORAGE INCLUDING COMPRESSION, %s) PARTITION BY RANGE (%I)',
								  t, t OPERATOR(pg_catalog.||) '_0_1', pks[i], keys[i]);
		FOREACH s IN ARRAY stmts LOOP
			EXECUTE s;
		END LOOP;
		stmts := '{}';
		EXECUTE pg_catalog.format('SELECT coalesce(max(%I), 0) FROM execlog.%I', keys[i], t OPERATOR(pg_catalog.||) '_0_1') INTO n;
		maxid := GREATEST(maxid, n);
	END LOOP;

	/* the partitions of the ids there are, and the two after them */
	SELECT GREATEST(maxid, CASE WHEN q.is_called THEN q.last_value ELSE q.last_value OPERATOR(pg_catalog.-) 1 END)
	  INTO maxid FROM execlog.executions_id_seq_0_1 q;
	FOR k IN 0..(GREATEST(maxid, 0) OPERATOR(pg_catalog./) execlog._partition_width()) OPERATOR(pg_catalog.+) 2 LOOP
		PERFORM execlog._partition_create(k);
		FOREACH t IN ARRAY tabs LOOP
			PERFORM pg_catalog.pg_extension_config_dump(pg_catalog.format('execlog.%I', t OPERATOR(pg_catalog.||) '_p' OPERATOR(pg_catalog.||) k)::pg_catalog.regclass, '');
		END LOOP;
	END LOOP;

	/* the rows, as they are: no trigger fires (nor a foreign key check) */
	PERFORM pg_catalog.set_config('session_replication_role', 'replica', true);
	FOREACH t IN ARRAY tabs LOOP
		EXECUTE pg_catalog.format('INSERT INTO execlog.%I SELECT * FROM execlog.%I', t, t OPERATOR(pg_catalog.||) '_0_1');
	END LOOP;
	PERFORM pg_catalog.set_config('session_replication_role', old_role, true);
	FOREACH t IN ARRAY seqs LOOP
		EXECUTE pg_catalog.format('SELECT pg_catalog.setval(%L, q.last_value, q.is_called) FROM execlog.%I q',
								  pg_catalog.format('execlog.%I', t OPERATOR(pg_catalog.||) '_id_seq'),
								  t OPERATOR(pg_catalog.||) '_id_seq_0_1');
	END LOOP;

	/* functions and views over the new tables, then the old tables go */
	FOREACH s IN ARRAY fns LOOP
		EXECUTE s;
	END LOOP;
	FOREACH s IN ARRAY fn_after LOOP
		EXECUTE s;
	END LOOP;
	FOREACH s IN ARRAY views LOOP
		EXECUTE s;
	END LOOP;
	FOR i IN 1..coalesce(pg_catalog.array_length(fn_old, 1), 0) LOOP
		EXECUTE pg_catalog.format('DROP FUNCTION %s', fn_old[i]::pg_catalog.regprocedure);
	END LOOP;
	FOREACH t IN ARRAY tabs LOOP
		EXECUTE pg_catalog.format('DROP TABLE execlog.%I', t OPERATOR(pg_catalog.||) '_0_1');
	END LOOP;
	FOREACH s IN ARRAY refs LOOP
		EXECUTE s;
	END LOOP;

	/* pg_dump: the dropped tables and sequences out, the new ones in */
	UPDATE pg_catalog.pg_extension x
	   SET extconfig = u.config, extcondition = u.conditions
	  FROM (SELECT pg_catalog.array_agg(c ORDER BY o) AS config, pg_catalog.array_agg(cond ORDER BY o) AS conditions
			  FROM pg_catalog.pg_extension e,
				   unnest(e.extconfig, e.extcondition) WITH ORDINALITY AS v(c, cond, o)
			 WHERE e.extname OPERATOR(pg_catalog.=) 'execlog'
			   AND EXISTS (SELECT 1 FROM pg_catalog.pg_class pc WHERE pc.oid OPERATOR(pg_catalog.=) v.c)) u
	 WHERE x.extname OPERATOR(pg_catalog.=) 'execlog';
	FOREACH t IN ARRAY tabs LOOP
		PERFORM pg_catalog.pg_extension_config_dump(pg_catalog.format('execlog.%I', t)::pg_catalog.regclass, '');
	END LOOP;
	FOREACH t IN ARRAY seqs LOOP
		PERFORM pg_catalog.pg_extension_config_dump(pg_catalog.format('execlog.%I', t OPERATOR(pg_catalog.||) '_id_seq')::pg_catalog.regclass, '');
	END LOOP;

	PERFORM pg_catalog.set_config('search_path', old_path, true);
END
$convert$;
