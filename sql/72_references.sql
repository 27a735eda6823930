-- 72_references: executions refer to automations and triggers without
-- foreign keys (issue 13, point 5; src/references.c), with the foreign
-- keys' semantics: a new execution must name an existing automation and
-- trigger, an automation with executions cannot be deleted or renumbered,
-- a deleted trigger leaves its executions with trigger_id NULL, TRUNCATE
-- is refused while executions refer to the table.  Concurrency is in the
-- isolation spec references.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
RESET client_min_messages;
CREATE EXTENSION execlog;

INSERT INTO execlog.accounts (id, name) VALUES (1, 'acme');
INSERT INTO execlog.automations (id, account_id, name) VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 1, 'unused');
INSERT INTO execlog.triggers (id, automation_id, kind, config) VALUES (100, 1, 'api', '{}'), (101, 1, 'api', '{}');

-- no foreign key constraint on executions to automations or triggers
SELECT count(*) AS fkeys FROM pg_constraint
 WHERE conrelid = 'execlog.executions'::regclass AND contype = 'f';

-- what does not exist is refused (foreign_key_violation)
\set VERBOSITY sqlstate
INSERT INTO execlog.executions (automation_id) VALUES (999);
INSERT INTO execlog.executions (automation_id, trigger_id) VALUES (1, 999);
\set VERBOSITY default
INSERT INTO execlog.executions (automation_id) VALUES (999);
INSERT INTO execlog.executions (automation_id, trigger_id) VALUES (1, 999);
SELECT count(*) FROM execlog.start_many('nope', ARRAY['{}']::jsonb[]);

-- executions of a, through its manual trigger, trigger 100, and in bulk
INSERT INTO execlog.executions (automation_id) VALUES (1);
INSERT INTO execlog.executions (automation_id, trigger_id) VALUES (1, 100), (1, 100), (1, 101);
SELECT count(*) FROM execlog.start_many('a', ARRAY['{}', '{}']::jsonb[]);
SELECT count(*) FROM execlog.start_many('b', ARRAY['{}']::jsonb[]);

-- an automation with executions: delete and renumbering refused, nothing changed
DELETE FROM execlog.automations WHERE id = 1;
DELETE FROM execlog.automations WHERE id IN (2, 3);
UPDATE execlog.automations SET id = 10 WHERE id = 1;
SELECT id, (SELECT count(*) FROM execlog.executions e WHERE e.automation_id = a.id) AS executions,
	   (SELECT count(*) FROM execlog.triggers t WHERE t.automation_id = a.id) AS triggers
  FROM execlog.automations a ORDER BY id;
-- one without executions goes
DELETE FROM execlog.automations WHERE id = 3;
SELECT id FROM execlog.automations ORDER BY id;

-- a referenced trigger id cannot change
UPDATE execlog.triggers SET id = 200 WHERE id = 100;
-- a deleted trigger sets trigger_id NULL on its executions only
DELETE FROM execlog.triggers WHERE id = 100;
SELECT trigger_id, trigger_kind, count(*) FROM execlog.executions GROUP BY 1, 2 ORDER BY 1 NULLS FIRST, 2;
-- an unreferenced trigger id may change (the api trigger 101 after its execution goes)
DELETE FROM execlog.executions WHERE trigger_id = 101;
UPDATE execlog.triggers SET id = 102 WHERE id = 101;
SELECT id, kind FROM execlog.triggers ORDER BY id;

-- TRUNCATE refused while executions refer to the table, allowed after
TRUNCATE execlog.automations CASCADE;
TRUNCATE execlog.triggers CASCADE;
SELECT count(*) AS automations FROM execlog.automations;
TRUNCATE execlog.executions CASCADE;
TRUNCATE execlog.triggers, execlog.automations CASCADE;
SELECT count(*) AS automations FROM execlog.automations;

DROP EXTENSION execlog CASCADE;
