-- The extension installs, owns its schema and grants nothing to PUBLIC.
CREATE EXTENSION execlog;
SELECT extname, extversion FROM pg_extension WHERE extname = 'execlog';
-- installing twice fails clearly
CREATE EXTENSION execlog;
-- nothing in the schema is usable by PUBLIC
SELECT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'execlog'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY 1;
SELECT c.relname, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.relnamespace = 'execlog'::regnamespace AND a.grantee = 0
 ORDER BY 1;
SELECT t.typname FROM pg_type t, aclexplode(t.typacl) a
 WHERE t.typnamespace = 'execlog'::regnamespace AND a.grantee = 0;
SELECT has_schema_privilege('public', 'execlog', 'USAGE') AS public_usage;
