# Workers survive crashes, restarts and signals: nothing stays "running",
# interrupted executions are failed and retried, workers come back.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('crash', "restart_after_crash = on\n", allows_streaming => 1);

$node->safe_psql('postgres', q{
CREATE TABLE public.hold (on_ boolean);
INSERT INTO public.hold VALUES (true);
GRANT SELECT ON public.hold TO runner;
});

# sleeps for ten minutes while public.hold says so, returns at once otherwise
automation($node, 'sleepy', run_as => "'runner'", max_retries => 3, steps => [
	['nap', 'sql', '{"query": "SELECT pg_sleep(CASE WHEN on_ THEN 600 ELSE 0 END) FROM public.hold"}'],
]);

sub worker_pids
{
	return q1($node, "SELECT string_agg(pid::text, ' ' ORDER BY pid) FROM pg_stat_activity WHERE backend_type = 'execlog worker'");
}

sub start_sleeping
{
	my $e = q1($node, q{SELECT execlog.start('sleepy')});
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND state = 'active' AND query LIKE '%execution $e,%'"),
		"execution $e is running its step");
	return $e;
}

sub worker_of
{
	my ($e) = @_;
	return q1($node, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND state = 'active' AND query LIKE '%execution $e,%'");
}

# ---- kill -9 of a worker mid-step: crash restart, execution failed and retried
my $e = start_sleeping();
my $pid = worker_of($e);
$node->safe_psql('postgres', q{UPDATE public.hold SET on_ = false});
kill 'KILL', $pid;
ok($node->poll_query_until('postgres', "SELECT status = 'success' FROM execlog.executions WHERE id = $e"),
	'after kill -9 of its worker the execution is retried and succeeds');
is(q1($node, "SELECT attempt FROM execlog.executions WHERE id = $e"), '2', 'one more attempt was made');
is(q1($node, "SELECT count(*) FROM execlog.transitions WHERE execution_id = $e AND from_status = 'running' AND to_status = 'failed'"),
	'1', 'the interrupted attempt was failed');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'execlog worker'"), 'workers are back');

# ---- pg_ctl stop -m immediate mid-step
$node->safe_psql('postgres', q{UPDATE public.hold SET on_ = true});
$e = start_sleeping();
$node->safe_psql('postgres', q{UPDATE public.hold SET on_ = false});
$node->stop('immediate');
$node->start;
ok($node->poll_query_until('postgres', "SELECT status = 'success' FROM execlog.executions WHERE id = $e"),
	'after an immediate shutdown the execution is retried and succeeds');
is(q1($node, "SELECT count(*) FROM execlog.executions WHERE status = 'running'"), '0', 'nothing is stuck running');

# ---- no retry budget: interrupted stays failed, with a task
automation($node, 'fragile', run_as => "'runner'", max_retries => 0,
	on_failure => q{'{"task": {"assignee": "ops", "title": "execution {{ $.execution.id }} of {{ $.payload.who }}"},
		"alert": {"channel": "email", "target": "ops@example.com", "message": "{{ $.payload.who }}: attempt {{ $.execution.attempt }} failed"}}'}, steps => [
	['nap', 'sql', '{"query": "SELECT pg_sleep(CASE WHEN on_ THEN 600 ELSE 0 END) FROM public.hold"}'],
]);
$node->safe_psql('postgres', q{UPDATE public.hold SET on_ = true});
$e = q1($node, q{SELECT execlog.start('fragile', '{"who": "maria"}')});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND state = 'active' AND query LIKE '%execution $e,%'"),
	'fragile execution runs');
$node->stop('immediate');
$node->start;
ok(wait_status($node, $e, "'failed'"), 'interrupted execution without retries left is failed');
like(q1($node, "SELECT error FROM execlog.executions WHERE id = $e"), qr/^interrupted/, 'error says it was interrupted');
is(q1($node, "SELECT assignee || '|' || title FROM execlog.tasks WHERE execution_id = $e"), "ops|execution $e of maria",
	'a follow-up task was created, its placeholders resolved after the crash');
is(q1($node, "SELECT channel || '|' || target || '|' || status || '|' || message FROM execlog.alerts WHERE execution_id = $e"),
	'email|ops@example.com|pending|maria: attempt 1 failed', 'and its alert');
