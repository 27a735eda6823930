# http steps against a local test server (test/http_server.py): answers,
# errors, retries with the same Idempotency-Key, connections and their
# auth, OAuth2 tokens, the allow/deny policy, bad input, big and binary
# bodies, cancel and time limit aborting a request in flight, and secrets
# that must never be stored or logged.
use strict;
use warnings;
use IPC::Run;
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64;
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# secrets the test server knows (see test/http_server.py)
my $client_secret = 'cl1ent-s3cret-Xq7Zp';
my $basic_user    = 'execlog-user';
my $basic_pass    = 'bas1c-pa55-Wv9Kt';
my $bearer        = 'st4tic-bearer-Jm3Rd';

# ---- the test server, on a port it picks
sub start_server
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'python3', "$ENV{TESTDIR}/http_server.py", '--port', '0', @args ],
		'<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	$h->pump until $out =~ /PORT (\d+)/;
	return ($h, $1);
}
my ($server, $port) = start_server();
my $base = "http://127.0.0.1:$port";
my $http = HTTP::Tiny->new(timeout => 30);

sub server_stats
{
	my $r = $http->get("$base/stats");
	die "stats: $r->{status}" unless $r->{success};
	return decode_json($r->{content});
}

# a port nobody listens on
sub free_port
{
	my $s = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => 0,
		Proto     => 'tcp',
		Listen    => 1) or die "socket: $!";
	my $p = $s->sockport;
	close $s;
	return $p;
}

# ---- the cluster (wait_done: an execution ended and no automatic retry is due)
my $node = PostgreSQL::Test::Cluster->new('http');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 2
execlog.max_payload_bytes = '4kB'
});
$node->start;

sub sql { return $node->safe_psql('postgres', shift) }

sql(q{
CREATE EXTENSION execlog;
INSERT INTO execlog.accounts (name) VALUES ('acme');
});

my $n = 0;

# automation(steps => [[name, kind, config-json, on_error]], %options):
# create an automation and return its name
sub automation
{
	my (%a) = @_;
	my $name = $a{name} // ('auto' . ++$n);
	my $time_limit = $a{time_limit} // '15 minutes';
	my $auto_retries = $a{auto_retries} // 0;
	my $max_retries = $a{max_retries} // 2;
	sql(qq{INSERT INTO execlog.automations
	         (account_id, name, time_limit, auto_retries, max_retries, retry_delay)
	       VALUES (1, '$name', '$time_limit', $auto_retries, $max_retries, '0 seconds')});
	my $pos = 0;
	for my $s (@{ $a{steps} })
	{
		my ($sname, $kind, $config, $on_error) = @$s;
		$pos++;
		$on_error //= 'stop';
		sql(qq{INSERT INTO execlog.steps (automation_id, position, name, kind, config, on_error)
		       SELECT id, $pos, '$sname', '$kind', \$j\$$config\$j\$, '$on_error'
		         FROM execlog.automations WHERE name = '$name'});
	}
	return $name;
}

# one http step called "call"
sub http_automation
{
	my ($config, %a) = @_;
	return automation(steps => [ [ 'call', 'http', $config ] ], %a);
}

