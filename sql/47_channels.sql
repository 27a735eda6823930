-- 47_channels: channels with a secret config, validated when written, and
-- automations.on_failure validated when written (SPEC section 6).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP ROLE IF EXISTS t47_admin;
DROP ROLE IF EXISTS t47_reader;
RESET client_min_messages;
CREATE EXTENSION execlog;
CREATE ROLE t47_admin NOLOGIN IN ROLE execlog_admin;
CREATE ROLE t47_reader NOLOGIN IN ROLE execlog_reader;
INSERT INTO execlog.accounts (id, name) VALUES (1, 't47'), (2, 't47b');
INSERT INTO execlog.account_members VALUES (1, 't47_admin'), (1, 't47_reader');

/*
 * Channel configs: one shape per kind
 */
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES
	(1, 'ops-slack', 'slack', '{"url": "https://hooks.slack.example/services/T0/B0/XYZsecret"}'),
	(1, 'ops-teams', 'teams', '{"url": "https://prod.workflows.example/workflows/abc?sig=secret"}'),
	(1, 'ops-hook', 'webhook', '{"url": "http://127.0.0.1:9/hook", "secret": "k3y", "headers": {"X-Team": "ops"}}'),
	(1, 'ops-mail', 'email', '{"to": ["ops@example.com", "oncall@ops.example.org"]}'),
	(2, 'ops-slack', 'slack', '{"url": "https://hooks.slack.example/services/T1/B1/other"}');
SELECT account_id, name, kind FROM execlog.channels ORDER BY id;
-- refusals: the config is never repeated in a message
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'slack', '"https://a.example"');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'slack', '{}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'slack', '{"url": "ftp://a.example/secret"}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'slack', '{"url": 7}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'teams', '{"url": "https://a.example/x", "secret": "s"}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'webhook', '{"url": "https://a.example/x", "secret": ""}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'webhook', '{"url": "https://a.example/x", "headers": ["a"]}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'webhook', '{"url": "https://a.example/x", "headers": {"Bad Name": "v"}}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'webhook', E'{"url": "https://a.example/x", "headers": {"X-A": "v\\r\\nX-B: w"}}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'email', '{"to": []}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'email', '{"to": "ops@example.com"}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'email', '{"to": ["ops@example.com", "Ops <ops@example.com>"]}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'email', '{"to": ["ops@example.com", 5]}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'sms', '{"to": "+1"}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'ops-slack', 'slack', '{"url": "https://a.example/x"}');
UPDATE execlog.channels SET config = '{"url": "https://a.example/x"}' WHERE name = 'ops-mail';
UPDATE execlog.channels SET kind = 'slack' WHERE name = 'ops-mail';

/*
 * The config is secret: readers and admins see channels but not their config
 */
SET ROLE t47_reader;
SELECT name, kind FROM execlog.channels ORDER BY id;
SELECT config FROM execlog.channels;
RESET ROLE;
SET ROLE t47_admin;
SELECT config FROM execlog.channels;
INSERT INTO execlog.channels (account_id, name, kind, config)
VALUES (1, 'admin-hook', 'webhook', '{"url": "https://a.example/hook"}') RETURNING name;
UPDATE execlog.channels SET config = '{"url": "https://b.example/hook"}' WHERE name = 'admin-hook';
-- another account's channel is invisible and cannot be written
INSERT INTO execlog.channels (account_id, name, kind, config)
VALUES (2, 'theirs', 'slack', '{"url": "https://a.example/x"}');
SELECT count(*) AS visible FROM execlog.channels;
RESET ROLE;
SELECT config ->> 'url' AS url, updated_at > created_at AS touched FROM execlog.channels WHERE name = 'admin-hook';
SELECT count(*) AS public_can_read FROM information_schema.column_privileges
 WHERE table_schema = 'execlog' AND table_name = 'channels' AND column_name = 'config'
   AND grantee IN ('PUBLIC', 'execlog_reader', 'execlog_operator', 'execlog_admin')
   AND privilege_type = 'SELECT';

/*
 * on_failure: validated when the automation is written
 */
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES
	(1, 'named', '{"task": {"assignee": "ops", "title": "fix {{ $.payload.ref }}", "due": "4 hours"},
				   "alert": {"channel": "ops-slack", "message": "{{ $.payload.ref }} failed"}}'),
	(1, 'mailed', '{"alert": {"channel": "email", "target": "maria@example.com"}}'),
	(1, 'plain', NULL);
SELECT name, on_failure -> 'alert' ->> 'channel' AS channel FROM execlog.automations ORDER BY id;
-- bad shapes
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '[]');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"alarm": {}}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"task": "ops"}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"task": {"owner": "ops"}}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"task": {"assignee": 5}}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"task": {"due": "soon"}}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"task": {"due": "-1 hour"}}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"alert": {"message": "m"}}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"alert": {"channel": "ops-slack", "to": "x"}}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"alert": {"channel": ["ops-slack"]}}');
-- literal URLs are refused with a hint to create a channel
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"alert": {"channel": "https://hooks.slack.example/services/T0/B0/X"}}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"alert": {"channel": "webhook", "target": "http://127.0.0.1:9/hook"}}');
-- unknown channels, a target with a channel, a bad address
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"alert": {"channel": "nowhere"}}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"alert": {"channel": "slack"}}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"alert": {"channel": "ops-slack", "target": "a@example.com"}}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"alert": {"channel": "email", "target": "not an address"}}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"alert": {"channel": "email"}}');
-- another account's channel does not count
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (2, 'b-only', 'slack', '{"url": "https://a.example/x"}');
INSERT INTO execlog.automations (account_id, name, on_failure) VALUES (1, 'bad', '{"alert": {"channel": "b-only"}}');
-- an update is checked too
UPDATE execlog.automations SET on_failure = '{"alert": {"channel": "ops-nope"}}' WHERE name = 'plain';
SELECT count(*) AS automations FROM execlog.automations;

/*
 * A channel named by on_failure is kept
 */
DELETE FROM execlog.channels WHERE account_id = 1 AND name = 'ops-slack';
UPDATE execlog.channels SET name = 'slack-ops' WHERE account_id = 1 AND name = 'ops-slack';
UPDATE execlog.channels SET config = '{"url": "https://hooks.slack.example/services/T0/B0/new"}'
 WHERE account_id = 1 AND name = 'ops-slack';
DELETE FROM execlog.channels WHERE account_id = 1 AND name = 'ops-teams';
UPDATE execlog.automations SET on_failure = NULL WHERE name = 'named';
DELETE FROM execlog.channels WHERE account_id = 1 AND name = 'ops-slack';
SELECT account_id, name FROM execlog.channels ORDER BY id;

/*
 * Alerts: channel_id, digest_id, coalesced status
 */
SELECT column_name FROM information_schema.columns
 WHERE table_schema = 'execlog' AND table_name = 'alerts' ORDER BY ordinal_position;
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'alerts_status_check';

DROP EXTENSION execlog CASCADE;
DROP ROLE t47_admin;
DROP ROLE t47_reader;
