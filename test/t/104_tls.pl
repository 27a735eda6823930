# TLS of the HTTP transport, verified against execlog.ssl_ca_file: a
# throwaway CA and server certificate made with openssl, an https step
# against test/http_server.py with TLS (succeeds with the CA setting, is
# refused without it), e-mail alerts through aiosmtpd (test/smtp_receiver.py)
# over STARTTLS (smtp://, the server requires STARTTLS before AUTH, and
# records the TLS version it saw) and over implicit TLS (smtps://), and a
# server whose certificate another CA signed: the alert fails with a clear
# TLS error, and the SMTP password is in no table and not in the log.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my $user = 'tls-sender';
my $password = 'Tls-Sm7p-Secr3t-Qw';
my $dir = PostgreSQL::Test::Utils::tempdir;

# ---- a CA, a server certificate it signed, and one signed by another CA
sub sh
{
	my ($cmd) = @_;
	system("$cmd >/dev/null 2>&1") == 0 or die "failed: $cmd";
}
open(my $ext, '>', "$dir/server.ext") or die;
print $ext "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
  . "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n";
close $ext;
for my $ca ('good', 'rogue')
{
	sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=execlog-test-$ca-ca"
		  . " -keyout $dir/$ca-ca.key -out $dir/$ca-ca.pem");
	sh("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1"
		  . " -keyout $dir/$ca-server.key -out $dir/$ca-server.csr");
	sh("openssl x509 -req -days 1 -in $dir/$ca-server.csr -CA $dir/$ca-ca.pem"
		  . " -CAkey $dir/$ca-ca.key -CAcreateserial -extfile $dir/server.ext"
		  . " -out $dir/$ca-server.pem");
}

# ---- receivers
my @servers;
END { local $?; $_->kill_kill for @servers; }

my ($https, $https_port) = http_server('--tls-cert', "$dir/good-server.pem",
	'--tls-key', "$dir/good-server.key");
push @servers, $https;

my $mails = "$dir/mails.jsonl";
sub smtp_server
{
	my (@tls) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ $python, "$ENV{TESTDIR}/smtp_receiver.py", '--out', $mails, '--user', $user,
			'--password', $password, @tls ],
		'<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	push @servers, $h;
	$h->pump until $out =~ /PORT (\d+)/;
	return $1;
}
my $starttls_port = smtp_server('--starttls-cert', "$dir/good-server.pem",
	'--starttls-key', "$dir/good-server.key");
my $smtps_port = smtp_server('--smtps-cert', "$dir/good-server.pem",
	'--smtps-key', "$dir/good-server.key");
my $rogue_port = smtp_server('--starttls-cert', "$dir/rogue-server.pem",
	'--starttls-key', "$dir/rogue-server.key");

sub mails
{
	return [] unless -e $mails;
	return [ map { decode_json($_) } grep { /\S/ } split /\n/, slurp_file($mails) ];
}

# ---- the cluster; the SMTP URL (with its password) is set before a start,
# never by a reload (which would log it)
my $node = PostgreSQL::Test::Cluster->new('tls');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 2
execlog.http_timeout = '5s'
execlog.alert_retry_delay = '1s'
execlog.alert_max_attempts = 1
execlog.alert_coalesce = 0
execlog.smtp_from = 'alerts\@example.org'
log_min_messages = warning
});
sub smtp_url
{
	my ($url) = @_;
	$node->append_conf('postgresql.conf', "execlog.smtp_url = '$url'\n");
}
sub ca_file
{
	my ($file) = @_;
	$node->append_conf('postgresql.conf', "execlog.ssl_ca_file = '$file'\n");
}
ca_file("$dir/good-ca.pem");
smtp_url("smtp://$user:$password\@127.0.0.1:$starttls_port");
$node->start;
my $sql = sub { $node->safe_psql('postgres', shift) };
$sql->(q{
CREATE EXTENSION execlog;
CREATE ROLE runner NOLOGIN;
INSERT INTO execlog.accounts (name) VALUES ('acme');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES
 (1, 'ops-mail', 'email', '{"to": ["ops@example.com"]}');
});

is($sql->("SELECT setting FROM pg_settings WHERE name = 'execlog.ssl_ca_file'"),
	"$dir/good-ca.pem", 'execlog.ssl_ca_file is set');
is($sql->("SELECT context FROM pg_settings WHERE name = 'execlog.ssl_ca_file'"),
	'sighup', 'execlog.ssl_ca_file is reloadable');
$sql->(q{CREATE ROLE nobody_special LOGIN});
my ($rc, $stdout, $stderr) = $node->psql('postgres', 'SHOW execlog.ssl_ca_file',
	extra_params => [ '-U', 'nobody_special' ]);
like($stderr, qr/permission denied|must be superuser|privileges of pg_read_all_settings/,
	'execlog.ssl_ca_file is readable by superusers only');

