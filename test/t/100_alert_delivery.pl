# Alert delivery by the workers (SPEC §6) against real local receivers
# (test/alert_receiver.py): the exact Slack, Teams and webhook payloads and
# headers (HMAC signature checked by the receiver), retries with doubling
# delay, Retry-After in seconds and as an HTTP-date, failed after the
# attempt limit, http_deny applied, coalescing (200 failures -> 1 alert + 1
# digest), a dead receiver that neither delays a drain of 1,000 executions
# nor other alerts, a crash mid-delivery sending again with the same
# Idempotency-Key (at least once), and secrets absent from every execlog table and view
# and from the server log (log_statement = all).
use strict;
use utf8;
use warnings;
use IPC::Run;
use HTTP::Tiny;
use JSON::PP;
use Encode qw(decode);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my $hmac_key = 'wh-s1gning-K3y-9fQ';

# ---- the receivers
my ($out, $err) = ('', '');
my $recv = IPC::Run::start(
	[ $python, "$ENV{TESTDIR}/alert_receiver.py", '--secret', $hmac_key ],
	'<', \undef, '>', \$out, '2>', \$err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
# the receiver goes with the test, also when it dies half-way
END { local $?; $recv->kill_kill if $recv; }
$recv->pump until $out =~ /PORT (\d+)/;
my $port = $1;
$out =~ /BLACKHOLE (\d+)/ or die "no blackhole port";
my $hole = $1;
my $base = "http://127.0.0.1:$port";
my $http = HTTP::Tiny->new(timeout => 30);

sub received
{
	my ($prefix) = @_;
	my $r = $http->get("$base/requests");
	die "requests: $r->{status}" unless $r->{success};
	return [ grep { index($_->{path}, $prefix) == 0 } @{ decode_json($r->{content}) } ];
}

# ---- the cluster
my $node = PostgreSQL::Test::Cluster->new('alerts');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 2
execlog.http_timeout = '2s'
execlog.alert_retry_delay = '1s'
execlog.alert_max_attempts = 3
execlog.alert_coalesce = 0
log_statement = 'all'
log_min_messages = warning
});
$node->start;

sub sql { return $node->safe_psql('postgres', shift) }

sub reconf
{
	my ($conf) = @_;
	$node->append_conf('postgresql.conf', $conf);
	$node->reload;
	# the workers read the file when they get to it: wait for them
	sleep 1;
}

sql(q{
CREATE EXTENSION execlog;
INSERT INTO execlog.accounts (name) VALUES ('acme');
});

# secrets: the tokens in the webhook URLs, the signing key, a header value
my @secrets = ('SlackT0kenAbc123', 'SlackG0neTok456', 'SlackL1mitTok789', 'SlackDateTok012',
	'TeamsW0rkflowSig345', 'HookPathT0k678', $hmac_key, 'hdr-Secr3t-Value', 'StormT0ken901',
	'HoleT0ken234', 'DenyT0ken567');

# channels are written with statement logging off: the statement holds the secrets
sql(qq{SET log_statement = 'none';
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES
 (1, 'ops-slack', 'slack', '{"url": "$base/slack/services/T0/B0/ok-SlackT0kenAbc123"}'),
 (1, 'gone-slack', 'slack', '{"url": "$base/slack/services/T0/B1/gone-SlackG0neTok456"}'),
 (1, 'busy-slack', 'slack', '{"url": "$base/slack/services/T0/B2/limit-SlackL1mitTok789"}'),
 (1, 'date-slack', 'slack', '{"url": "$base/slack/services/T0/B3/limitdate-SlackDateTok012"}'),
 (1, 'ops-teams', 'teams', '{"url": "$base/teams/workflows/run-TeamsW0rkflowSig345"}'),
 (1, 'ops-hook', 'webhook', '{"url": "$base/webhook/in/HookPathT0k678", "secret": "$hmac_key", "headers": {"X-Api-Key": "hdr-Secr3t-Value"}}'),
 (1, 'storm-slack', 'slack', '{"url": "$base/slack/services/T0/B4/ok-StormT0ken901"}'),
 (1, 'dead-slack', 'slack', '{"url": "http://127.0.0.1:$hole/slack/services/T0/B5/ok-HoleT0ken234"}'),
 (1, 'deny-slack', 'slack', '{"url": "$base/slack/services/T0/B6/ok-DenyT0ken567"}');
});

