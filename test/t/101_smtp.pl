# E-mail alerts over SMTP through libcurl, against a real aiosmtpd server
# with AUTH (test/smtp_receiver.py): one message to all of a channel's
# addresses, a literal address, the RFC 5322 header (From
# execlog.smtp_from, To, Subject RFC 2047-encoded when not ASCII, Date,
# Message-ID, MIME-Version, Content-Type, Content-Transfer-Encoding), the
# UTF-8 body, AUTH from the URL's credentials, a refused login retried with
# the same Message-ID, a refused recipient failed after the attempt limit,
# and the SMTP credentials absent from every table, view and the log.
use strict;
use warnings;
use utf8;
use IPC::Run;
use JSON::PP;
use MIME::Base64;
use Encode qw(decode encode);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my $user = 'alert-sender';
my $password = 'Sm7p-Pa55w0rd-Kx';
my $wrong = 'Wr0ng-Pa55w0rd-Zq';

my $mails = "${PostgreSQL::Test::Utils::tmp_check}/mails.jsonl";
unlink $mails;
my ($out, $err) = ('', '');
my $smtp = IPC::Run::start(
	[ $python, "$ENV{TESTDIR}/smtp_receiver.py", '--out', $mails, '--user', $user,
		'--password', $password ],
	'<', \undef, '>', \$out, '2>', \$err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
# the server goes with the test, also when it dies half-way
END { local $?; $smtp->kill_kill if $smtp; }
$smtp->pump until $out =~ /PORT (\d+)/;
my $port = $1;

sub mails
{
	return [] unless -e $mails;
	return [ map { decode_json($_) } grep { /\S/ } split /\n/, slurp_file($mails) ];
}

# a message: (header hash with raw values, the raw header lines, body)
sub parse_mail
{
	my ($data) = @_;
	my ($head, $body) = split /\r?\n\r?\n/, $data, 2;
	my %h;
	my $last;
	for my $line (split /\r?\n/, $head)
	{
		if ($line =~ /^[ \t]/ && defined $last) { $h{$last} .= "\n$line"; next; }
		my ($k, $v) = $line =~ /^([^:]+):\s?(.*)$/ or next;
		$last = lc $k;
		$h{$last} = $v;
	}
	return (\%h, $head, $body);
}

# RFC 2047 decoding of encoded words (=?UTF-8?B?...?=), folding removed
sub decode_words
{
	my ($v) = @_;
	$v =~ s/\?=\s*\n\s+=\?/?==?/g;
	$v =~ s/=\?UTF-8\?B\?([^?]*)\?=/decode_base64($1)/ge;
	return decode('UTF-8', $v);
}

my $node = PostgreSQL::Test::Cluster->new('smtp');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
my $conf = qq{
shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 2
execlog.http_timeout = '5s'
execlog.alert_retry_delay = '1s'
execlog.alert_max_attempts = 3
execlog.alert_coalesce = 0
execlog.smtp_from = 'execlog alerts <alerts\@example.org>'
log_statement = 'all'
};
# the credentials come with the URL; set at start (a reload would log the new value)
$node->append_conf('postgresql.conf', $conf . "execlog.smtp_url = 'smtp://$user:$wrong\@127.0.0.1:$port'\n");
$node->start;

sub sql { return decode('UTF-8', $node->safe_psql('postgres', encode('UTF-8', shift))) }

sql(q{
CREATE EXTENSION execlog;
INSERT INTO execlog.accounts (name) VALUES ('acme');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES
 (1, 'ops-mail', 'email', '{"to": ["ops@example.com", "oncall@example.com"]}');
});

sub automation
{
	my ($name, $alert) = @_;
	my $f = JSON::PP->new->utf8(0)->encode({ alert => $alert });
	sql(qq{
INSERT INTO execlog.automations (account_id, name, max_retries, on_failure) VALUES (1, '$name', 0, '$f');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
SELECT id, 1, 'book', 'sql', '{"query": "SELECT 1 / 0"}' FROM execlog.automations WHERE name = '$name';
});
}

sub start
{
	my ($name) = @_;
	my $id = sql("SELECT execlog.start('$name')");
	$node->poll_query_until('postgres', "SELECT EXISTS (SELECT 1 FROM execlog.alerts WHERE execution_id = $id)")
	  or die "no alert for $id";
	return ($id, sql("SELECT id FROM execlog.alerts WHERE execution_id = $id"));
}

# ---- a refused login: the attempt fails, nothing is sent
automation('Überweisung prüfen', { channel => 'ops-mail', message => 'Zahlung fehlgeschlagen ✓ — bitte prüfen' });
my ($e1, $a1) = start('Überweisung prüfen');
ok($node->poll_query_until('postgres',
		"SELECT attempts = 1 AND error IS NOT NULL AND status = 'pending' FROM execlog.alerts WHERE id = $a1"),
	'a refused login fails the attempt; the alert stays pending for a retry');
like(sql("SELECT error FROM execlog.alerts WHERE id = $a1"), qr/login denied/i, 'the error says the login was denied');
is(scalar @{ mails() }, 0, 'nothing was delivered');

# ---- the right password (a restart: the URL holds it) -> delivered on attempt 2
$node->stop;
$node->append_conf('postgresql.conf', "execlog.smtp_url = 'smtp://$user:$password\@127.0.0.1:$port'\n");
$node->start;
ok($node->poll_query_until('postgres', "SELECT status = 'sent' FROM execlog.alerts WHERE id = $a1"),
	'delivered on a later attempt');
is(sql("SELECT attempts FROM execlog.alerts WHERE id = $a1"), 2, 'two attempts');
my $m = mails();
is(scalar @$m, 1, 'one message for all of the channel\'s addresses');
is($m->[0]{login}, $user, 'AUTH with the URL\'s credentials');
is($m->[0]{mail_from}, 'alerts@example.org', 'envelope sender: the address of execlog.smtp_from');
is_deeply($m->[0]{rcpt_tos}, [ 'ops@example.com', 'oncall@example.com' ], 'envelope recipients: the channel\'s addresses');
my ($h, $head, $body) = parse_mail($m->[0]{data});
is($h->{from}, 'execlog alerts <alerts@example.org>', 'From: execlog.smtp_from');
is($h->{to} =~ s/\s+/ /gr, 'ops@example.com, oncall@example.com', 'To: the addresses');
like($h->{subject}, qr/^=\?UTF-8\?B\?/, 'Subject: RFC 2047 encoded (not ASCII)');
is(decode_words($h->{subject}), "[execlog] Überweisung prüfen failed: execution $e1", 'Subject decodes to "[execlog] <automation> <status>: execution <id>"');
unlike($head, qr/[^\x00-\x7f]/, 'the header is ASCII');
like($h->{date}, qr/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d \+0000$/,
	'Date: RFC 5322');
is($h->{'message-id'}, "<execlog-alert-$a1\@example.org>", 'Message-ID: the same for every attempt of the alert');
is($h->{'mime-version'}, '1.0', 'MIME-Version: 1.0');
is($h->{'content-type'}, 'text/plain; charset=utf-8', 'Content-Type: text/plain; charset=utf-8');
is($h->{'content-transfer-encoding'}, 'base64', 'Content-Transfer-Encoding: base64 for UTF-8 text');
my $text = decode('UTF-8', decode_base64($body));
my $xerr = sql("SELECT error FROM execlog.executions WHERE id = $e1");
like($text, qr/^Zahlung fehlgeschlagen ✓ — bitte prüfen\r\n\r\nAutomation: Überweisung prüfen\r\nAccount: acme\r\nExecution: $e1\r\nStatus: failed\r\nAttempt: 1\r\nError: \Q$xerr\E\r\nStarted: \S+\r\nFinished: \S+\r\n$/,
	'body: the message and the execution\'s facts, UTF-8, CRLF lines');

# ---- a literal address, ASCII: 7bit
automation('nightly-export', { channel => 'email', target => 'boss@example.com', message => 'export failed' });
my ($e2, $a2) = start('nightly-export');
ok($node->poll_query_until('postgres', "SELECT status = 'sent' FROM execlog.alerts WHERE id = $a2"), 'alert to a literal address sent');
is(sql("SELECT target FROM execlog.alerts WHERE id = $a2"), 'boss@example.com', 'its target is the address');
$m = mails();
is(scalar @$m, 2, 'a second message');
is_deeply($m->[1]{rcpt_tos}, [ 'boss@example.com' ], 'to the literal address');
($h, $head, $body) = parse_mail($m->[1]{data});
is($h->{subject}, "[execlog] nightly-export failed: execution $e2", 'ASCII subject as is');
is($h->{to}, 'boss@example.com', 'To: the address');
is($h->{'content-transfer-encoding'}, '7bit', 'ASCII text: 7bit');
like($body, qr/^export failed\r\n\r\nAutomation: nightly-export\r\n/, 'plain body');

# ---- a refused recipient: failed after the attempt limit, with the server's answer
automation('refused', { channel => 'email', target => 'reject@example.com' });
my ($e3, $a3) = start('refused');
ok($node->poll_query_until('postgres', "SELECT status = 'failed' FROM execlog.alerts WHERE id = $a3"),
	'alert to a refused recipient failed');
my $r = sql("SELECT attempts || ' ' || error FROM execlog.alerts WHERE id = $a3");
like($r, qr/^3 .*550/, 'after 3 attempts, the error has the server\'s 550');
is(scalar @{ mails() }, 2, 'nothing delivered for it');

# ---- the credentials: nowhere in tables, views or the log
my @rels = split /\n/, sql(q{SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'execlog' AND c.relkind IN ('r', 'v', 'p', 'm') ORDER BY 1});
my $dump = '';
$dump .= sql(qq{SELECT coalesce(string_agg(to_jsonb(t)::text, E'\\n'), '') FROM execlog."$_" t}) . "\n" for @rels;
my $log = slurp_file($node->logfile);
for my $s ($password, $wrong, encode_base64("\0$user\0$password", ''), encode_base64("\0$user\0$wrong", ''))
{
	unlike($dump, qr/\Q$s\E/, "SMTP secret in no execlog table or view");
	unlike($log, qr/\Q$s\E/, "SMTP secret not in the server log");
}
like($dump, qr/login denied/i, 'the dump holds the alerts (errors included)');

$node->stop;
done_testing();
