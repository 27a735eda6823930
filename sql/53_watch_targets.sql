-- 53_watch_targets: execlog.watch() refuses targets that are not plain
-- user tables (issue 10, defect 6).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP VIEW IF EXISTS t53_view;
DROP TABLE IF EXISTS t53_plain;
RESET client_min_messages;
CREATE EXTENSION execlog;
INSERT INTO execlog.accounts (id, name) VALUES (1, 'a');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'w');
-- execlog's own tables: once made every start() fail with stack depth exceeded
SELECT execlog.watch('execlog.executions', 'w');
SELECT execlog.watch('execlog.transitions', 'w');
-- system catalogs
SELECT execlog.watch('pg_catalog.pg_class', 'w');
-- temporary tables
CREATE TEMP TABLE t53_temp (id int);
SELECT execlog.watch('t53_temp', 'w');
-- views (and other relations that are not tables)
CREATE TABLE t53_plain (id int);
CREATE VIEW t53_view AS SELECT * FROM t53_plain;
SELECT execlog.watch('t53_view', 'w');
SELECT count(*) AS data_triggers FROM execlog.triggers WHERE kind = 'data';
SELECT execlog.start('w') > 0 AS start_still_works;
-- a plain table is fine
SELECT execlog.watch('t53_plain', 'w') > 0 AS watched;
SELECT execlog.unwatch('t53_plain', 'w');
DROP VIEW t53_view;
DROP TABLE t53_plain;
