# Per-execution cancels reach only the execution they name (issue 11, item 9).
#
# execlog.cancel() of a running execution used to send SIGINT to the worker
# running it.  The signal could land after the worker had moved on: in the
# next execution's step (which then failed with "canceling statement due to
# user request"), or in the worker's own batch statements (the whole batch
# failed).  Now a cancel is a request in the worker's shared-memory slot:
# the running step of that execution is interrupted by the worker itself,
# otherwise the cancel is noticed at the next step boundary.
#
# On the code that sent SIGINT, the first part fails: the log shows
# "execlog execution N failed by an error outside its steps: canceling
# statement due to user request" (the signal landed in the worker's own
# statements).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('cancel_slot', "execlog.workers = 1\nexeclog.batch_size = 50\n");

sub worker_pid
{
	return q1($node, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker'");
}
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'execlog worker'"),
	'the worker runs');
my $pid = worker_pid();

# ---- many fast executions, batch after batch, cancels fired in a tight loop
$node->safe_psql('postgres', q{
CREATE TABLE public.effects (execution_id bigint, step int);
GRANT INSERT ON public.effects TO runner;
});
my @steps = map {
	[ "s$_", 'sql', qq{{"query": "INSERT INTO public.effects VALUES (\$1, $_)", "args": ["{{ \$.execution.id }}"]}} ]
} 1 .. 1;
my $quick = automation($node, 'quick', run_as => "'runner'", steps => \@steps);

my $n = 3000;
my ($first, $last) = split /\|/, $node->safe_psql('postgres',
	"SELECT min(id), max(id) FROM (SELECT execlog.start('quick') AS id FROM generate_series(1, $n)) s");
is($last - $first + 1, $n, "$n executions started");

# Cancel the running executions whose id is even, one commit
# each, as fast as possible, until every execution is final.  The others
# must all succeed.
my $cancels = $node->safe_psql('postgres', qq{
DO \$\$
DECLARE
	v bigint;
	n int := 0;
BEGIN
	LOOP
		SELECT id INTO v FROM execlog.executions
		 WHERE automation_id = $quick AND status = 'running' AND worker IS NOT NULL
		   AND id % 2 = 0
		 ORDER BY id LIMIT 1;
		IF v IS NULL THEN
			EXIT WHEN NOT EXISTS (SELECT 1 FROM execlog.executions
								   WHERE automation_id = $quick
									 AND status IN ('pending', 'running'));
		ELSE
			BEGIN
				PERFORM execlog.cancel(v);
				n := n + 1;
			EXCEPTION WHEN object_not_in_prerequisite_state THEN
				NULL;			-- it finished first
			END;
		END IF;
		COMMIT;
	END LOOP;
	PERFORM set_config('execlog_test.cancels', n::text, false);
END
\$\$;
SELECT current_setting('execlog_test.cancels');
});
cmp_ok($cancels, '>', 0, "$cancels running executions were cancelled");

is(q1($node, "SELECT count(*) FROM execlog.executions WHERE automation_id = $quick AND id % 2 <> 0 AND status <> 'success'"),
	'0', 'every execution that was not cancelled succeeded');
is(q1($node, "SELECT count(*) FROM execlog.executions WHERE automation_id = $quick AND status NOT IN ('success', 'cancelled')"),
	'0', 'no execution failed');
is(q1($node, "SELECT count(*) FROM execlog.executions WHERE automation_id = $quick AND status = 'cancelled'"),
	$cancels, 'each cancel ended its execution cancelled');
is(q1($node, "SELECT count(*) FROM execlog.executions WHERE automation_id = $quick AND error LIKE '%canceling statement%'"),
	'0', 'no execution carries a statement cancel as its error');
is(q1($node, "SELECT count(*) FROM execlog.execution_steps s JOIN execlog.executions e ON e.id = s.execution_id WHERE e.automation_id = $quick AND s.status <> 'success' AND e.status = 'success'"),
	'0', 'no step of a succeeded execution failed');
is(q1($node, "SELECT count(*) FROM public.effects f JOIN execlog.executions e ON e.id = f.execution_id WHERE e.status = 'cancelled'"),
	'0', 'nothing a cancelled execution did in its batch is kept');
is(q1($node, "SELECT count(*) FROM (SELECT execution_id FROM public.effects GROUP BY execution_id HAVING count(*) <> 1) s"),
	'0', 'every succeeded execution wrote its effect once');
is(worker_pid(), $pid, 'the worker never restarted');

my $log = slurp_file($node->logfile);
unlike($log, qr/canceling statement due to user request/,
	'no statement of the worker was cancelled (the log has no such error)');
unlike($log, qr/failed: the batch running it failed/, 'no batch failed as a whole');

# ---- a long sql step is interrupted by the cancel
my $sleepy = automation($node, 'sleepy', run_as => "'runner'", steps => [
	['nap', 'sql', '{"query": "SELECT pg_sleep(600)"}'],
	['after', 'sql', '{"query": "INSERT INTO public.effects VALUES (0, 0)"}'],
]);
my $e = q1($node, q{SELECT execlog.start('sleepy')});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND wait_event = 'PgSleep'"),
	'the worker sleeps in the step');
$node->safe_psql('postgres', "SELECT execlog.cancel($e)");
# pg_sleep(600) outlives the poll's timeout: only an interrupt frees the worker
my $canary = q1($node, q{SELECT execlog.start('quick')});
ok(wait_status($node, $canary, "'success'"),
	'the sleeping step was interrupted: the next execution succeeds');
is(q1($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND wait_event = 'PgSleep'"),
	'0', 'the worker no longer sleeps');
is(q1($node, "SELECT status FROM execlog.executions WHERE id = $e"), 'cancelled', 'the execution is cancelled');
is(q1($node, "SELECT count(*) FROM public.effects WHERE execution_id = 0"), '0', 'its next step never ran');
is(worker_pid(), $pid, 'the same worker goes on');

# ---- an execution cancelled while it waits for its turn in the batch stops
# at its first step boundary (its long step never starts)
$node->safe_psql('postgres', q{
CREATE TABLE public.gate (x int);
GRANT SELECT ON public.gate TO runner;
CREATE FUNCTION public.wait_gate() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	WHILE NOT EXISTS (SELECT 1 FROM public.gate) LOOP
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION public.wait_gate() TO runner;
});
automation($node, 'gated', run_as => "'runner'", steps => [
	['wait', 'sql', '{"query": "SELECT public.wait_gate()"}'],
]);
my ($g, $s) = split /\|/, $node->safe_psql('postgres',
	q{SELECT execlog.start('gated'), execlog.start('sleepy')});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND query LIKE '%execution $g,%'"),
	'the first execution of the batch runs its step');
is(q1($node, "SELECT worker FROM execlog.executions WHERE id = $s"), '0',
	'the second was claimed in the same batch');
$node->safe_psql('postgres', "SELECT execlog.cancel($s)");
$node->safe_psql('postgres', q{INSERT INTO public.gate VALUES (1)});
ok(wait_status($node, $g, "'success'"), 'the first execution succeeds');
$canary = q1($node, q{SELECT execlog.start('quick')});
ok(wait_status($node, $canary, "'success'"),
	'the cancelled one never started its pg_sleep(600): the next execution succeeds');
is(q1($node, "SELECT status FROM execlog.executions WHERE id = $s"), 'cancelled', 'it is cancelled');
is(q1($node, "SELECT count(*) FROM public.effects WHERE execution_id = 0"), '0', 'its second step never ran');
is(worker_pid(), $pid, 'the same worker goes on');

$node->stop;
done_testing();
