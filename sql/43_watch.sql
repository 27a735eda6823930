-- 43_watch: execlog.watch() and unwatch(): rows meeting a condition start
-- an automation with the row as payload; every refusal.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP TABLE IF EXISTS public.t43_invoices, public.t43_other;
DROP VIEW IF EXISTS public.t43_view;
DROP ROLE IF EXISTS t43_admin;
RESET client_min_messages;
CREATE EXTENSION execlog;

INSERT INTO execlog.accounts (id, name) VALUES (1, 'acme');
INSERT INTO execlog.automations (id, account_id, name) VALUES (1, 1, 'approve'), (2, 1, 'temp');
CREATE TABLE public.t43_invoices (id int PRIMARY KEY, amount numeric, status text);
CREATE VIEW public.t43_view AS SELECT * FROM public.t43_invoices;

SELECT execlog.watch('public.t43_invoices', 'approve', 'NEW.amount > 1000') AS w \gset
SELECT kind, config FROM execlog.triggers WHERE id = :w;
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'public.t43_invoices'::regclass;

-- rows that meet the condition start the automation, with the row as payload
INSERT INTO public.t43_invoices VALUES (1, 500, 'new'), (2, 2000, 'new');
UPDATE public.t43_invoices SET amount = 5000 WHERE id = 1;
UPDATE public.t43_invoices SET status = 'paid' WHERE id = 2;
SELECT e.trigger_kind, e.trigger_id = :w AS data_trigger, e.triggered_by, e.payload, e.status
  FROM execlog.executions e ORDER BY e.id;

-- watching again replaces the condition: the same trigger, a new revision
SELECT execlog.watch('public.t43_invoices', 'approve', 'NEW.status = ''urgent''') = :w AS same_trigger;
SELECT revision, config ->> 'condition' AS condition FROM execlog.triggers WHERE id = :w;
SELECT count(*) AS row_triggers FROM pg_trigger WHERE tgrelid = 'public.t43_invoices'::regclass;
INSERT INTO public.t43_invoices VALUES (3, 1, 'urgent'), (4, 99999, 'new');
SELECT payload ->> 'id' AS id FROM execlog.executions WHERE trigger_kind = 'data' ORDER BY id;

-- a disabled automation starts nothing, and the writer's statement goes on
UPDATE execlog.automations SET enabled = false WHERE id = 1;
INSERT INTO public.t43_invoices VALUES (5, 1, 'urgent');
SELECT count(*) AS executions FROM execlog.executions;
UPDATE execlog.automations SET enabled = true WHERE id = 1;

-- without a condition every inserted or updated row starts it
SELECT execlog.watch('public.t43_invoices', 'temp') AS w2 \gset
UPDATE public.t43_invoices SET status = 'seen' WHERE id = 5;
SELECT count(*) AS temp_executions FROM execlog.executions WHERE automation_id = 2;

-- a trigger of another name calling the function starts nothing
CREATE TRIGGER impostor AFTER INSERT ON public.t43_invoices
	FOR EACH ROW EXECUTE FUNCTION execlog._watch_fire('1');
DROP TRIGGER execlog_watch_2 ON public.t43_invoices;
INSERT INTO public.t43_invoices VALUES (6, 1, 'new');
SELECT count(*) AS executions FROM execlog.executions;
DROP TRIGGER impostor ON public.t43_invoices;

-- unwatch drops the row trigger; deleting an automation drops its watches
SELECT execlog.unwatch('public.t43_invoices', 'approve');
SELECT execlog.unwatch('public.t43_invoices', 'approve');
-- (the watch of temp went with its row trigger, dropped above)
SELECT execlog.unwatch('public.t43_invoices', 'temp');
INSERT INTO execlog.automations (id, account_id, name) VALUES (3, 1, 'gone');
SELECT execlog.watch('public.t43_invoices', 'gone') > 0 AS watched;
DELETE FROM execlog.automations WHERE id = 3;
SELECT count(*) AS row_triggers FROM pg_trigger WHERE tgrelid = 'public.t43_invoices'::regclass;
SELECT count(*) AS data_triggers FROM execlog.triggers WHERE kind = 'data';
INSERT INTO public.t43_invoices VALUES (7, 5000, 'urgent');
SELECT count(*) AS executions FROM execlog.executions;

-- refusals
SELECT execlog.watch('public.t43_invoices', 'nope');
SELECT execlog.watch('public.t43_view', 'approve');
SELECT execlog.watch(NULL, 'approve');
SELECT execlog.watch('public.t43_invoices', NULL);
SELECT execlog.watch('public.t43_invoices', 'approve', 'NEW.amount >');
SELECT execlog.watch('public.t43_invoices', 'approve', 'NEW.no_such_column = 1');
SELECT count(*) AS data_triggers FROM execlog.triggers WHERE kind = 'data';
SELECT count(*) AS row_triggers FROM pg_trigger WHERE tgrelid = 'public.t43_invoices'::regclass;
-- an admin needs the TRIGGER privilege on the table
CREATE ROLE t43_admin IN ROLE execlog_admin;
INSERT INTO execlog.account_members (account_id, role_name) VALUES (1, 't43_admin');
-- (and membership in the automation's run_as role, see 51_run_as)
UPDATE execlog.automations SET run_as = 't43_admin' WHERE name = 'approve';
SET ROLE t43_admin;
SELECT execlog.watch('public.t43_invoices', 'approve');
RESET ROLE;
GRANT TRIGGER ON public.t43_invoices TO t43_admin;
SET ROLE t43_admin;
SELECT execlog.watch('public.t43_invoices', 'approve', 'NEW.amount > 10') > 0 AS watched;
SELECT execlog.unwatch('public.t43_invoices', 'approve');
RESET ROLE;

DROP TABLE public.t43_invoices CASCADE;
DROP ROLE t43_admin;