# automation(name, channel, message): fails at once, alert to channel
sub automation
{
	my ($name, $channel, $message) = @_;
	my $alert = { channel => $channel };
	$alert->{message} = $message if defined $message;
	my $f = encode_json({ alert => $alert });
	sql(qq{
INSERT INTO execlog.automations (account_id, name, max_retries, on_failure)
VALUES (1, '$name', 0, '$f');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
SELECT id, 1, 'load', 'sql', '{"query": "SELECT 1 / 0"}' FROM execlog.automations WHERE name = '$name';
});
}

# start(name): an execution that fails; returns (execution id, alert id)
sub start
{
	my ($name) = @_;
	my $id = sql("SELECT execlog.start('$name')");
	$node->poll_query_until('postgres',
		"SELECT EXISTS (SELECT 1 FROM execlog.alerts WHERE execution_id = $id)")
	  or die "no alert for execution $id";
	return ($id, sql("SELECT id FROM execlog.alerts WHERE execution_id = $id"));
}

sub wait_alert
{
	my ($alert, $statuses) = @_;
	my $ok = $node->poll_query_until('postgres',
		"SELECT status IN ($statuses) FROM execlog.alerts WHERE id = $alert");
	diag(sql("SELECT status, attempts, error FROM execlog.alerts WHERE id = $alert")) unless $ok;
	return $ok;
}

sub row
{
	my ($q) = @_;
	return decode_json(sql("SELECT to_jsonb(t) FROM ($q) t"));
}

# ---- Slack: text + blocks, 200 "ok"
automation('sync-orders', 'ops-slack', 'Order sync failed <see log> & retry');
my ($e1, $a1) = start('sync-orders');
ok(wait_alert($a1, "'sent'"), 'slack alert sent');
my $st = row("SELECT status, attempts, error, sent_at IS NOT NULL AS sent, next_attempt_at, target, channel FROM execlog.alerts WHERE id = $a1");
is_deeply($st, { status => 'sent', attempts => 1, error => undef, sent => JSON::PP::true,
		next_attempt_at => undef, target => 'ops-slack', channel => 'slack' },
	'slack alert: sent once, no error, no next attempt, target is the channel name');
my $got = received('/slack/services/T0/B0/');
is(scalar @$got, 1, 'slack receiver got one message');
my $err1 = sql("SELECT error FROM execlog.executions WHERE id = $e1");
is_deeply($got->[0]{json}, {
		text => 'Order sync failed &lt;see log&gt; &amp; retry',
		blocks => [
			{ type => 'section', text => { type => 'mrkdwn', text => 'Order sync failed &lt;see log&gt; &amp; retry' } },
			{ type => 'section', fields => [
					{ type => 'mrkdwn', text => "*Automation*\nsync-orders" },
					{ type => 'mrkdwn', text => "*Execution*\n$e1" },
					{ type => 'mrkdwn', text => "*Status*\nfailed" },
					{ type => 'mrkdwn', text => "*Attempt*\n1" },
					{ type => 'mrkdwn', text => "*Error*\n$err1" } ] } ] },
	'slack payload: text and blocks (section with automation, execution, status, attempt, error)');
like($got->[0]{headers}{'content-type'}, qr{^application/json}, 'slack: JSON content type');

# ---- Teams Workflows: Adaptive Card, 202
automation('sync-teams', 'ops-teams');
my ($e2, $a2) = start('sync-teams');
ok(wait_alert($a2, "'sent'"), 'teams alert sent (202 counts)');
$got = received('/teams/');
is(scalar @$got, 1, 'teams receiver got one message');
my $err2 = sql("SELECT error FROM execlog.executions WHERE id = $e2");
is_deeply($got->[0]{json}, {
		type => 'message',
		attachments => [ {
				contentType => 'application/vnd.microsoft.card.adaptive',
				contentUrl => undef,
				content => {
					'$schema' => 'http://adaptivecards.io/schemas/adaptive-card.json',
					type => 'AdaptiveCard', version => '1.4',
					body => [
						{ type => 'TextBlock', text => "execution $e2 failed", wrap => JSON::PP::true, weight => 'Bolder' },
						{ type => 'FactSet', facts => [
								{ title => 'Automation', value => 'sync-teams' },
								{ title => 'Execution', value => "$e2" },
								{ title => 'Status', value => 'failed' },
								{ title => 'Error', value => $err2 } ] } ] } } ] },
	'teams payload: a message with an Adaptive Card 1.4 (TextBlock, FactSet)');

