# pg_cron keeps execlog.event_log up to date: the job the README shows,
# SELECT execlog.merge_event_log() every minute, fills the event log with
# what changed, and the result equals a full recomputation.  Then
# execlog.schedule() and unschedule() with pg_cron.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('cron_merge');
$node->init;
# pg_cron runs its jobs over libpq: point it at the node's socket directory
my $host = $node->host;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'execlog, pg_cron'
cron.database_name = 'postgres'
cron.host = '$host'
execlog.database = 'postgres'
execlog.workers = 0
});
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION execlog');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');

# executions to log: inserts, and status changes of some of them
$node->safe_psql('postgres', q{
INSERT INTO execlog.accounts (name) VALUES ('acme');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'invoice');
SELECT execlog.start('invoice') FROM generate_series(1, 10);
UPDATE execlog.executions SET status = 'running' WHERE id <= 4;
UPDATE execlog.executions SET status = 'failed' WHERE id = 1;
UPDATE execlog.executions SET status = 'success' WHERE id = 2;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM execlog.event_log'),
	'0', 'the event log is empty before any merge');

# the job exactly as the README shows it
my $jobid = $node->safe_psql('postgres',
	q{SELECT cron.schedule('execlog-event-log', '* * * * *', 'SELECT execlog.merge_event_log()')});
like($jobid, qr/^\d+$/, 'every-minute merge job scheduled');

# pg_cron 1.5 and later run jobs every few seconds too: use that when
# available to keep the test fast, else wait for the minute job
my ($rc, $out, $err) = $node->psql('postgres',
	q{SELECT cron.schedule('execlog-event-log-fast', '5 seconds', 'SELECT execlog.merge_event_log()')});
note($rc == 0
	? 'pg_cron runs a job every 5 seconds'
	: 'this pg_cron has no seconds schedules, waiting for the minute job');

my $full_log_diff = q{
WITH full_log AS (
	SELECT a.name AS execution_template_name, e.id AS instance_id, e.created_at,
		   e.updated_at AS last_modified, e.status, e.account_id
	  FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id)
SELECT count(*) FROM (
	(SELECT * FROM full_log EXCEPT SELECT * FROM execlog.event_log)
	UNION ALL
	(SELECT * FROM execlog.event_log EXCEPT SELECT * FROM full_log)) d
};

my $start = time;
ok( $node->poll_query_until(
		'postgres', "SELECT ($full_log_diff) = 0 AND count(*) = 10 FROM execlog.event_log"),
	'cron filled the event log');
my $waited = time - $start;
note(sprintf('filled after %.1f s', $waited));
cmp_ok($waited, '<', 90, 'within a bounded wait (one cron minute and some slack)');

is( $node->safe_psql(
		'postgres',
		'SELECT string_agg(instance_id || $$:$$ || status, $$ $$ ORDER BY instance_id) FROM execlog.event_log WHERE instance_id <= 4'
	),
	'1:failed 2:success 3:running 4:running',
	'statuses as in executions');

# the runs succeeded, as the job's owner, in this database
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) > 0 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		   WHERE j.command = 'SELECT execlog.merge_event_log()' AND d.status = 'succeeded'}),
	'cron recorded a successful merge');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM cron.job_run_details WHERE status = 'failed'}),
	'0', 'no failed runs');

# nothing is left to merge: a manual call finds the queue empty
is($node->safe_psql('postgres', 'SELECT * FROM execlog.merge_event_log()'),
	'0|0', 'the queue is empty after the cron merge');

# ---- execlog.schedule(): a pg_cron job starts the automation
sub q1 { return $node->safe_psql('postgres', $_[0]) }
q1(q{INSERT INTO execlog.automations (account_id, name) VALUES (1, 'nightly'), (1, 'gone')});
my $aid = q1(q{SELECT id FROM execlog.automations WHERE name = 'nightly'});
my $tid = q1(q{SELECT execlog.schedule('nightly', '0 3 * * *', '{"from": "cron"}')});
like($tid, qr/^\d+$/, 'schedule: returns the schedule trigger id');
is(q1("SELECT kind || ' ' || (config ->> 'cron') || ' ' || (config -> 'payload')::text FROM execlog.triggers WHERE id = $tid"),
	'schedule 0 3 * * * {"from": "cron"}', 'schedule: a schedule trigger with the cron and the payload');
is(q1("SELECT schedule || ' | ' || database || ' | ' || command FROM cron.job WHERE jobname = 'execlog schedule $aid'"),
	"0 3 * * * | postgres | SELECT execlog._run_schedule($aid)", 'schedule: a pg_cron job in this database');
is(q1(q{SELECT execlog.schedule('nightly', '* * * * *', '{"from": "cron"}')}), $tid,
	'schedule again: the same trigger');
is(q1("SELECT revision || ' ' || (config ->> 'cron') FROM execlog.triggers WHERE id = $tid"), '2 * * * * *',
	'schedule again: the trigger is reconfigured (new revision)');
is(q1("SELECT count(*) || ' ' || min(schedule) FROM cron.job WHERE jobname = 'execlog schedule $aid'"), '1 * * * * *',
	'schedule again: still one job, with the new schedule');
my ($src, $sout, $serr) = $node->psql('postgres', q{SELECT execlog.schedule('nightly', 'not a schedule')});
like($serr, qr/invalid schedule/i, 'schedule: a bad cron expression is refused');
is(q1("SELECT count(*) || ' ' || min(schedule) FROM cron.job WHERE jobname = 'execlog schedule $aid'")
	 . ' ' . q1("SELECT config ->> 'cron' FROM execlog.triggers WHERE id = $tid"),
	'1 * * * * * * * * * *', 'schedule: the refused one changed neither the job nor the trigger');

ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM execlog.executions WHERE automation_id = $aid"),
	'schedule: the job started the automation');
is(q1("SELECT trigger_kind || ' ' || (trigger_id = $tid) || ' ' || payload::text FROM execlog.executions WHERE automation_id = $aid LIMIT 1"),
	'schedule true {"from": "cron"}', 'schedule: trigger_kind, trigger and payload of the scheduled execution');
like(q1("SELECT triggered_by FROM execlog.executions WHERE automation_id = $aid LIMIT 1"),
	qr/^pg_cron job \d+$/, 'schedule: triggered_by names the pg_cron job');

q1(q{SELECT execlog.unschedule('nightly')});
is(q1("SELECT count(*) FROM cron.job WHERE jobname = 'execlog schedule $aid'")
	 . q1("SELECT count(*) FROM execlog.triggers WHERE automation_id = $aid AND kind = 'schedule'"),
	'00', 'unschedule: the job and the trigger are gone');

# an automation deleted with its schedule takes the job along
my $gone = q1(q{SELECT id FROM execlog.automations WHERE name = 'gone'});
q1(q{SELECT execlog.schedule('gone', '0 4 * * *')});
q1(q{DELETE FROM execlog.automations WHERE name = 'gone'});
is(q1("SELECT count(*) FROM cron.job WHERE jobname = 'execlog schedule $gone'"), '0',
	'deleting a scheduled automation removes its job');

$node->safe_psql('postgres', q{SELECT cron.unschedule(jobid) FROM cron.job});
$node->stop;
done_testing();
