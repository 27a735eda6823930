-- 54_connection_host: a connection's credentials are not sent to a new host
-- unless auth is given again (issue 10, defect 5).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
RESET client_min_messages;
CREATE EXTENSION execlog;
INSERT INTO execlog.accounts (id, name) VALUES (1, 'a');
INSERT INTO execlog.connections (account_id, name, base_url, auth) VALUES
	(1, 'crm', 'https://crm.example.com/api', '{"type": "bearer", "token": "s3cret"}'),
	(1, 'open', 'https://open.example.com', NULL);
UPDATE execlog.connections SET base_url = 'http://attacker.example.net/' WHERE name = 'crm';
\echo :LAST_ERROR_SQLSTATE
UPDATE execlog.connections SET base_url = 'https://crm.example.com:8443/api' WHERE name = 'crm';
-- same host, other path: fine; new host with new auth: fine; no auth: fine
UPDATE execlog.connections SET base_url = 'https://CRM.example.com/v2' WHERE name = 'crm';
UPDATE execlog.connections SET base_url = 'https://crm2.example.com',
	   auth = '{"type": "bearer", "token": "other"}' WHERE name = 'crm';
UPDATE execlog.connections SET base_url = 'https://elsewhere.example.com' WHERE name = 'open';
SELECT name, base_url FROM execlog.connections ORDER BY name;
