# Monitoring: the real prometheus-postgres-exporter (Debian's package) with
# contrib/prometheus/execlog.yaml, connected as a monitoring role with
# execlog_reader and pg_monitor, scraped with curl on 127.0.0.1.  The values
# must be what the test ran: finished executions by automation and status,
# finished steps by kind and status, alerts by channel and status, and the
# gauges (current executions by status, oldest waiting, workers alive,
# event-log backlog).  execlog.metrics() is for execlog_reader only.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use ExeclogTest;

my $exporter = '/usr/bin/prometheus-postgres-exporter';
plan skip_all => "$exporter is not installed" unless -x $exporter;

my $node = execlog_node('prometheus');
$node->safe_psql('postgres', q{
CREATE ROLE monitor LOGIN;
GRANT execlog_reader, pg_monitor TO monitor;
CREATE ROLE nobody LOGIN;
});

# ---- only execlog_reader may read the metrics
my ($rc, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM execlog.metrics()',
	extra_params => [ '-U', 'nobody' ]);
like($err, qr/permission denied for (schema execlog|function metrics)/,
	'a role without execlog_reader cannot read execlog.metrics()');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_proc p, aclexplode(p.proacl) a
	 WHERE p.oid = 'execlog.metrics()'::regprocedure AND a.grantee = 0}),
	'0', 'nothing granted to PUBLIC');

# ---- what the exporter will count
automation($node, 'good', run_as => "'runner'", steps => [
	[ 'one', 'sql', '{"query": "SELECT 1 AS one"}' ],
	[ 'two', 'sql', '{"query": "SELECT 2 AS two"}' ],
]);
automation($node, 'bad', run_as => "'runner'", steps => [
	[ 'boom', 'sql', '{"query": "SELECT 1 / 0"}' ],
	[ 'never', 'sql', '{"query": "SELECT 3"}' ],
]);
automation($node, 'waits', run_as => "'runner'", steps => [
	[ 'hold', 'pause', '{}' ],
]);
automation($node, 'narrow', run_as => "'runner'", throttle => 1, steps => [
	[ 'hold', 'pause', '{}' ],
]);
# the event log in use (its first merge starts the change queue)
q1($node, 'SELECT * FROM execlog.merge_event_log()');
my @good = map { q1($node, "SELECT execlog.start('good', '{\"secret_payload\": \"s3cr3t\"}')") } 1 .. 3;
my $bad = q1($node, "SELECT execlog.start('bad')");
ok(wait_status($node, $_, "'success'"), "good execution $_ succeeds") for @good;
ok(wait_status($node, $bad, "'failed'"), 'bad execution fails');
my $paused = q1($node, "SELECT execlog.start('waits')");
ok(wait_status($node, $paused, "'paused'"), 'pausing execution pauses');
my $n1 = q1($node, "SELECT execlog.start('narrow')");
ok(wait_status($node, $n1, "'paused'"), 'first throttled execution pauses');
my $n2 = q1($node, "SELECT execlog.start('narrow')");
is(q1($node, "SELECT status FROM execlog.executions WHERE id = $n2"), 'queued',
	'second throttled execution waits in the queue');
my $cancelled = q1($node, "SELECT execlog.start('narrow')");
q1($node, "SELECT execlog.cancel($cancelled)");

# alerts: one delivered, one given up
q1($node, qq{
INSERT INTO execlog.alerts (execution_id, account_id, channel, target, message)
SELECT id, account_id, 'webhook', 'ops', 'm' FROM execlog.executions WHERE id = $bad;
INSERT INTO execlog.alerts (execution_id, account_id, channel, target, message)
SELECT id, account_id, 'email', 'ops\@example.com', 'm' FROM execlog.executions WHERE id = $bad;
UPDATE execlog.alerts SET status = 'sent', sent_at = now() WHERE channel = 'webhook';
UPDATE execlog.alerts SET status = 'failed', error = 'no' WHERE channel = 'email';
});

# ---- the exporter against the test cluster, as the monitoring role
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $dsn = sprintf('host=%s port=%d user=monitor dbname=postgres sslmode=disable',
	$node->host, $node->port);
my $yaml = "$ENV{EXECLOG_SRC}/contrib/prometheus/execlog.yaml";
my $log = "$PostgreSQL::Test::Utils::tmp_check/exporter.log";
local $ENV{DATA_SOURCE_NAME} = $dsn;
my $h = IPC::Run::start([ $exporter, "--web.listen-address=127.0.0.1:$port",
		"--extend.query-path=$yaml" ], '<', \undef, '>', $log, '2>&1');

