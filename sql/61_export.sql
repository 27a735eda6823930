-- execlog.export_contexts: flattened process contexts as real tables (SPEC 8)
DROP EXTENSION IF EXISTS execlog CASCADE;
CREATE EXTENSION execlog;
\set VERBOSITY default
\set SHOW_CONTEXT never

INSERT INTO execlog.accounts (name) VALUES ('acme'), ('globex');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'quote'), (2, 'other');
SELECT execlog.start('quote', '{}') AS e1 \gset
SELECT execlog.start('quote', '{}') AS e2 \gset
SELECT execlog.start('quote', '{}') AS e3 \gset
SELECT execlog.start('other', '{}') AS e4 \gset
UPDATE execlog.executions SET context = '{
  "customer": {"name": "ACME", "vip": true},
  "celonis_postaction_feedback": {"quotes": [
    {"id": 1, "price": 9.5, "lines": [{"sku": "a"}, {"sku": "b"}]},
    {"id": 2, "price": 10, "lines": []}]},
  "tags": ["x", "y"]}' WHERE id = :e1;
UPDATE execlog.executions SET context = '{
  "customer": {"name": "Initech", "vip": false},
  "celonis_postaction_feedback": {"quotes": [{"id": 3, "price": "n/a"}]}}' WHERE id = :e2;
UPDATE execlog.executions SET context = '{"processId": "spoofed"}' WHERE id = :e3;
UPDATE execlog.executions SET context = '[1, 2]' WHERE id = :e4;

-- the process context document (timestamps left out: they vary)
SELECT execlog.context_document(:e1) #- '{metadata}' AS doc;
SELECT execlog.context_document(:e3) #- '{metadata}' AS doc;
SELECT execlog.context_document(:e4) #- '{metadata}' AS doc;
SELECT execlog.context_document(:e1) #>> '{metadata,createdAt}' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS iso_utc;
-- export_contexts flattens parts of executions without building documents:
-- the rows are exactly flatten(context_document(e))
SELECT count(*) AS differences FROM (
  (SELECT f.* FROM execlog.executions e, execlog.flatten(execlog.context_document(e)) f
   EXCEPT ALL
   SELECT f.* FROM execlog.executions e,
		  execlog._flatten_execution(e.id, e.automation_id,
			  CASE WHEN jsonb_typeof(e.context) = 'object' THEN e.context ELSE jsonb_build_object('value', e.context) END,
			  execlog._iso_utc(e.created_at), execlog._iso_utc(e.updated_at), e.status::text) f)
  UNION ALL
  (SELECT f.* FROM execlog.executions e,
		  execlog._flatten_execution(e.id, e.automation_id,
			  CASE WHEN jsonb_typeof(e.context) = 'object' THEN e.context ELSE jsonb_build_object('value', e.context) END,
			  execlog._iso_utc(e.created_at), execlog._iso_utc(e.updated_at), e.status::text) f
   EXCEPT ALL
   SELECT f.* FROM execlog.executions e, execlog.flatten(execlog.context_document(e)) f)) d;

-- first export: tables created, typed, keyed and linked
CREATE SCHEMA pm;
SELECT * FROM execlog.export_contexts('pm');
SELECT table_name, column_name, data_type, is_nullable
  FROM information_schema.columns WHERE table_schema = 'pm'
 ORDER BY table_name, ordinal_position;
SELECT c.conrelid::regclass AS "table", c.contype, pg_get_constraintdef(c.oid) AS def
  FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
 WHERE r.relnamespace = 'pm'::regnamespace
 ORDER BY c.conrelid::regclass::text COLLATE "C", 2, 3;
-- a name past 63 bytes is shortened with a hash; the comment keeps it whole
SELECT c.relname, obj_description(c.oid, 'pg_class')
  FROM pg_class c WHERE c.relnamespace = 'pm'::regnamespace AND c.relkind = 'r'
 ORDER BY 1;
SELECT "context$processId", "context$customer$name", "context$customer$vip", status
  FROM pm.execution_context ORDER BY 1;
SELECT * FROM pm."execution_context$context&celonis_postaction_feedback$quotes" ORDER BY 1, 2;
SELECT * FROM pm."execution_context$context&c_9f96ace3_tion_feedback$quotes$lines" ORDER BY 1, 2;
SELECT * FROM pm."execution_context$context$tags" ORDER BY 1, 2;
SELECT * FROM pm."execution_context$context$value" ORDER BY 1, 2;

-- delta export: a new key adds a column, a value of another type widens
-- the column to text, only the changed contexts are replaced (children
-- included), everything else is kept
SELECT clock_timestamp() AS t0 \gset
UPDATE execlog.executions
   SET context = jsonb_set(context, '{celonis_postaction_feedback,quotes}',
					'[{"id": 1, "price": 8, "discount": 0.1, "lines": [{"sku": "a"}]}]') || '{"priority": 1, "tags": []}'
 WHERE id = :e1;
