-- 44_watch_partitions: watched tables are identified by OID (issue 11,
-- item 6).  A watch on a partitioned table starts the automation for rows
-- of every partition (at any depth, also partitions attached or created
-- later); renaming the table, its schema or a partition keeps the watch and
-- unwatch() takes the new name; dropping a watched table deletes its data
-- trigger, and nothing is left that makes anything fail.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS execlog CASCADE;
DROP SCHEMA IF EXISTS t44 CASCADE;
DROP SCHEMA IF EXISTS t44_renamed CASCADE;
DROP TABLE IF EXISTS public.t44_owned;
DROP ROLE IF EXISTS t44_owner;
RESET client_min_messages;
CREATE EXTENSION execlog;
INSERT INTO execlog.accounts (id, name) VALUES (1, 'acme');
INSERT INTO execlog.automations (id, account_id, name) VALUES (1, 1, 'orders'), (2, 1, 'plain');

CREATE SCHEMA t44;
CREATE TABLE t44.orders (id int, region text, amount numeric) PARTITION BY LIST (region);
CREATE TABLE t44.orders_eu PARTITION OF t44.orders FOR VALUES IN ('eu');
CREATE TABLE t44.orders_us PARTITION OF t44.orders FOR VALUES IN ('us') PARTITION BY RANGE (amount);
CREATE TABLE t44.orders_us_small PARTITION OF t44.orders_us FOR VALUES FROM (0) TO (1000);
CREATE TABLE t44.orders_us_big PARTITION OF t44.orders_us FOR VALUES FROM (1000) TO (MAXVALUE);

SELECT execlog.watch('t44.orders', 'orders', 'NEW.amount > 10') AS w \gset
SELECT kind, config, watched_table, watched_table = 't44.orders'::regclass AS by_oid
  FROM execlog.triggers WHERE id = :w;

-- rows inserted through the parent or straight into a partition, at any depth
INSERT INTO t44.orders VALUES (1, 'eu', 100), (2, 'us', 5000), (3, 'eu', 1);
INSERT INTO t44.orders_us_small VALUES (4, 'us', 500);
UPDATE t44.orders SET amount = 50 WHERE id = 3;
SELECT trigger_kind, trigger_id = :w AS data_trigger, triggered_by, payload, status
  FROM execlog.executions ORDER BY id;

-- a partition attached later (its columns in another order) and one created later
CREATE TABLE t44.orders_asia (amount numeric, region text, id int);
ALTER TABLE t44.orders ATTACH PARTITION t44.orders_asia FOR VALUES IN ('asia');
CREATE TABLE t44.orders_other PARTITION OF t44.orders DEFAULT;
INSERT INTO t44.orders VALUES (5, 'asia', 20), (6, 'mars', 30), (7, 'asia', 1);
INSERT INTO t44.orders_asia (id, region, amount) VALUES (8, 'asia', 40);
SELECT payload ->> 'id' AS id, triggered_by, payload FROM execlog.executions WHERE (payload ->> 'id')::int >= 5 ORDER BY id;

-- a detached partition is no longer watched
ALTER TABLE t44.orders DETACH PARTITION t44.orders_other;
INSERT INTO t44.orders_other VALUES (9, 'mars', 90);
SELECT count(*) AS executions FROM execlog.executions;

-- renaming the table, then its schema, then a partition: the watch goes on
ALTER TABLE t44.orders RENAME TO sales;
INSERT INTO t44.sales VALUES (10, 'eu', 99);
ALTER SCHEMA t44 RENAME TO t44_renamed;
INSERT INTO t44_renamed.sales VALUES (11, 'us', 99);
ALTER TABLE t44_renamed.orders_eu RENAME TO sales_eu;
INSERT INTO t44_renamed.sales_eu VALUES (12, 'eu', 99);
SELECT payload ->> 'id' AS id, triggered_by FROM execlog.executions WHERE (payload ->> 'id')::int >= 10 ORDER BY id;
SELECT watched_table, config ->> 'table' AS watched_as FROM execlog.triggers WHERE id = :w;
SELECT execlog.unwatch('t44.orders', 'orders');

-- watching again under the new name replaces the same watch; unwatch takes the new name
SELECT execlog.watch('t44_renamed.sales', 'orders', 'NEW.amount > 1000') = :w AS same_trigger;
SELECT revision, config FROM execlog.triggers WHERE id = :w;
INSERT INTO t44_renamed.sales VALUES (13, 'eu', 99), (14, 'eu', 5000);
SELECT payload ->> 'id' AS id FROM execlog.executions WHERE (payload ->> 'id')::int >= 13 ORDER BY id;
SELECT execlog.unwatch('t44_renamed.sales', 'orders');
SELECT count(*) AS data_triggers FROM execlog.triggers WHERE kind = 'data';
SELECT count(*) AS row_triggers FROM pg_trigger WHERE tgname LIKE 'execlog_watch_%';
INSERT INTO t44_renamed.sales VALUES (15, 'eu', 5000);
SELECT count(*) AS executions FROM execlog.executions;