# ---- webhook: JSON, Idempotency-Key, HMAC signature, the channel's headers
automation('sync-hook', 'ops-hook', 'hook ✓ ünïcode');
my ($e3, $a3) = start('sync-hook');
ok(wait_alert($a3, "'sent'"), 'webhook alert sent');
$got = received('/webhook/');
is(scalar @$got, 1, 'webhook receiver got one message');
my $h = $got->[0]{headers};
is($h->{'idempotency-key'}, "execlog-alert-$a3", 'webhook: Idempotency-Key execlog-alert-<id>');
is($h->{'x-api-key'}, 'hdr-Secr3t-Value', "webhook: the channel's header sent");
like($h->{'x-execlog-signature'} // '', qr/^t=\d+,v1=[0-9a-f]{64}$/, 'webhook: X-Execlog-Signature t=...,v1=<hex>');
ok($got->[0]{signature_ok}, 'webhook: the receiver verified the HMAC-SHA256 of "<t>.<body>"');
my $facts = row(qq{SELECT a.id AS alert_id, a.message, to_jsonb(a.created_at) #>> '{}' AS created_at,
	e.id, e.status::text, e.attempt, e.error, to_jsonb(e.started_at) #>> '{}' AS started_at,
	to_jsonb(e.finished_at) #>> '{}' AS finished_at
	FROM execlog.alerts a JOIN execlog.executions e ON e.id = a.execution_id WHERE a.id = $a3});
my $j = $got->[0]{json};
is_deeply([ sort keys %$j ], [ 'alert', 'execution' ], 'webhook payload: alert and execution');
is_deeply([ sort keys %{ $j->{alert} } ], [ 'created_at', 'id', 'message' ], 'webhook alert: id, message, created_at');
is($j->{alert}{id}, $a3, 'webhook alert id');
is($j->{alert}{message}, 'hook ✓ ünïcode', 'webhook alert message (UTF-8)');
sub epoch { my ($t) = @_; return sql("SELECT extract(epoch FROM '$t'::timestamptz)"); }
is(epoch($j->{alert}{created_at}), epoch($facts->{created_at}), 'webhook alert created_at');
is_deeply([ sort keys %{ $j->{execution} } ],
	[ qw(account attempt automation error finished_at id started_at status) ],
	'webhook execution: id, automation, account, status, attempt, error, started_at, finished_at');
is_deeply({ map { $_ => $j->{execution}{$_} } qw(id automation account status attempt error) },
	{ id => $e3, automation => 'sync-hook', account => 'acme', status => 'failed', attempt => 1,
		error => $facts->{error} }, 'webhook execution facts');
is(epoch($j->{execution}{started_at}), epoch($facts->{started_at}), 'webhook execution started_at');
is(epoch($j->{execution}{finished_at}), epoch($facts->{finished_at}), 'webhook execution finished_at');

# ---- retries: 404 no_service three times, doubling delay, then failed
automation('sync-gone', 'gone-slack');
my ($e4, $a4) = start('sync-gone');
ok(wait_alert($a4, "'failed'"), 'alert to a removed Slack webhook fails');
$st = row("SELECT status, attempts, error, sent_at, next_attempt_at FROM execlog.alerts WHERE id = $a4");
is_deeply($st, { status => 'failed', attempts => 3, error => '404 Not Found: no_service',
		sent_at => undef, next_attempt_at => undef },
	'failed after execlog.alert_max_attempts (3) tries, with the last error, no next attempt');
$got = received('/slack/services/T0/B1/');
is(scalar @$got, 3, 'the receiver got exactly 3 attempts');
cmp_ok($got->[1]{at} - $got->[0]{at}, '>=', 1, 'second attempt at least alert_retry_delay (1s) later');
cmp_ok($got->[2]{at} - $got->[1]{at}, '>=', 2, 'third attempt at least twice that (2s) later');

# ---- 429 with Retry-After: 2 (longer than the 1s delay): honoured, then sent
automation('sync-busy', 'busy-slack');
my ($e5, $a5) = start('sync-busy');
ok(wait_alert($a5, "'sent'"), 'rate-limited alert sent on its second attempt');
$st = row("SELECT status, attempts, error FROM execlog.alerts WHERE id = $a5");
is_deeply($st, { status => 'sent', attempts => 2, error => '429 Too Many Requests: rate_limited' },
	'two attempts; the error of the failed one kept');
$got = received('/slack/services/T0/B2/');
is(scalar @$got, 2, 'two requests');
cmp_ok($got->[1]{at} - $got->[0]{at}, '>=', 2, 'Retry-After: 2 (seconds) honoured');

# ---- Retry-After as an HTTP-date 3 s ahead
automation('sync-date', 'date-slack');
my ($e6, $a6) = start('sync-date');
ok(wait_alert($a6, "'sent'"), 'alert rate-limited with an HTTP-date sent');
$got = received('/slack/services/T0/B3/');
is(scalar @$got, 2, 'two requests');
cmp_ok($got->[1]{at} - $got->[0]{at}, '>=', 2, 'Retry-After as HTTP-date honoured (3s ahead, 1s resolution)');

# ---- http_deny applies to alert deliveries
automation('sync-deny', 'deny-slack');
reconf("execlog.http_deny = '127.0.0.1/32'\nexeclog.alert_max_attempts = 10\n");
my ($e7, $a7) = start('sync-deny');
ok($node->poll_query_until('postgres', "SELECT attempts >= 1 AND error IS NOT NULL FROM execlog.alerts WHERE id = $a7"),
	'denied delivery recorded');
like(sql("SELECT error FROM execlog.alerts WHERE id = $a7"), qr/denied by execlog\.http_deny/,
	'the error names execlog.http_deny');
is(scalar @{ received('/slack/services/T0/B6/') }, 0, 'nothing reached the denied receiver');
reconf("execlog.http_deny = ''\n");
ok(wait_alert($a7, "'sent'"), 'sent on a later attempt once the host is no longer denied');
reconf("execlog.alert_max_attempts = 3\n");

# ---- storm control: 200 failures in a window -> 1 alert + 1 digest
reconf("execlog.alert_coalesce = '15s'\n");
automation('storm', 'storm-slack', 'storm: target system down');
sql(q{SELECT execlog.start('storm') FROM generate_series(1, 200)});
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 200 FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
		   WHERE a.name = 'storm' AND e.status = 'failed'}), '200 executions failed');
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 199 FROM execlog.alerts WHERE status = 'coalesced'
		   AND execution_id IN (SELECT e.id FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name = 'storm')}),
	'199 alerts coalesced');
