# README that runs: every ```sql block of README.md, in document order, on a
# demo-like cluster (execlog and pg_cron preloaded, two workers serving
# "postgres", both extensions created), each through psql with
# ON_ERROR_STOP as the superuser.  Any error fails the test: a README
# example that breaks fails CI.  Outputs, fragments and illustrations are
# ```text blocks and are not run.
use strict;
use warnings;
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

my $node = PostgreSQL::Test::Cluster->new('readme');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'execlog, pg_cron'
cron.database_name = 'postgres'
execlog.database = 'postgres'
execlog.workers = 2
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION execlog; CREATE EXTENSION pg_cron;');

my $tmp = PostgreSQL::Test::Utils::tempdir();
for my $b (@blocks)
{
	my ($line, $sql) = @$b;
	my $file = "$tmp/block_$line.sql";
	open(my $out, '>', $file) or die "$file: $!";
	print $out $sql;
	close $out;
	my ($stdout, $stderr) = ('', '');
	my $rc = $node->psql('postgres', undef, extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', $file ],
		stdout => \$stdout, stderr => \$stderr, on_error_die => 0);
	is($rc, 0, "README.md line $line: the sql block runs") or diag("$sql\n$stderr");
	is($stderr =~ /(ERROR|FATAL|PANIC):/ ? $stderr : '', '', "README.md line $line: no error reported");
}

$node->stop;
done_testing();
