#!/usr/bin/env bash
# Alert delivery benchmark (issue 12), on a throwaway cluster with 2 workers
# and a local Slack-like receiver (nginx, or test/alert_receiver.py): drains
# of N pre-enqueued failing executions, each workload twice, interleaved:
#
#   - no alert (the automation has no on_failure);
#   - an alert each, execlog.alert_delivery = off: the alerts are created
#     and stay pending (the cost of creating them);
#   - an alert each, delivered while the drain runs (coalescing off: every
#     alert is delivered): alerts delivered per second, and how long after
#     its execution ended each alert was delivered;
#   - delivery alone: as many alerts again, all due at once;
#   - an alert each with coalescing on (one alert and one digest sent).
#
# Ratios use the mean of the two runs of each workload, in this one run:
# with delivery / delivery off (target >= 0.9), with delivery / no alerts.
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

# setting SET VALUE: ALTER SYSTEM, reload, and let the workers see it
setting() {
	q "ALTER SYSTEM SET execlog.$1 = '$2'" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
	sleep 1
}
reset_tables() {
	q "TRUNCATE execlog.executions, execlog.execution_steps, execlog.transitions, execlog.alert_windows CASCADE" >/dev/null 2>&1
}
# wait_sent: until no alert is pending; prints "sent failed seconds" (first
# alert created to last sent) and the delay from an execution's end to its
# alert's delivery (p50, max)
wait_sent() {
	while [ "$(q "SELECT count(*) FROM execlog.alerts WHERE status = 'pending'")" != 0 ]; do
		sleep 0.2
	done
	q "SELECT count(*) FILTER (WHERE a.status = 'sent'), count(*) FILTER (WHERE a.status <> 'sent'),
	          round(extract(epoch FROM max(a.sent_at) - min(a.created_at))::numeric, 2),
	          round(extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY a.sent_at - e.finished_at))::numeric, 2),
	          round(extract(epoch FROM max(a.sent_at - e.finished_at))::numeric, 2)
	     FROM execlog.alerts a JOIN execlog.executions e ON e.id = a.execution_id" | tr '|' ' '
}
# drain_off: a drain of failing executions with delivery off (alerts
# created, not sent); delivery stays off until the tables are emptied
drain_off() {
	setting alert_delivery off
	drain fail-alert
}
# drain_sent: a drain of failing executions whose alerts are delivered
# meanwhile; prints the rate and wait_sent's figures
drain_sent() {
	local r
	r=$(drain fail-alert)
	echo "$r $(wait_sent)"
}
mean() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%d", (a + b) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo "machine load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# the three workloads twice, interleaved (the machine is shared and noisy):
# no alert; an alert each with delivery off (created, not sent); an alert
# each delivered meanwhile
quiet1=$(drain fail-quiet)
echo "1. drain without alerts: $quiet1 executions/s"
reset_tables
off1=$(drain_off)
echo "2. drain with an alert each, delivery off (created, not sent): $off1 executions/s"
reset_tables
setting alert_delivery on
read -r with1 sent failed secs p50 maxd <<<"$(drain_sent)"
received=$(received)
echo "3. drain with an alert each, delivered meanwhile: $with1 executions/s"
echo "   alerts: $sent sent, $failed not sent, $received received, in ${secs}s = $(awk -v n="$sent" -v s="$secs" 'BEGIN {printf "%d", n / s}') alerts delivered/s; execution end to delivery: p50 ${p50}s, max ${maxd}s"
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
echo "   delivery alone: $N alerts due at once delivered in ${secs}s = $(awk -v n="$N" -v s="$secs" 'BEGIN {printf "%d", n / s}') alerts/s"
reset_tables
read -r with2 sent failed secs p50 maxd <<<"$(drain_sent)"
echo "4. drain with an alert each, delivered meanwhile (again): $with2 executions/s ($sent sent, $failed not sent; end to delivery p50 ${p50}s, max ${maxd}s)"
reset_tables
off2=$(drain_off)
echo "5. drain with an alert each, delivery off (again): $off2 executions/s"
reset_tables
setting alert_delivery on
quiet2=$(drain fail-quiet)
echo "6. drain without alerts (again): $quiet2 executions/s"
reset_tables

# the same storm with coalescing on: alerts created, one delivered
setting alert_coalesce 5min
storm=$(drain fail-alert)
while [ "$(q "SELECT count(*) FROM execlog.alerts WHERE status = 'pending' AND digest_id IS NULL
              AND NOT EXISTS (SELECT 1 FROM execlog.alerts d WHERE d.digest_id = alerts.id)")" != 0 ]; do
	sleep 0.2
done
coalesced=$(q "SELECT count(*) FROM execlog.alerts WHERE status = 'coalesced'")
echo "7. drain with an alert each, coalesced (alert_coalesce = 5min): $storm executions/s ($coalesced coalesced into one digest)"
echo "machine load after: $(cut -d' ' -f1-3 /proc/loadavg)"

quiet=$(mean "$quiet1" "$quiet2")
off=$(mean "$off1" "$off2")
with=$(mean "$with1" "$with2")
echo "drain with delivery / delivery off (alerts created, not sent) = $(ratio "$with" "$off")  (target >= 0.9)"
echo "drain with delivery / no alerts = $(ratio "$with" "$quiet")"
echo "drain with delivery off / no alerts (cost of creating the alerts) = $(ratio "$off" "$quiet")"
echo "drain with coalesced alerts / no alerts = $(ratio "$storm" "$quiet")"
