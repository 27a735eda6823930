
/* ------------------------------------------------------------------------
 * Scale (issue 13): partitioned history and retention by partition
 *
 * executions, execution_steps and transitions are partitioned by ranges of
 * execution ids with the same bounds: partition k of each table holds the
 * executions with ids in [k * 10^9, (k + 1) * 10^9) (partition 0 from the
 * lowest bigint), their steps and their transitions, and is named
 * <table>_p<k>.  Ids follow time: worker 0 keeps the partitions of the
 * current id range and of the two after it, and when a new interval of
 * execlog.partition_interval begins (UTC, from 2001-01-01, a Monday) it
 * moves the identity sequence of executions to the next partition's lower
 * bound (the ids skipped are never used: gaps are harmless).  Ids stay far
 * below 2^53 (9,007,198 partitions), so JSON clients read them exactly.
 *
 * Nothing is created on the execution path: start() inserts into a
 * partition that exists, since the two after the current one are there
 * already (and a partition only fills up after 10^9 executions).
 *
 * Retention (execlog.prune, execlog.retention) drops the partitions whose
 * executions are all final and past the horizon, the three tables
 * together, after removing their tasks and alerts (whose foreign keys
 * would block the detach), their event log rows, and their counts from
 * execlog.daily_stats.  Executions of other partitions (the current one,
 * one that holds an active execution) are deleted row by row as before.
 * ------------------------------------------------------------------------ */

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
CREATE FUNCTION execlog.prune(older_than interval) RETURNS bigint
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
 * The first partitions: 0 (the first 10^9 ids) and the two after it.
 * Those made here are members of the extension, dumped with their rows;
 * those the workers make later are ordinary tables of the schema, which
 * pg_dump dumps whole.
 */
DO $partitions$
DECLARE
	k integer;
	t text;
BEGIN
	FOR k IN 0..2 LOOP
		PERFORM execlog._partition_create(k);
		FOREACH t IN ARRAY ARRAY['executions', 'execution_steps', 'transitions'] LOOP
			PERFORM pg_catalog.pg_extension_config_dump(pg_catalog.format('execlog.%I', t OPERATOR(pg_catalog.||) '_p' OPERATOR(pg_catalog.||) k)::regclass, '');
		END LOOP;
	END LOOP;
END
$partitions$;
