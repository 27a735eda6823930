# What an sql step does to the worker's session ends with the step: session
# advisory locks are released after it (success or failure), settings reset,
# PREPARE, LISTEN and temporary tables refused; and the
# workers' own advisory locks are out of reach of the SQL lock functions.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('step_session', "execlog.workers = 1\nexeclog.batch_size = 1\n");
my $pid = q1($node, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker'");

# the worker claim key as 0.1 took it, the merge_event_log key, another key
my $locks = 'SELECT pg_advisory_lock(1163414595, 0), pg_advisory_lock(1702390887, 1), pg_advisory_lock(42)';
automation($node, 'grab', run_as => "'runner'", steps => [
	['grab', 'sql', qq[{"query": "$locks; SELECT set_config('work_mem', '77MB', false) AS wm"}]]]);
automation($node, 'grab_fail', run_as => "'runner'", steps => [
	['grab', 'sql', qq[{"query": "SELECT pg_advisory_lock(43); SELECT 1 / 0"}]]]);
automation($node, 'look', run_as => "'runner'", steps => [
	['look', 'sql', q[{"query": "SELECT (SELECT count(*) FROM pg_prepared_statements) AS prepared, (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks, current_setting('work_mem') AS work_mem"}]]]);
automation($node, 'listen', run_as => "'runner'", steps => [
	['listen', 'sql', '{"query": "LISTEN execlog_chan"}']]);
automation($node, 'prepare', run_as => "'runner'", steps => [
	['prepare', 'sql', '{"query": "PREPARE execlog_left AS SELECT 1"}']]);
automation($node, 'temp', run_as => "'runner'", steps => [
	['temp', 'sql', '{"query": "CREATE TEMP TABLE execlog_t (i int)"}']]);
automation($node, 'quick', steps => [['one', 'sql', '{"query": "SELECT 1 AS one"}']]);

my $advisory = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $pid";

my $e = q1($node, "SELECT execlog.start('grab')");
ok(wait_status($node, $e, "'success'"), 'a step taking session locks and setting work_mem succeeds');
is(q1($node, $advisory), '0', 'no advisory lock of the step is left with the worker');

$e = q1($node, "SELECT execlog.start('grab_fail')");
ok(wait_status($node, $e, "'failed'"), 'a failing step taking a session lock fails');
is(q1($node, $advisory), '0', 'no advisory lock of the failed step is left with the worker');

$e = q1($node, "SELECT execlog.start('look')");
ok(wait_status($node, $e, "'success'"), 'a later step looks at the session');
my $expect = '[{"locks": 0, "prepared": 0, "work_mem": "'
  . q1($node, 'SHOW work_mem') . '"}]';
is(q1($node, "SELECT output FROM execlog.execution_steps WHERE execution_id = $e"),
	$expect, 'the later step sees no prepared statement, no advisory lock, the usual work_mem');

for my $k ('listen', 'prepare', 'temp')
{
	$e = q1($node, "SELECT execlog.start('$k')");
	ok(wait_status($node, $e, "'failed'"), "$k in a step is refused");
	like(q1($node, "SELECT error FROM execlog.executions WHERE id = $e"),
		qr/security-restricted operation/, "$k: the error says why");
}

# merges are not blocked by what a step did
is($node->safe_psql('postgres', "SET lock_timeout = '60s'; SELECT count(*) FROM execlog.merge_event_log()"),
	'1', 'merge_event_log() is not blocked by a step\'s lock');

# a session holding the SQL advisory keys the workers used to take does not
# stop claims
my $holder = $node->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(1163414595, 0), pg_advisory_lock(1163414599, id::int) FROM execlog.automations');
my @ids = map { q1($node, "SELECT execlog.start('quick')") } 1 .. 5;
ok(wait_status($node, $_, "'success'"), "execution $_ claimed while the SQL keys are held") for @ids;
$holder->quit;

is(q1($node, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker'"), $pid,
	'the worker kept running throughout');

done_testing();
