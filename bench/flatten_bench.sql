-- Helper of bench/flatten_bench.sh: times the flattening and export of
-- process contexts, and the incremental event-log merge.
--
--   psql -v n=100000 -v m=50000 -v runs=20 -f bench/flatten_bench.sql
--
-- n: contexts to flatten and export (each with 5 child rows)
-- m: executions in the event-log benchmark; runs: 1-row merges timed
\set ON_ERROR_STOP 1
\set QUIET 1
\pset footer off
SET client_min_messages = warning;
SET synchronous_commit = off;

/* ------------------------------------------------------------------------
 * Flattening and export
 * ------------------------------------------------------------------------ */
DROP EXTENSION IF EXISTS execlog CASCADE;
CREATE EXTENSION execlog;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
INSERT INTO execlog.accounts (name) VALUES ('bench');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'quote-to-order');

\echo 'creating' :n 'executions with a process context of 5 quotes each ...'
-- a nested object, and an array of 5 quote objects: 1 root row and 5 child
-- rows per context
INSERT INTO execlog.executions (automation_id, triggered_by, context)
SELECT 1, 'bench',
	   jsonb_build_object(
		   'customer', jsonb_build_object('name', 'customer ' || (g % 1000), 'vip', g % 7 = 0,
										  'region', (ARRAY['emea', 'amer', 'apac'])[1 + g % 3]),
		   'order', jsonb_build_object('amount', (g % 10000) / 100.0, 'currency', 'EUR'),
		   'celonis_postaction_feedback', jsonb_build_object(
			   'quotes', (SELECT jsonb_agg(jsonb_build_object('id', q, 'price', g % 100 + q,
															 'accepted', q % 2 = 0, 'note', 'quote ' || q))
							FROM generate_series(1, 5) q)))
  FROM generate_series(1, :n) g;
VACUUM ANALYZE execlog.executions;

-- flatten alone: execlog.flatten(execlog.context_document(e)) of every execution
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) AS flat_rows FROM execlog.executions e, execlog.flatten(execlog.context_document(e)) f \gset
SELECT extract(epoch FROM clock_timestamp() - :'t0') AS flatten_s \gset

-- export into new tables: flatten, create, load, key and link
SELECT clock_timestamp() AS t0 \gset
SELECT sum(rows) AS export_rows FROM execlog.export_contexts('bench') \gset
SELECT extract(epoch FROM clock_timestamp() - :'t0') AS export_s \gset

-- delta export: 1% of the contexts changed
SELECT clock_timestamp() AS since \gset
UPDATE execlog.executions SET context = context || '{"reviewed": true}' WHERE id % 100 = 0;
SELECT clock_timestamp() AS t0 \gset
SELECT sum(rows) AS delta_rows FROM execlog.export_contexts('bench', updated_since => :'since') \gset
SELECT extract(epoch FROM clock_timestamp() - :'t0') AS delta_s \gset

-- everything again into the existing tables (rows replaced one context at a
-- time through the foreign keys)
SELECT clock_timestamp() AS t0 \gset
SELECT sum(rows) AS reexport_rows FROM execlog.export_contexts('bench') \gset
SELECT extract(epoch FROM clock_timestamp() - :'t0') AS reexport_s \gset

DROP SCHEMA bench CASCADE;

/* ------------------------------------------------------------------------
 * Event log: bulk merge against 1-row deltas
 * ------------------------------------------------------------------------ */
DROP EXTENSION execlog CASCADE;
CREATE EXTENSION execlog;
INSERT INTO execlog.accounts (name) VALUES ('bench');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'invoice');
\echo 'creating' :m 'executions for the event-log merge ...'
INSERT INTO execlog.executions (automation_id, triggered_by)
SELECT 1, 'bench' FROM generate_series(1, :m);
VACUUM ANALYZE execlog.executions;

-- bulk: the first merge has every execution to insert
SELECT clock_timestamp() AS t0 \gset
SELECT inserted AS bulk_inserted FROM execlog.merge_event_log() \gset
SELECT extract(epoch FROM clock_timestamp() - :'t0') * 1000 AS bulk_ms \gset

