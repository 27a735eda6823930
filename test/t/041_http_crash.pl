# A worker that dies with a request in flight: recovery fails the execution
# as interrupted and retries it (at least once), and the retry sends the
# same Idempotency-Key so the receiver can drop the duplicate.
use strict;
use warnings;
use IPC::Run;
use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my ($server, $port) = http_server();
my $base = "http://127.0.0.1:$port";
my $http = HTTP::Tiny->new(timeout => 30);
sub stats { return decode_json($http->get("$base/stats")->{content}) }

my $node = PostgreSQL::Test::Cluster->new('http_crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 2
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION execlog;
INSERT INTO execlog.accounts (name) VALUES ('acme');
INSERT INTO execlog.automations (account_id, name, max_retries) VALUES (1, 'slow-once', 1);
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (1, 1, 'call', 'http', '{"url": "$base/slow-once?s=120", "timeout": "5 minutes"}');
});

my $id = $node->safe_psql('postgres', "SELECT execlog.start('slow-once')");
my $key = "execlog-$id-1";

# the request is in flight: the server got it and sleeps
$node->poll_query_until('postgres',
	"SELECT status = 'running' FROM execlog.execution_steps WHERE execution_id = $id") or die;
for (1 .. 100 * $PostgreSQL::Test::Utils::timeout_default)
{
	last if (stats()->{slow_once}{$key} // 0) >= 1;
	select(undef, undef, undef, 0.1);
}
is(stats()->{slow_once}{$key}, 1, 'the request reached the server');

# stop the worker running it
my $worker = $node->safe_psql('postgres', "SELECT worker FROM execlog.executions WHERE id = $id");
is($node->safe_psql('postgres',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		  WHERE backend_type = 'execlog worker' AND application_name = 'execlog worker $worker'"),
	't', 'the worker with the request in flight is stopped');

# the restarted worker fails it as interrupted and the retry succeeds
$node->poll_query_until('postgres',
	"SELECT status = 'success' FROM execlog.executions WHERE id = $id") or die;
is($node->safe_psql('postgres', "SELECT attempt FROM execlog.executions WHERE id = $id"),
	'2', 'the execution was retried');
is($node->safe_psql('postgres',
		"SELECT to_status FROM execlog.transitions WHERE execution_id = $id AND attempt = 1 ORDER BY id DESC LIMIT 1"),
	'failed', 'the first attempt ended failed (interrupted)');
is($node->safe_psql('postgres',
		"SELECT status || ': ' || error FROM execlog.execution_steps WHERE execution_id = $id AND attempt = 1"),
	'failed: interrupted: the worker running it stopped before it finished',
	'its step in flight is not left running (a failed attempt keeps no running step)');
is(stats()->{slow_once}{$key}, 2,
	'the retry sent the same Idempotency-Key: the receiver can drop the duplicate');
is($node->safe_psql('postgres',
		"SELECT output->'body'->>'calls' FROM execlog.execution_steps WHERE execution_id = $id AND attempt = 2"),
	'2', 'the second attempt recorded the answer');

$node->stop;
$server->kill_kill;
done_testing();
