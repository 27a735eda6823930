# Row locks held by open transactions around tasks (SPEC section 6):
#
# - completing a task that no step waits for (wait: false) leaves its
#   execution alone: while the operator's transaction stays open, the
#   worker finishes that execution's later steps;
# - an overdue task and a timed pause whose rows another transaction holds
#   locked are skipped by the workers (SKIP LOCKED) without making them
#   look again every millisecond: their CPU time while the locks are held
#   stays near the idle baseline measured in the same run; once the locks
#   are released, the task is escalated and the pause ends.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my ($server, $port) = http_server();
my $node = execlog_node('task_locks');
$node->safe_psql('postgres', qq{
CREATE ROLE approvers NOLOGIN;
CREATE ROLE ops1 NOLOGIN IN ROLE execlog_operator, approvers;
INSERT INTO execlog.account_members SELECT id, 'ops1' FROM execlog.accounts WHERE name = 'acme';
INSERT INTO execlog.channels (account_id, name, kind, config)
SELECT id, 'ops-slack', 'slack', '{"url": "http://127.0.0.1:$port/json"}'
  FROM execlog.accounts WHERE name = 'acme';
});

# ---- a task nothing waits for, completed in a transaction that stays open
automation($node, 'note-then-call', run_as => "'runner'", steps => [
	['note', 'task', '{"assignee": "approvers", "title": "file it", "wait": false}'],
	['call', 'http', qq({"url": "http://127.0.0.1:$port/sleep?s=2"})],
	['done', 'sql', '{"query": "SELECT 1"}'],
]);
my $e = q1($node, "SELECT execlog.start('note-then-call')");
ok($node->poll_query_until('postgres',
	"SELECT status = 'running' FROM execlog.execution_steps WHERE execution_id = $e AND name = 'call'"),
	'the execution waits for its HTTP answer');
my $t = q1($node, "SELECT id FROM execlog.tasks WHERE execution_id = $e");
my $op = $node->background_psql('postgres');
$op->query_safe("BEGIN; SET LOCAL ROLE ops1; SELECT execlog.complete_task($t, 'filed', 'done');");
ok(wait_status($node, $e, "'success'"),
	'the execution finishes while the transaction that completed its task (wait: false) is open');
is(q1($node, "SELECT string_agg(name || '=' || status, ',' ORDER BY position) FROM execlog.execution_steps WHERE execution_id = $e"),
	'note=success,call=success,done=success', 'every step of it ran');
is(q1($node, "SELECT status FROM execlog.tasks WHERE id = $t"), 'open',
	'the task is open until that transaction commits');
$op->query_safe('COMMIT');
$op->quit;
is(q1($node, "SELECT status || '|' || outcome || '|' || closed_by FROM execlog.tasks WHERE id = $t"),
	'done|done|ops1', 'then it is done');

# ---- overdue work held locked by an open transaction
automation($node, 'overdue', run_as => "'runner'", steps => [
	['later', 'task', '{"assignee": "approvers", "title": "later", "due": "1 hour", "escalate": "ops-slack", "wait": false}'],
]);
automation($node, 'pausing', run_as => "'runner'", steps => [
	['nap', 'pause', '{"for": "1 hour"}'],
	['done', 'sql', '{"query": "SELECT 1"}'],
]);
my $eo = q1($node, "SELECT execlog.start('overdue')");
my $ep = q1($node, "SELECT execlog.start('pausing')");
ok(wait_status($node, $eo, "'success'") && wait_status($node, $ep, "'paused'"),
	'a task due in an hour is open, an execution pauses for an hour');
my $to = q1($node, "SELECT id FROM execlog.tasks WHERE execution_id = $eo");

# CPU time (clock ticks, utime + stime) of all the workers
sub workers_cpu
{
	my $pids = q1($node,
		"SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE backend_type = 'execlog worker'");
	my $ticks = 0;
	for my $pid (split ' ', $pids)
	{
		open(my $fh, '<', "/proc/$pid/stat") or die "cannot read /proc/$pid/stat: $!";
		my $line = <$fh>;
		close($fh);
		$line =~ s/^.*\) //;			# after "pid (comm) ": field 3 onwards
		my @f = split(' ', $line);
		$ticks += $f[11] + $f[12];		# fields 14 (utime) and 15 (stime)
	}
	return $ticks;
}

automation($node, 'noop', run_as => "'runner'", steps => [['one', 'sql', '{"query": "SELECT 1"}']]);

# wake the workers (a new execution sets their latches) and let them run it
sub wake_workers
{
	my $n = q1($node, "SELECT execlog.start('noop')");
	wait_status($node, $n, "'success'") or die "execution $n did not run";
}

my $window = 4;		# seconds, the same for both measurements

# the baseline: idle workers (nothing due), with the locks already held
my $holder = $node->background_psql('postgres');
$holder->query_safe("BEGIN;"
	. " SELECT 1 FROM execlog.tasks WHERE id = $to FOR KEY SHARE;"
	. " SELECT 1 FROM execlog.executions WHERE id = $ep FOR KEY SHARE;");
wake_workers();
my $before = workers_cpu();
sleep($window);
my $idle = workers_cpu() - $before;

# make them due: plain updates do not conflict with FOR KEY SHARE, but the
# workers' FOR UPDATE ... SKIP LOCKED skips both rows
q1($node, "UPDATE execlog.tasks SET due_at = now() - interval '1 minute' WHERE id = $to");
q1($node, "UPDATE execlog.executions SET run_after = now() - interval '1 minute' WHERE id = $ep");
wake_workers();
$before = workers_cpu();
sleep($window);
my $locked = workers_cpu() - $before;
diag("workers' CPU ticks over ${window} s: idle $idle, with locked overdue rows $locked");
is(q1($node, "SELECT (escalated_at IS NULL) || '|' || (SELECT status FROM execlog.executions WHERE id = $ep) FROM execlog.tasks WHERE id = $to"),
	'true|paused', 'the locked task and pause were skipped meanwhile');
ok($locked <= 2 * $idle + 20,
	"workers do not spin while due rows are locked (CPU ticks: $locked locked vs $idle idle)");

$holder->query_safe('COMMIT');
$holder->quit;
ok($node->poll_query_until('postgres',
	"SELECT escalated_at IS NOT NULL FROM execlog.tasks WHERE id = $to"),
	'once the lock is released, the overdue task is escalated');
like(q1($node, "SELECT message FROM execlog.alerts WHERE execution_id = $eo"),
	qr/^task $to "later" assigned to approvers is overdue/, 'with one escalation alert');
ok(wait_status($node, $ep, "'success'"), 'and the pause ends');

$server->kill_kill;
$node->stop;
done_testing();