-- then one changed execution per merge, each in its own transactions
CREATE TEMP TABLE merge_times (run integer, ms double precision, updated bigint);
CREATE PROCEDURE pg_temp.merge_deltas(runs integer)
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	u bigint;
BEGIN
	FOR i IN 1 .. runs LOOP
		UPDATE execlog.executions SET context = jsonb_build_object('run', i) WHERE id = i;
		COMMIT;
		t0 := clock_timestamp();
		SELECT m.updated INTO u FROM execlog.merge_event_log() m;
		INSERT INTO merge_times VALUES (i, extract(epoch FROM clock_timestamp() - t0) * 1000, u);
		COMMIT;
	END LOOP;
END
$$;
CALL pg_temp.merge_deltas(:runs + 1);
SELECT (SELECT ms FROM merge_times WHERE run = 1) AS first_delta_ms,
	   percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS delta_ms,
	   sum(updated) AS delta_updated
  FROM merge_times WHERE run > 1 \gset

-- the event log equals a full recomputation
SELECT count(*) AS differences FROM (
	(SELECT a.name, e.id, e.created_at, e.updated_at, e.status, e.account_id
	   FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
	 EXCEPT SELECT execution_template_name, instance_id, created_at, last_modified, status, account_id
	   FROM execlog.event_log)
	UNION ALL
	(SELECT execution_template_name, instance_id, created_at, last_modified, status, account_id
	   FROM execlog.event_log
	 EXCEPT SELECT a.name, e.id, e.created_at, e.updated_at, e.status, e.account_id
	   FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id)) d \gset

-- hot path: what queueing adds to a single-row UPDATE of an execution
CREATE PROCEDURE pg_temp.single_updates(runs integer, OUT us double precision)
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	FOR i IN 1 .. runs LOOP
		UPDATE execlog.executions SET context = jsonb_build_object('u', i) WHERE id = 1 + i % 1000;
		IF i % 500 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
	us := extract(epoch FROM clock_timestamp() - t0) * 1e6 / runs;
END
$$;
CALL pg_temp.single_updates(2000, NULL) \gset warm_
ALTER TABLE execlog.executions DISABLE TRIGGER executions_event_log_update;
CALL pg_temp.single_updates(20000, NULL) \gset without_
ALTER TABLE execlog.executions ENABLE TRIGGER executions_event_log_update;
CALL pg_temp.single_updates(20000, NULL) \gset with_

/* ------------------------------------------------------------------------
 * Results
 * ------------------------------------------------------------------------ */
\echo
\echo '== flatten and export of' :n 'process contexts (5 child rows each)'
SELECT format('flatten(context_document(e)), %s rows:  %s s  %s contexts/s',
			  :flat_rows, to_char(:flatten_s, 'FM990.00'), to_char(:n / :flatten_s, 'FM9,999,990')) AS line
\g (format=unaligned tuples_only)
SELECT format('export_contexts into new tables, %s rows:  %s s  %s contexts/s',
			  :export_rows, to_char(:export_s, 'FM990.00'), to_char(:n / :export_s, 'FM9,999,990')) AS line
\g (format=unaligned tuples_only)
SELECT format('delta export (updated_since) of %s changed contexts, %s rows:  %s ms',
			  :n / 100, :delta_rows, to_char(:delta_s * 1000, 'FM999,990')) AS line
\g (format=unaligned tuples_only)
SELECT format('export_contexts again into the existing tables:  %s s  %s contexts/s',
			  to_char(:reexport_s, 'FM990.00'), to_char(:n / :reexport_s, 'FM9,999,990')) AS line
\g (format=unaligned tuples_only)
\echo
\echo '== event log merge on' :m 'executions'
SELECT format('bulk merge (%s rows inserted):  %s ms', :bulk_inserted, to_char(:bulk_ms, 'FM999,990.0')) AS line
\g (format=unaligned tuples_only)
SELECT format('1-row delta merge, median of %s:  %s ms  (first one after the bulk: %s ms)',
			  :runs, to_char(:delta_ms, 'FM990.000'), to_char(:first_delta_ms, 'FM990.000')) AS line
\g (format=unaligned tuples_only)
SELECT format('delta vs bulk:  %sx cheaper', to_char(:bulk_ms / :delta_ms, 'FM999,990')) AS line
\g (format=unaligned tuples_only)
SELECT format('event_log vs full recomputation:  %s differences', :differences) AS line
\g (format=unaligned tuples_only)
SELECT format('single-row UPDATE of an execution:  %s us without the queue trigger, %s us with it',
			  to_char(:without_us, 'FM990.0'), to_char(:with_us, 'FM990.0')) AS line
\g (format=unaligned tuples_only)
