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
#   3. the baseline again (the machine is shared and noisy: the ratio uses
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
trap 'stop_cluster "$dir"; [ -n "$recv_pid" ] && kill "$recv_pid" 2>/dev/null; rm -rf "$dir"' EXIT
private_install "$EXECLOG_ROOT" "$dir/install"
chown -R "$EXECLOG_USER" "$dir"

"$python" "$EXECLOG_ROOT/test/alert_receiver.py" >"$dir/receiver.out" 2>&1 &
recv_pid=$!
for _ in $(seq 1 50); do grep -q '^PORT' "$dir/receiver.out" && break; sleep 0.1; done
rport=$(awk '/^PORT/ {print $2}' "$dir/receiver.out")

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
        SELECT id, 'fail-quiet', 'bench_runner', 0, NULL FROM execlog.accounts
        UNION ALL
        SELECT id, 'fail-alert', 'bench_runner', 0, '{\"alert\": {\"channel\": \"bench-slack\"}}' FROM execlog.accounts;
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
received=$(curl -s "http://127.0.0.1:$rport/requests" | "$python" -c 'import json, sys; print(len(json.load(sys.stdin)))')
rate=$(awk -v n="$sent" -v s="$secs" 'BEGIN {printf "%d", n / s}')
echo "   alerts: $sent sent, $failed not sent, $received received by the receiver, in ${secs}s = $rate alerts delivered/s"
q "TRUNCATE execlog.executions, execlog.execution_steps, execlog.transitions CASCADE" >/dev/null

base2=$(drain fail-quiet)
echo "3. drain without alerts again: $base2 executions/s"
ratio=$(awk -v w="$with" -v a="$base1" -v b="$base2" 'BEGIN {printf "%.2f", w / ((a + b) / 2)}')
echo "drain with alert delivery / without = $ratio"
