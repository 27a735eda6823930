# Chaos: a mixed load (sql steps writing side effects, http steps against a
# recording server, a throttled automation with timed pauses, paused
# executions resumed by hand, automatic retries) while the test crashes
# things over and over: kill -9 of a random worker, kill -9 of the
# postmaster, pg_ctl stop -m immediate, pg_terminate_backend of a worker.
# Clients keep starting executions meanwhile; every id a client saw
# committed is remembered.  Afterwards, once the load has drained:
#   - every execution a client saw committed exists, and none is left
#     pending, queued, running or paused;
#   - no in-database effect of a succeeded step happened twice (side-effect
#     rows are unique per execution and step, and match the step rows that
#     succeeded without being reused);
#   - an Idempotency-Key reached the server twice only when the attempt that
#     sent it first did not record that step as succeeded (it was
#     interrupted);
#   - the throttle was never exceeded (sampled during the run);
#   - no execution made more than max_retries + 1 attempts;
#   - the last transition of every execution equals its status;
#   - the server log has no PANIC, TRAP, assertion or signal other than our
#     own kill -9.
# EXECLOG_CHAOS_CYCLES sets the number of crashes (default 24, about two
# minutes on 2 cores).
use strict;
use warnings;
use IPC::Run;
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $cycles = $ENV{EXECLOG_CHAOS_CYCLES} || 24;
my $seed = $ENV{EXECLOG_CHAOS_SEED} || int(time);
srand($seed);
note("chaos: $cycles cycles, seed $seed");

# (not ExeclogTest's http_server(): its IPC::Run timer would expire during a
# long run with EXECLOG_CHAOS_CYCLES set, and the tracebacks of the requests
# our kills break must go to a file, not fill a pipe nobody reads)
my $hout = '';
my $server = IPC::Run::start(
	[ 'python3', "$ENV{TESTDIR}/http_server.py", '--port', '0' ],
	'<', \undef, '>', \$hout, '2>', "${PostgreSQL::Test::Utils::tmp_check}/http_server.err",
	IPC::Run::timeout(3600));
$server->pump until $hout =~ /PORT (\d+)/;
my $base = "http://127.0.0.1:$1";
my $http = HTTP::Tiny->new(timeout => 30);

