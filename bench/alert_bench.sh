#!/usr/bin/env bash
# Alert delivery benchmark (issue 12), on a throwaway cluster with 2 workers
# and a local Slack-like receiver (test/alert_receiver.py):
#
#   1. drain of N pre-enqueued failing executions whose automation has no
#      alert (baseline);
#   2. drain of N pre-enqueued failing executions with an alert each to the
#      receiver (coalescing off: every alert is delivered), while the workers
#      deliver them; alerts delivered per second = N / (last sent_at - first
#      alert created);
#   2b. the same with coalescing on (alerts created and coalesced, one
#      alert and one digest delivered): the cost of creating the alerts;
#      then the same alerts due again at once: delivery alone;
#   3. the baseline again (the machine is shared and noisy: the ratios use
#      the mean of 1 and 3).
#
#   bash bench/alert_bench.sh             # N=10000
#   N=20000 bash bench/alert_bench.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/setup.sh"

N=${N:-10000}
port=${BENCH_PORT:-54341}
python=/usr/bin/python3
[ -x "$python" ] || python=python3
dir=$(mktemp -d /tmp/execlog-alert-bench.XXXXXX)
recv_pid=
trap 'stop_cluster "$dir"; [ -n "$recv_pid" ] && kill "$recv_pid" 2>/dev/null; [ -f "$dir/nginx/nginx.pid" ] && kill "$(cat "$dir/nginx/nginx.pid")" 2>/dev/null; rm -rf "$dir"' EXIT
private_install "$EXECLOG_ROOT" "$dir/install"
chown -R "$EXECLOG_USER" "$dir"

# the receiver: nginx answering 200 "ok" to every POST (RECEIVER=nginx, the
# default when installed), or test/alert_receiver.py (RECEIVER=python,
# which costs the drain CPU of its own on a small machine)
RECEIVER=${RECEIVER:-$(command -v nginx >/dev/null && echo nginx || echo python)}
rport=$((port + 1))
if [ "$RECEIVER" = nginx ]; then
	mkdir -p "$dir/nginx"
	cat >"$dir/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 4096; }
http {
	access_log $dir/nginx/access.log;
	client_body_temp_path $dir/nginx/body;
	proxy_temp_path $dir/nginx/proxy;
	fastcgi_temp_path $dir/nginx/fastcgi;
	uwsgi_temp_path $dir/nginx/uwsgi;
	scgi_temp_path $dir/nginx/scgi;
	server {
		listen 127.0.0.1:$rport;
		location / { return 200 "ok"; }
	}
}
CONF
	chown -R "$EXECLOG_USER" "$dir/nginx"
	run_as_user nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -g 'daemon off;' 2>"$dir/nginx-stderr.log" &
	recv_pid=$!
	for _ in $(seq 1 50); do [ -f "$dir/nginx/nginx.pid" ] && break; sleep 0.1; done
	[ -f "$dir/nginx/nginx.pid" ] || { echo "nginx did not start:"; cat "$dir/nginx-stderr.log" "$dir/nginx/error.log"; exit 1; }
	received() { wc -l <"$dir/nginx/access.log"; }
else
	"$python" "$EXECLOG_ROOT/test/alert_receiver.py" >"$dir/receiver.out" 2>&1 &
	recv_pid=$!
	for _ in $(seq 1 50); do grep -q '^PORT' "$dir/receiver.out" && break; sleep 0.1; done
	rport=$(awk '/^PORT/ {print $2}' "$dir/receiver.out")
	received() { curl -s "http://127.0.0.1:$rport/requests" | "$python" -c 'import json, sys; print(len(json.load(sys.stdin)))'; }
fi
echo "receiver: $RECEIVER on port $rport"

start_cluster "$dir" "$port" "shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 2
execlog.alert_coalesce = 0
shared_buffers = '512MB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
autovacuum_vacuum_cost_delay = 0"
q() { psql_at "$dir" "$port" -At -v ON_ERROR_STOP=1 -c "$1"; }

q "CREATE EXTENSION execlog;
   CREATE ROLE bench_runner NOLOGIN;
   INSERT INTO execlog.accounts (name) VALUES ('bench');
   INSERT INTO execlog.channels (account_id, name, kind, config)
        SELECT id, 'bench-slack', 'slack', '{\"url\": \"http://127.0.0.1:$rport/slack/services/T0/B0/ok-benchToken\"}'
          FROM execlog.accounts;
   INSERT INTO execlog.automations (account_id, name, run_as, max_retries, on_failure)
        SELECT id, 'fail-quiet', 'bench_runner', 0, NULL::jsonb FROM execlog.accounts
        UNION ALL
        SELECT id, 'fail-alert', 'bench_runner', 0, '{\"alert\": {\"channel\": \"bench-slack\"}}'::jsonb FROM execlog.accounts;
   INSERT INTO execlog.steps (automation_id, position, name, kind, config)
        SELECT id, 1, 'boom', 'sql', '{\"query\": \"SELECT 1 / 0\"}' FROM execlog.automations;" >/dev/null

