--
-- Last part, as the full script's last file: nothing of the schema for
-- PUBLIC, whichever part made it (functions, and the row types of tables and
-- views).
--
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA execlog FROM PUBLIC;

/*
 * Types are usable by PUBLIC when created, a table's or view's row type
 * too: take that back as well (an array type follows its element type).
 */
DO $rowtypes$
DECLARE
	t name;
BEGIN
	FOR t IN SELECT typname FROM pg_catalog.pg_type
			  WHERE typnamespace OPERATOR(pg_catalog.=) 'execlog'::pg_catalog.regnamespace
				AND typrelid OPERATOR(pg_catalog.<>) 0
			  ORDER BY typname LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON TYPE execlog.%I FROM PUBLIC', t);
	END LOOP;
END
$rowtypes$;
