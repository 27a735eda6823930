#!/usr/bin/env bash
# Scale benchmark (issue 13, points 1, 3 and 4), on a throwaway cluster with
# 2 workers.  Every figure is printed with its baseline from the same run:
#
#   1. hot path: a drain of DRAIN one-step executions and the pickup
#      latency of LATENCY single starts, on the empty database (baseline),
#      then again with a history of N finished executions; auto_explain
#      logs every statement of the workers (and of the triggers they fire)
#      during a short drain on the history: the slowest plan of each
#      statement is written to $OUT/worker_plans.txt and summed up here;
#   3. BI queries as a reader role under row-level security (best of 3;
#      their plans in $OUT/bi_plans.txt);
#   4. the event log: the first (bulk) merge of the history, a 1-row delta
#      merge after it (median of 5), and the change queue's size when
#      nobody merges.
#
# The history is built set-based (INSERT ... SELECT generate_series straight
# into the parent tables, default ids, session_replication_role = replica so
# the status machine's triggers do not replay it): N executions over 90 days
# (ids follow time), 4 accounts x 4 automations, 85% success, 8% failed, 4%
# partially executed, 2% rejected, 1% cancelled, 3 step rows and 3
# transitions each, then the rollup filled by the upgrade's recomputation,
# VACUUM ANALYZE and a checkpoint.
#
#   bash bench/scale_bench.sh                    # N=5000000
#   N=1000000 DRAIN=20000 bash bench/scale_bench.sh
#   OUT=/tmp/scale bash bench/scale_bench.sh     # keep the plans there
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/setup.sh"