# ---- an https step verified with the CA
automation($node, 'fetch', steps => [
	[ 'get', 'http', qq{{"url": "https://127.0.0.1:$https_port/json"}} ] ]);
my $e1 = $sql->("SELECT execlog.start('fetch')");
ok(wait_status($node, $e1, "'success','failed'"), 'https step finished');
is($sql->("SELECT status || ' ' || coalesce(http_status::text, '-') || ' ' || coalesce(error, '')"
		  . " FROM execlog.execution_steps WHERE execution_id = $e1"),
	'success 200 ', 'https step succeeds: the certificate verifies with execlog.ssl_ca_file');

# ---- e-mail over STARTTLS: the server requires it before AUTH
automation($node, 'book', max_retries => 0,
	on_failure => q{'{"alert": {"channel": "ops-mail", "message": "booking failed"}}'},
	steps => [ [ 'fail', 'sql', '{"query": "SELECT 1 / 0"}' ] ]);
sub alert_of
{
	my ($id) = @_;
	$node->poll_query_until('postgres',
		"SELECT status IN ('sent', 'failed') FROM execlog.alerts WHERE execution_id = $id")
	  or diag($sql->("SELECT status, attempts, error FROM execlog.alerts WHERE execution_id = $id"));
	return split /\|/, $sql->(
		"SELECT id, status, coalesce(error, '') FROM execlog.alerts WHERE execution_id = $id");
}
my $e2 = $sql->("SELECT execlog.start('book')");
my ($a2, $s2, $err2) = alert_of($e2);
is("$s2 $err2", 'sent ', 'e-mail alert sent over smtp:// with STARTTLS');
my @m = grep { $_->{data} =~ /execution $e2\b/ } @{ mails() };
is(scalar @m, 1, 'the STARTTLS server received the message');
like($m[0]{tls} // '', qr/^TLSv1\.[23]$/, "the STARTTLS server saw TLS ($m[0]{tls})");
is($m[0]{login}, $user, 'AUTH happened (the server allows it only after STARTTLS)');

# ---- without the CA setting, the https step is refused
ca_file('');
$node->reload;
$node->poll_query_until('postgres', "SELECT setting = '' FROM pg_settings WHERE name = 'execlog.ssl_ca_file'");
# the workers read the reload at their next pass
sleep 1;
my $e3 = $sql->("SELECT execlog.start('fetch')");
ok(wait_status($node, $e3, "'failed'"), 'https step fails without execlog.ssl_ca_file');
like($sql->("SELECT error FROM execlog.execution_steps WHERE execution_id = $e3"),
	qr/^TLS error with 127\.0\.0\.1:$https_port: .*certificate/,
	'its error says the certificate did not verify');
is($sql->("SELECT http_status IS NULL FROM execlog.execution_steps WHERE execution_id = $e3"),
	't', 'no answer was recorded');

# ---- smtps: TLS from the first byte
ca_file("$dir/good-ca.pem");
smtp_url("smtps://$user:$password\@127.0.0.1:$smtps_port");
$node->restart;
my $e4 = $sql->("SELECT execlog.start('book')");
my ($a4, $s4, $err4) = alert_of($e4);
is("$s4 $err4", 'sent ', 'e-mail alert sent over smtps://');
@m = grep { $_->{data} =~ /execution $e4\b/ } @{ mails() };
is(scalar @m, 1, 'the smtps server received the message');
like($m[0]{tls} // '', qr/^TLSv1\.[23]$/, 'the smtps server saw TLS');
is($m[0]{login}, $user, 'AUTH over smtps');

# ---- a server whose certificate another CA signed
smtp_url("smtp://$user:$password\@127.0.0.1:$rogue_port");
$node->restart;
my $before = scalar @{ mails() };
my $e5 = $sql->("SELECT execlog.start('book')");
my ($a5, $s5, $err5) = alert_of($e5);
is($s5, 'failed', 'alert to a server with a certificate that does not verify fails');
like($err5, qr/^TLS error with 127\.0\.0\.1:$rogue_port: .*certificate/,
	'with a clear TLS error');
is(scalar @{ mails() }, $before, 'nothing was delivered to it');

# ---- the SMTP password is nowhere (looked for in hex: the query is logged)
my $hex = unpack('H*', $password);
my $leaks = $sql->(qq{
SELECT count(*) FROM (
  SELECT error AS t FROM execlog.alerts
  UNION ALL SELECT message FROM execlog.alerts
  UNION ALL SELECT error FROM execlog.executions
  UNION ALL SELECT error FROM execlog.execution_steps
  UNION ALL SELECT output::text FROM execlog.execution_steps
  UNION ALL SELECT input::text FROM execlog.execution_steps) s
 WHERE strpos(t, convert_from(decode('$hex', 'hex'), 'UTF8')) > 0});
is($leaks, '0', 'the SMTP password is in no table');
unlike(slurp_file($node->logfile), qr/\Q$password\E/, 'the SMTP password is not in the server log');

$node->stop;
done_testing();
