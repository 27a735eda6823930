#!/usr/bin/env bash
# Benchmark of execlog's process mining: flattening and export of process
# contexts, and the incremental event-log merge, on a throwaway local
# cluster (like scripts/demo.sh) that is removed at the end.
#
#   bash bench/flatten_bench.sh                 # 100,000 contexts, 50,000 executions
#   N=20000 M=10000 bash bench/flatten_bench.sh # smaller
#
# Prints contexts/s for flatten and export_contexts, and how much cheaper a
# 1-row merge_event_log() is than the bulk merge.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/setup.sh"

N=${N:-100000}
M=${M:-50000}
RUNS=${RUNS:-20}

dir=$(mktemp -d /tmp/execlog-bench.XXXXXX)
private_install "$EXECLOG_ROOT" "$dir/install"
cp "$EXECLOG_ROOT/bench/flatten_bench.sql" "$dir/"
chown -R "$EXECLOG_USER" "$dir"
port=${EXECLOG_BENCH_PORT:-54331}
cleanup() {
	run_as_user pg_ctl -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

run_as_user initdb -D "$dir/data" -A trust -U postgres >/dev/null
cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$dir'
shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 0
shared_buffers = 512MB
work_mem = 64MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
CONF
run_as_user pg_ctl -D "$dir/data" -l "$dir/server.log" -w start >/dev/null

echo "execlog process-mining benchmark: $(nproc) CPUs, $(run_as_user postgres --version)"
run_as_user psql -X -h "$dir" -p "$port" -U postgres -d postgres \
	-v n="$N" -v m="$M" -v runs="$RUNS" -f "$dir/flatten_bench.sql"
