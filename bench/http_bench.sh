#!/usr/bin/env bash
# Throughput of http steps: how fast two execlog workers drain 20,000
# executions of one HTTP step each against a local nginx, with every step
# and payload stored, compared with what wrk gets from the same nginx.
#
#   bash bench/http_bench.sh [executions]      # default 20000
#
# Starts nginx (static JSON, keep-alive) and a throwaway cluster
# (execlog.workers = 2, default synchronous_commit) in a temporary
# directory, enqueues the executions in one transaction, waits until all
# are "success", checks that nothing failed and every step row and payload
# is stored, and prints:
#   steps/s                      executions drained per second
#   worker CPU s / 1000 steps    utime+stime of the two workers (/proc)
#   wrk req/s                    wrk -t2 -c64 -d5s against the same nginx
# Not a test: it asserts only that the run was complete and error-free.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/setup.sh"

N=${1:-20000}
dir=$(mktemp -d /tmp/execlog-bench.XXXXXX)
private_install "$EXECLOG_ROOT" "$dir/install"
mkdir -p "$dir/nginx/www" "$dir/nginx/tmp"
chown -R "$EXECLOG_USER" "$dir"

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
pgport=$(free_port)
ngport=$(free_port)

cleanup() {
	local rc=$?
	if [ "$rc" != 0 ] && [ -f "$dir/server.log" ]; then
		echo "---- server log (last 40 lines)"
		tail -40 "$dir/server.log"
	fi
	run_as_user pg_ctl -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	if [ -f "$dir/nginx/nginx.pid" ]; then
		kill "$(cat "$dir/nginx/nginx.pid")" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

# ---- nginx: one small static JSON document, keep-alive connections
echo '{"ok": true, "items": [1, 2, 3], "name": "execlog"}' >"$dir/nginx/www/item.json"
cat >"$dir/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $dir/nginx/tmp;
	proxy_temp_path $dir/nginx/tmp;
	fastcgi_temp_path $dir/nginx/tmp;
	uwsgi_temp_path $dir/nginx/tmp;
	scgi_temp_path $dir/nginx/tmp;
	keepalive_timeout 60s;
	keepalive_requests 1000000;
	types { application/json json; }
	server {
		listen 127.0.0.1:$ngport;
		root $dir/nginx/www;
	}
}
CONF
chown -R "$EXECLOG_USER" "$dir/nginx"
run_as_user nginx -e "$dir/nginx/error.log" -c "$dir/nginx/nginx.conf" -p "$dir/nginx"
for _ in $(seq 50); do
	curl -sf "http://127.0.0.1:$ngport/item.json" >/dev/null && break
	sleep 0.1
done
curl -sf "http://127.0.0.1:$ngport/item.json" >/dev/null

# ---- a throwaway cluster with two workers
run_as_user initdb -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C >/dev/null
cat >>"$dir/data/postgresql.conf" <<CONF
port = $pgport
listen_addresses = ''
unix_socket_directories = '$dir'
shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 2
CONF
run_as_user pg_ctl -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
sql() {
	run_as_user psql -X -q -At -h "$dir" -p "$pgport" -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$1"
}

sql "CREATE EXTENSION execlog"
sql "INSERT INTO execlog.accounts (name) VALUES ('bench')"
sql "INSERT INTO execlog.automations (account_id, name) VALUES (1, 'fetch')"
sql "INSERT INTO execlog.steps (automation_id, position, name, kind, config)
     VALUES (1, 1, 'get', 'http', '{\"url\": \"http://127.0.0.1:$ngport/item.json?i={{ \$.payload.i }}\"}')"

# warm-up (connections, plans), then start from clean tables
sql "SELECT execlog.start('fetch', jsonb_build_object('i', g)) FROM generate_series(1, 200) g" >/dev/null
for _ in $(seq 300); do
	[ "$(sql "SELECT count(*) FROM execlog.executions WHERE status <> 'success'")" = 0 ] && break
	sleep 0.1
done
sql "TRUNCATE execlog.executions, execlog.execution_steps, execlog.transitions CASCADE" >/dev/null 2>&1
sql "CHECKPOINT"

pids=$(sql "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE backend_type = 'execlog worker'")
hz=$(getconf CLK_TCK)
cpu_ticks() {
	local t=0 p
	for p in $pids; do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}
echo "execlog http bench: $N executions of one http step, 2 workers, nginx on 127.0.0.1:$ngport"
cpu0=$(cpu_ticks)
start=$(date +%s.%N)
sql "SELECT count(execlog.start('fetch', jsonb_build_object('i', g))) FROM generate_series(1, $N) g" >/dev/null
enqueued=$(date +%s.%N)
# wait in one session, committing between looks so that no snapshot is held
run_as_user psql -X -q -h "$dir" -p "$pgport" -U postgres -d postgres -v ON_ERROR_STOP=1 <<'SQL'
CREATE PROCEDURE pg_temp.wait_drained() LANGUAGE plpgsql AS $$
BEGIN
	LOOP
		EXIT WHEN NOT EXISTS (SELECT 1 FROM execlog.executions
		                       WHERE status IN ('pending', 'queued', 'running', 'paused'));
		COMMIT;
		PERFORM pg_catalog.pg_sleep(0.02);
		COMMIT;
	END LOOP;
END
$$;
CALL pg_temp.wait_drained();
SQL
cpu1=$(cpu_ticks)

read -r ok bad steps drain <<<"$(sql "SELECT count(*) FILTER (WHERE status = 'success'),
	count(*) FILTER (WHERE status <> 'success'),
	(SELECT count(*) FROM execlog.execution_steps s
	  WHERE s.status = 'success' AND s.http_status = 200 AND s.input IS NOT NULL
	    AND s.output -> 'body' ->> 'name' = 'execlog'),
	extract(epoch FROM max(finished_at) - min(started_at))
	FROM execlog.executions" | tr '|' ' ')"

wrk_rps=$(wrk -t2 -c64 -d5s "http://127.0.0.1:$ngport/item.json" | awk '/Requests\/sec/ {print $2}')

python3 - "$N" "$ok" "$bad" "$steps" "$drain" "$start" "$enqueued" "$cpu0" "$cpu1" "$hz" "$wrk_rps" <<'PY'
import sys
n, ok, bad, steps = map(int, sys.argv[1:5])
drain = float(sys.argv[5]); start, enq = float(sys.argv[6]), float(sys.argv[7])
cpu = (int(sys.argv[9]) - int(sys.argv[8])) / int(sys.argv[10])
wrk = float(sys.argv[11])
rate = n / drain
print(f"enqueue (one transaction)   {enq - start:8.2f} s")
print(f"drain (first start to last finish) {drain:8.2f} s")
print(f"executions: {ok} success, {bad} other; step rows with payload: {steps}")
print(f"steps/s                     {rate:10.0f}")
print(f"worker CPU s / 1000 steps   {cpu / n * 1000:10.3f}")
print(f"wrk -t2 -c64 -d5s req/s     {wrk:10.0f}")
print(f"steps/s / wrk req/s         {rate / wrk:10.2f}")
print(f"steps/s / pg_net (~1000/s)  {rate / 1000:10.1f}")
if ok != n or bad != 0 or steps != n:
    print("INCOMPLETE RUN: not every execution succeeded with its step and payload stored")
    sys.exit(1)
PY
