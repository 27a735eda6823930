-- execlog.prune(older_than) deletes finished executions with everything
-- recorded about them, and nothing else.
DROP EXTENSION IF EXISTS execlog CASCADE;
CREATE EXTENSION execlog;
INSERT INTO execlog.accounts (name) VALUES ('t45');
INSERT INTO execlog.automations (account_id, name, max_retries) VALUES (1, 'p', 2);
SELECT execlog.start('p') FROM generate_series(1, 4);
-- 1: success, 2: failed, 3: running, 4: pending
UPDATE execlog.executions SET status = 'running' WHERE id IN (1, 2, 3);
UPDATE execlog.executions SET status = 'success' WHERE id = 1;
UPDATE execlog.executions SET status = 'failed' WHERE id = 2;
INSERT INTO execlog.execution_steps (execution_id, attempt, position, account_id, name, kind, status)
SELECT id, 1, 1, 1, 's', 'sql', 'success' FROM execlog.executions;
INSERT INTO execlog.tasks (execution_id, account_id, title) VALUES (2, 1, 'look');
-- nothing is old enough yet
SELECT execlog.prune('1 hour');
-- everything finished goes
SELECT execlog.prune('0');
SELECT id, status FROM execlog.executions ORDER BY id;
SELECT DISTINCT execution_id FROM execlog.execution_steps ORDER BY 1;
SELECT DISTINCT execution_id FROM execlog.transitions ORDER BY 1;
SELECT count(*) AS tasks FROM execlog.tasks;
-- bad input
SELECT execlog.prune(NULL);
SELECT execlog.prune('-1 day');
SELECT execlog.prune('1000000 years');
SELECT execlog.prune('100 years') AS at_most_100_years;
