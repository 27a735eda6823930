# Alert rows made set-based (issue 12, "Performance"): the alerts of a
# worker's batch are created by one statement at its end, in the transaction
# that writes the executions' final status.
#   - a batch of failing executions: exactly one alert each, its own
#     placeholders resolved, one INSERT statement for all, counters right;
#   - an alert step records the id of its own alert row (RETURNING), not the
#     newest alert of its execution (it used to read max(id), which another
#     alert of the execution made meanwhile took over);
#   - kill -9 between the batch's alert statement and its commit: nothing
#     created twice, nothing lost, each alert delivered once;
#   - execlog.alert_delivery = off: alerts are created and stay pending,
#     and are delivered once it is on again.
use strict;
use warnings;
use IPC::Run;
use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my ($out, $err) = ('', '');
my $recv = IPC::Run::start([ $python, "$ENV{TESTDIR}/alert_receiver.py" ],
	'<', \undef, '>', \$out, '2>', \$err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
END { local $?; $recv->kill_kill if $recv; }
$recv->pump until $out =~ /PORT (\d+)/;
my $port = $1;
my $http = HTTP::Tiny->new(timeout => 30);

# requests received on a path
sub received
{
	my ($path) = @_;
	my $r = $http->get("http://127.0.0.1:$port/requests");
	die "requests: $r->{status}" unless $r->{success};
	return scalar grep { $_->{path} eq $path } @{ decode_json($r->{content}) };
}

# one worker: a batch holds every execution started together
my $node = execlog_node('alert_batch', qq{
restart_after_crash = on
execlog.workers = 1
execlog.alert_coalesce = 0
execlog.alert_delivery = off
});
my $path = '/slack/services/T0/B0/ok-batch';
$node->safe_psql('postgres', qq{
INSERT INTO execlog.channels (account_id, name, kind, config)
SELECT id, 'ops', 'slack', '{"url": "http://127.0.0.1:$port$path"}' FROM execlog.accounts;
-- counts the statements inserting into alerts (a sequence: no row lock),
-- and may hold one before its commit
CREATE SEQUENCE public.alert_statements;
CREATE TABLE public.alert_hold (sleep boolean NOT NULL);
INSERT INTO public.alert_hold VALUES (false);
CREATE FUNCTION public.alert_statement() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS \$\$
BEGIN
	PERFORM pg_catalog.nextval('public.alert_statements');
	IF (SELECT sleep FROM public.alert_hold) THEN
		PERFORM pg_sleep(600);
	END IF;
	RETURN NULL;
END \$\$;
CREATE TRIGGER zz_alert_statement AFTER INSERT ON execlog.alerts
	FOR EACH STATEMENT EXECUTE FUNCTION public.alert_statement();
});

my $on_failure = q{'{"alert": {"channel": "ops", "message": "alert #{{ $.execution.id }}"}}'};
automation($node, 'fails', run_as => "'runner'", max_retries => 0, on_failure => $on_failure,
	steps => [ [ 'boom', 'sql', '{"query": "SELECT 1 / 0"}' ] ]);

# ---- a batch where 40 executions fail at once
my $ids = q1($node, q{SELECT string_agg(execlog.start('fails')::text, ',') FROM generate_series(1, 40)});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 40 FROM execlog.executions WHERE id IN ($ids) AND status = 'failed'"),
	'40 executions fail');
is(q1($node, "SELECT count(*) || ' ' || count(DISTINCT execution_id) FROM execlog.alerts WHERE execution_id IN ($ids)"),
	'40 40', 'exactly one alert each');
