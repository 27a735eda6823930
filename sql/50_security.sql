-- 50_security: grants and tenancy (SPEC section 9).  Roles are
-- cluster-wide: every role here is named t50_* and dropped at the end.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP FUNCTION IF EXISTS t50_probe(text);
DROP ROLE IF EXISTS t50_nobody;
DROP ROLE IF EXISTS t50_reader;
DROP ROLE IF EXISTS t50_operator;
DROP ROLE IF EXISTS t50_admin;
DROP ROLE IF EXISTS t50_alice;
DROP ROLE IF EXISTS t50_bob;
DROP ROLE IF EXISTS t50_team_a;
DROP ROLE IF EXISTS t50_team_b;
RESET client_min_messages;
CREATE EXTENSION execlog;

CREATE ROLE t50_nobody NOLOGIN;
CREATE ROLE t50_reader NOLOGIN IN ROLE execlog_reader;
CREATE ROLE t50_operator NOLOGIN IN ROLE execlog_operator;
CREATE ROLE t50_admin NOLOGIN IN ROLE execlog_admin;
CREATE ROLE t50_team_a NOLOGIN;
CREATE ROLE t50_team_b NOLOGIN;
CREATE ROLE t50_alice NOLOGIN IN ROLE execlog_operator, t50_team_a;
CREATE ROLE t50_bob NOLOGIN IN ROLE execlog_operator, t50_team_b;

-- t50_probe(sql): run a statement as the current role; 'ok' or the error
CREATE FUNCTION t50_probe(sql text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN others THEN
	RETURN SQLERRM;
END
$$;

-- Two accounts.  Members of t50_team_a see account a, of t50_team_b b.
INSERT INTO execlog.accounts (id, name) VALUES (1, 'a'), (2, 'b');
INSERT INTO execlog.account_members VALUES
	(1, 't50_team_a'), (2, 't50_team_b'),
	(1, 't50_reader'), (1, 't50_operator'), (1, 't50_admin');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'a-job') RETURNING id AS a_job \gset
INSERT INTO execlog.automations (account_id, name) VALUES (2, 'b-job') RETURNING id AS b_job \gset
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'shared'), (2, 'shared');
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES
	(:a_job, 1, 'a-step', 'sql', '{"query": "SELECT 1"}'),
	(:b_job, 1, 'b-step', 'sql', '{"query": "SELECT 1"}');
INSERT INTO execlog.connections (account_id, name, base_url, auth) VALUES
	(1, 'a-crm', 'https://a.example.com', '{"type": "bearer", "token": "secret-a"}'),
	(2, 'b-crm', 'https://b.example.com', '{"type": "bearer", "token": "secret-b"}');
SELECT execlog.start('a-job') AS a1, execlog.start('a-job') AS a2,
	   execlog.start('b-job') AS b1, execlog.start('b-job') AS b2 \gset
UPDATE execlog.executions SET status = 'running' WHERE id IN (:a1, :a2, :b1, :b2);
UPDATE execlog.executions SET status = 'failed', error = 'boom' WHERE id IN (:a1, :b1);
UPDATE execlog.executions SET status = 'paused' WHERE id IN (:a2, :b2);
INSERT INTO execlog.execution_steps (execution_id, attempt, position, account_id, name, kind, status)
SELECT e.id, 1, 1, e.account_id, s.name, s.kind, 'failed'
  FROM execlog.executions e JOIN execlog.steps s USING (automation_id);
INSERT INTO execlog.tasks (execution_id, account_id, title) VALUES (:a1, 1, 'a-task') RETURNING id AS a_task \gset
INSERT INTO execlog.tasks (execution_id, account_id, title) VALUES (:b1, 2, 'b-task') RETURNING id AS b_task \gset
INSERT INTO execlog.alerts (execution_id, account_id, channel, target, message) VALUES
	(:a1, 1, 'webhook', 'https://a.example.com/alert', 'a failed'),
	(:b1, 2, 'webhook', 'https://b.example.com/alert', 'b failed');

/*
 * A role without execlog grants can use nothing: not the schema, not a
 * table, view, function or type
 */
SET ROLE t50_nobody;
SELECT t50_probe(format('SELECT FROM execlog.%I', c.relname)) AS result,
	   count(*) > 10 AS for_all_relations
  FROM pg_class c
 WHERE c.relnamespace = 'execlog'::regnamespace AND c.relkind IN ('r', 'v', 'p')
 GROUP BY 1;