N=${N:-5000000}
DRAIN=${DRAIN:-20000}
LATENCY=${LATENCY:-200}
port=${BENCH_PORT:-54361}
dir=$(mktemp -d /tmp/execlog-bench.XXXXXX)
OUT=${OUT:-$dir}
mkdir -p "$OUT"
trap 'stop_cluster "$dir"; rm -rf "$dir"' EXIT
private_install "$EXECLOG_ROOT" "$dir/install"
chown -R "$EXECLOG_USER" "$dir"
start_cluster "$dir" "$port" "shared_preload_libraries = 'execlog, auto_explain'
execlog.database = 'postgres'
execlog.workers = 2
shared_buffers = '1GB'
work_mem = '64MB'
maintenance_work_mem = '1GB'
max_wal_size = '16GB'
checkpoint_timeout = '30min'
autovacuum_vacuum_cost_delay = 0
auto_explain.log_min_duration = -1
auto_explain.log_analyze = on
auto_explain.log_buffers = on
auto_explain.log_timing = off
auto_explain.log_nested_statements = on
logging_collector = off
# JIT compilation, not execution, dominated the day of activity_log at 1 M (2.2 s of 2.8 s)
jit = off"
q() { psql_at "$dir" "$port" -At -v ON_ERROR_STOP=1 -c "$1"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

q "CREATE EXTENSION execlog;
   CREATE ROLE bench_runner NOLOGIN;
   CREATE ROLE bench_reader LOGIN IN ROLE execlog_reader;
   INSERT INTO execlog.accounts (name) SELECT 'acct' || g FROM generate_series(1, 4) g;
   INSERT INTO execlog.accounts (name) VALUES ('drain');
   INSERT INTO execlog.account_members (account_id, role_name)
        SELECT id, 'bench_reader' FROM execlog.accounts WHERE name = 'acct1';
   INSERT INTO execlog.automations (account_id, name, run_as)
        SELECT a.id, 'auto' || g, 'bench_runner' FROM execlog.accounts a, generate_series(1, 4) g
         WHERE a.name <> 'drain' ORDER BY a.id, g;
   INSERT INTO execlog.steps (automation_id, position, name, kind, config)
        SELECT a.id, p, (ARRAY['fetch', 'transform', 'post'])[p], 'sql', '{\"query\": \"SELECT 1\"}'
          FROM execlog.automations a, generate_series(1, 3) p ORDER BY a.id, p;
   INSERT INTO execlog.automations (account_id, name, run_as)
        SELECT id, 'one-step', 'bench_runner' FROM execlog.accounts WHERE name = 'drain';
   INSERT INTO execlog.steps (automation_id, position, name, kind, config)
        SELECT id, 1, 'echo', 'sql', '{\"query\": \"SELECT \$1::int AS n\", \"args\": [\"{{ \$.payload.n }}\"]}'
          FROM execlog.automations WHERE name = 'one-step';" >/dev/null

drain_auto=$(q "SELECT id FROM execlog.automations WHERE name = 'one-step'")
# drain: DRAIN one-step executions enqueued in one transaction; prints the rate
drain() {
	local t0 n s
	q "SELECT count(*) FROM execlog.start_many('one-step', ARRAY(SELECT jsonb_build_object('n', g) FROM generate_series(1, $1) g), 'drain')" >/dev/null
	t0=$(q "SELECT extract(epoch FROM clock_timestamp())")
	# on small partial indexes, not a scan of the history
	while [ "$(q "SELECT (SELECT count(*) FROM execlog.executions WHERE status = 'pending' OR (status = 'running' AND worker IS NULL))
	              + (SELECT count(*) FROM execlog.executions WHERE automation_id = $drain_auto AND status IN ('running', 'paused'))")" != 0 ]; do
		sleep 0.2
	done
	read -r n s <<<"$(q "SELECT count(*), extract(epoch FROM max(finished_at)) - $t0 FROM execlog.executions
	                    WHERE automation_id = (SELECT id FROM execlog.automations WHERE name = 'one-step')
	                      AND created_at >= to_timestamp($t0) - interval '1 minute'" | tr '|' ' ')"
	awk -v n="$n" -v s="$s" 'BEGIN {printf "%d", n / s}'
}
# pickup: LATENCY single starts 10 ms apart; prints p50 and p99 of started_at - created_at in ms
pickup() {
	local mark
	mark=$(q "SELECT coalesce(max(id), 0) FROM execlog.executions")
	for i in $(seq 1 "$LATENCY"); do
		echo "SELECT execlog.start('one-step', '{\"n\": $i}', 'drain');"
		echo "SELECT pg_sleep(0.01);"
	done >"$dir/latency.sql"
	chown "$EXECLOG_USER" "$dir/latency.sql"
	psql_at "$dir" "$port" -f "$dir/latency.sql" >/dev/null
	sleep 1
	q "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) || ' ' ||
	          round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2)
	     FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms
	             FROM execlog.executions WHERE id > $mark AND started_at IS NOT NULL) s"
}

# ---- 1a. baseline on the empty database
q "SELECT execlog.merge_event_log()" >/dev/null
drain 2000 >/dev/null # warm up the workers' plans
empty_rate=$(drain "$DRAIN")
read -r empty_p50 empty_p99 <<<"$(pickup)"
empty_load=$(load)
q "TRUNCATE execlog.executions, execlog.execution_steps, execlog.transitions CASCADE" >/dev/null

# ---- history
t0=$(date +%s.%N)
psql_at "$dir" "$port" -v ON_ERROR_STOP=1 -q <<SQL
SET session_replication_role = replica;
CREATE TEMP TABLE h AS
SELECT g AS n,
       a.id AS automation_id, a.account_id,
       now() - interval '90 days' * (1 - g::float8 / $N) AS created_at,
       CASE WHEN r < 0.85 THEN 'success' WHEN r < 0.93 THEN 'failed' WHEN r < 0.97 THEN 'partially_executed'
            WHEN r < 0.99 THEN 'rejected' ELSE 'cancelled' END::execlog.status AS status,
       interval '1 millisecond' * (5 + 2000 * random() ^ 3) AS took
  FROM generate_series(1, $N) g
  CROSS JOIN LATERAL (SELECT ((g::bigint * 2654435761) % 1000) / 1000.0 AS r) x
  JOIN (SELECT row_number() OVER (ORDER BY id) - 1 AS k, id, account_id FROM execlog.automations
         WHERE name <> 'one-step') a ON a.k = g % 16;