# scrape(): the /metrics text, once the exporter answers
sub scrape
{
	for (1 .. 600)
	{
		my $text = `curl -s --max-time 10 http://127.0.0.1:$port/metrics`;
		return $text if $? == 0 && $text =~ /^execlog_workers_alive[ {]/m;
		select(undef, undef, undef, 0.1);
	}
	diag(slurp_file($log));
	diag(join("\n", grep { /^(execlog|pg_up|pg_exporter)/ } split(/\n/, `curl -s http://127.0.0.1:$port/metrics`)));
	return '';
}

# metric(text, name, labels): the value of one series ('' if absent)
sub metric
{
	my ($text, $name, %labels) = @_;
	for my $line (split /\n/, $text)
	{
		next unless $line =~ /^\Q$name\E(?:\{([^}]*)\})? (\S+)$/;
		my ($l, $v) = ($1 // '', $2);
		my %have = $l =~ /(\w+)="([^"]*)"/g;
		delete $have{server};	# the exporter names the server it scraped
		next if grep { !defined $have{$_} || $have{$_} ne $labels{$_} } keys %labels;
		next if keys %have != keys %labels;
		return $v + 0;
	}
	return '';
}

my $m = scrape();
is(metric($m, 'pg_up'), 1, 'exporter connected as the monitoring role');
like($m, qr/^pg_exporter_user_queries_load_error\{[^}]*filename="\Q$yaml\E"[^}]*\} 0$/m,
	'execlog.yaml loaded without error');
unlike($m, qr/s3cr3t/, 'no payload reaches the metrics');

is(metric($m, 'execlog_executions_finished_total', account => 'acme', automation => 'good', status => 'success'),
	3, 'executions finished: good, success');
is(metric($m, 'execlog_executions_finished_total', account => 'acme', automation => 'bad', status => 'failed'),
	1, 'executions finished: bad, failed');
is(metric($m, 'execlog_executions_finished_total', account => 'acme', automation => 'narrow', status => 'cancelled'),
	1, 'executions finished: narrow, cancelled');
is(metric($m, 'execlog_executions_finished_total', account => 'acme', automation => 'good', status => 'failed'),
	'', 'no series for what did not happen');

is(metric($m, 'execlog_steps_finished_total', kind => 'sql', status => 'success'), 6,
	'steps finished: sql success (3 executions x 2 steps)');
is(metric($m, 'execlog_steps_finished_total', kind => 'sql', status => 'failed'), 1,
	'steps finished: sql failed');
my $skipped = q1($node, "SELECT count(*) FROM execlog.execution_steps WHERE status = 'skipped'");
is(metric($m, 'execlog_steps_finished_total', kind => 'sql', status => 'skipped'),
	$skipped == 0 ? '' : $skipped, 'steps finished: sql skipped, as in execution_steps');

is(metric($m, 'execlog_alerts_total', channel => 'webhook', status => 'sent'), 1, 'alerts: webhook sent');
is(metric($m, 'execlog_alerts_total', channel => 'email', status => 'failed'), 1, 'alerts: email failed');

is(metric($m, 'execlog_executions_current', status => 'paused'), 2, 'current: 2 paused');
is(metric($m, 'execlog_executions_current', status => 'queued'), 1, 'current: 1 queued');
is(metric($m, 'execlog_executions_current', status => 'running'), 0, 'current: none running');
is(metric($m, 'execlog_executions_current', status => 'pending'), 0, 'current: none pending');
cmp_ok(metric($m, 'execlog_oldest_waiting_seconds'), '>', 0, 'oldest waiting: the queued one has an age');
is(metric($m, 'execlog_workers_alive'), 2, 'workers alive: 2');
my $backlog = q1($node, 'SELECT count(*) FROM execlog.event_log_queue');
cmp_ok($backlog, '>', 0, 'executions changed since the last merge');
is(metric($m, 'execlog_event_log_backlog'), $backlog, 'event-log backlog: rows in the change queue');

# ---- counters go on, gauges follow
q1($node, 'SELECT * FROM execlog.merge_event_log()');
q1($node, "SELECT execlog.resume($n1)");
ok(wait_status($node, $n1, "'success'"), 'resumed execution succeeds');
ok(wait_status($node, $n2, "'paused'"), 'queued execution runs when the throttle frees');
my $again = q1($node, "SELECT execlog.start('good')");
ok(wait_status($node, $again, "'success'"), 'one more good execution');
$m = scrape();
is(metric($m, 'execlog_executions_finished_total', account => 'acme', automation => 'good', status => 'success'),
	4, 'counter went up by one');
is(metric($m, 'execlog_executions_finished_total', account => 'acme', automation => 'narrow', status => 'success'),
	1, 'resumed execution counted');
is(metric($m, 'execlog_executions_current', status => 'queued'), 0, 'current: none queued');
is(metric($m, 'execlog_oldest_waiting_seconds'), 0, 'oldest waiting: 0 when none waits');
is(metric($m, 'execlog_event_log_backlog'), q1($node, 'SELECT count(*) FROM execlog.event_log_queue'),
	'event-log backlog after a merge: only the later changes');

# ---- stopped workers are not alive
$node->safe_psql('postgres', q{ALTER SYSTEM SET execlog.workers = 0});
$node->restart;
$m = scrape();
is(metric($m, 'execlog_workers_alive'), 0, 'no worker alive when execlog.workers = 0');

$h->kill_kill;
$node->stop;
done_testing();