sub start { my ($name, $payload) = @_; $payload //= '{}'; return sql("SELECT execlog.start('$name', '$payload')") }

sub wait_done
{
	my ($id) = @_;
	$node->poll_query_until('postgres',
		"SELECT status NOT IN ('pending', 'queued', 'running', 'paused') AND run_after IS NULL
		   FROM execlog.executions WHERE id = $id")
	  or die "execution $id did not finish";
	return $id;
}

sub run { my ($name, $payload) = @_; return wait_done(start($name, $payload)) }

# a value of the latest step row at a position, e.g. step($id, 1, "error")
sub step
{
	my ($id, $pos, $expr) = @_;
	return sql(qq{SELECT $expr FROM execlog.execution_steps
	               WHERE execution_id = $id AND position = $pos
	               ORDER BY attempt DESC LIMIT 1});
}

sub execution { my ($id, $expr) = @_; return sql("SELECT $expr FROM execlog.executions WHERE id = $id") }

# ---- answers
my $id = run(http_automation(qq{{"url": "$base/json"}}));
is(execution($id, 'status'), 'success', '200 JSON: execution succeeds');
is(step($id, 1, 'status'), 'success', '200 JSON: step succeeds');
is(step($id, 1, 'http_status'), '200', '200 JSON: http_status recorded');
is(step($id, 1, "output->'body'->>'name'"), 'execlog', '200 JSON: body parsed as JSON');
is(step($id, 1, "output->>'status'"), '200', '200 JSON: output has the status');
is(step($id, 1, "output->'headers'->>'content-type'"), 'application/json',
	'200 JSON: headers with lower-case names');
is(step($id, 1, "input->>'url'"), "$base/json", 'resolved input is stored');
is(sql("SELECT http_status FROM execlog.step_log WHERE execution_id = $id"), '200',
	'step_log shows http_status');

$id = run(http_automation(qq{{"url": "$base/text"}}));
is(step($id, 1, "output->>'body'"), 'hello, execlog', '200 text: body kept as text');

$id = run(http_automation(qq{{"url": "$base/notfound"}}));
is(execution($id, 'status'), 'failed', '404: execution fails');
is(step($id, 1, 'error'), '404 Not Found', '404: error is the status line');
is(step($id, 1, "output->'body'->>'error'"), 'no such thing', '404: body kept in output');
is(step($id, 1, 'http_status'), '404', '404: http_status recorded');
is(execution($id, 'error'), 'step "call" failed: 404 Not Found', '404: execution error names the step');

$id = run(http_automation(qq{{"url": "$base/notfound", "expect": [200, 404]}}));
is(step($id, 1, 'status'), 'success', 'expect: a listed status counts as success');

# POST with a JSON body; placeholders; the Idempotency-Key header
$id = run(http_automation(qq{{"url": "$base/echo", "body": {"n": "{{ \$.payload.n }}"},
	"headers": {"X-Trace": "t-{{ \$.payload.n }}", "Authorization": "Bearer user-given-secret"}}}),
	'{"n": 7}');
is(step($id, 1, "output->'body'->>'method'"), 'POST', 'a body makes it a POST');
is(step($id, 1, "output->'body'->>'body'"), '{"n": 7}', 'JSON body sent as JSON, placeholders resolved');
is(step($id, 1, "output->'body'->'headers'->>'Content-Type'"), 'application/json',
	'JSON body sent with Content-Type: application/json');
is(step($id, 1, "output->'body'->'headers'->>'X-Trace'"), 't-7', 'headers sent');
is(step($id, 1, "output->'body'->'headers'->>'Idempotency-Key'"), "execlog-$id-1",
	'Idempotency-Key is execlog-<execution>-<position>');
is(step($id, 1, "input->'headers'->>'Authorization'"), '[redacted]',
	'credentials in headers are stored redacted');

# 500 on the first call, retried automatically with the same key
$id = run(http_automation(qq{{"url": "$base/flaky"}}, auto_retries => 1, max_retries => 1));
is(execution($id, 'status'), 'success', '500 then 200: the automatic retry succeeds');
is(execution($id, 'attempt'), '2', '500 then 200: on the second attempt');
is(sql("SELECT error FROM execlog.execution_steps WHERE execution_id = $id AND attempt = 1"),
	'500 Internal Server Error', '500: first attempt failed with the status line');
is(server_stats()->{flaky}{"execlog-$id-1"}, 2,
	'both attempts sent the same Idempotency-Key');

# 429 with Retry-After delays the automatic retry
$id = run(http_automation(qq{{"url": "$base/ratelimit?after=3"}}, auto_retries => 1, max_retries => 1));
is(execution($id, 'status'), 'success', '429 then 200: the retry succeeds');
is(sql(qq{SELECT error FROM execlog.execution_steps WHERE execution_id = $id AND attempt = 1}),
	'429 Too Many Requests', '429: status line');
ok( sql(qq{SELECT t.at >= s.finished_at + interval '2.9 seconds'
	         FROM execlog.transitions t, execlog.execution_steps s
	        WHERE t.execution_id = $id AND t.attempt = 2 AND t.to_status = 'pending'
	          AND s.execution_id = $id AND s.attempt = 1}) eq 't',
	'429: the retry waited for Retry-After');

# a step after the http step uses its output
$id = run(automation(steps => [
	[ 'one', 'sql', q{{"query": "SELECT 2 AS i"}} ],
	[ 'call', 'http', qq{{"url": "$base/json"}} ],
	[ 'pick', 'sql', q{{"query": "SELECT $1::int * 10 AS v", "args": ["{{ $.steps.call.output.body.items[$.steps.one.output[0].i] }}"]}} ],
	[ 'again', 'http', qq{{"url": "$base/text"}} ] ]));
is(execution($id, 'status'), 'success', 'http steps between sql steps: success');
is(step($id, 3, "output->0->>'v'"), '30', 'a later step reads the http output');
is(step($id, 4, 'status'), 'success', 'a second http step runs too');

# ---- transport failures and bad input
my $closed = free_port();
$id = run(http_automation(qq{{"url": "http://127.0.0.1:$closed/"}}));
is(step($id, 1, 'error'), "could not connect to 127.0.0.1:$closed: Connection refused",
	'refused port: clear error');

$id = run(http_automation(qq{{"url": "$base/sleep?s=5", "timeout": "1 second"}}));
is(step($id, 1, 'error'), 'timed out after 1000 ms', 'timeout: clear error');

$id = run(http_automation(q{{"url": "http://nope.invalid/"}}));
is(step($id, 1, 'error'), 'could not resolve host "nope.invalid"', 'unresolvable host: clear error');

$id = run(http_automation(q{{"url": "file:///etc/passwd"}}));
is(step($id, 1, 'error'), 'URL scheme "file" is not allowed in http step "call"', 'file:// refused');

$id = run(http_automation(qq{{"url": "$base/redirect?to=file:///etc/passwd"}}));
like(step($id, 1, 'error'), qr/^redirect to "file:\/\/\/etc\/passwd" refused: only http and https/,
	'redirect to file:// refused');

$id = run(http_automation(qq{{"url": "$base/json", "headers": {"X-Test": "a\\r\\nInjected: yes"}}}));
is(step($id, 1, 'error'), 'value of header "X-Test" in http step "call" contains a line break',
	'CR/LF in a header value refused');
is(step($id, 1, 'http_status'), '', 'refused requests are not sent');

$id = run(http_automation(qq{{"url": "$base/json", "headers": {"Bad Name": "x"}}}));
like(step($id, 1, 'error'), qr/^invalid header name "Bad Name"/, 'bad header name refused');

$id = run(http_automation(q{{"url": "http://exa mple.com/"}}));
like(step($id, 1, 'error'), qr/^invalid URL "http:\/\/exa mple.com\/" in http step "call"/,
	'malformed URL refused');
$id = run(http_automation(q{{"url": "not a url at all"}}));
like(step($id, 1, 'error'), qr/^invalid URL/, 'not a URL refused');
$id = run(http_automation(q{{"url": "http://"}}));
like(step($id, 1, 'error'), qr/^invalid URL/, 'URL without host refused');

$id = run(http_automation(qq{{"url": "$base/json", "timeout": "0 seconds"}}));
is(step($id, 1, 'error'), '"timeout" of http step "call" must be positive', 'zero timeout refused');

# ---- bodies
$id = run(http_automation(qq{{"url": "$base/huge?bytes=100000"}}));
is(step($id, 1, 'status'), 'success', 'oversized body: step succeeds');
is(step($id, 1, "output->'body'->>'execlog_truncated'"), 'true', 'oversized body: marked truncated');
is(step($id, 1, "output->'body'->>'bytes'"), '100000', 'oversized body: real size recorded');
is(step($id, 1, "length(output->'body'->>'text')"), '4096', 'oversized body: cut at max_payload_bytes');

$id = run(http_automation(qq{{"url": "$base/binary"}}));
is(step($id, 1, "output->'body'->>'encoding'"), 'base64', 'non-UTF-8 body: kept as base64');
is(decode_base64(step($id, 1, "output->'body'->>'data'")), "\xff\xfe\x00\x01abc\x80",
	'non-UTF-8 body: bytes intact');

$id = run(http_automation(qq{{"url": "$base/latin1"}}));
is(step($id, 1, "output->'body' = to_jsonb('caf' || chr(233))"), 't', 'declared charset converted');

$id = run(http_automation(qq{{"url": "$base/badjson"}}));
is(step($id, 1, "output->>'body'"), '{not json', 'invalid JSON kept as text');

# ---- TLS: a server with a self-signed certificate is refused
SKIP:
{
	skip 'openssl not available', 1 if system('openssl version >/dev/null 2>&1') != 0;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	system("openssl req -x509 -newkey rsa:2048 -nodes -keyout $dir/key.pem -out $dir/cert.pem"
		  . " -days 1 -subj /CN=localhost >/dev/null 2>&1") == 0 or die 'openssl failed';
	my ($tls, $tls_port) = start_server('--tls-cert', "$dir/cert.pem", '--tls-key', "$dir/key.pem");
	$id = run(http_automation(qq{{"url": "https://127.0.0.1:$tls_port/json"}}));
	like(step($id, 1, 'error'), qr/^TLS error with 127\.0\.0\.1:$tls_port: .*certificate/,
		'self-signed certificate refused with a TLS error');
	$tls->kill_kill;
}

# ---- connections and auth
# (the test's own statement must not put the secrets in the log: the cluster
# logs every statement)
sql(qq{SET log_statement = 'none';
	INSERT INTO execlog.connections (account_id, name, base_url, auth) VALUES
	(1, 'oauth', '$base', '{"type": "oauth2_client_credentials", "token_url": "$base/oauth/token",
	  "client_id": "execlog-client", "client_secret": "$client_secret", "scope": "read"}'),
	(1, 'oauth-bad', '$base', '{"type": "oauth2_client_credentials", "token_url": "$base/oauth/token",
	  "client_id": "execlog-client", "client_secret": "wrong-$client_secret"}'),
	(1, 'basic', '$base/', '{"type": "basic", "username": "$basic_user", "password": "$basic_pass"}'),
	(1, 'bearer', '$base', '{"type": "bearer", "token": "$bearer"}')});

my $oauth = http_automation(q{{"connection": "oauth", "path": "/protected"}});
sql("SELECT execlog.start('$oauth') FROM generate_series(1, 20)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 20 FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
	  WHERE a.name = '$oauth' AND e.status NOT IN ('pending', 'running')") or die;
is(sql("SELECT string_agg(DISTINCT e.status::text, ',') FROM execlog.executions e
         JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name = '$oauth'"),
	'success', 'OAuth2: 20 calls succeed');
my $tokens = server_stats()->{token_requests};
is($tokens, 1, "OAuth2: one token request for 20 calls on two workers");

# the server revokes its tokens: a worker holding one gets a 401, fetches a
# new token once and succeeds.  Which worker runs a call is not ours to
# choose, so calls go one by one until one met the revoked token.
$http->post("$base/admin/revoke");
my $calls = 0;
my $all_ok = 1;
while ($calls < 40 && server_stats()->{protected_401} == 0)
{
	$id = run($oauth);
	$calls++;
	$all_ok = 0 unless execution($id, 'status') eq 'success';
}
my $stats = server_stats();
ok($stats->{protected_401} >= 1, "OAuth2: a revoked token was refused (401) after $calls calls");
ok($all_ok, 'OAuth2: every call after the revocation succeeded (refreshed on 401)');
is($stats->{token_requests}, $tokens + 1,
	"OAuth2: one new token after the 401, for both workers");

$id = run(http_automation(q{{"connection": "oauth-bad", "path": "/protected"}}));
like(step($id, 1, 'error'),
	qr/^could not get an OAuth2 token from \Q$base\E\/oauth\/token: the token endpoint answered with status 401$/,
	'OAuth2: a refused token request gives a clear error');

$id = run(http_automation(q{{"connection": "basic", "path": "basic"}}));
is(step($id, 1, 'status'), 'success', 'basic auth: accepted');
is(step($id, 1, "input->>'path'"), 'basic', 'connection step input keeps connection and path');

$id = run(http_automation(q{{"connection": "bearer", "path": "/bearer"}}));
is(step($id, 1, 'status'), 'success', 'bearer auth: accepted');
like(step($id, 1, "output->'body'->>'note'"), qr/\[redacted\]/,
	'a token echoed by the server is stored redacted');
is(step($id, 1, "output->'headers'->>'x-echo-token'"), '[redacted]', '... also in headers');

$id = run(http_automation(q{{"connection": "nosuch", "path": "/json"}}));
is(step($id, 1, 'error'), 'connection "nosuch" does not exist', 'unknown connection: clear error');

# execlog_reader cannot read connections.auth
sql(q{CREATE ROLE reader LOGIN IN ROLE execlog_reader;
      INSERT INTO execlog.account_members VALUES (1, 'reader')});
my ($rc, $out, $err) = $node->psql('postgres', 'SELECT auth FROM execlog.connections',
	extra_params => [ '-U', 'reader' ]);
like($err, qr/permission denied/, 'execlog_reader cannot read connections.auth');
($rc, $out, $err) = $node->psql('postgres', 'SELECT * FROM execlog.connections',
	extra_params => [ '-U', 'reader' ]);
like($err, qr/permission denied/, 'execlog_reader cannot read whole connection rows either');
is($node->safe_psql('postgres', 'SELECT count(name) FROM execlog.connections',
		extra_params => [ '-U', 'reader' ]),
	'4', 'execlog_reader reads the other columns');

# ---- policy: execlog.http_deny / http_allow, checked when connecting
sub set_policy
{
	my ($allow, $deny) = @_;
	sql("ALTER SYSTEM SET execlog.http_allow = '$allow'");
	sql("ALTER SYSTEM SET execlog.http_deny = '$deny'");
	sql('SELECT pg_reload_conf()');
	$node->poll_query_until('postgres',
		"SELECT current_setting('execlog.http_allow') = '$allow'
		    AND current_setting('execlog.http_deny') = '$deny'") or die;
}
($rc, $out, $err) = $node->psql('postgres', "ALTER SYSTEM SET execlog.http_deny = '10.0.0.0/33'");
like($err, qr/invalid value for parameter "execlog.http_deny"/, 'bad deny list refused');

set_policy('', '127.0.0.2, 10.0.0.0/8, localhost');
$id = run(http_automation(qq{{"url": "http://127.0.0.2:$port/json"}}));
is(step($id, 1, 'error'), 'connection to 127.0.0.2 denied by execlog.http_deny', 'denied address');
$id = run(http_automation(qq{{"url": "$base/redirect?to=http://127.0.0.2:$port/json"}}));
is(step($id, 1, 'error'), 'connection to 127.0.0.2 denied by execlog.http_deny',
	'redirect to a denied address refused when connecting');
$id = run(http_automation(qq{{"url": "$base/redirect?to=http://localhost:$port/json"}}));
like(step($id, 1, 'error'), qr/^connection to "localhost" \(.*\) denied by execlog.http_deny$/,
	'redirect to a denied host name refused when connecting');
$id = run(http_automation(q{{"url": "http://10.20.30.40/"}}));
is(step($id, 1, 'error'), 'connection to 10.20.30.40 denied by execlog.http_deny', 'denied CIDR');
$id = run(http_automation(q{{"url": "http://169.254.169.254/latest/meta-data/"}}));
like(step($id, 1, 'error'), qr/^connection to 169\.254\.169\.254 denied: cloud metadata/,
	'cloud metadata address denied by default');
$id = run(http_automation(qq{{"url": "$base/json"}}));
is(step($id, 1, 'status'), 'success', 'other addresses still allowed');

# a kept-alive connection does not outlive the policy that allowed it
set_policy('', '');
$id = run(http_automation(qq{{"url": "http://localhost:$port/json"}}));
is(step($id, 1, 'status'), 'success', 'localhost reachable before the deny list changes');
set_policy('', '127.0.0.1, ::1');
$id = run(http_automation(qq{{"url": "http://localhost:$port/json"}}));
like(step($id, 1, 'error'), qr/^connection to (127\.0\.0\.1|::1) denied by execlog.http_deny$/,
	'after a reload, the denied address is refused although a connection was kept alive');

set_policy('127.0.0.1', '');
$id = run(http_automation(qq{{"url": "http://localhost:$port/json"}}));
is(step($id, 1, 'status'), 'success', 'allow list: a name resolving to an allowed address');
$id = run(http_automation(qq{{"url": "http://127.0.0.2:$port/json"}}));
is(step($id, 1, 'error'), 'connection to 127.0.0.2 denied: not in execlog.http_allow',
	'allow list: other addresses refused');
set_policy('', '');

# ---- cancel and time limit abort the request in flight
my $slow = http_automation(qq{{"url": "$base/sleep?s=60", "timeout": "2 minutes"}});
$id = start($slow);
my $key = "execlog-$id-1";
ok($node->poll_query_until('postgres', "SELECT status = 'running' FROM execlog.execution_steps WHERE execution_id = $id"),
	'a slow request shows as a running step');
is(step($id, 1, "input ->> 'url'"), "$base/sleep?s=60", 'a running step shows what was sent');
wait_until(sub { (server_stats()->{sleep}{$key} // '') eq 'sleeping' }) or die 'request not seen';
sql("SELECT execlog.cancel($id)");
ok(wait_until(sub { (server_stats()->{sleep}{$key} // '') eq 'aborted' }),
	'cancel: the server sees the request aborted');
is(execution($id, 'status'), 'cancelled', 'cancel: execution cancelled');
$node->poll_query_until('postgres', "SELECT status = 'failed' FROM execlog.execution_steps WHERE execution_id = $id")
  or die;
like(step($id, 1, 'error'), qr/^request aborted: the execution is cancelled/, 'cancel: step row says why');

# a cancel that comes before the row of the request in flight was written
# (EXECLOG_HTTP_RECORD_AFTER_MS) writes it as failed, with what was sent
$id = start($slow);
$key = "execlog-$id-1";
wait_until(sub { (server_stats()->{sleep}{$key} // '') eq 'sleeping' }) or die 'request not seen';
sql("SELECT execlog.cancel($id)");
$node->poll_query_until('postgres', "SELECT status = 'failed' FROM execlog.execution_steps WHERE execution_id = $id")
  or die;
like(step($id, 1, 'error'), qr/^request aborted: the execution is cancelled/,
	'quick cancel: step row failed and says why');
is(step($id, 1, "input ->> 'url'"), "$base/sleep?s=60", 'quick cancel: step row keeps what was sent');
ok(wait_until(sub { (server_stats()->{sleep}{$key} // '') eq 'aborted' }),
	'quick cancel: the server sees the request aborted');

$id = run(http_automation(qq{{"url": "$base/sleep?s=60", "timeout": "2 minutes"}}, time_limit => '2 seconds'));
is(execution($id, 'status'), 'rejected', 'time limit: execution rejected');
is(step($id, 1, 'error'), 'time limit of 00:00:02 exceeded', 'time limit: step error');
ok(wait_until(sub { (server_stats()->{sleep}{"execlog-$id-1"} // '') eq 'aborted' }),
	'time limit: the server sees the request aborted');
ok(execution($id, "finished_at - started_at < interval '30 seconds'"),
	'time limit: ends well before the server would answer');

# ---- execlog.max_connections_per_host: requests over the limit wait for a
# connection to their host (and can be cancelled while they wait)
sql("ALTER SYSTEM SET execlog.max_connections_per_host = 1");
sql('SELECT pg_reload_conf()');
sleep(1);
my $nap = http_automation(qq{{"url": "$base/nap?s=0.4"}});
my @naps = split /\n/, sql("SELECT execlog.start('$nap') FROM generate_series(1, 6)");
wait_done($_) for @naps;
is(sql("SELECT count(*) FROM execlog.executions WHERE id IN (" . join(',', @naps) . ") AND status = 'success'"),
	'6', 'connection limit: every request over the limit waited and succeeded');
my $most = server_stats()->{nap_max};
ok($most >= 1 && $most <= 2, "connection limit: at most one request at once per worker (saw $most)");

# a request waiting for a connection is cancelled: the others go on
my $blocker = http_automation(qq{{"url": "$base/sleep?s=60", "timeout": "2 minutes"}});
my $waiting = http_automation(qq{{"url": "$base/json"}});
my ($b_id, $w_id) = split /\n/, sql("SELECT execlog.start(n) FROM unnest(ARRAY['$blocker', '$waiting']) n");
wait_until(sub { (server_stats()->{sleep}{"execlog-$b_id-1"} // '') eq 'sleeping' }) or die 'blocker not seen';
# started in one transaction, both are claimed together by one worker: the
# second waits behind the first for the only connection
is(execution($w_id, 'status'), 'running', 'connection limit: a request waits for the busy connection');
sql("SELECT execlog.cancel($w_id)");
$node->poll_query_until('postgres', "SELECT status = 'failed' FROM execlog.execution_steps WHERE execution_id = $w_id")
  or die;
like(step($w_id, 1, 'error'), qr/^request aborted: the execution is cancelled/,
	'connection limit: a waiting request is cancelled');
is(execution($b_id, 'status'), 'running', 'connection limit: the request holding the connection goes on');
sql("SELECT execlog.cancel($b_id)");
wait_done($b_id);
sql("ALTER SYSTEM RESET execlog.max_connections_per_host");
sql('SELECT pg_reload_conf()');

# ---- no secret is stored or logged
$stats = server_stats();
my @secrets = ($client_secret, $basic_pass, $bearer, encode_base64("$basic_user:$basic_pass", ''),
	@{ $stats->{tokens} });
my $stored = '';
for my $t (split /\n/, sql(q{SELECT tablename FROM pg_tables WHERE schemaname = 'execlog' ORDER BY 1}))
{
	my $cols = $t eq 'connections' ? '(t.id, t.account_id, t.name, t.base_url, t.created_at)' : 't';
	$stored .= sql("SELECT coalesce(string_agg(${cols}::text, E'\\n'), '') FROM execlog.$t t") . "\n";
}
$stored .= sql(q{SELECT string_agg(t::text, E'\n') FROM execlog.execution_log t}) . "\n";
$stored .= sql(q{SELECT string_agg(t::text, E'\n') FROM execlog.step_log t}) . "\n";
ok(length($stored) > 10000, 'execlog tables hold the run');
my $log = slurp_file($node->logfile);
for my $s (@secrets)
{
	ok(index($stored, $s) < 0, "secret \"" . substr($s, 0, 6) . "...\" is in no execlog table");
	ok(index($log, $s) < 0, "secret \"" . substr($s, 0, 6) . "...\" is not in the server log");
}

$node->stop;
$server->kill_kill;
done_testing();

# wait_until(sub): poll a Perl condition like poll_query_until
sub wait_until
{
	my ($cond) = @_;
	for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
	{
		return 1 if $cond->();
		select(undef, undef, undef, 0.1);
	}
	return 0;
}