# drain AUTOMATION: enqueue N executions in one transaction, wait until none
# is pending or running; prints the drain rate (executions/s)
drain() {
	local a=$1 t0 s
	q "SELECT count(execlog.start('$a')) FROM generate_series(1, $N)" >/dev/null
	t0=$(q "SELECT extract(epoch FROM max(created_at)) FROM execlog.executions")
	while [ "$(q "SELECT count(*) FROM execlog.executions WHERE status IN ('pending', 'running')")" != 0 ]; do
		sleep 0.1
	done
	s=$(q "SELECT extract(epoch FROM max(finished_at)) - $t0 FROM execlog.executions e
	        JOIN execlog.automations au ON au.id = e.automation_id WHERE au.name = '$a'
	         AND e.created_at >= to_timestamp($t0) - interval '1 hour'")
	awk -v n="$N" -v s="$s" 'BEGIN {printf "%d", n / s}'
}

base1=$(drain fail-quiet)
echo "1. drain without alerts: $base1 executions/s"
q "TRUNCATE execlog.executions, execlog.execution_steps, execlog.transitions CASCADE" >/dev/null

with=$(drain fail-alert)
echo "2. drain with an alert each, delivered meanwhile: $with executions/s"
while [ "$(q "SELECT count(*) FROM execlog.alerts WHERE status = 'pending'")" != 0 ]; do
	sleep 0.2
done
read -r sent failed secs <<<"$(q "SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status <> 'sent'),
	extract(epoch FROM max(sent_at) - min(created_at)) FROM execlog.alerts" | tr '|' ' ')"
received=$(received)
rate=$(awk -v n="$sent" -v s="$secs" 'BEGIN {printf "%d", n / s}')
echo "   alerts: $sent sent, $failed not sent, $received received by the receiver, in ${secs}s = $rate alerts delivered/s (created as the executions fail)"
# delivery alone: as many alerts again, all due at once (inserted: new
# alerts wake the workers)
last=$(q "SELECT max(id) FROM execlog.alerts")
t0=$(q "INSERT INTO execlog.alerts (execution_id, account_id, channel_id, channel, target, message, next_attempt_at)
        SELECT execution_id, account_id, channel_id, channel, target, message, now() FROM execlog.alerts;
        SELECT extract(epoch FROM now())" | tail -1)
while [ "$(q "SELECT count(*) FROM execlog.alerts WHERE status = 'pending'")" != 0 ]; do
	sleep 0.1
done
secs=$(q "SELECT extract(epoch FROM max(sent_at)) - $t0 FROM execlog.alerts WHERE id > $last")
rate=$(awk -v n="$N" -v s="$secs" 'BEGIN {printf "%d", n / s}')
echo "   delivery alone: $N alerts due at once delivered in ${secs}s = $rate alerts/s"
q "TRUNCATE execlog.executions, execlog.execution_steps, execlog.transitions CASCADE" >/dev/null

# the same storm with coalescing on: alerts created, one delivered
q "ALTER SYSTEM SET execlog.alert_coalesce = '5min'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 1
storm=$(drain fail-alert)
while [ "$(q "SELECT count(*) FROM execlog.alerts WHERE status = 'pending' AND digest_id IS NULL
              AND NOT EXISTS (SELECT 1 FROM execlog.alerts d WHERE d.digest_id = alerts.id)")" != 0 ]; do
	sleep 0.2
done
coalesced=$(q "SELECT count(*) FROM execlog.alerts WHERE status = 'coalesced'")
echo "2b. drain with an alert each, coalesced (alert_coalesce = 5min): $storm executions/s ($coalesced coalesced into one digest)"
q "ALTER SYSTEM RESET execlog.alert_coalesce" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
q "TRUNCATE execlog.executions, execlog.execution_steps, execlog.transitions, execlog.alert_windows CASCADE" >/dev/null

base2=$(drain fail-quiet)
echo "3. drain without alerts again: $base2 executions/s"
ratio=$(awk -v w="$with" -v a="$base1" -v b="$base2" 'BEGIN {printf "%.2f", w / ((a + b) / 2)}')
echo "drain with alert delivery / without = $ratio"
ratio2=$(awk -v w="$storm" -v a="$base1" -v b="$base2" 'BEGIN {printf "%.2f", w / ((a + b) / 2)}')
echo "drain with coalesced alerts / without = $ratio2"