my $digest = sql(q{SELECT DISTINCT digest_id FROM execlog.alerts WHERE status = 'coalesced'});
like($digest, qr/^\d+$/, 'all coalesced alerts point to one digest');
is(scalar @{ received('/slack/services/T0/B4/') }, 1, 'within the window: one message only');
ok(wait_alert($digest, "'sent'"), 'the digest is sent when the window ends');
$got = received('/slack/services/T0/B4/');
is(scalar @$got, 2, '200 failures: 1 alert + 1 digest reached the receiver');
my $dmsg = decode('UTF-8', sql("SELECT message FROM execlog.alerts WHERE id = $digest"));
like($dmsg, qr/^199 more executions of "storm" failed since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\nLatest error: step "load" failed: division by zero\nExecutions: \d+(, \d+){19}, …$/,
	'digest: how many more since when, the latest error and 20 execution ids');
is($got->[1]{json}{text}, $dmsg, 'the digest message is what Slack got');
is(sql(qq{SELECT count(*) FROM execlog.alerts WHERE id = $digest AND status = 'sent' AND attempts = 1}), 1,
	'the digest is an alerts row, sent once');
my $latest = sql(q{SELECT max(e.id) FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name = 'storm'});
like($dmsg, qr/Executions: $latest,/, 'the digest lists the latest execution first');
reconf("execlog.alert_coalesce = 0\n");

