-- 51_run_as: every write that changes what an automation does needs
-- membership in its run_as role (issue 10, defect 1).  Roles are
-- cluster-wide: every role here is named t51_* and dropped at the end.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP TABLE IF EXISTS t51_orders;
DROP ROLE IF EXISTS t51_admin;
DROP ROLE IF EXISTS t51_other;
DROP ROLE IF EXISTS t51_boss;
RESET client_min_messages;
CREATE EXTENSION execlog;

CREATE ROLE t51_boss NOLOGIN;
CREATE ROLE t51_admin NOLOGIN IN ROLE execlog_admin;
CREATE ROLE t51_other NOLOGIN IN ROLE execlog_admin;
INSERT INTO execlog.accounts (id, name) VALUES (1, 'a');
INSERT INTO execlog.account_members VALUES (1, 't51_admin'), (1, 't51_other');

-- made by a more powerful role: runs its sql steps as t51_boss
INSERT INTO execlog.automations (account_id, name, run_as) VALUES (1, 'boss-job', 't51_boss')
	RETURNING id AS boss_job \gset
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
	VALUES (:boss_job, 1, 'one', 'sql', '{"query": "SELECT 1"}');
INSERT INTO execlog.triggers (automation_id, kind, config)
	VALUES (:boss_job, 'api', '{"note": "x"}') RETURNING id AS boss_api \gset
-- another admin's automation
INSERT INTO execlog.automations (account_id, name, run_as) VALUES (1, 'other-job', 't51_other')
	RETURNING id AS other_job \gset
CREATE TABLE t51_orders (id int, total int);
ALTER TABLE t51_orders OWNER TO t51_admin;

SET ROLE t51_admin;
-- steps: insert, update, delete
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
	VALUES (:boss_job, 2, 'evil', 'sql', '{"query": "ALTER ROLE t51_admin SUPERUSER"}');
UPDATE execlog.steps SET config = '{"query": "ALTER ROLE t51_admin SUPERUSER"}'
 WHERE automation_id = :boss_job;
DELETE FROM execlog.steps WHERE automation_id = :boss_job;
-- moving a step of its own automation into the boss's
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'mine') RETURNING id AS mine \gset
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
	VALUES (:mine, 1, 'mine-step', 'sql', '{"query": "SELECT 1"}');
UPDATE execlog.steps SET automation_id = :boss_job, position = 5 WHERE automation_id = :mine;
-- the automation row itself
UPDATE execlog.automations SET on_failure = '{"alert": {"webhook": "https://x.example.com"}}'
 WHERE id = :boss_job;
UPDATE execlog.automations SET run_as = 't51_admin' WHERE id = :boss_job;
UPDATE execlog.automations SET max_retries = 5 WHERE id = :other_job;
-- triggers: insert, update, delete; watch and unwatch
INSERT INTO execlog.triggers (automation_id, kind, config) VALUES (:boss_job, 'api', '{}');
UPDATE execlog.triggers SET config = '{"note": "y"}' WHERE id = :boss_api;
DELETE FROM execlog.triggers WHERE id = :boss_api;
SELECT execlog.watch('t51_orders', 'boss-job');
SELECT count(*) AS row_triggers FROM pg_trigger WHERE tgrelid = 't51_orders'::regclass;
-- its own automation: all allowed
UPDATE execlog.steps SET config = '{"query": "SELECT 2"}' WHERE automation_id = :mine;
UPDATE execlog.automations SET max_retries = 5 WHERE id = :mine;
SELECT execlog.watch('t51_orders', 'mine') > 0 AS watched;
SELECT execlog.unwatch('t51_orders', 'mine');
DELETE FROM execlog.steps WHERE automation_id = :mine;
RESET ROLE;

-- nothing of the boss's automation changed
SELECT s.name, s.config, a.run_as, a.on_failure, a.revision
  FROM execlog.automations a JOIN execlog.steps s ON s.automation_id = a.id
 WHERE a.id = :boss_job;
SELECT kind, config FROM execlog.triggers WHERE automation_id = :boss_job ORDER BY id;
SELECT max_retries FROM execlog.automations WHERE id = :other_job;

-- a member of run_as may change it; the superuser may change anything
GRANT t51_boss TO t51_admin;
SET ROLE t51_admin;
UPDATE execlog.steps SET config = '{"query": "SELECT 3"}' WHERE automation_id = :boss_job;
RESET ROLE;
REVOKE t51_boss FROM t51_admin;
UPDATE execlog.automations SET max_retries = 4 WHERE id = :boss_job;
SELECT s.config, a.max_retries FROM execlog.automations a JOIN execlog.steps s ON s.automation_id = a.id
 WHERE a.id = :boss_job;

-- deleting an automation takes its steps and triggers along
DELETE FROM execlog.automations WHERE id = :other_job;

DROP TABLE t51_orders;
DROP OWNED BY t51_admin, t51_other, t51_boss;
DROP ROLE t51_admin, t51_other, t51_boss;
