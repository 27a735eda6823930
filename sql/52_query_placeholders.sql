-- 52_query_placeholders: a placeholder in the query of an sql step would be
-- pasted into the SQL text; it is refused when the step is written (issue
-- 10, defect 3).  Values go in "args" as $1, $2, ...
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
RESET client_min_messages;
CREATE EXTENSION execlog;
INSERT INTO execlog.accounts (id, name) VALUES (1, 'a');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'inject') RETURNING id AS aid \gset
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
	VALUES (:aid, 1, 'x', 'sql', '{"query": "SELECT ''{{ $.payload.a }}''"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
	VALUES (:aid, 2, 'y', 'sql', '{"query": "SELECT 1 WHERE {{$.payload.ok}}\n"}');
-- args are the way; a "{{" alone is no placeholder
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
	VALUES (:aid, 3, 'z', 'sql', '{"query": "SELECT $1::text, ''{{''", "args": ["{{ $.payload.a }}"]}');
UPDATE execlog.steps SET config = '{"query": "SELECT {{ $.payload.a }}"}' WHERE name = 'z';
SELECT name, config FROM execlog.steps WHERE automation_id = :aid;
