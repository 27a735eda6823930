# Per-execution error isolation: an error while running, finishing or
# following up one execution fails that execution, with the error stored on
# it; the other executions of its batch and the worker go on.  An error that
# breaks a whole batch is caught by the worker's recovery block.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('isolation', "execlog.workers = 1\nexeclog.batch_size = 16\n");

sub worker_pid
{
	return q1($node, q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity WHERE backend_type = 'execlog worker'});
}
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'execlog worker'});
my $pid = worker_pid();

automation($node, 'good', run_as => "'runner'", steps => [
	['one', 'sql', '{"query": "SELECT 1 AS one"}'],
]);

# ---- an on_failure follow-up that cannot be inserted (a trigger on alerts
# refuses it; on_failure itself is validated when written)
$node->safe_psql('postgres', q{
CREATE FUNCTION public.refuse_alert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'alert refused by a trigger';
END $$;
CREATE TRIGGER refuse_alert BEFORE INSERT ON execlog.alerts
	FOR EACH ROW EXECUTE FUNCTION public.refuse_alert();
});
automation($node, 'pigeon', run_as => "'runner'", max_retries => 0,
	on_failure => q{'{"alert": {"channel": "email", "target": "ops@example.com"}}'},
	steps => [['boom', 'sql', '{"query": "SELECT 1/0"}']]);
my @ids = split /\n/, q1($node, q{
SELECT execlog.start('good') FROM generate_series(1, 3);
SELECT execlog.start('pigeon');
SELECT execlog.start('good') FROM generate_series(1, 3);});
my $bad = $ids[3];
ok(wait_status($node, $bad, "'failed'"), 'the execution whose follow-up fails ends failed');
like(q1($node, "SELECT error FROM execlog.executions WHERE id = $bad"),
	qr/^step "boom" failed: division by zero; its on_failure follow-up failed: alert refused by a trigger/,
	'the error of its follow-up is stored on it');
$node->safe_psql('postgres', 'DROP TRIGGER refuse_alert ON execlog.alerts');
for my $i (0, 1, 2, 4, 5, 6)
{
	ok(wait_status($node, $ids[$i], "'success'"), "execution $ids[$i] of the same batch succeeds");
}

# ---- a time limit past the end of time (a definition from before the bounds)
$node->safe_psql('postgres', q{ALTER TABLE execlog.automations DROP CONSTRAINT IF EXISTS automations_time_limit_check;
ALTER TABLE execlog.automations DROP CONSTRAINT IF EXISTS automations_time_limit_bounded});
automation($node, 'forever', run_as => "'runner'", time_limit => "'1000000 years'", steps => [
	['one', 'sql', '{"query": "SELECT 1 AS one"}'],
]);
my $e = q1($node, q{SELECT execlog.start('forever')});
ok(wait_status($node, $e, "'success'"), 'a time limit past the end of time means none');

# ---- a step row that cannot be written fails its execution only
$node->safe_psql('postgres', q{
CREATE FUNCTION public.poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.name = 'poisoned' THEN
		RAISE EXCEPTION 'poisoned step row';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER poison BEFORE INSERT ON execlog.execution_steps
	FOR EACH ROW EXECUTE FUNCTION public.poison();
});
automation($node, 'poisoned', run_as => "'runner'", max_retries => 0, steps => [
	['poisoned', 'sql', '{"query": "SELECT 1 AS one"}'],
]);
@ids = split /\n/, q1($node, q{
SELECT execlog.start('good');
SELECT execlog.start('poisoned');
SELECT execlog.start('good');});
ok(wait_status($node, $ids[1], "'failed'"), 'the execution whose step row cannot be written ends failed');
like(q1($node, "SELECT error FROM execlog.executions WHERE id = $ids[1]"),
	qr/^execution failed: poisoned step row/, 'with the error stored on it');
ok(wait_status($node, $ids[0], "'success'") && wait_status($node, $ids[2], "'success'"),
	'the other executions of its batch succeed');

# ---- an execution that cannot even be failed breaks its batch: the
# worker's recovery block catches it, and fails the batch once it can
$node->safe_psql('postgres', q{
CREATE FUNCTION public.stuck() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.status = 'running' AND NEW.status <> 'running' AND OLD.payload ? 'stuck'
	   AND NOT EXISTS (SELECT 1 FROM public.unstuck) THEN
		RAISE EXCEPTION 'stuck execution';
	END IF;
	RETURN NEW;
END $$;
CREATE TABLE public.unstuck (x int);
CREATE TRIGGER stuck BEFORE UPDATE ON execlog.executions
	FOR EACH ROW EXECUTE FUNCTION public.stuck();
});
automation($node, 'once', run_as => "'runner'", max_retries => 0,
	on_failure => q{'{"task": {"assignee": "ops", "title": "stuck: {{ $.payload.stuck }}"}}'}, steps => [
	['one', 'sql', '{"query": "SELECT 1 AS one"}'],
]);
$e = q1($node, q{SELECT execlog.start('once', '{"stuck": true}')});
ok($node->wait_for_log(qr/ERROR:  stuck execution/), 'the broken batch is reported in the log');
is(q1($node, "SELECT status FROM execlog.executions WHERE id = $e"), 'running', 'it cannot end yet');
$node->safe_psql('postgres', q{INSERT INTO public.unstuck VALUES (1)});
ok(wait_status($node, $e, "'failed'"), 'once it can, it ends failed (no retry left)');
like(q1($node, "SELECT error FROM execlog.executions WHERE id = $e"),
	qr/the batch running it failed: stuck execution/, 'failed with the error of its batch');
is(q1($node, "SELECT title FROM execlog.tasks WHERE execution_id = $e"), 'stuck: true',
	'its on_failure task is created, placeholders resolved');

# the same with a retry left: failed as after a crash, then retried
$node->safe_psql('postgres', q{DELETE FROM public.unstuck});
my $offset = -s $node->logfile;
$e = q1($node, q{SELECT execlog.start('good', '{"stuck": true}')});
ok($node->wait_for_log(qr/ERROR:  stuck execution/, $offset), 'its batch breaks too');
$node->safe_psql('postgres', q{INSERT INTO public.unstuck VALUES (1)});
ok($node->poll_query_until('postgres', "SELECT count(*) = 2 FROM execlog.transitions WHERE execution_id = $e AND to_status = 'running'"),
	'a broken batch with a retry left is retried');
ok(wait_status($node, $e, "'success'"), 'and its retry succeeds');

# ---- COMMIT or ROLLBACK in a step: a clear error, the step fails
automation($node, 'committer', run_as => "'runner'", max_retries => 0, steps => [
	['commit', 'sql', '{"query": "COMMIT"}'],
]);
automation($node, 'rollbacker', run_as => "'runner'", max_retries => 0, steps => [
	['rollback', 'sql', '{"query": "ROLLBACK"}'],
]);
for my $a ('committer', 'rollbacker')
{
	$e = q1($node, "SELECT execlog.start('$a')");
	ok(wait_status($node, $e, "'failed'"), "$a: the execution fails");
	like(q1($node, "SELECT error FROM execlog.executions WHERE id = $e"),
		qr/failed: an sql step cannot control transactions$/, "$a: says why");
}

# ---- the worker never exited; a canary succeeds
is(worker_pid(), $pid, 'the same worker process ran everything');
unlike(slurp_file($node->logfile), qr/exited with exit code|terminated by signal/,
	'no worker exit in the log');
$e = q1($node, q{SELECT execlog.start('good')});
ok(wait_status($node, $e, "'success'"), 'a canary execution succeeds');

done_testing();
