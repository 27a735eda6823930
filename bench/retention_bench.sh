#!/usr/bin/env bash
# Retention benchmark (issue 13, point 2), on a throwaway cluster with the
# workers off: N finished executions with 3 step rows and 3 transitions
# each in history partition 0 and the same in partition 1 (ids 10^9 + 1 ..),
# then, in one run:
#
#   1. row by row: DELETE of partition 1's executions, as prune() does for
#      the executions of a partition it cannot drop (the cascade to steps and
#      transitions, the rollup and event-log triggers: what prune cost
#      before partitioning);
#   2. by partition: execlog._prune_partitions(), which prune() and
#      execlog.retention call first: partition 0 dropped whole, the three
#      tables together.
#
# Both print their time and the WAL they wrote, and the ratio.  It also
# prints EXPLAIN of the workers' claim and due-retry statements over that
# history (each partition's small partial index, no scan of the history).
#
#   bash bench/retention_bench.sh
#   N=1000000 bash bench/retention_bench.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/setup.sh"

N=${N:-200000}
port=${BENCH_PORT:-54363}
dir=$(mktemp -d /tmp/execlog-bench.XXXXXX)
trap 'stop_cluster "$dir"; rm -rf "$dir"' EXIT
private_install "$EXECLOG_ROOT" "$dir/install"
chown -R "$EXECLOG_USER" "$dir"
start_cluster "$dir" "$port" "shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 0
shared_buffers = '512MB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
autovacuum = off"
q() { psql_at "$dir" "$port" -At -v ON_ERROR_STOP=1 -c "$1"; }

q "CREATE EXTENSION execlog;
   INSERT INTO execlog.accounts (name) VALUES ('bench');
   INSERT INTO execlog.automations (account_id, name) SELECT id, 'x' FROM execlog.accounts;" >/dev/null

# history: rows as the workers leave them (no trigger fires while it is
# built: session_replication_role = replica), then the identity sequence
# in partition 2, so that partitions 0 and 1 are closed
build() {
	local base=$1
	q "SET session_replication_role = replica;
	   INSERT INTO execlog.executions (id, automation_id, account_id, automation_revision, trigger_revision,
	                                   trigger_kind, triggered_by, status, payload, created_at, started_at,
	                                   finished_at, updated_at)
	   SELECT $base + g, 1, 1, 1, 1, 'manual', 'bench', 'success', jsonb_build_object('n', g),
	          now() - interval '2 days', now() - interval '2 days', now() - interval '2 days' + interval '3 ms',
	          now() - interval '2 days'
	     FROM generate_series(1, $N) g;
	   INSERT INTO execlog.execution_steps (execution_id, attempt, position, account_id, name, kind, status,
	                                        started_at, finished_at, input, output)
	   SELECT $base + g, 1, p, 1, 's' || p, 'sql', 'success', now() - interval '2 days', now() - interval '2 days',
	          '{\"query\": \"SELECT 1\"}', '[{\"one\": 1}]'
	     FROM generate_series(1, $N) g, generate_series(1, 3) p;
	   INSERT INTO execlog.transitions (execution_id, account_id, attempt, from_status, to_status, at, by)
	   SELECT $base + g, 1, 1, f::execlog.status, t::execlog.status, now() - interval '2 days', 'bench'
	     FROM generate_series(1, $N) g,
	          (VALUES (NULL, 'pending'), ('pending', 'running'), ('running', 'success')) s(f, t);" >/dev/null
}
t0=$(date +%s)
build 0
build 1000000000
q "SELECT execlog._partition_create(3), execlog._partition_create(4);
   SELECT setval('execlog.executions_id_seq', 2000000000, false);
   SELECT execlog.start('x');" >/dev/null
q "VACUUM ANALYZE execlog.executions, execlog.execution_steps, execlog.transitions" >/dev/null
q "CHECKPOINT" >/dev/null
echo "history: 2 x $N executions, 3 steps and 3 transitions each, built in $(($(date +%s) - t0)) s"
echo "  size of partition 0 (three tables): $(q "SELECT pg_size_pretty(pg_total_relation_size('execlog.executions_p0')
	+ pg_total_relation_size('execlog.execution_steps_p0') + pg_total_relation_size('execlog.transitions_p0'))")"

# timed SQL: run SQL (one row, column "result"), print "<ms> <WAL bytes> <result>"
timed() {
	psql_at "$dir" "$port" -At -v ON_ERROR_STOP=1 <<SQL
SELECT pg_current_wal_insert_lsn() AS lsn0, clock_timestamp() AS t0 \\gset
$1 \\gset
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000, 1) || ' '
       || pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0') || ' ' || :'result';
SQL
}

read -r row_ms row_wal row_n < <(timed "WITH d AS (DELETE FROM execlog.executions WHERE id > 1000000000 AND id <= 1000000000 + $N RETURNING 1) SELECT count(*) AS result FROM d")
read -r part_ms part_wal part_n < <(timed "SELECT execlog._prune_partitions(now()) AS result")
echo "retention of $N finished executions (one partition's worth):"
echo "  row by row (DELETE, as prune() before partitioning): $row_ms ms, $(awk -v b="$row_wal" 'BEGIN {printf "%.1f", b / 1048576}') MB WAL, $row_n executions"
echo "  by partition (execlog._prune_partitions):           $part_ms ms, $(awk -v b="$part_wal" 'BEGIN {printf "%.1f", b / 1048576}') MB WAL, $part_n executions"
echo "  partition drop / row-wise delete: time $(awk -v a="$part_ms" -v b="$row_ms" 'BEGIN {printf "%.4f", a / b}')x, WAL $(awk -v a="$part_wal" -v b="$row_wal" 'BEGIN {printf "%.4f", a / b}')x"

# the workers' statements over a history (rebuilt in partition 1)
q "SELECT execlog._partition_create(1)" >/dev/null
build 1000000000
q "VACUUM ANALYZE execlog.executions" >/dev/null
echo
echo "plans of the workers' statements with $N executions of history in partition 1:"
for stmt in \
	"UPDATE execlog.executions e SET status = 'running', worker = 0 WHERE e.id = ANY (ARRAY(SELECT id FROM execlog.executions WHERE status = 'pending' OR (status = 'running' AND worker IS NULL) ORDER BY id LIMIT 100)) AND e.status::text IN ('pending', 'running') AND (e.status <> 'running' OR e.worker IS NULL) RETURNING e.id" \
	"WITH c AS (SELECT id FROM execlog.executions WHERE automation_id = 1 AND status = 'queued' ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED) UPDATE execlog.executions e SET status = 'running', worker = 0 FROM c WHERE e.id = c.id RETURNING e.id" \
	"SELECT id FROM execlog.executions WHERE run_after <= now() AND status IN ('failed', 'rejected', 'partially_executed') ORDER BY run_after LIMIT 100" \
	"SELECT count(*) FROM execlog.executions WHERE automation_id = 1 AND status IN ('running', 'paused')"; do
	echo "-- $stmt"
	q "EXPLAIN (COSTS OFF) $stmt"
done