is(q1($node, "SELECT count(*) FROM execlog.alerts WHERE execution_id IN ($ids)
               AND message <> 'alert #' || execution_id"), '0', 'each with its own execution in its message');
is(q1($node, "SELECT count(*) FROM execlog.alerts WHERE execution_id IN ($ids)
               AND (status, attempts, channel, target) IS DISTINCT FROM ('pending', 0, 'slack', 'ops')"),
	'0', 'all pending (delivery off), never tried, to the channel');
my $stmts = q1($node, 'SELECT last_value FROM public.alert_statements');
ok($stmts >= 1 && $stmts <= 2, "one INSERT per batch, not one per execution ($stmts statements for 40 alerts)");
is(q1($node, "SELECT value FROM execlog.metrics() WHERE metric = 'executions_finished_total' AND automation = 'fails' AND status = 'failed'"),
	'40', 'the finished counter counts 40 failures');
is(q1($node, "SELECT count(*) FROM execlog.metrics() WHERE metric = 'alerts_total'"), '0',
	'no alert counted before it leaves pending');

# ---- an alert step records its own alert's id
$node->safe_psql('postgres', q{
CREATE FUNCTION public.alert_echo() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	-- another alert of the same execution, made right after the step's own
	INSERT INTO execlog.alerts (execution_id, account_id, channel, target, message)
	VALUES (NEW.execution_id, NEW.account_id, 'email', 'ops@example.com', 'echo of ' || NEW.message);
	RETURN NULL;
END $$;
CREATE TRIGGER alert_echo AFTER INSERT ON execlog.alerts
	FOR EACH ROW WHEN (NEW.message LIKE 'step %') EXECUTE FUNCTION public.alert_echo();
});
automation($node, 'two-alerts', run_as => "'runner'", steps => [
	[ 'first', 'alert', '{"channel": "ops", "message": "step first"}' ],
	[ 'second', 'alert', '{"channel": "email", "target": "ops@example.com", "message": "step second"}' ],
]);
my $t = q1($node, q{SELECT execlog.start('two-alerts')});
ok(wait_status($node, $t, "'success'"), 'two alert steps succeed');
is(q1($node, "SELECT count(*) FROM execlog.alerts WHERE execution_id = $t"), '4',
	'four alerts: the two steps and the echo of each');
for my $s ('first', 'second')
{
	is(q1($node, "SELECT (s.output ->> 'alert_id')::bigint = a.id
	                FROM execlog.execution_steps s, execlog.alerts a
	               WHERE s.execution_id = $t AND s.name = '$s'
	                 AND a.execution_id = $t AND a.message = 'step $s'"),
		't', "step $s records the id of its own alert, not the newer echo");
}
$node->safe_psql('postgres', 'DROP TRIGGER alert_echo ON execlog.alerts');

# ---- kill -9 between the batch's alert statement and its commit
$node->safe_psql('postgres', 'UPDATE public.alert_hold SET sleep = true');
my $c = q1($node, q{SELECT string_agg(execlog.start('fails')::text, ',') FROM generate_series(1, 20)});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND wait_event = 'PgSleep'"),
	'the worker holds the batch after its alert statement');
is(q1($node, "SELECT count(*) FROM execlog.alerts WHERE execution_id IN ($c)"), '0',
	'nothing of the batch is visible before its commit');
$node->safe_psql('postgres', 'UPDATE public.alert_hold SET sleep = false');
my $pid = q1($node, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker'");
kill 'KILL', $pid;
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 20 FROM execlog.executions WHERE id IN ($c) AND status = 'failed'"),
	'crash recovery fails the 20 executions (no retry left)');
is(q1($node, "SELECT count(*) FROM execlog.executions WHERE id IN ($c) AND error NOT LIKE 'interrupted%'"), '0',
	'as interrupted');
is(q1($node, "SELECT count(*) || ' ' || count(DISTINCT execution_id) FROM execlog.alerts WHERE execution_id IN ($c)"),
	'20 20', 'exactly one alert each: none lost, none twice');
is(q1($node, "SELECT count(*) FROM execlog.alerts WHERE execution_id IN ($c) AND message <> 'alert #' || execution_id"),
	'0', 'recovery resolves their messages like the executor');

# ---- delivery on again: every alert delivered once
$node->safe_psql('postgres', 'ALTER SYSTEM SET execlog.alert_delivery = on; SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM execlog.alerts WHERE status = 'pending' AND channel = 'slack'"),
	'delivery on: the pending alerts are delivered');
my $all = q1($node, "SELECT count(*) FROM execlog.alerts WHERE channel = 'slack'");
is($all, '61', '61 alerts to the channel (40 + the alert step + 20)');
is(q1($node, "SELECT count(*) FROM execlog.alerts WHERE channel = 'slack' AND (status, attempts) <> ('sent', 1)"),
	'0', 'each sent at its first attempt');
is(received($path), 61, 'the receiver got 61 requests: none sent twice');
ok($node->poll_query_until('postgres',
	"SELECT sum(value) = 61 FROM execlog.metrics() WHERE metric = 'alerts_total' AND channel = 'slack' AND status = 'sent'"),
	'the alert counter counts 61 sent');

$node->stop;
done_testing();