SELECT t50_probe(format('SELECT execlog.%I(%s)', p.proname,
						(SELECT string_agg('NULL::' || format_type(t, NULL), ', ')
						   FROM unnest(p.proargtypes) t))) AS result,
	   count(*) > 10 AS for_all_functions
  FROM pg_proc p
 WHERE p.pronamespace = 'execlog'::regnamespace
 GROUP BY 1;
SELECT t50_probe('SELECT NULL::execlog.status') AS type_status;
SELECT t50_probe('INSERT INTO execlog.automations (account_id, name) VALUES (1, ''x'')') AS insert_automation;
RESET ROLE;

/*
 * execlog_reader: SELECT on tables and views, but not the connections'
 * secrets, and no function of the API
 */
SET ROLE t50_reader;
SELECT t50_probe(format('SELECT count(*) FROM execlog.%I', c.relname)) AS result,
	   string_agg(c.relname, ', ' ORDER BY c.relname) AS relations
  FROM pg_class c
 WHERE c.relnamespace = 'execlog'::regnamespace AND c.relkind IN ('r', 'v', 'p')
 GROUP BY 1;
SELECT id, name, base_url FROM execlog.connections ORDER BY id;
SELECT auth FROM execlog.connections;
SELECT * FROM execlog.connections;
SELECT execlog.start('a-job');
SELECT execlog.start(:a_job::bigint);
SELECT execlog.retry(:a1);
SELECT execlog.cancel(:a2);
SELECT execlog.resume(:a2);
SELECT execlog.complete_task(:a_task);
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'reader-made');
UPDATE execlog.executions SET status = 'cancelled' WHERE id = :a2;
DELETE FROM execlog.transitions;
RESET ROLE;

/*
 * execlog_operator: the API, but no definitions and no direct writes
 */
SET ROLE t50_operator;
SELECT execlog.start('a-job') AS op_started \gset
SELECT execlog.retry(:a1) = :a1 AS retried;
SELECT execlog.resume(:a2, '{"ok": true}');
SELECT execlog.cancel(:op_started);
SELECT execlog.complete_task(:a_task, 'done by operator');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'operator-made');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (:a_job, 2, 'x', 'sql', '{"query": "SELECT 1"}');
UPDATE execlog.triggers SET config = '{"x": 1}';
INSERT INTO execlog.executions (automation_id) VALUES (:a_job);
UPDATE execlog.executions SET status = 'cancelled' WHERE id = :a2;
UPDATE execlog.tasks SET status = 'dismissed';
SELECT auth FROM execlog.connections;
RESET ROLE;
SELECT e.id - :a1 AS execution, e.status, e.attempt, t.by
  FROM execlog.executions e
  JOIN LATERAL (SELECT by FROM execlog.transitions WHERE execution_id = e.id
				 ORDER BY id DESC LIMIT 1) t ON true
 WHERE e.id IN (:a1, :a2, :op_started) ORDER BY e.id;
SELECT status, note, closed_by FROM execlog.tasks WHERE id = :a_task;

/*
 * execlog_admin: defines automations and connections of its own accounts
 */
SET ROLE t50_admin;
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'admin-made')
RETURNING name, run_as, revision;
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
SELECT id, 1, 'first', 'sql', '{"query": "SELECT 1"}' FROM execlog.automations WHERE name = 'admin-made';
UPDATE execlog.triggers SET config = '{"note": "admin"}'
 WHERE automation_id = (SELECT id FROM execlog.automations WHERE name = 'admin-made');
INSERT INTO execlog.connections (account_id, name, base_url, auth)
VALUES (1, 'admin-crm', 'https://crm.example.com', '{"type": "basic", "username": "u", "password": "p"}');
UPDATE execlog.connections SET auth = '{"type": "bearer", "token": "t"}' WHERE name = 'admin-crm';
SELECT auth FROM execlog.connections;
SELECT execlog.start('admin-made') > 0 AS admin_can_start;
-- not in another account
INSERT INTO execlog.automations (account_id, name) VALUES (2, 'admin-made-b');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES (:b_job, 2, 'sneaky', 'sql', '{"query": "SELECT 1"}');
INSERT INTO execlog.triggers (automation_id, kind) VALUES (:b_job, 'api');
INSERT INTO execlog.connections (account_id, name, base_url) VALUES (2, 'b-admin', 'https://x.example.com');
UPDATE execlog.automations SET enabled = false WHERE id = :b_job;
UPDATE execlog.connections SET base_url = 'https://evil.example.com' WHERE account_id = 2;
DELETE FROM execlog.steps WHERE automation_id = :b_job;
-- nor an automation moved into it
UPDATE execlog.automations SET account_id = 2 WHERE name = 'admin-made';
-- and no tenancy administration
INSERT INTO execlog.accounts (name) VALUES ('c');
INSERT INTO execlog.account_members VALUES (2, 't50_admin');
RESET ROLE;
SELECT a.name, a.enabled, a.revision, (SELECT count(*) FROM execlog.steps s WHERE s.automation_id = a.id) AS steps
  FROM execlog.automations a WHERE a.account_id = 2 ORDER BY a.name;
