-- execlog demo: two automations run by the background workers.
--  * approve-invoice fails (the invoice is not ready), is retried and
--    succeeds: the retry resumes at the failed step and keeps the output of
--    the step before it;
--  * manual-review pauses until somebody resumes it with a decision.
\pset footer off
\set QUIET on
CREATE EXTENSION execlog;

CREATE ROLE demo_runner NOLOGIN;
CREATE TABLE public.invoices (id int PRIMARY KEY, amount numeric, ready boolean, approved_by text);
CREATE TABLE public.audit (id serial PRIMARY KEY, invoice int, note text);
GRANT SELECT, UPDATE ON public.invoices TO demo_runner;
GRANT SELECT, INSERT ON public.audit TO demo_runner;
GRANT USAGE ON SEQUENCE public.audit_id_seq TO demo_runner;
INSERT INTO public.invoices VALUES (1017, 1200, false, NULL);

-- a small wait helper for the demo
CREATE FUNCTION pg_temp.wait_for(e bigint, wanted text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text;
BEGIN
	FOR i IN 1 .. 100 LOOP
		SELECT status INTO s FROM execlog.executions WHERE id = e;
		EXIT WHEN s = ANY (wanted);
		PERFORM pg_sleep(0.05);
	END LOOP;
	RETURN s;
END $$;

INSERT INTO execlog.accounts (name) VALUES ('acme');
INSERT INTO execlog.automations (account_id, name, run_as, max_retries,
	on_failure)
SELECT id, 'approve-invoice', 'demo_runner', 2,
	   '{"task": {"assignee": "ap-team", "title": "invoice {{ $.payload.invoice }} needs a look"}}'
  FROM execlog.accounts WHERE name = 'acme';
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES
  ((SELECT id FROM execlog.automations WHERE name = 'approve-invoice'), 1, 'note', 'sql',
   '{"query": "INSERT INTO public.audit (invoice, note) VALUES ($1, ''approval started'') RETURNING id", "args": ["{{ $.payload.invoice }}"]}'),
  ((SELECT id FROM execlog.automations WHERE name = 'approve-invoice'), 2, 'check', 'sql',
   '{"query": "SELECT amount, 1 / ready::int AS ok FROM public.invoices WHERE id = $1", "args": ["{{ $.payload.invoice }}"]}'),
  ((SELECT id FROM execlog.automations WHERE name = 'approve-invoice'), 3, 'approve', 'sql',
   '{"query": "UPDATE public.invoices SET approved_by = ''execlog'' WHERE id = $1 RETURNING id, approved_by", "args": ["{{ $.payload.invoice }}"]}'),
  ((SELECT id FROM execlog.automations WHERE name = 'approve-invoice'), 4, 'feedback', 'feedback',
   '{"fields": {"invoice": "{{ $.payload.invoice }}", "amount": "{{ $.steps.check.output[0].amount }}", "audit_id": "{{ $.steps.note.output[0].id }}"}}');

INSERT INTO execlog.automations (account_id, name, run_as)
SELECT id, 'manual-review', 'demo_runner' FROM execlog.accounts WHERE name = 'acme';
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES
  ((SELECT id FROM execlog.automations WHERE name = 'manual-review'), 1, 'wait_for_reviewer', 'pause', '{}'),
  ((SELECT id FROM execlog.automations WHERE name = 'manual-review'), 2, 'record', 'sql',
   '{"query": "INSERT INTO public.audit (invoice, note) VALUES ($1, $2) RETURNING note", "args": ["{{ $.payload.invoice }}", "reviewed by {{ $.resume.reviewer }}"]}');

\echo '== start approve-invoice for invoice 1017 (not ready yet: step "check" fails)'
SELECT execlog.start('approve-invoice', '{"invoice": 1017}') AS inv \gset
SELECT pg_temp.wait_for(:inv, '{failed}') AS status;
SELECT id, status, attempt, error FROM execlog.execution_log WHERE id = :inv;

\echo '== the invoice becomes ready; retry: resumes at "check", keeps the output of "note"'
UPDATE public.invoices SET ready = true WHERE id = 1017;
SELECT execlog.retry(:inv) AS retried;
SELECT pg_temp.wait_for(:inv, '{success}') AS status;

\echo '== a retry of a successful execution is refused'
\set ON_ERROR_STOP 0
SELECT execlog.retry(:inv);
\set ON_ERROR_STOP 1

\echo '== manual-review pauses until resumed'
SELECT execlog.start('manual-review', '{"invoice": 1017}') AS rev \gset
SELECT pg_temp.wait_for(:rev, '{paused}') AS status;
SELECT execlog.resume(:rev, '{"reviewer": "maria"}');
SELECT pg_temp.wait_for(:rev, '{success}') AS status;

\echo '== execlog.execution_log'
SELECT id, automation, status, trigger_kind, triggered_by, attempt, steps, duration IS NOT NULL AS timed, error
  FROM execlog.execution_log ORDER BY id;
\echo '== execlog.step_log'
SELECT execution_id, attempt, position, step, kind, status, error
  FROM execlog.step_log ORDER BY 1, 2, 3;
\echo '== kept outputs of attempt 2, and the process context (post-action feedback)'
SELECT position, name, reused_from, output FROM execlog.execution_steps
 WHERE execution_id = :inv AND attempt = 2 ORDER BY position;
SELECT context FROM execlog.executions WHERE id = :inv;
\echo '== transitions'
SELECT execution_id, attempt, from_status, to_status, by FROM execlog.transitions ORDER BY id;
\echo '== side effects: the audit row of step "note" was written once'
SELECT * FROM public.audit ORDER BY id;
