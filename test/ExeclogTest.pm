# Helpers shared by execlog's TAP tests: a cluster with execlog preloaded and
# running workers, and small wrappers to define automations and wait for
# executions.
package ExeclogTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Exporter 'import';
use IPC::Run;

our @EXPORT = qw(execlog_node automation wait_status q1 http_server);

# execlog_node(name, extra_conf, init options): a started cluster with execlog (2 workers
# by default) serving database "postgres", the extension created, an account
# "acme" and a role "runner" for run_as.
sub execlog_node
{
	my ($name, $extra, %init) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init);
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 2
log_min_messages = warning
} . ($extra // ''));
	$node->start;
	$node->safe_psql('postgres', q{
CREATE EXTENSION execlog;
CREATE ROLE runner NOLOGIN;
INSERT INTO execlog.accounts (name) VALUES ('acme');
});
	return $node;
}

# automation(node, name, steps => [[name, kind, config_json, on_error, condition]], %columns)
# Creates an automation with its steps; returns its id.
sub automation
{
	my ($node, $name, %a) = @_;
	my $steps = delete $a{steps} // [];
	my @cols = ('account_id', 'name');
	my @vals = ("(SELECT id FROM execlog.accounts WHERE name = 'acme')", "'$name'");
	for my $k (sort keys %a)
	{
		push @cols, $k;
		push @vals, $a{$k};
	}
	my $sql = sprintf("INSERT INTO execlog.automations (%s) VALUES (%s) RETURNING id;\n",
		join(', ', @cols), join(', ', @vals));
	my $id = $node->safe_psql('postgres', $sql);
	my $pos = 1;
	for my $s (@$steps)
	{
		my ($sname, $kind, $config, $on_error, $condition) = @$s;
		$config =~ s/'/''/g;
		$on_error //= 'stop';
		my $cond = defined $condition ? "'$condition'" : 'NULL';
		$node->safe_psql('postgres', qq{
INSERT INTO execlog.steps (automation_id, position, name, kind, config, on_error, condition)
VALUES ($id, $pos, '$sname', '$kind', '$config', '$on_error', $cond);
});
		$pos++;
	}
	return $id;
}

# wait_status(node, execution_id, status_regex_sql_list): poll until the
# execution has one of the statuses, e.g. wait_status($n, 5, "'success','failed'").
sub wait_status
{
	my ($node, $id, $statuses) = @_;
	my $ok = $node->poll_query_until('postgres',
		"SELECT status IN ($statuses) FROM execlog.executions WHERE id = $id");
	if (!$ok)
	{
		diag($node->safe_psql('postgres',
			"SELECT status, attempt, error FROM execlog.executions WHERE id = $id"));
	}
	return $ok;
}

# http_server(args...): test/http_server.py started on a free port of
# 127.0.0.1; returns (IPC::Run handle, port).  Stop it with ->kill_kill.
sub http_server
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

# q1(node, sql): the result of a query
sub q1
{
	my ($node, $sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

1;