INSERT INTO execlog.executions (automation_id, account_id, automation_revision, trigger_id, trigger_revision,
       trigger_kind, triggered_by, status, attempt, payload, created_at, started_at, finished_at, updated_at, error)
SELECT automation_id, account_id, 1, NULL, 1, 'api', 'bench', status, 1, jsonb_build_object('n', n),
       created_at, created_at + interval '5 milliseconds', created_at + interval '5 milliseconds' + took,
       created_at + interval '5 milliseconds' + took,
       CASE WHEN status IN ('failed', 'rejected', 'partially_executed') THEN 'step failed' END
  FROM h ORDER BY n;
CREATE TEMP TABLE ids AS
SELECT e.id, e.account_id, e.status, e.created_at, e.started_at, e.finished_at,
       row_number() OVER (ORDER BY e.id) AS n
  FROM execlog.executions e;
INSERT INTO execlog.execution_steps (execution_id, attempt, position, account_id, name, kind, status,
       started_at, finished_at, input, output, error)
SELECT i.id, 1, p, i.account_id, (ARRAY['fetch', 'transform', 'post'])[p], 'sql',
       CASE WHEN p = 3 AND i.status IN ('failed', 'rejected', 'partially_executed') THEN 'failed'
            WHEN p = 3 AND i.status = 'cancelled' THEN 'skipped' ELSE 'success' END::execlog.step_status,
       i.started_at + (i.finished_at - i.started_at) * (p - 1) / 3,
       i.started_at + (i.finished_at - i.started_at) * p / 3,
       '{"query": "SELECT 1"}', '{"rows": [{"?column?": 1}]}',
       CASE WHEN p = 3 AND i.status IN ('failed', 'rejected', 'partially_executed') THEN 'step failed' END
  FROM ids i CROSS JOIN generate_series(1, 3) p ORDER BY i.id, p;
INSERT INTO execlog.transitions (execution_id, account_id, attempt, from_status, to_status, at, by)
SELECT i.id, i.account_id, 1, f, t, at, 'bench'
  FROM ids i CROSS JOIN LATERAL (VALUES (NULL::execlog.status, 'pending'::execlog.status, i.created_at),
                                        ('pending', 'running', i.started_at),
                                        ('running', i.status, i.finished_at)) v (f, t, at)
 ORDER BY i.id;
INSERT INTO execlog.daily_stats (account_id, automation_id, day, status, bucket, shard, executions, duration_us)
SELECT e.account_id, e.automation_id, (timezone('UTC', coalesce(e.finished_at, e.updated_at)))::date,
       e.status, execlog._duration_bucket(e.started_at, e.finished_at), 0, count(*),
       sum(coalesce((EXTRACT(epoch FROM e.finished_at - e.started_at) * 1000000)::bigint, 0))
  FROM execlog.executions e
 WHERE e.status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
 GROUP BY 1, 2, 3, 4, 5;
INSERT INTO execlog.daily_step_stats (account_id, day, name, status, shard, steps, duration_us)
SELECT s.account_id, (timezone('UTC', s.finished_at))::date, s.name, s.status, 0, count(*),
       sum(coalesce((EXTRACT(epoch FROM s.finished_at - s.started_at) * 1000000)::bigint, 0))
  FROM execlog.execution_steps s
 WHERE s.finished_at IS NOT NULL AND s.reused_from IS NULL
 GROUP BY 1, 2, 3, 4;
SQL
q "VACUUM ANALYZE" >/dev/null
q "CHECKPOINT" >/dev/null
build_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}')
size=$(q "SELECT pg_size_pretty(pg_database_size('postgres'))")
echo "history: $N executions (3 steps and 3 transitions each, 90 days) built in ${build_s}s, database $size"

