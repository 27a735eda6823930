#!/usr/bin/env bash
# Engine benchmark (issue 3), on a throwaway cluster with 2 workers:
#
#   1. baseline: pgbench, single-row INSERT, 8 clients, same cluster;
#   2. drain of DRAIN pre-enqueued one-step SQL executions (one transaction
#      enqueues them all; the workers are woken at its commit);
#   3. pickup latency at idle: LATENCY starts, one per transaction, 10 ms
#      apart; latency = started_at - created_at (insert to claim, commit
#      included);
#   4. worker memory (private RSS) before and after MEMORY more executions.
#
# Figures are printed as ratios against the baseline measured in the same
# run: this machine is small, shared and noisy.
#
#   bash bench/engine_bench.sh                      # defaults below
#   DRAIN=50000 LATENCY=300 MEMORY=1000000 bash bench/engine_bench.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/setup.sh"

DRAIN=${DRAIN:-50000}
LATENCY=${LATENCY:-300}
MEMORY=${MEMORY:-1000000}
port=${BENCH_PORT:-54339}
dir=$(mktemp -d /tmp/execlog-bench.XXXXXX)
trap 'stop_cluster "$dir"; rm -rf "$dir"' EXIT
private_install "$EXECLOG_ROOT" "$dir/install"
chown -R "$EXECLOG_USER" "$dir"
start_cluster "$dir" "$port" "shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 2
shared_buffers = '512MB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
autovacuum_vacuum_cost_delay = 0"
q() { psql_at "$dir" "$port" -At -v ON_ERROR_STOP=1 -c "$1"; }

q "CREATE EXTENSION execlog;
   CREATE ROLE bench_runner NOLOGIN;
   INSERT INTO execlog.accounts (name) VALUES ('bench');
   INSERT INTO execlog.automations (account_id, name, run_as)
        SELECT id, 'one-step', 'bench_runner' FROM execlog.accounts;
   INSERT INTO execlog.steps (automation_id, position, name, kind, config)
        SELECT id, 1, 'echo', 'sql', '{\"query\": \"SELECT \$1::int AS n\", \"args\": [\"{{ \$.payload.n }}\"]}'
          FROM execlog.automations;
   CREATE TABLE bench_insert (id bigserial PRIMARY KEY, v int);" >/dev/null

# ---- 1. baseline: pgbench single-row INSERT at 8 clients
echo 'INSERT INTO bench_insert (v) VALUES (1);' >"$dir/insert.sql"
chown "$EXECLOG_USER" "$dir/insert.sql"
pgbench_tps=$(run_as_user pgbench -n -h "$dir" -p "$port" -U postgres -c 8 -j 2 -T 10 \
	-f "$dir/insert.sql" postgres 2>/dev/null | awk '/^tps/ {print int($3)}')
echo "baseline: pgbench single-row INSERT, 8 clients: $pgbench_tps tps"

# ---- 2. drain
q "SELECT count(execlog.start('one-step', jsonb_build_object('n', g))) FROM generate_series(1, $DRAIN) g" >/dev/null
t0=$(q "SELECT extract(epoch FROM clock_timestamp())")
while [ "$(q "SELECT count(*) FROM execlog.executions WHERE status IN ('pending', 'running')")" != 0 ]; do
	sleep 0.2
done
read -r ok bad drain_s <<<"$(q "SELECT count(*) FILTER (WHERE status = 'success'), count(*) FILTER (WHERE status <> 'success'),
	round((extract(epoch FROM max(finished_at)) - $t0)::numeric, 3) FROM execlog.executions" | tr '|' ' ')"
rows=$(q "SELECT count(*) FROM execlog.execution_steps WHERE output IS NOT NULL")
rate=$(awk -v n="$ok" -v s="$drain_s" 'BEGIN {printf "%d", n / s}')
ratio=$(awk -v r="$rate" -v b="$pgbench_tps" 'BEGIN {printf "%.2f", r / b}')
echo "drain: $ok executions in ${drain_s}s = $rate executions/s ($bad not successful, $rows step rows stored)"
echo "drain / pgbench INSERT tps = $ratio"

# ---- 3. pickup latency at idle
q "TRUNCATE execlog.executions, execlog.execution_steps, execlog.transitions CASCADE" >/dev/null
sleep 1
for i in $(seq 1 "$LATENCY"); do
	echo "SELECT execlog.start('one-step', '{\"n\": $i}');"
	echo "SELECT pg_sleep(0.01);"
done >"$dir/latency.sql"
chown "$EXECLOG_USER" "$dir/latency.sql"
psql_at "$dir" "$port" -f "$dir/latency.sql" >/dev/null
sleep 1
q "SELECT 'pickup latency (ms): p50 ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2)
        || ', p99 ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2)
        || ', max ' || round(max(ms)::numeric, 2) || ' over ' || count(*) || ' starts'
     FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM execlog.executions) s"

# ---- 4. worker memory over MEMORY executions
private_kb() {
	local total=0 pid
	for pid in $(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker'"); do
		total=$((total + $(awk '/^Private_(Clean|Dirty)/ {s += $2} END {print s}' "/proc/$pid/smaps_rollup")))
	done
	echo "$total"
}
before=$(private_kb)
done_n=0
chunk=50000
while [ "$done_n" -lt "$MEMORY" ]; do
	q "TRUNCATE execlog.executions, execlog.execution_steps, execlog.transitions CASCADE;
	   SELECT count(execlog.start('one-step', jsonb_build_object('n', g))) FROM generate_series(1, $chunk) g" >/dev/null
	while [ "$(q "SELECT count(*) FROM execlog.executions WHERE status IN ('pending', 'running')")" != 0 ]; do
		sleep 0.5
	done
	done_n=$((done_n + chunk))
done
after=$(private_kb)
echo "worker private memory: ${before} kB before, ${after} kB after $done_n executions (ratio $(awk -v a="$after" -v b="$before" 'BEGIN {printf "%.2f", a / b}'))"