my $node = execlog_node('chaos', "restart_after_crash = on\nexeclog.batch_size = 20\nlog_min_messages = warning\n");
my $throttle = 2;
$node->safe_psql('postgres', q{
CREATE TABLE public.effects (execution bigint NOT NULL, attempt int NOT NULL, step int NOT NULL,
                             at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE INDEX ON public.effects (execution, step);	-- not unique: a repeat must show
GRANT INSERT ON public.effects TO runner;
});

# a step that records its effect: (execution, attempt, step)
sub effect
{
	my ($name, $pos, $extra) = @_;
	my $q = "INSERT INTO public.effects (execution, attempt, step) SELECT \$1, \$2, $pos"
	  . ($extra // '');
	return [ $name, 'sql',
		qq{{"query": "$q", "args": ["{{ \$.execution.id }}", "{{ \$.execution.attempt }}"]}} ];
}
my $nap = '{"query": "SELECT pg_sleep(random() * 0.05)"}';
automation($node, 'sidefx', run_as => "'runner'", max_retries => 6, steps => [
	effect('one', 1), ['nap', 'sql', $nap], effect('three', 3), effect('four', 4),
]);
automation($node, 'web', run_as => "'runner'", max_retries => 6, steps => [
	effect('one', 1),
	['call', 'http', qq{{"url": "$base/record?s=0.2", "method": "POST", "body": {"e": "{{ \$.execution.id }}"},
		"headers": {"X-Attempt": "{{ \$.execution.attempt }}"}, "timeout": "20 seconds"}}],
	effect('three', 3),
]);
automation($node, 'throttled', run_as => "'runner'", max_retries => 6, throttle => $throttle, steps => [
	effect('one', 1), ['breathe', 'pause', '{"for": "200 milliseconds"}'], effect('three', 3),
]);
automation($node, 'manual', run_as => "'runner'", max_retries => 6, steps => [
	effect('one', 1), ['wait', 'pause', '{}'], effect('three', 3),
]);
# fails its first attempt at step 2, succeeds on the automatic retry
automation($node, 'flaky', run_as => "'runner'", max_retries => 6, auto_retries => 3,
	retry_delay => "'200 milliseconds'", steps => [
	effect('one', 1),
	effect('two', 2, ' WHERE (CASE WHEN $2::int < 2 THEN 1/0 ELSE 1 END) = 1'),
	effect('three', 3),
]);
# the call sometimes outlives 250 ms, so its step row is written as running
automation($node, 'webslow', run_as => "'runner'", max_retries => 6, steps => [
	effect('one', 1),
	['call', 'http', qq{{"url": "$base/record?s=0.6", "method": "PUT", "body": "x",
		"headers": {"X-Attempt": "{{ \$.execution.attempt }}"}, "timeout": "20 seconds"}}],
	effect('three', 3),
]);
# one retry only: crashes exhaust it, then its on_failure task is created
automation($node, 'fragile', run_as => "'runner'", max_retries => 1,
	on_failure => q{'{"task": {"assignee": "ops", "title": "execution {{ $.execution.id }} failed"}}'}, steps => [
	effect('one', 1), ['nap', 'sql', '{"query": "SELECT pg_sleep(0.3)"}'], effect('three', 3),
]);
my @automations = qw(sidefx web webslow throttled manual flaky fragile);
# what the clients start: the throttled automation less often, so that its
# backlog drains in a few seconds
my @weighted = ((map { ($_) x 3 } qw(sidefx web flaky)), (map { ($_) x 2 } qw(webslow manual fragile)), 'throttled');

sub alive
{
	return $node->poll_query_until('postgres', 'SELECT true');
}

sub worker_pids
{
	my ($rc, $out) = $node->psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker' ORDER BY pid});
	return $rc == 0 ? grep { /^\d+$/ } split /\n/, $out : ();
}

my $throttle_samples = 0;
my $throttle_max = 0;
sub sample_throttle
{
	my ($rc, $out) = $node->psql('postgres', q{
SELECT count(*) FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
 WHERE a.name = 'throttled' AND e.status IN ('running', 'paused')});
	return if $rc != 0 || $out !~ /^\d+$/;
	$throttle_samples++;
	$throttle_max = $out if $out > $throttle_max;
}

# A client: a psql session starting executions in short transactions until
# it is stopped (or the server goes away).  An id counts as committed once
# psql has printed the COMMIT of its transaction.
my %committed;
my $nclient = 0;
sub client_start
{
	my $script = '';
	for my $i (1 .. 400)
	{
		my $a = $weighted[ int(rand(@weighted)) ];
		my $k = 1 + int(rand(3));
		$script .= "BEGIN;\nSELECT execlog.start('$a') FROM generate_series(1, $k);\nCOMMIT;\nSELECT pg_sleep(0.02);\n";
	}
	$nclient++;
	my $in = "${PostgreSQL::Test::Utils::tmp_check}/client$nclient.sql";
	my $out = "${PostgreSQL::Test::Utils::tmp_check}/client$nclient.out";
	open(my $fh, '>', $in) or die;
	print $fh $script;
	close $fh;
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-A', '-t', '-d', $node->connstr('postgres'), '-f', $in ],
		'<', \undef, '>', $out, '2>', '/dev/null');
	return { h => $h, out => $out };
}

sub client_finish
{
	my ($c) = @_;
	eval { $c->{h}->kill_kill; };
	my @pending;
	for my $line (split /\n/, slurp_file($c->{out}))
	{
		if ($line eq 'BEGIN') { @pending = (); }
		elsif ($line =~ /^\d+$/) { push @pending, $line; }
		elsif ($line eq 'COMMIT') { $committed{$_} = 1 for @pending; @pending = (); }
	}
}

# resume what waits for a person
sub resume_manual
{
	$node->psql('postgres', q{
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT e.id FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
	          WHERE a.name = 'manual' AND e.status = 'paused' LOOP
		BEGIN
			PERFORM execlog.resume(r.id, '{"by": "chaos"}');
		EXCEPTION WHEN others THEN
			NULL;	-- it moved on meanwhile: next time
		END;
	END LOOP;
END
$$});
}

# cancel a few active executions (running, paused, pending or queued)
my $cancels = 0;
sub cancel_some
{
	my ($rc, $out, $err) = $node->psql('postgres', q{
DO $$
DECLARE
	r record;
	n int := 0;
BEGIN
	FOR r IN SELECT id FROM execlog.executions
	          WHERE status IN ('pending', 'queued', 'running', 'paused') ORDER BY random() LIMIT 3 LOOP
		BEGIN
			PERFORM execlog.cancel(r.id);
			n := n + 1;
		EXCEPTION WHEN others THEN
			NULL;
		END;
	END LOOP;
	RAISE NOTICE 'cancelled %', n;
END
$$});
	$cancels += $1 if $rc == 0 && $err =~ /cancelled (\d+)/;
}

sub postmaster_children
{
	my ($pm) = @_;
	my $ps = `ps -o pid= --ppid $pm`;
	return grep { /^\d+$/ } map { s/\s//gr } split /\n/, $ps;
}

my %done = (kill9_worker => 0, kill9_postmaster => 0, immediate => 0, terminate => 0);
my @ops = sort keys %done;
my $t0 = time;
for my $cycle (1 .. $cycles)
{
	alive() or die 'server did not come back';
	my $c = client_start();
	# let the load run a moment, sampling the throttle
	my $until = time + 0.4 + rand(1.2);
	while (time < $until)
	{
		sample_throttle();
		usleep(100_000);
	}
	resume_manual() if rand() < 0.7;
	cancel_some() if rand() < 0.5;
	my $op = $ops[ ($cycle - 1) % @ops ];
	$op = $ops[ int(rand(@ops)) ] if $cycle > @ops && rand() < 0.5;
	if ($op eq 'kill9_worker' || $op eq 'terminate')
	{
		my @w = worker_pids();
		if (!@w)
		{
			# the workers are starting again after the last cycle
			$op = 'immediate';
		}
		else
		{
			my $victim = $w[ int(rand(@w)) ];
			if ($op eq 'kill9_worker')
			{
				kill 'KILL', $victim;
			}
			else
			{
				$node->psql('postgres', "SELECT pg_terminate_backend($victim)");
			}
		}
	}
	if ($op eq 'kill9_postmaster')
	{
		my $pm = $node->{_pid};
		my @children = postmaster_children($pm);
		$node->kill9;
		# the children notice the postmaster's death and exit; the new
		# postmaster needs its shared memory free
		for (1 .. 600)
		{
			last unless grep { kill 0, $_ } @children;
			usleep(50_000);
		}
		$node->start;
	}
	elsif ($op eq 'immediate')
	{
		$node->stop('immediate');
		$node->start;
	}
	$done{$op}++;
	client_finish($c);
}
my $crashes = 0;
$crashes += $_ for values %done;
alive() or die 'server did not come back';

# drain: resume manual pauses until nothing is left active (bounded)
my $t_drain = time;
my $active;
for my $try (1 .. 600)
{
	resume_manual();
	$active = q1($node, q{SELECT count(*) FROM execlog.executions WHERE status IN ('pending', 'queued', 'running', 'paused')});
	last if $active eq '0';
	sample_throttle() if $try % 5 == 0;
	usleep(200_000);
}
is($active, '0', 'after recovery no execution is left pending, queued, running or paused')
  or diag(q1($node, q{SELECT e.id, a.name, e.status, e.attempt, e.error FROM execlog.executions e
	JOIN execlog.automations a ON a.id = e.automation_id WHERE status IN ('pending', 'queued', 'running', 'paused') LIMIT 20}));
my $elapsed = time - $t0;
my $drained = time - $t_drain;

cmp_ok($crashes, '>=', 20, 'at least 20 crashes') if $cycles >= 20;
cmp_ok($done{$_}, '>', 0, "$_ happened") for @ops;

# every execution a client saw committed exists
my @ids = sort { $a <=> $b } keys %committed;
cmp_ok(scalar(@ids), '>', 0, 'clients committed executions');
$node->safe_psql('postgres', 'CREATE TABLE public.seen (id bigint PRIMARY KEY)');
if (@ids)
{
	$node->safe_psql('postgres', 'INSERT INTO public.seen VALUES ' . join(',', map { "($_)" } @ids));
}
is(q1($node, 'SELECT count(*) FROM public.seen s WHERE NOT EXISTS (SELECT 1 FROM execlog.executions e WHERE e.id = s.id)'),
	'0', 'every execution a client saw committed exists');
my $checked = q1($node, 'SELECT count(*) FROM execlog.executions');

# in-database effects of succeeded steps happened once
is(q1($node, 'SELECT count(*) FROM (SELECT 1 FROM public.effects GROUP BY execution, step HAVING count(*) > 1) d'),
	'0', 'no side effect of a step happened twice');
is(q1($node, q{
SELECT count(*) FROM (
  SELECT execution_id, position FROM execlog.execution_steps
   WHERE status = 'success' AND reused_from IS NULL AND kind = 'sql' AND name IN ('one', 'two', 'three', 'four')
  EXCEPT ALL
  SELECT execution, step FROM public.effects) d}), '0', 'every succeeded effect step left its effect');
is(q1($node, q{
SELECT count(*) FROM (
  SELECT execution, step FROM public.effects
  EXCEPT ALL
  SELECT execution_id, position FROM execlog.execution_steps
   WHERE status = 'success' AND reused_from IS NULL AND kind = 'sql') d}), '0',
	'every side effect belongs to a recorded succeeded step (an interrupted attempt left none)');
is(q1($node, q{SELECT count(*) FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
	WHERE a.name <> 'flaky' AND e.status = 'success'
	  AND (SELECT count(DISTINCT step) FROM public.effects f WHERE f.execution = e.id) <> (SELECT count(*) FROM execlog.steps s WHERE s.automation_id = a.id AND s.name <> 'nap' AND s.kind = 'sql')}),
	'0', 'every succeeded execution has each of its effects');

# Idempotency-Keys: repeated only after an attempt that did not record the
# call as succeeded
my $record = decode_json($http->get("$base/stats")->{content})->{record};
my %sent;
push @{ $sent{ $_->[0] } }, $_->[1] for @$record;
my $dup_keys = 0;
my $bad_dups = 0;
my @dup_sql;
for my $key (keys %sent)
{
	my @att = @{ $sent{$key} };
	next if @att < 2;
	$dup_keys++;
	my ($e) = $key =~ /^execlog-(\d+)-2$/ or do { $bad_dups++; diag("unexpected key $key"); next };
	# every attempt but the last that sent it must not have succeeded with it
	my @sorted = sort { $a <=> $b } @att;
	pop @sorted;
	push @dup_sql, map { "($e, $_)" } @sorted;
}
if (@dup_sql)
{
	my $bad = q1($node, 'SELECT count(*) FROM (VALUES ' . join(',', @dup_sql) . ') v(e, att)
	  JOIN execlog.execution_steps s ON s.execution_id = v.e AND s.attempt = v.att AND s.position = 2
	 WHERE s.status = \'success\' AND s.reused_from IS NULL');
	$bad_dups += $bad;
}
is($bad_dups, 0, 'an Idempotency-Key is repeated only after an interrupted attempt');
is(q1($node, q{SELECT count(*) FROM execlog.execution_steps s JOIN execlog.executions e ON e.id = s.execution_id
	JOIN execlog.automations a ON a.id = e.automation_id
	WHERE a.name IN ('web', 'webslow') AND s.position = 2 AND s.status = 'success' AND s.reused_from IS NULL
	  AND s.input->'headers'->>'X-Attempt' <> s.attempt::text}), '0', 'each call carried its attempt');
my $web_calls = q1($node, q{SELECT count(*) FROM execlog.execution_steps s JOIN execlog.executions e ON e.id = s.execution_id
	JOIN execlog.automations a ON a.id = e.automation_id
	WHERE a.name IN ('web', 'webslow') AND s.position = 2 AND s.status = 'success' AND s.reused_from IS NULL});
cmp_ok(scalar(keys %sent), '>=', $web_calls, 'every recorded call reached the server');

# follow-ups: one task per execution that failed for good, its title resolved
is(q1($node, q{SELECT count(*) FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
	WHERE a.name = 'fragile' AND e.status = 'failed'
	  AND (SELECT count(*) FROM execlog.tasks t WHERE t.execution_id = e.id) <> 1}), '0',
	'each execution that failed for good has exactly one follow-up task');
is(q1($node, q{SELECT count(*) FROM execlog.tasks t JOIN execlog.executions e ON e.id = t.execution_id
	WHERE e.status <> 'failed' OR t.title <> 'execution ' || e.id || ' failed'}), '0',
	'no task for an execution that did not fail for good, and every title is resolved');
my $tasks = q1($node, 'SELECT count(*) FROM execlog.tasks');

# throttle, retry budget, transitions
cmp_ok($throttle_samples, '>', 0, 'the throttle was sampled');
cmp_ok($throttle_max, '<=', $throttle, "the throttle ($throttle) was never exceeded (max $throttle_max in $throttle_samples samples)");
is(q1($node, q{SELECT count(*) FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
	WHERE e.attempt > a.max_retries + 1}), '0', 'no execution made more than max_retries + 1 attempts');
is(q1($node, q{SELECT count(*) FROM execlog.transitions t JOIN execlog.executions e ON e.id = t.execution_id
	JOIN execlog.automations a ON a.id = e.automation_id WHERE t.attempt > a.max_retries + 1}), '0',
	'no transition of an attempt past the budget');
is(q1($node, q{SELECT count(*) FROM execlog.executions e
	WHERE e.status IS DISTINCT FROM (SELECT t.to_status FROM execlog.transitions t
	                                  WHERE t.execution_id = e.id ORDER BY t.id DESC LIMIT 1)}),
	'0', 'the last transition of every execution equals its status');
is(q1($node, q{SELECT count(*) FROM execlog.execution_steps s JOIN execlog.executions e
	ON e.id = s.execution_id AND s.attempt = e.attempt
	WHERE e.status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
	  AND s.status IN ('pending', 'running')}), '0', 'no final execution keeps a pending or running step');
my $summary = q1($node, q{SELECT string_agg(status || ' ' || n, ', ' ORDER BY status)
	FROM (SELECT status, count(*) n FROM execlog.executions GROUP BY status) s});
my $retried = q1($node, 'SELECT count(*) FROM execlog.executions WHERE attempt > 1');

# the log: no crash but our own kills
my $log = slurp_file($node->logfile);
unlike($log, qr/PANIC|TRAP:|[Aa]ssert|terminated by signal (?!9:)\d+/, 'no PANIC, TRAP, assertion or unexpected signal in the log');
like($log, qr/terminated by signal 9/, 'the kills are in the log');

my $ops = join(', ', map { "$_ $done{$_}" } @ops);
my $line = sprintf('chaos: %d cycles (%s), %d executions checked (%d committed by clients, %d retried, %d cancelled by clients; %s), %d follow-up tasks, %d duplicate Idempotency-Keys, %d throttle samples (max %d), %.0f s (%.0f s to drain)',
	$crashes, $ops, $checked, scalar(@ids), $retried, $cancels, $summary, $tasks, $dup_keys, $throttle_samples, $throttle_max, $elapsed, $drained);
diag($line);
print STDERR "018_chaos: $line\n";

$node->stop;
$server->kill_kill;
done_testing();
