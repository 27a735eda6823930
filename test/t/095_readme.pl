# README that runs: every ```sql block of README.md, in document order, on a
# demo-like cluster (execlog and pg_cron preloaded, two workers serving
# "postgres", both extensions created), each through psql with
# ON_ERROR_STOP as the superuser.  Any error fails the test: a README
# example that breaks fails CI.  Outputs, fragments and illustrations are
# ```text blocks and are not run.
#
# The examples of "Tasks, alerts and channels" also do what the text says,
# against local receivers: the Slack webhook URL of the example is a Slack-
# like receiver (test/alert_receiver.py) and execlog.smtp_url an aiosmtpd
# server (test/smtp_receiver.py).  After the block that starts
# "approve-payment" the test waits, as the text says, until a worker has run
# it up to its task; after the block that completes the task it checks that
# the execution went on: "pay" ran, and "tell" was delivered to the Slack
# receiver with the outcome and who decided.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use HTTP::Tiny;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $readme = "$ENV{EXECLOG_SRC}/README.md";
open(my $fh, '<', $readme) or die "$readme: $!";
my @blocks;
my ($in, $start, $text) = (undef, 0, '');
while (my $line = <$fh>)
{
	if (!defined $in && $line =~ /^```(\S*)\s*$/)
	{
		($in, $start, $text) = ($1, $., '');
	}
	elsif (defined $in && $line =~ /^```\s*$/)
	{
		push @blocks, [ $start, $text ] if $in eq 'sql';
		$in = undef;
	}
	elsif (defined $in)
	{
		$text .= $line;
	}
}
close $fh;
ok(!defined $in, 'README.md has no unterminated code block');
cmp_ok(scalar @blocks, '>', 0, 'README.md has sql examples');

# the receivers of "Tasks, alerts and channels"
my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my @servers;
END { local $?; $_->kill_kill for @servers; }
sub receiver
{
	my (@cmd) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ $python, @cmd ], '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	push @servers, $h;
	$h->pump until $out =~ /PORT (\d+)/;
	return $1;
}
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $slack_port = receiver("$ENV{TESTDIR}/alert_receiver.py");
my $smtp_port = receiver("$ENV{TESTDIR}/smtp_receiver.py", '--out', "$tmp/mails.jsonl",
	'--user', 'readme', '--password', 'readme-Pa55-word');
my $slack_url = "http://127.0.0.1:$slack_port/slack/T000/B000/ok-XXXX";

my $node = PostgreSQL::Test::Cluster->new('readme');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'execlog, pg_cron'
cron.database_name = 'postgres'
execlog.database = 'postgres'
execlog.workers = 2
execlog.smtp_url = 'smtp://readme:readme-Pa55-word\@127.0.0.1:$smtp_port'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION execlog; CREATE EXTENSION pg_cron;');

# what the text of "Tasks, alerts and channels" says happens after a block
my %after = (
	qr/execlog\.start\('approve-payment'/ => sub {
		ok($node->poll_query_until('postgres', q{
SELECT e.status = 'paused' FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
 WHERE a.name = 'approve-payment'}), 'approve-payment runs up to its task and pauses');
		is($node->safe_psql('postgres', q{
SELECT count(*) FROM execlog.my_tasks WHERE automation = 'approve-payment'}), '1',
			'its task shows in my_tasks');
	},
	qr/execlog\.complete_task\(/ => sub {
		ok($node->poll_query_until('postgres', q{
SELECT e.status = 'success' FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
 WHERE a.name = 'approve-payment'}), 'the approved execution runs to its end');
		is($node->safe_psql('postgres', q{
SELECT string_agg(s.name || ' ' || s.status, ', ' ORDER BY s.position)
  FROM execlog.execution_steps s JOIN execlog.executions e ON e.id = s.execution_id
  JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name = 'approve-payment'}),
			'approval success, pay success, tell success', 'pay ran after the approval');
		ok($node->poll_query_until('postgres', q{
SELECT al.status = 'sent' FROM execlog.alerts al JOIN execlog.executions e ON e.id = al.execution_id
  JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name = 'approve-payment'}),
			'the alert of "tell" is delivered');
		my $got = HTTP::Tiny->new->get("http://127.0.0.1:$slack_port/requests");
		my @texts = map { $_->{json}{text} // '' } @{ decode_json($got->{content}) };
		my $who = $node->safe_psql('postgres', 'SELECT current_user');
		ok((grep { $_ eq "payment 7: approve by $who" } @texts),
			'the Slack receiver got "payment 7: approve by <role>"')
		  or diag(explain \@texts);
	},
);
my %seen;

for my $b (@blocks)
{
	my ($line, $sql) = @$b;
	# the example's webhook is a local Slack-like receiver
	$sql =~ s{https://hooks\.slack\.com/services/T000/B000/XXXX}{$slack_url}g;
	my $file = "$tmp/block_$line.sql";
	open(my $out, '>', $file) or die "$file: $!";
	print $out $sql;
	close $out;
	my ($stdout, $stderr) = ('', '');
	my $rc = $node->psql('postgres', undef, extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', $file ],
		stdout => \$stdout, stderr => \$stderr, on_error_die => 0);
	is($rc, 0, "README.md line $line: the sql block runs") or diag("$sql\n$stderr");
	is($stderr =~ /(ERROR|FATAL|PANIC):/ ? $stderr : '', '', "README.md line $line: no error reported");
	for my $re (keys %after)
	{
		next unless $sql =~ $re;
		$seen{$re} = 1;
		$after{$re}->();
	}
}
is(scalar keys %seen, scalar keys %after,
	'README.md has the examples of "Tasks, alerts and channels" checked here');

$node->stop;
done_testing();