SELECT name, base_url FROM execlog.connections WHERE account_id = 2;

/*
 * Row-level security: each role sees only its accounts' rows, in tables
 * and in views
 */
SET ROLE t50_alice;
SELECT (SELECT string_agg(name, ',' ORDER BY name) FROM execlog.accounts) AS accounts,
	   (SELECT string_agg(role_name, ',' ORDER BY role_name) FROM execlog.account_members) AS members,
	   (SELECT string_agg(DISTINCT account_id::text, ',') FROM execlog.automations) AS automations,
	   (SELECT string_agg(DISTINCT name, ',') FROM execlog.steps) AS steps,
	   (SELECT count(*) FROM execlog.triggers) AS triggers,
	   (SELECT string_agg(name, ',' ORDER BY name) FROM execlog.connections) AS connections,
	   (SELECT string_agg(DISTINCT account_id::text, ',') FROM execlog.executions) AS executions,
	   (SELECT string_agg(DISTINCT account_id::text, ',') FROM execlog.execution_steps) AS execution_steps,
	   (SELECT string_agg(DISTINCT account_id::text, ',') FROM execlog.transitions) AS transitions,
	   (SELECT string_agg(title, ',' ORDER BY title) FROM execlog.tasks) AS tasks,
	   (SELECT string_agg(message, ',' ORDER BY message) FROM execlog.alerts) AS alerts;
SELECT id - :a1 AS execution, account, automation, status, attempt, steps, error
  FROM execlog.execution_log ORDER BY id;
SELECT execution_id - :a1 AS execution, attempt, step, kind, status FROM execlog.step_log ORDER BY 1, 2;
RESET ROLE;
SET ROLE t50_bob;
SELECT (SELECT string_agg(name, ',' ORDER BY name) FROM execlog.accounts) AS accounts,
	   (SELECT string_agg(role_name, ',' ORDER BY role_name) FROM execlog.account_members) AS members,
	   (SELECT string_agg(DISTINCT account_id::text, ',') FROM execlog.automations) AS automations,
	   (SELECT string_agg(DISTINCT name, ',') FROM execlog.steps) AS steps,
	   (SELECT count(*) FROM execlog.triggers) AS triggers,
	   (SELECT string_agg(name, ',' ORDER BY name) FROM execlog.connections) AS connections,
	   (SELECT string_agg(DISTINCT account_id::text, ',') FROM execlog.executions) AS executions,
	   (SELECT string_agg(DISTINCT account_id::text, ',') FROM execlog.execution_steps) AS execution_steps,
	   (SELECT string_agg(DISTINCT account_id::text, ',') FROM execlog.transitions) AS transitions,
	   (SELECT string_agg(title, ',' ORDER BY title) FROM execlog.tasks) AS tasks,
	   (SELECT string_agg(message, ',' ORDER BY message) FROM execlog.alerts) AS alerts;
SELECT id - :a1 AS execution, account, automation, status, attempt, steps, error
  FROM execlog.execution_log ORDER BY id;
SELECT execution_id - :a1 AS execution, attempt, step, kind, status FROM execlog.step_log ORDER BY 1, 2;
RESET ROLE;
-- a reader in no account sees nothing
CREATE ROLE t50_lonely NOLOGIN IN ROLE execlog_reader;
SET ROLE t50_lonely;
SELECT (SELECT count(*) FROM execlog.executions) AS executions,
	   (SELECT count(*) FROM execlog.execution_log) AS execution_log,
	   (SELECT count(*) FROM execlog.accounts) AS accounts;
RESET ROLE;
DROP ROLE t50_lonely;

/*
 * The API acts only on the caller's accounts: another account's objects
 * do not exist for it
 */
