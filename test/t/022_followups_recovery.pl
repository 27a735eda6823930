# The on_failure follow-ups of an execution failed by crash recovery are the
# ones the executor creates when it fails an execution: task and alert with
# their placeholders resolved (issue 11, "one home for policy").  Crash
# recovery used to insert them from its own SQL, with the placeholders
# stored as written ("{{ $.payload.x }}").
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('followups_recovery', "restart_after_crash = on\nexeclog.workers = 1\n");

my $on_failure = q{'{"task": {"assignee": "ops", "title": "x={{ $.payload.x }} v={{ $.steps.one.output[0].v }}"},
  "alert": {"channel": "email", "target": "ops@example.com", "message": "alert {{ $.payload.x }} #{{ $.execution.id }}"}}'};

# step 1 succeeds, step 2 pauses (its rows are committed), step 3 sleeps or fails
automation($node, 'crashes', run_as => "'runner'", max_retries => 0, on_failure => $on_failure, steps => [
	['one', 'sql', '{"query": "SELECT 42 AS v"}'],
	['wait', 'pause', '{"for": "1 second"}'],
	['nap', 'sql', '{"query": "SELECT pg_sleep(600)"}'],
]);
automation($node, 'fails', run_as => "'runner'", max_retries => 0, on_failure => $on_failure, steps => [
	['one', 'sql', '{"query": "SELECT 42 AS v"}'],
	['wait', 'pause', '{"for": "1 second"}'],
	['nap', 'sql', '{"query": "SELECT 1 / 0"}'],
]);

# ---- failed by the executor: the reference
my $f = q1($node, q{SELECT execlog.start('fails', '{"x": "abc"}')});
ok(wait_status($node, $f, "'failed'"), 'the failing execution fails');
is(q1($node, "SELECT title FROM execlog.tasks WHERE execution_id = $f"), 'x=abc v=42',
	'the executor resolves the task title');
is(q1($node, "SELECT message FROM execlog.alerts WHERE execution_id = $f"), "alert abc #$f",
	'the executor resolves the alert message');

# ---- failed by crash recovery: kill -9 of the worker in the sleeping step
my $e = q1($node, q{SELECT execlog.start('crashes', '{"x": "abc"}')});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND query LIKE '%execution $e, step \"nap\"%'"),
	'the execution sleeps in its third step, after a pause');
my $pid = q1($node, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker'");
kill 'KILL', $pid;
ok(wait_status($node, $e, "'failed'"), 'crash recovery fails it (no retry left)');
like(q1($node, "SELECT error FROM execlog.executions WHERE id = $e"), qr/^interrupted/, 'as interrupted');
is(q1($node, "SELECT count(*) FROM execlog.tasks WHERE execution_id = $e"), '1', 'one task');
is(q1($node, "SELECT title FROM execlog.tasks WHERE execution_id = $e"), 'x=abc v=42',
	'its title is resolved, from the payload and the output of a committed step');
is(q1($node, "SELECT assignee FROM execlog.tasks WHERE execution_id = $e"), 'ops', 'its assignee');
like(q1($node, "SELECT body FROM execlog.tasks WHERE execution_id = $e"), qr/^interrupted/,
	'its body is the error, as the executor writes it');
is(q1($node, "SELECT count(*) FROM execlog.alerts WHERE execution_id = $e"), '1', 'one alert');
is(q1($node, "SELECT message FROM execlog.alerts WHERE execution_id = $e"), "alert abc #$e",
	'its message is resolved');
is(q1($node, "SELECT count(*) FROM execlog.tasks WHERE title LIKE '%{{%'")
	. q1($node, "SELECT count(*) FROM execlog.alerts WHERE message LIKE '%{{%'"),
	'00', 'no follow-up keeps a placeholder');
is(q1($node, "SELECT count(*) FROM execlog.execution_steps WHERE execution_id = $e AND status IN ('pending', 'running')"),
	'0', 'no step of it stays pending or running');

# ---- with a retry left, recovery retries instead, and creates no follow-up
$node->safe_psql('postgres', q{UPDATE execlog.automations SET max_retries = 1 WHERE name = 'crashes'});
my $r = q1($node, q{SELECT execlog.start('crashes', '{"x": "def"}')});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND query LIKE '%execution $r, step \"nap\"%'"),
	'the next execution sleeps in its third step');
$pid = q1($node, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker'");
kill 'KILL', $pid;
ok($node->poll_query_until('postgres',
	"SELECT attempt = 2 AND status IN ('running', 'paused') FROM execlog.executions WHERE id = $r"),
	'recovery retries it (attempt 2)');
is(q1($node, "SELECT count(*) FROM execlog.tasks WHERE execution_id = $r"), '0', 'no task while a retry is left');
$node->safe_psql('postgres', "SELECT execlog.cancel($r)");

$node->stop;
done_testing();
