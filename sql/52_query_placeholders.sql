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

-- HTTP methods (defect 8): GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS only
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
	VALUES (:aid, 4, 'h1', 'http', '{"url": "http://127.0.0.1:9/", "method": "CONNECT"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
	VALUES (:aid, 4, 'h2', 'http', '{"url": "http://127.0.0.1:9/", "method": "TRACE"}');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
	VALUES (:aid, 4, 'h3', 'http', '{"url": "http://127.0.0.1:9/", "method": "PROPFIND"}');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
	SELECT :aid, 10 + n, 'm' || n, 'http', jsonb_build_object('url', 'http://127.0.0.1:9/', 'method', m)
	  FROM unnest(ARRAY['GET', 'head', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) WITH ORDINALITY AS t(m, n);
SELECT count(*) AS allowed_methods FROM execlog.steps WHERE automation_id = :aid AND kind = 'http';