$node->safe_psql('postgres', q{UPDATE public.hold SET on_ = false});

# ---- pg_terminate_backend: the worker comes back
my $before = worker_pids();
q1($node, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'execlog worker' ORDER BY pid LIMIT 1");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 2 AND string_agg(pid::text, ' ' ORDER BY pid) <> '$before' FROM pg_stat_activity WHERE backend_type = 'execlog worker'"),
	'a terminated worker is restarted');
$e = q1($node, q{SELECT execlog.start('sleepy')});
ok(wait_status($node, $e, "'success'"), 'and executions still run');

# ---- a cancel that reaches an idle worker is ignored (the worker stays)
$before = worker_pids();
q1($node, "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE backend_type = 'execlog worker'");
$e = q1($node, q{SELECT execlog.start('sleepy')});
ok(wait_status($node, $e, "'success'"), 'executions run after idle workers got a cancel');
is(worker_pids(), $before, 'the same workers still run');

# ---- SIGHUP: workers pick up a reloaded setting
automation($node, 'wide', run_as => "'runner'", steps => [
	['rows', 'sql', q{{"query": "SELECT g, repeat('x', 100) AS filler FROM generate_series(1, 100) g"}}],
]);
$node->safe_psql('postgres', q{ALTER SYSTEM SET execlog.max_payload_bytes = '2kB'; SELECT pg_reload_conf()});
# the reload reaches the workers asynchronously: start executions until one
# shows the new limit (each is waited for)
my $truncated = 0;
for my $try (1 .. 100)
{
	$e = q1($node, q{SELECT execlog.start('wide')});
	wait_status($node, $e, "'success','failed'");
	if (q1($node, qq{SELECT output @> '[{"execlog_truncated": true}]' FROM execlog.execution_steps WHERE execution_id = $e}) eq 't')
	{
		$truncated = 1;
		last;
	}
}
ok($truncated, 'after a reload, outputs are cut at the new execlog.max_payload_bytes');
is(q1($node, "SELECT status FROM execlog.executions WHERE id = $e"), 'success', 'a truncated output still succeeds');
is(q1($node, "SELECT (output->-1->>'rows')::int FROM execlog.execution_steps WHERE execution_id = $e"), '100',
	'the marker says how many rows there were');

# ---- two workers never run the same execution
$node->safe_psql('postgres', q{
CREATE TABLE public.runs (execution bigint, attempt int, PRIMARY KEY (execution, attempt));
GRANT INSERT ON public.runs TO runner;
});
automation($node, 'once', run_as => "'runner'", steps => [
	['record', 'sql', '{"query": "INSERT INTO public.runs VALUES ($1, $2)", "args": ["{{ $.execution.id }}", "{{ $.execution.attempt }}"]}'],
]);
$node->safe_psql('postgres', q{SELECT execlog.start('once') FROM generate_series(1, 2000)});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 2000 FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name = 'once' AND e.status = 'success'"),
	'2000 executions succeed');
is(q1($node, "SELECT count(*) FROM public.runs"), '2000', 'each ran exactly once (primary key on execution, attempt)');
is(q1($node, q{SELECT count(*) FROM execlog.transitions t JOIN execlog.executions e ON e.id = t.execution_id
	JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name = 'once' AND t.to_status = 'running'}),
	'2000', 'each was claimed once');

# ---- a standby runs no workers; they start when it is promoted
$node->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b1', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
is($standby->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'execlog worker'"),
	'0', 'no workers run on a standby');
$standby->promote;
ok($standby->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'execlog worker'"),
	'workers start when the standby is promoted');
$standby->stop;

# ---- DROP DATABASE of the workers' database is not held up by them
my $node2 = PostgreSQL::Test::Cluster->new('dropdb');
$node2->init;
$node2->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'execlog'
execlog.database = 'doomed'
execlog.workers = 2
});
$node2->start;
$node2->safe_psql('postgres', 'CREATE DATABASE doomed');
$node2->safe_psql('doomed', 'CREATE EXTENSION execlog');
ok($node2->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND datname = 'doomed'"),
	'workers connect to their database');
my ($rc, $out, $err) = $node2->psql('postgres', 'DROP DATABASE doomed');
is($rc, 0, 'DROP DATABASE succeeds although workers were connected') or diag($err);
$node2->stop;

$node->stop;
done_testing();