UPDATE execlog.executions SET context = '{"customer": {"vip": "unknown"}}' WHERE id = :e3;
SELECT * FROM execlog.export_contexts('pm', updated_since => :'t0');
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'pm' AND table_name = 'execution_context' ORDER BY ordinal_position;
SELECT "context$processId", "context$customer$name", "context$customer$vip", "context$priority"
  FROM pm.execution_context ORDER BY 1;
SELECT "context$processId", row_key, id, price, discount
  FROM pm."execution_context$context&celonis_postaction_feedback$quotes" ORDER BY 1, 2;
SELECT "context$processId", row_key, sku
  FROM pm."execution_context$context&c_9f96ace3_tion_feedback$quotes$lines" ORDER BY 1, 2;
SELECT count(*) AS tags_left FROM pm."execution_context$context$tags";
-- nothing changed since: a delta export does nothing and says so
SELECT * FROM execlog.export_contexts('pm', updated_since => clock_timestamp());
-- exporting everything again gives the same rows
SELECT * FROM execlog.export_contexts('pm');
SELECT count(*) FROM pm.execution_context;

-- filters: automation, created_since, only_finished (ended executions)
UPDATE execlog.executions SET status = 'running' WHERE id IN (:e1, :e2);
UPDATE execlog.executions SET status = 'success' WHERE id = :e1;
UPDATE execlog.executions SET status = 'failed' WHERE id = :e2;
CREATE SCHEMA pm_finished;
SELECT * FROM execlog.export_contexts('pm_finished', only_finished => true);
SELECT "context$processId", status FROM pm_finished.execution_context ORDER BY 1;
CREATE SCHEMA pm_other;
SELECT * FROM execlog.export_contexts('pm_other', automation => 'other');
SELECT * FROM execlog.export_contexts('pm_other', created_since => now() + interval '1 day');

-- row-level security: a tenant exports only its own contexts
CREATE ROLE regress_pm_tenant;
GRANT execlog_reader TO regress_pm_tenant;
INSERT INTO execlog.account_members VALUES (2, 'regress_pm_tenant');
CREATE SCHEMA pm_tenant AUTHORIZATION regress_pm_tenant;
SET ROLE regress_pm_tenant;
SELECT * FROM execlog.export_contexts('pm_tenant');
SELECT "context$processId", "context$executionTemplateID" FROM pm_tenant.execution_context;
-- no CREATE privilege on the schema
SELECT * FROM execlog.export_contexts('pm');
RESET ROLE;
SELECT tableowner FROM pg_tables WHERE schemaname = 'pm_tenant' AND tablename = 'execution_context';

-- bad input
SELECT * FROM execlog.export_contexts('no_such_schema');
SELECT * FROM execlog.export_contexts('execlog');
SELECT * FROM execlog.export_contexts('pg_catalog');
SELECT * FROM execlog.export_contexts(NULL);
SELECT * FROM execlog.export_contexts('pm', automation => 'nope');
-- a table of that name that export_contexts did not make
CREATE SCHEMA pm_taken;
CREATE TABLE pm_taken.execution_context (id int);
SELECT * FROM execlog.export_contexts('pm_taken');
-- a key named like a column export_contexts adds to child tables
UPDATE execlog.executions SET context = '{"items": [{"ordinal": 1}]}' WHERE id = :e3;
CREATE SCHEMA pm_reserved;
SELECT * FROM execlog.export_contexts('pm_reserved');
-- a context that cannot be flattened fails the export, naming the problem
UPDATE execlog.executions SET context = '{"a$b": 1, "a": {"b": 2}}' WHERE id = :e3;
SELECT * FROM execlog.export_contexts('pm_reserved');
-- keys with quotes, dots, "&" and "$" make valid identifiers
UPDATE execlog.executions SET context = '{"we\"ird.k&y": [{"a.b\"c": 1}], "sp ace": "x"}' WHERE id = :e3;
CREATE SCHEMA "pm odd";
SELECT * FROM execlog.export_contexts('pm odd', created_since => (SELECT created_at FROM execlog.executions WHERE id = :e3));
SELECT "context$processId", "context$sp ace" FROM "pm odd".execution_context ORDER BY 1;
SELECT "context$processId", row_key, "a.b""c" FROM "pm odd"."execution_context$context$we""ird.k&y";

SET client_min_messages = warning;
DROP SCHEMA pm, pm_finished, pm_other, pm_tenant, pm_taken, pm_reserved, "pm odd" CASCADE;
DROP OWNED BY regress_pm_tenant;
DROP ROLE regress_pm_tenant;
