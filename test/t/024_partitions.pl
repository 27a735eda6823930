# History partitions made by worker 0 (issue 13, point 2): across two
# simulated interval changes (the executions made a day earlier: only the
# clock is simulated; a reload of the settings makes worker 0 look at once)
# it makes the partitions ahead and opens the next one, new executions run
# in it, one paused in an old partition still resumes; execlog.retention
# then drops the closed partition whose executions are all final and keeps
# the one that holds the paused execution.  No timed assertion: every wait
# polls.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('partitions');
automation($node, 'p', run_as => "'runner'", steps => [['one', 'sql', '{"query": "SELECT 1 AS one"}']]);
automation($node, 'wait', run_as => "'runner'", steps => [['ask', 'pause', '{}'], ['after', 'sql', '{"query": "SELECT 2 AS two"}']]);

sub parts
{
	return q1($node, q{SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_inherits h
	JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'execlog.executions'::regclass});
}

# a day passes, and the settings are reloaded (worker 0 looks at once)
sub next_day
{
	my ($conf) = @_;
	$node->safe_psql('postgres', qq{
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE execlog.executions SET created_at = created_at - interval '1 day';
COMMIT;
$conf
SELECT pg_reload_conf();});
}

is(parts(), 'executions_p0 executions_p1 executions_p2', 'partitions 0 to 2 after the install');
my @first = split /\n/, q1($node, q{SELECT execlog.start('p') FROM generate_series(1, 3)});
ok(wait_status($node, $_, "'success'"), "execution $_ in partition 0 succeeds") for @first;
my $paused = q1($node, q{SELECT execlog.start('wait')});
ok(wait_status($node, $paused, "'paused'"), 'an execution of partition 0 waits');

next_day(q{ALTER SYSTEM SET execlog.partition_interval = '1h';});
ok($node->poll_query_until('postgres', q{SELECT to_regclass('execlog.executions_p3') IS NOT NULL
	AND execlog._executions_last_id() = 999999999}),
	'worker 0 makes partition 3 and moves the ids on to partition 1');
is(parts(), 'executions_p0 executions_p1 executions_p2 executions_p3', 'partitions 0 to 3');
my @second = split /\n/, q1($node, q{SELECT execlog.start('p') FROM generate_series(1, 3)});
is($second[0], '1000000000', 'the next execution is the first of partition 1');
ok(wait_status($node, $_, "'success'"), "execution $_ in partition 1 succeeds") for @second;
is(q1($node, q{SELECT string_agg(DISTINCT tableoid::regclass::text, ' ') FROM execlog.execution_steps
	WHERE execution_id >= 1000000000}), 'execlog.execution_steps_p1', 'their steps are in partition 1 of execution_steps');

next_day('');
ok($node->poll_query_until('postgres', q{SELECT to_regclass('execlog.executions_p4') IS NOT NULL
	AND execlog._executions_last_id() = 1999999999}),
	'a day later: partition 4, ids in partition 2');
my $third = q1($node, q{SELECT execlog.start('p')});
is($third, '2000000000', 'the first execution of partition 2');
ok(wait_status($node, $third, "'success'"), 'it succeeds');
is(q1($node, q{SELECT count(*) FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
	WHERE c.relname IN ('executions_p3', 'executions_p4') AND d.deptype = 'e'}), '0',
	'the partitions the worker made are not extension members');

# retention: every final execution ended a day ago; partition 0 holds the
# paused execution, partition 1 is all final and closed: it goes whole
$node->safe_psql('postgres', q{
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE execlog.executions SET finished_at = finished_at - interval '1 day', updated_at = updated_at - interval '1 day'
 WHERE status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled');
COMMIT;
ALTER SYSTEM SET execlog.retention = '1h';
SELECT pg_reload_conf();});
ok($node->poll_query_until('postgres', q{SELECT to_regclass('execlog.executions_p1') IS NULL}),
	'execlog.retention drops partition 1 (all final, closed)');
is(q1($node, q{SELECT to_regclass('execlog.execution_steps_p1') IS NULL AND to_regclass('execlog.transitions_p1') IS NULL}),
	't', 'with its steps and transitions');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM execlog.executions}),
	'the final executions of the partitions kept are deleted row by row');
is(q1($node, q{SELECT string_agg(id || ' ' || status, ', ' ORDER BY id) FROM execlog.executions}),
	"$paused paused", 'the paused execution stays');
like(parts(), qr/^executions_p0 executions_p2 executions_p3 executions_p4/,
	'partition 0 (it holds the paused execution) stays');

# the paused execution of partition 0 goes on
$node->safe_psql('postgres', qq{SELECT execlog.resume($paused, '{}')});
ok(wait_status($node, $paused, "'success'"), 'the paused execution of partition 0 resumes and succeeds');
$node->stop;
done_testing();