SELECT to_jsonb(e) AS b1_before FROM execlog.executions e WHERE id = :b1 \gset
SELECT to_jsonb(e) AS b2_before FROM execlog.executions e WHERE id = :b2 \gset
SET ROLE t50_alice;
SELECT execlog.start('b-job');
SELECT execlog.start(:b_job::bigint);
SELECT execlog.start('shared', '{}', 'b');
SELECT execlog.retry(:b1);
\echo :LAST_ERROR_SQLSTATE
SELECT execlog.cancel(:b2);
SELECT execlog.resume(:b2);
SELECT execlog.complete_task(:b_task);
-- a name in several accounts is not ambiguous to a role seeing only one
SELECT execlog.start('shared') AS alice_started \gset
RESET ROLE;
SELECT to_jsonb(e) = :'b1_before' AS b1_unchanged FROM execlog.executions e WHERE id = :b1;
SELECT to_jsonb(e) = :'b2_before' AS b2_unchanged FROM execlog.executions e WHERE id = :b2;
SELECT status FROM execlog.tasks WHERE id = :b_task;
SELECT a.account_id, e.triggered_by = session_user AS triggered_by_session_user
  FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
 WHERE e.id = :alice_started;

/*
 * transitions.by records the role that acted
 */
SET ROLE t50_bob;
SELECT execlog.cancel(:b2);
SELECT execlog.retry(:b1) = :b1 AS retried;
RESET ROLE;
SELECT execution_id - :a1 AS execution, from_status, to_status, attempt, by
  FROM execlog.transitions
 WHERE by LIKE 't50_%' ORDER BY id;
-- a plain UPDATE by the superuser records the superuser
UPDATE execlog.executions SET status = 'running' WHERE id = :alice_started;
SELECT by = current_user AS by_superuser FROM execlog.transitions
 WHERE execution_id = :alice_started ORDER BY id DESC LIMIT 1;
-- an API call that fails inside the caller's subtransaction does not leave
-- its role behind as the actor of later changes in that transaction
BEGIN;
SET LOCAL ROLE t50_alice;
SELECT t50_probe(format('SELECT execlog.retry(%s)', :alice_started)) AS refused;
SELECT t50_probe(format('SELECT execlog.cancel(%s)', :b1)) AS refused;
RESET ROLE;
UPDATE execlog.executions SET status = 'success' WHERE id = :alice_started;
SELECT to_status, by = current_user AS by_superuser FROM execlog.transitions
 WHERE execution_id = :alice_started ORDER BY id DESC LIMIT 1;
COMMIT;

/*
 * Nothing reaches PUBLIC, and the execlog roles hold only what SPEC
 * section 9 gives them
 */
SELECT has_schema_privilege('public', 'execlog', 'USAGE') AS public_schema,
	   has_schema_privilege('execlog_reader', 'execlog', 'CREATE') AS reader_create,
	   has_schema_privilege('execlog_admin', 'execlog', 'CREATE') AS admin_create;
SELECT r.rolname, c.relname, string_agg(a.privilege_type, ',' ORDER BY a.privilege_type) AS privileges
  FROM pg_class c, aclexplode(c.relacl) a, pg_roles r
 WHERE c.relnamespace = 'execlog'::regnamespace AND r.oid = a.grantee
   AND r.rolname IN ('execlog_reader', 'execlog_operator', 'execlog_admin')
   AND a.privilege_type <> 'SELECT'
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT p.proname, string_agg(r.rolname, ',' ORDER BY r.rolname) AS grantees
  FROM pg_proc p, aclexplode(p.proacl) a, pg_roles r
 WHERE p.pronamespace = 'execlog'::regnamespace AND r.oid = a.grantee
   AND r.rolname IN ('execlog_reader', 'execlog_operator', 'execlog_admin')
 GROUP BY 1 ORDER BY 1;
SELECT rolname, rolcanlogin, rolsuper, rolbypassrls, rolcreaterole
  FROM pg_roles WHERE rolname LIKE 'execlog\_%' ORDER BY 1;

DROP FUNCTION t50_probe(text);
DROP OWNED BY t50_nobody, t50_reader, t50_operator, t50_admin, t50_alice, t50_bob, t50_team_a, t50_team_b;
DROP ROLE t50_nobody, t50_reader, t50_operator, t50_admin, t50_alice, t50_bob, t50_team_a, t50_team_b;
