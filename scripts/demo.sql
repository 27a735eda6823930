-- execlog demo: define an automation, run it, look at the log.
\pset footer off
CREATE EXTENSION execlog;

CREATE ROLE demo_runner NOLOGIN;
CREATE TABLE public.invoices (id int PRIMARY KEY, amount numeric, approved boolean DEFAULT false);
GRANT SELECT, UPDATE ON public.invoices TO demo_runner;
INSERT INTO public.invoices VALUES (1017, 1200), (1018, 80);

INSERT INTO execlog.accounts (name) VALUES ('acme');
INSERT INTO execlog.automations (account_id, name, run_as)
SELECT id, 'approve-invoice', 'demo_runner' FROM execlog.accounts WHERE name = 'acme';
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
SELECT a.id, 1, 'approve', 'sql',
       '{"query": "UPDATE public.invoices SET approved = true WHERE id = $1 RETURNING id, amount", "args": ["{{ $.payload.invoice }}"]}'
  FROM execlog.automations a WHERE a.name = 'approve-invoice';

\echo '== start two executions, cancel one'
SELECT execlog.start('approve-invoice', '{"invoice": 1017}') AS first \gset
SELECT execlog.start('approve-invoice', '{"invoice": 1018}') AS second \gset
SELECT pg_sleep(1);

\echo '== a retry of a successful execution is refused'
\set ON_ERROR_STOP 0
SELECT execlog.retry(:first);
\set ON_ERROR_STOP 1

\echo '== execution_log'
SELECT id, automation, status, trigger_kind, triggered_by, attempt, steps, error
  FROM execlog.execution_log ORDER BY id;
\echo '== step_log'
SELECT execution_id, attempt, position, step, kind, status, error FROM execlog.step_log ORDER BY 1, 2, 3;
\echo '== transitions'
SELECT execution_id, attempt, from_status, to_status, by FROM execlog.transitions ORDER BY id;
