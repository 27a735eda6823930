# Claims: the workers of a database claim one at a time without locking
# rows first; a claimable row locked by another transaction makes a claim
# give up after a moment and skip it, so it never holds the others up.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('claims', "execlog.workers = 1\nexeclog.batch_size = 1\n");

automation($node, 'slow', steps => [['nap', 'sql', '{"query": "SELECT pg_sleep(5)"}']]);
automation($node, 'quick', steps => [['one', 'sql', '{"query": "SELECT 1 AS one"}']]);
my $pid = q1($node, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker'");

# the only worker is busy for a while: meanwhile a pending execution gets
# locked by a transaction that stays open, and another one is started
my $slow = q1($node, "SELECT execlog.start('slow')");
$node->poll_query_until('postgres', "SELECT status = 'running' FROM execlog.executions WHERE id = $slow")
  or die 'the slow execution did not start';
my $locked = q1($node, "SELECT execlog.start('quick')");
my $holder = $node->background_psql('postgres');
$holder->query_safe("BEGIN; SELECT id FROM execlog.executions WHERE id = $locked FOR UPDATE;");
my $other = q1($node, "SELECT execlog.start('quick')");

ok(wait_status($node, $other, "'success'"), 'an execution behind a locked one is claimed and runs');
is(q1($node, "SELECT status FROM execlog.executions WHERE id = $locked"), 'pending',
	'the locked execution is skipped while its lock is held');
is(q1($node, "SELECT status FROM execlog.executions WHERE id = $slow"), 'success',
	'the execution running before is unaffected');

$holder->query_safe('COMMIT');
$holder->quit;
ok(wait_status($node, $locked, "'success'"), 'once the lock is released, the skipped execution runs');
is(q1($node, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker'"), $pid,
	'the worker kept running throughout');

# three workers claiming 500 executions at once: each is claimed once
$node->append_conf('postgresql.conf', "execlog.workers = 3\nexeclog.batch_size = 20\n");
$node->restart;
q1($node, "SELECT count(execlog.start('quick')) FROM generate_series(1, 500)");
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM execlog.executions WHERE status IN ('pending', 'running')")
  or die 'executions not drained';
is(q1($node, "SELECT count(*) FILTER (WHERE status = 'success') || '/' || count(DISTINCT worker_runs)
              FROM (SELECT e.status, (SELECT count(*) FROM execlog.transitions t
                                       WHERE t.execution_id = e.id AND t.to_status = 'running') AS worker_runs
                      FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
                     WHERE a.name = 'quick') x"),
	'502/1', 'three workers: every execution succeeded and was claimed exactly once');
is(q1($node, "SELECT count(DISTINCT split_part(by, ' ', 3)) FROM execlog.transitions WHERE to_status = 'running' AND at > now() - interval '1 minute'") >= 2 ? 'yes' : 'no',
	'yes', 'three workers: the claims were shared');

done_testing();
