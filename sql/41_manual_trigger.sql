-- The manual trigger of an automation keeps its kind and lives as long as
-- the automation: execlog.start() always has a trigger to record.
DROP EXTENSION IF EXISTS execlog CASCADE;
CREATE EXTENSION execlog;
INSERT INTO execlog.accounts (name) VALUES ('t41');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'keeper');
-- refused: deleting it, or changing its kind
DELETE FROM execlog.triggers WHERE kind = 'manual';
UPDATE execlog.triggers SET kind = 'api' WHERE kind = 'manual';
-- still there, unchanged
SELECT kind, revision FROM execlog.triggers;
-- its config may change (and that bumps its revision)
UPDATE execlog.triggers SET config = '{"note": "x"}' WHERE kind = 'manual';
SELECT kind, revision FROM execlog.triggers;
-- other triggers can be deleted
INSERT INTO execlog.triggers (automation_id, kind) VALUES (1, 'api');
DELETE FROM execlog.triggers WHERE kind = 'api';
-- deleting the automation takes its manual trigger with it
DELETE FROM execlog.automations WHERE name = 'keeper';
SELECT count(*) AS triggers_left FROM execlog.triggers;
