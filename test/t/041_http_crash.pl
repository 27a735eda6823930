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

# a cancel of an execution whose request is in flight, and its worker dies
# before it could end the request's row: the row is final all the same
$node->safe_psql('postgres', qq{
INSERT INTO execlog.automations (account_id, name, max_retries) VALUES (1, 'sleeper', 3), (1, 'quick', 0);
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
SELECT id, 1, 'call', 'http', '{"url": "$base/sleep?s=120", "timeout": "5 minutes"}'
  FROM execlog.automations WHERE name = 'sleeper';
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
SELECT id, 1, 'call', 'http', '{"url": "$base/json"}'
  FROM execlog.automations WHERE name = 'quick';
});
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->reload;
$id = $node->safe_psql('postgres', "SELECT execlog.start('sleeper')");
$node->poll_query_until('postgres',
	"SELECT status = 'running' FROM execlog.execution_steps WHERE execution_id = $id") or die;
$worker = $node->safe_psql('postgres', "SELECT worker FROM execlog.executions WHERE id = $id");
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND application_name = 'execlog worker $worker'");
kill 'STOP', $pid;
$node->safe_psql('postgres', "SELECT execlog.cancel($id)");
kill 'KILL', $pid;
kill 'CONT', $pid;
$node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'execlog worker'") or die;
is($node->safe_psql('postgres', "SELECT status FROM execlog.executions WHERE id = $id"),
	'cancelled', 'the execution stays cancelled through the crash');
is($node->safe_psql('postgres',
		"SELECT status || ': ' || coalesce(error, '') FROM execlog.execution_steps WHERE execution_id = $id"),
	'failed: request aborted: the execution is cancelled, no longer running',
	'the row of its request in flight is not left running (its worker died before ending it)');
$id = $node->safe_psql('postgres', "SELECT execlog.start('quick')");
$node->poll_query_until('postgres',
	"SELECT status = 'success' FROM execlog.executions WHERE id = $id") or die;
pass('executions run after the crash');

# a cancel while the worker writes the running row of a slow request (a
# trigger makes that write take 2 s): the cancel waits for it and ends the
# row, so at no commit is a cancelled execution left with a running row
# (a deferred trigger checks at the worker's commit)
$node->safe_psql('postgres', q{
CREATE TABLE public.violations (execution bigint, status text);
CREATE FUNCTION public.slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.kind = 'http' AND NEW.status = 'running' THEN
		PERFORM pg_catalog.pg_sleep(2);
	END IF;
	RETURN NEW;
END $$;
CREATE FUNCTION public.check_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.violations
	SELECT e.id, e.status FROM execlog.executions e
	 WHERE e.id = NEW.execution_id AND e.status <> 'running'
	   AND EXISTS (SELECT 1 FROM execlog.execution_steps s
	                WHERE s.execution_id = NEW.execution_id AND s.attempt = NEW.attempt
	                  AND s.position = NEW.position AND s.status = 'running');
	RETURN NULL;
END $$;
CREATE TRIGGER slow_row BEFORE INSERT ON execlog.execution_steps
	FOR EACH ROW EXECUTE FUNCTION public.slow_row();
CREATE CONSTRAINT TRIGGER check_row AFTER INSERT ON execlog.execution_steps
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.check_row();
});
$id = $node->safe_psql('postgres', "SELECT execlog.start('sleeper')");
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND wait_event = 'PgSleep'")
  or die;
$node->safe_psql('postgres', "SELECT execlog.cancel($id)");
$node->poll_query_until('postgres',
	"SELECT status = 'failed' FROM execlog.execution_steps WHERE execution_id = $id") or die;
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.violations'), '0',
	'a cancel racing the write of a running row never leaves it running at a commit');
is($node->safe_psql('postgres',
		"SELECT status || ': ' || coalesce(error, '') FROM execlog.execution_steps WHERE execution_id = $id"),
	'failed: request aborted: the execution is cancelled, no longer running', 'the row ends failed');
$node->safe_psql('postgres', 'DROP TRIGGER slow_row ON execlog.execution_steps; DROP TRIGGER check_row ON execlog.execution_steps');

$node->stop;
$server->kill_kill;
done_testing();
