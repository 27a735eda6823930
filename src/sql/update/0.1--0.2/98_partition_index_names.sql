
/*
 * Indexes created on a history table after its partitions exist (the
 * parts after 22_partition) get clones with names PostgreSQL makes up
 * (execution_steps_p0_started_at_idx); a fresh install creates its
 * partitions last, and execlog._partition_create names every clone
 * <parent index>_p<k>.  Give the update's clones those names too.
 */
DO $$
DECLARE
	ix record;
BEGIN
	FOR ix IN SELECT c.relname AS name,
					 p.relname OPERATOR(pg_catalog.||) '_p' OPERATOR(pg_catalog.||)
						 pg_catalog.substring(t.relname, '_p([0-9]+)$') AS wanted
				FROM pg_catalog.pg_index i
				JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
				JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) i.indrelid
				JOIN pg_catalog.pg_inherits h ON h.inhrelid OPERATOR(pg_catalog.=) i.indexrelid
				JOIN pg_catalog.pg_class p ON p.oid OPERATOR(pg_catalog.=) h.inhparent
				JOIN pg_catalog.pg_inherits th ON th.inhrelid OPERATOR(pg_catalog.=) t.oid
			   WHERE th.inhparent OPERATOR(pg_catalog.=) ANY (ARRAY['execlog.executions'::pg_catalog.regclass,
					'execlog.execution_steps'::pg_catalog.regclass, 'execlog.transitions'::pg_catalog.regclass])
				 AND t.relname OPERATOR(pg_catalog.~) '_p[0-9]+$'
			   ORDER BY 1 LOOP
		CONTINUE WHEN ix.name OPERATOR(pg_catalog.=) ix.wanted;
		EXECUTE pg_catalog.format('ALTER INDEX execlog.%I RENAME TO %I', ix.name, ix.wanted);
	END LOOP;
END
$$;
