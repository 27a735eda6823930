-- 48_delivery: the settings of alert delivery refuse bad values (SPEC
-- section 6); the workers' coalescing windows are internal; channel configs
-- that delivery could not use are refused when written.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP ROLE IF EXISTS t48_admin;
DROP ROLE IF EXISTS t48_reader;
RESET client_min_messages;
CREATE EXTENSION execlog;
CREATE ROLE t48_admin NOLOGIN IN ROLE execlog_admin;
CREATE ROLE t48_reader NOLOGIN IN ROLE execlog_reader;
INSERT INTO execlog.accounts (id, name) VALUES (1, 't48');
INSERT INTO execlog.account_members VALUES (1, 't48_admin'), (1, 't48_reader');

/*
 * Settings: defaults, and refusals.  ALTER SYSTEM runs the same checks as
 * the configuration file.
 */
SELECT name, setting, unit, context FROM pg_settings
 WHERE name IN ('execlog.smtp_url', 'execlog.smtp_from', 'execlog.alert_max_attempts',
				'execlog.alert_retry_delay', 'execlog.alert_coalesce', 'execlog.alert_delivery')
 ORDER BY name;
ALTER SYSTEM SET execlog.smtp_url = 'http://mail.example';
ALTER SYSTEM SET execlog.smtp_url = 'smtp://';
ALTER SYSTEM SET execlog.smtp_from = 'not an address';
ALTER SYSTEM SET execlog.smtp_from = E'ops@example.com\r\nBcc: x@example.com';
ALTER SYSTEM SET execlog.smtp_from = 'Ops <ops@example.com';
ALTER SYSTEM SET execlog.alert_max_attempts = 0;
ALTER SYSTEM SET execlog.alert_retry_delay = 0;
ALTER SYSTEM SET execlog.alert_coalesce = '-1s';
ALTER SYSTEM SET execlog.alert_delivery = 'sometimes';
-- accepted values (then reset: nothing stays in postgresql.auto.conf)
ALTER SYSTEM SET execlog.smtp_url = 'smtps://alerts:pw@mail.example:465';
ALTER SYSTEM SET execlog.smtp_from = 'execlog <alerts@example.com>';
ALTER SYSTEM SET execlog.alert_coalesce = 0;
ALTER SYSTEM SET execlog.alert_delivery = off;
ALTER SYSTEM RESET execlog.smtp_url;
ALTER SYSTEM RESET execlog.smtp_from;
ALTER SYSTEM RESET execlog.alert_coalesce;
ALTER SYSTEM RESET execlog.alert_delivery;
-- the settings are not for sessions
SET execlog.alert_coalesce = '1min';

/*
 * Coalescing windows: internal (no role but the owner reads them)
 */
SET ROLE t48_reader;
SELECT * FROM execlog.alert_windows;
RESET ROLE;
SET ROLE t48_admin;
SELECT * FROM execlog.alert_windows;
RESET ROLE;
SELECT pg_catalog.obj_description('execlog.alert_windows'::regclass, 'pg_class');

/*
 * Channel configs delivery could not use are refused when written
 */
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'slack', '{"url": "https://user:pw@hooks.example/x"}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'teams', '{"url": "smtp://mail.example/x"}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'webhook', '{"url": "https://a.example/x", "headers": {"X-A": 1}}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'email', '{"to": ["ops@example.com\r\nBcc: x@example.com"]}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'x', 'email', '{"to": ["ops@example.com"], "url": "smtp://mail.example"}');
SET ROLE t48_admin;
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'ok', 'webhook', '{"url": "https://a.example/x", "secret": "k"}');
SELECT config FROM execlog.channels;
RESET ROLE;

DROP EXTENSION execlog CASCADE;
DROP ROLE t48_admin;
DROP ROLE t48_reader;
