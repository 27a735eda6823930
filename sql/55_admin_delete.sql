-- 55_admin_delete: execlog._serialize, the lock of merges and exports,
-- is taken only by who may run them; an execlog_admin deletes executions of its account
-- (DELETE is granted to execlog_admin): their steps and transitions go with
-- them although the admin cannot write those tables itself; executions of
-- other accounts stay invisible and untouched.  Roles are named t55_*.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP ROLE IF EXISTS t55_admin;
DROP ROLE IF EXISTS t55_reader;
RESET client_min_messages;
CREATE EXTENSION execlog;

CREATE ROLE t55_admin NOLOGIN IN ROLE execlog_admin;
INSERT INTO execlog.accounts (id, name) VALUES (1, 'a'), (2, 'b');
INSERT INTO execlog.account_members VALUES (1, 't55_admin');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'job-a'), (2, 'job-b');
SELECT execlog.start('job-a', '{}', 'a') AS ea \gset
SELECT execlog.start('job-b', '{}', 'b') AS eb \gset
UPDATE execlog.executions SET status = 'cancelled';
SELECT count(*) AS transitions FROM execlog.transitions;

SET ROLE t55_admin;
-- the admin has no direct right on transitions or execution_steps
DELETE FROM execlog.transitions;
DELETE FROM execlog.executions RETURNING id = :ea AS own_execution;
-- another account's execution is out of reach
DELETE FROM execlog.executions WHERE id = :eb;
RESET ROLE;
SELECT id = :eb AS only_b_left FROM execlog.executions;
SELECT execution_id = :eb AS only_b_transitions, count(*)
  FROM execlog.transitions GROUP BY execution_id;

-- the merge and export lock: only for who may merge, or export there
CREATE ROLE t55_reader NOLOGIN IN ROLE execlog_reader;
CREATE SCHEMA t55_out AUTHORIZATION t55_reader;
SET ROLE t55_reader;
SELECT execlog._serialize('merge_event_log', 0);
SELECT execlog._serialize('export_contexts', 'public'::regnamespace);
SELECT execlog._serialize('export_contexts', 't55_out'::regnamespace);
SELECT execlog._serialize('anything', 0);
SET ROLE t55_admin;
SELECT execlog._serialize('merge_event_log', 0);
RESET ROLE;
DROP SCHEMA t55_out;
DELETE FROM execlog.account_members WHERE role_name = 't55_admin';
DROP ROLE t55_admin;
DROP ROLE t55_reader;