-- a partition watched by itself, by another automation
SELECT execlog.watch('t44_renamed.sales_eu', 'plain') > 0 AS watched;
INSERT INTO t44_renamed.sales VALUES (16, 'eu', 1), (17, 'us', 1);
SELECT automation_id, payload ->> 'id' AS id, triggered_by FROM execlog.executions WHERE automation_id = 2;
-- the same automation cannot watch a partitioned table and one of its
-- partitions (PostgreSQL would make their row triggers one)
SELECT execlog.watch('t44_renamed.sales', 'plain');
SELECT execlog.unwatch('t44_renamed.sales_eu', 'plain');
SELECT execlog.watch('t44_renamed.sales', 'plain') > 0 AS watched;
SELECT execlog.watch('t44_renamed.orders_us_big', 'plain');
SELECT config ->> 'table' AS watched_as FROM execlog.triggers WHERE kind = 'data';
-- nor can PostgreSQL attach a table it watches to one it watches
CREATE TABLE t44_renamed.orders_moon (id int, region text, amount numeric);
SELECT execlog.watch('t44_renamed.orders_moon', 'plain') > 0 AS watched;
ALTER TABLE t44_renamed.sales ATTACH PARTITION t44_renamed.orders_moon FOR VALUES IN ('moon');
SELECT execlog.unwatch('t44_renamed.orders_moon', 'plain');
SELECT execlog.unwatch('t44_renamed.sales', 'plain');
SELECT count(*) AS data_triggers FROM execlog.triggers WHERE kind = 'data';
SELECT count(*) AS row_triggers FROM pg_trigger WHERE tgname LIKE 'execlog_watch_%';

-- dropping a watched table deletes its data trigger; its executions stay
CREATE TABLE t44_renamed.plain (id int);
SELECT execlog.watch('t44_renamed.plain', 'plain') AS w3 \gset
ALTER TABLE t44_renamed.plain RENAME TO plain2;
INSERT INTO t44_renamed.plain2 VALUES (1);
SELECT triggered_by, trigger_id = :w3 AS data_trigger FROM execlog.executions WHERE payload = '{"id": 1}';
DROP TABLE t44_renamed.plain2;
SELECT count(*) AS data_triggers FROM execlog.triggers WHERE kind = 'data';
SELECT triggered_by, trigger_id IS NULL AS trigger_gone FROM execlog.executions WHERE payload = '{"id": 1}';
-- a new table of that name is not watched; watch, unwatch and start work
CREATE TABLE t44_renamed.plain2 (id int);
INSERT INTO t44_renamed.plain2 VALUES (2);
SELECT count(*) AS executions FROM execlog.executions WHERE payload = '{"id": 2}';
SELECT execlog.unwatch('t44_renamed.plain2', 'plain');
SELECT execlog.watch('t44_renamed.plain2', 'plain') > 0 AS watched;
SELECT execlog.start('plain') > 0 AS started;
-- a schema dropped with its watched tables (partitioned ones included)
SELECT execlog.watch('t44_renamed.sales', 'orders') > 0 AS watched;
SET client_min_messages = warning;
DROP SCHEMA t44_renamed CASCADE;
RESET client_min_messages;
SELECT count(*) AS data_triggers FROM execlog.triggers WHERE kind = 'data';
-- the table's owner drops it, with no rights in execlog: its watch goes too
CREATE ROLE t44_owner;
CREATE TABLE public.t44_owned (id int);
ALTER TABLE public.t44_owned OWNER TO t44_owner;
SELECT execlog.watch('public.t44_owned', 'orders') > 0 AS watched;
SET ROLE t44_owner;
INSERT INTO public.t44_owned VALUES (3);
DROP TABLE public.t44_owned;
RESET ROLE;
SELECT count(*) AS data_triggers FROM execlog.triggers WHERE kind = 'data';
SELECT triggered_by, trigger_id IS NULL AS trigger_gone FROM execlog.executions WHERE payload = '{"id": 3}';
DROP ROLE t44_owner;
-- dropping other things is not disturbed; the automations can go
CREATE TABLE public.t44_unwatched (id int);
DROP TABLE public.t44_unwatched;
DELETE FROM execlog.executions;
DELETE FROM execlog.automations;
SELECT count(*) AS triggers FROM execlog.triggers;