# ---- 4. event log: the first merge after the history (bulk), then deltas
q "SELECT execlog.disable_event_log()" >/dev/null
t0=$(date +%s.%N)
q "SELECT execlog.merge_event_log()" >/dev/null
bulk_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
# 1-row delta merges: the first in a new session (plans made), then the
# median of 5 more in that session
delta_merge() {
	{
		echo '\timing on'
		for r in 0 1 2 3 4 5; do
			echo "UPDATE execlog.executions SET context = jsonb_build_object('r', $r) WHERE id = $1;"
			echo "SELECT 'merge' AS m, * FROM execlog.merge_event_log();"
		done
	} >"$dir/delta.sql"
	chown "$EXECLOG_USER" "$dir/delta.sql"
	psql_at "$dir" "$port" -At -v ON_ERROR_STOP=1 -f "$dir/delta.sql" | python3 -c '
import sys
lines = sys.stdin.read().splitlines()
ts = [float(lines[i + 1].split()[1]) for i, l in enumerate(lines) if l.startswith("merge|") and i + 1 < len(lines) and lines[i + 1].startswith("Time:")]
rest = sorted(ts[1:])
print("first %.3f ms in a new session, then median %.3f ms" % (ts[0], rest[len(rest) // 2]))'
}
some=$(q "SELECT max(id) FROM execlog.executions")
delta_after_bulk=$(delta_merge "$some")

# ---- 1b. the same drain and pickup with the history
drain 2000 >/dev/null
hist_rate=$(drain "$DRAIN")
read -r hist_p50 hist_p99 <<<"$(pickup)"
hist_load=$(load)
echo "drain of $DRAIN one-step executions: empty $empty_rate/s (load $empty_load), with $N history $hist_rate/s (load $hist_load): $(ratio "$hist_rate" "$empty_rate")x"
echo "pickup latency ms: empty p50 $empty_p50 p99 $empty_p99, with history p50 $hist_p50 p99 $hist_p99: p99 $(ratio "$hist_p99" "$empty_p99")x"

# the workers' statements on the history, with their plans
logpos=$(stat -c %s "$dir/server.log")
q "ALTER SYSTEM SET auto_explain.log_min_duration = 0" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 1
drain 200 >/dev/null
q "ALTER SYSTEM SET auto_explain.log_min_duration = -1" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
tail -c +"$((logpos + 1))" "$dir/server.log" >"$dir/explain.log"
python3 - "$dir/explain.log" "$OUT/worker_plans.txt" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
# auto_explain entries: "LOG:  duration: X ms  plan:\n\tQuery Text: ...\n\t<plan>"
entries = re.split(r"\n(?=\S.*LOG:  duration: )", text)
stats = {}
for e in entries:
    m = re.search(r"LOG:  duration: ([0-9.]+) ms  plan:\n\s*Query Text: (.*?)\n(\s+\S.*)", e, re.S)
    if not m:
        continue
    ms, qtext, plan = float(m.group(1)), " ".join(m.group(2).split()), m.group(3)
    plan = "\n".join(l for l in plan.splitlines() if not re.search(r"(LOG|CONTEXT|STATEMENT):", l))
    s = stats.setdefault(qtext, [0, 0.0, 0.0, ""])
    s[0] += 1
    s[1] += ms
    if ms >= s[2]:
        s[2], s[3] = ms, plan
rows = sorted(stats.items(), key=lambda kv: -kv[1][1])
with open(sys.argv[2], "w") as f:
    for q, (n, tot, mx, plan) in rows:
        f.write(f"=== {n} calls, {tot:.1f} ms total, slowest {mx:.3f} ms\n{q}\n{plan}\n\n")
print("worker statements during a 200-execution drain on the history (top 8 by total time; all plans in worker_plans.txt):")
for q, (n, tot, mx, plan) in rows[:8]:
    print(f"  {tot:8.1f} ms {n:5d} calls  max {mx:7.3f} ms  {q[:110]}")
PY

# ---- 3. BI as a reader role under row-level security (best of 3)
auto=$(q "SELECT a.id FROM execlog.automations a JOIN execlog.accounts c ON c.id = a.account_id
           WHERE c.name = 'acct1' ORDER BY a.id LIMIT 1")
exe=$(q "SELECT max(id) FROM execlog.executions WHERE automation_id = $auto AND created_at < now() - interval '3 days'")
bi() {
	local label=$1 sql=$2 best
	best=$(for r in 1 2 3; do
		run_as_user psql -X -q -h "$dir" -p "$port" -U bench_reader -d postgres -At -v ON_ERROR_STOP=1 <<SQL | awk '/^Time:/ {print $2}' | tail -1
\\timing on
SELECT count(*) FROM ($sql) s;
SQL
	done | sort -n | head -1)
	printf "  %-58s %10s ms\n" "$label" "$best"
	{
		echo "=== $label"
		run_as_user psql -X -q -h "$dir" -p "$port" -U bench_reader -d postgres -At -c "EXPLAIN (ANALYZE, BUFFERS) $sql"
		echo
	} >>"$OUT/bi_plans.txt"
}
: >"$OUT/bi_plans.txt"
echo "BI as a reader of one account of 4 (RLS), best of 3 (plans in bi_plans.txt):"
bi "last 50 executions of one automation" \
	"SELECT * FROM execlog.execution_log WHERE id IN (SELECT id FROM execlog.executions WHERE automation_id = $auto ORDER BY created_at DESC LIMIT 50)"
bi "failures of the last 7 days (first page of 50)" \
	"SELECT * FROM execlog.executions WHERE status = 'failed' AND created_at > now() - interval '7 days' ORDER BY created_at DESC LIMIT 50"
bi "one execution's steps" \
	"SELECT * FROM execlog.step_log WHERE execution_id = $exe"
bi "activity_log for one hour" \
	"SELECT * FROM execlog.activity_log WHERE event_time >= now() - interval '3 days' AND event_time < now() - interval '3 days' + interval '1 hour'"
bi "activity_log for one day" \
	"SELECT * FROM execlog.activity_log WHERE event_time >= now() - interval '4 days' AND event_time < now() - interval '3 days'"
bi "counts by status per day over 90 days (rollup)" \
	"SELECT day, status, sum(executions) FROM execlog.daily_status_counts WHERE day > current_date - 90 GROUP BY 1, 2"
bi "p50/p95 per automation over 30 days (rollup)" \
	"SELECT * FROM execlog.duration_percentiles(current_date - 30, current_date)"
bi "avg step duration per step over 7 days (rollup)" \
	"SELECT step, sum(total_seconds) / sum(steps) FROM execlog.daily_step_durations WHERE day > current_date - 7 GROUP BY 1"
bi "the same three from the raw tables: counts by status per day" \
	"SELECT (finished_at AT TIME ZONE 'UTC')::date, status, count(*) FROM execlog.executions WHERE finished_at > now() - interval '90 days' GROUP BY 1, 2"
bi "  p50/p95 per automation over 30 days" \
	"SELECT automation_id, percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY finished_at - started_at) FROM execlog.executions WHERE finished_at > now() - interval '30 days' GROUP BY 1"
bi "  avg step duration per step over 7 days" \
	"SELECT name, avg(finished_at - started_at) FROM execlog.execution_steps WHERE finished_at > now() - interval '7 days' GROUP BY 1"

q "SELECT execlog.merge_event_log()" >/dev/null
delta_after_drain=$(delta_merge "$some")
logged=$(q "SELECT count(*) FROM execlog.event_log")
echo "event log: first (bulk) merge of $logged executions ${bulk_s}s; 1-row delta merges right after it: $delta_after_bulk;"
echo "  after the drains' queue rows were merged (dead queue rows not vacuumed yet): $delta_after_drain"
q "SELECT execlog.disable_event_log()" >/dev/null
drain 2000 >/dev/null
echo "event log queue after a drain of 2000 with the event log not in use: $(q "SELECT count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('execlog.event_log_queue')) FROM execlog.event_log_queue")"
echo "load: $(load) on $(nproc) cores"
