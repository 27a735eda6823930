# Issue 10, defect 7: every secret value an http request carried is stored
# as "[redacted]" wherever it would be stored.  A URL's userinfo
# (http://user:pw@host/) and credential headers are redacted in the step's
# input, including when the step is refused before it is sent; what the far
# end echoes back (in its body or in a response header) and what a
# transport error says is scrubbed of the same values, however many
# secrets a request carries.
use strict;
use warnings;
use IPC::Run;
use MIME::Base64;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my ($server, $port) = http_server();

my $node = execlog_node('redact', "log_statement = 'all'\nlog_min_messages = debug1\n");

my $pw      = 'Url-pa55-Hq2Lx';
my $user    = 'urluser';
my $b64     = encode_base64("$user:$pw", '');
my $apikey  = 'ap1-k3y-Tz8Wm';
my $token   = 'pl4ceh0lder-t0ken-Vb6Nc';
my $dead_pw = 'dead-pa55-Rk4Js';
my $bad_pw  = 'bad-pa55-Yu7Ee';
my @many    = map { "many-secret-$_-Qp3" } 1 .. 7;

# the definitions and the payload hold secrets: not logged by the statements
# that write them, so that the log shows only what execlog itself logs
$ENV{PGOPTIONS} = '-c log_statement=none';
my $many_headers = join(', ', map { qq{"X-Token-$_": "$many[$_ - 1]"} } 1 .. 7);
my $aid = automation($node, 'redaction', run_as => "'runner'", steps => [
	[ 'userinfo', 'http', qq({"url": "http://$user:$pw\@127.0.0.1:$port/echo"}), 'continue' ],
	[ 'echoed', 'http', qq({"url": "http://127.0.0.1:$port/echo?reflect=X-Api-Key", "headers": {"X-Api-Key": "$apikey"}}), 'continue' ],
	[ 'placeholder', 'http', qq({"url": "http://127.0.0.1:$port/echo?reflect=Authorization", "headers": {"Authorization": "Bearer {{ \$.payload.token }}"}}), 'continue' ],
	[ 'many', 'http', qq({"url": "http://127.0.0.1:$port/echo", "headers": {$many_headers}}), 'continue' ],
	[ 'dead', 'http', qq({"url": "http://u:$dead_pw\@127.0.0.1:1/"}), 'continue' ],
	[ 'refused', 'http', qq({"url": "http://u:$bad_pw\@127.0.0.1:$port/a b"}), 'continue' ],
]);
my $eid = q1($node, qq{SELECT execlog.start('redaction', '{"token": "$token"}')});
delete $ENV{PGOPTIONS};
ok(wait_status($node, $eid, "'partially_executed'"), 'the execution ends, partially executed (two steps fail)');

sub step { my ($name, $col) = @_;
	return q1($node, qq{SELECT $col FROM execlog.execution_steps WHERE execution_id = $eid AND name = '$name'}); }

is(step('userinfo', 'status'), 'success', 'a URL with userinfo is fetched');
is(step('userinfo', "input->>'url'"), "http://[redacted]\@127.0.0.1:$port/echo",
	'its input shows the URL with the userinfo redacted');
unlike(step('userinfo', 'output::text'), qr/\Q$b64\E|\Q$pw\E/,
	'the Basic credentials the server echoed are not in its output');
like(step('userinfo', 'output::text'), qr/Basic \[redacted\]/, 'they are shown as [redacted]');

is(step('echoed', 'status'), 'success', 'a request with a secret header is sent');
is(step('echoed', "input->'headers'->>'X-Api-Key'"), '[redacted]', 'its input redacts the header');
unlike(step('echoed', 'output::text'), qr/\Q$apikey\E/,
	'the value echoed in the body and in a response header is not in its output');
like(step('echoed', 'output::text'), qr/"x-reflected": "\[redacted\]"/,
	'the reflected response header is [redacted]');

is(step('placeholder', "input->'headers'->>'Authorization'"), '[redacted]',
	'a credential header built from a placeholder is redacted in the input');
unlike(step('placeholder', 'output::text'), qr/\Q$token\E/, 'and in the echoed output');

is(step('many', 'status'), 'success', 'a request with seven secret headers is sent');
my $many_out = step('many', 'output::text');
is(scalar(grep { index($many_out, $_) >= 0 } @many), 0,
	'none of its seven secrets is in the output (no cap on secrets per request)');

is(step('dead', 'status'), 'failed', 'a request to a closed port fails');
like(step('dead', 'error'), qr/127\.0\.0\.1/, 'its error says where');
is(step('refused', 'status'), 'failed', 'a URL with a space is refused');
like(step('refused', 'error'), qr/invalid URL "http:\/\/\[redacted\]\@/, 'the refusal shows the URL redacted');
is(step('refused', "input->>'url'"), "http://[redacted]\@127.0.0.1:$port/a b",
	'a refused step stores its input redacted too');

# nowhere: every execlog table but the definitions (the admin wrote the
# secrets there) and the payload (the caller sent the token there)
my @secrets = ($pw, $b64, $apikey, $dead_pw, $bad_pw, @many);
my $dump = q1($node, q{
SELECT string_agg(t, E'\n') FROM (
  SELECT to_jsonb(s)::text AS t FROM execlog.execution_steps s
  UNION ALL SELECT (to_jsonb(e) - 'payload')::text FROM execlog.executions e
  UNION ALL SELECT to_jsonb(t)::text FROM execlog.transitions t
  UNION ALL SELECT to_jsonb(a)::text FROM execlog.alerts a) x});
is(scalar(grep { index($dump, $_) >= 0 } @secrets, $token), 0, 'no secret in any execution table');

$node->stop;
my $log = slurp_file($node->logfile);
my @logged = grep { index($log, $_) >= 0 } @secrets, $token;
like($log, qr/execution_steps/, 'the log has the statements of the test');
is(scalar(@logged), 0, 'no secret in the server log (log_statement = all, debug1)');

$server->kill_kill;
done_testing();