# ---- a dead receiver (accepts, never answers) slows neither a drain nor other alerts
reconf("execlog.http_timeout = '5s'\n");
automation('dead', 'dead-slack');
sql(q{SELECT execlog.start('dead') FROM generate_series(1, 1000)});
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 1000 FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
		   WHERE a.name = 'dead' AND e.status = 'failed'}), 'a drain of 1,000 failing executions completes');
my $dead = row(q{SELECT count(*) AS alerts, count(*) FILTER (WHERE status = 'pending') AS pending,
	count(*) FILTER (WHERE status IN ('sent', 'failed')) AS final
	FROM execlog.alerts WHERE target = 'dead-slack'});
is($dead->{alerts}, 1000, 'each of them has its alert');
is($dead->{final}, 0, 'when the drain completed, no delivery to the dead receiver had ended: the drain did not wait for them');
my ($e8, $a8) = start('sync-orders');
ok(wait_alert($a8, "'sent'"), 'an alert to a live receiver is sent meanwhile');
is(sql(q{SELECT count(*) FROM execlog.alerts WHERE target = 'dead-slack' AND status IN ('sent', 'failed')}), 0,
	'... while the deliveries to the dead receiver are still going on');
ok($node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM execlog.alerts WHERE target = 'dead-slack' AND error = 'timed out after 5000 ms'}),
	'deliveries to the dead receiver time out after execlog.http_timeout');
# no more of them
sql(q{UPDATE execlog.alerts SET status = 'failed', next_attempt_at = NULL WHERE target = 'dead-slack' AND status = 'pending'});

# ---- at least once: a crash mid-delivery sends again, with the same Idempotency-Key
reconf("execlog.http_timeout = '3s'\nexeclog.max_connections_per_host = 1000\n");
sql(qq{SET log_statement = 'none';
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES
 (1, 'hang-hook', 'webhook', '{"url": "$base/webhook/in/hang-CrashT0ken345"}');});
push @secrets, 'CrashT0ken345';
automation('sync-crash', 'hang-hook');
my ($e9, $a9) = start('sync-crash');
ok($node->poll_query_until('postgres', "SELECT attempts = 1 FROM execlog.alerts WHERE id = $a9"), 'first attempt claimed');
for (1 .. 500)
{
	last if @{ received('/webhook/in/hang-') };
	select(undef, undef, undef, 0.01);
}
is(scalar @{ received('/webhook/in/hang-') }, 1, 'the receiver has the first attempt (it does not answer yet)');
$node->stop('immediate');
$node->start;
ok(wait_alert($a9, "'sent'"), 'after the crash the alert is delivered (its lease ended)');
$got = received('/webhook/in/hang-');
is(scalar @$got, 2, 'sent twice: at least once');
is_deeply([ map { $_->{headers}{'idempotency-key'} } @$got ], [ "execlog-alert-$a9", "execlog-alert-$a9" ],
	'both with the same Idempotency-Key: the receiver can drop the duplicate');
is(sql("SELECT attempts FROM execlog.alerts WHERE id = $a9"), 2, 'attempts counts both tries');

# ---- secrets: nowhere but in channels.config
my @rels = split /\n/, sql(q{SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'execlog' AND c.relkind IN ('r', 'v', 'p', 'm') AND c.relname <> 'channels' ORDER BY 1});
my $dump = '';
$dump .= sql(qq{SELECT coalesce(string_agg(to_jsonb(t)::text, E'\\n'), '') FROM execlog."$_" t}) . "\n" for @rels;
$dump .= sql(q{SELECT string_agg((to_jsonb(c) - 'config')::text, E'\n') FROM execlog.channels c});
my $log = slurp_file($node->logfile);
for my $s (@secrets)
{
	unlike($dump, qr/\Q$s\E/, "secret $s in no execlog table or view");
	unlike($log, qr/\Q$s\E/, "secret $s not in the server log");
}
like($dump, qr/no_service/, 'the dump holds the alerts (errors included)');

$node->stop;
done_testing();
