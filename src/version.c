/*-------------------------------------------------------------------------
 *
 * version.c
 *	  Which schema version the library finds, and what it does about it.
 *
 * The library is built for one schema version (EXECLOG_VERSION, from the
 * Makefile).  After the binaries of a new release are installed, the
 * databases still hold the previous schema until ALTER EXTENSION execlog
 * UPDATE is run.  Until then the workers wait (one log line, no errors)
 * and the SQL API functions refuse with a hint, so that the new code never
 * runs against tables and functions it was not written for.
 *
 * The installed version is read from pg_extension at most once per
 * transaction: it can only change through CREATE, ALTER or DROP EXTENSION.
 *
 *-------------------------------------------------------------------------
 */
#include "execlog.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* the last answer of execlog_schema_state, valid in transaction cached_lxid */
static LocalTransactionId cached_lxid = InvalidLocalTransactionId;
static ExeclogSchemaState cached_state = EXECLOG_SCHEMA_MISSING;
static char cached_version[NAMEDATALEN];

/*
 * version_cmp
 *		Compare two "major.minor" version strings numerically.
 */
static int
version_cmp(const char *a, const char *b)
{
	while (*a || *b)
	{
		long		na = strtol(a, (char **) &a, 10);
		long		nb = strtol(b, (char **) &b, 10);

		if (na != nb)
			return na < nb ? -1 : 1;
		if (*a == '.')
			a++;
		if (*b == '.')
			b++;
		if ((*a && !isdigit((unsigned char) *a)) || (*b && !isdigit((unsigned char) *b)))
			return strcmp(a, b);
	}
	return 0;
}

/*
 * execlog_schema_state
 *		Whether the execlog extension of this database is missing, older or
 *		newer than the library, or current.  *version (may be NULL) is set
 *		to the installed version, or NULL when it is missing.  Must be
 *		called in a transaction.
 */
ExeclogSchemaState
execlog_schema_state(const char **version)
{
	if (cached_lxid != MyProc->lxid || cached_lxid == InvalidLocalTransactionId)
	{
		Relation	rel;
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tup;

		cached_state = EXECLOG_SCHEMA_MISSING;
		cached_version[0] = '\0';
		rel = table_open(ExtensionRelationId, AccessShareLock);
		ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
					F_NAMEEQ, CStringGetDatum("execlog"));
		scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
		tup = systable_getnext(scan);
		if (HeapTupleIsValid(tup))
		{
			bool		isnull;
			Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
										 RelationGetDescr(rel), &isnull);

			if (!isnull)
			{
				char	   *v = TextDatumGetCString(d);
				int			c = version_cmp(v, EXECLOG_VERSION);

				strlcpy(cached_version, v, sizeof(cached_version));
				pfree(v);
				cached_state = c < 0 ? EXECLOG_SCHEMA_OLDER :
					c > 0 ? EXECLOG_SCHEMA_NEWER : EXECLOG_SCHEMA_CURRENT;
			}
		}
		systable_endscan(scan);
		table_close(rel, AccessShareLock);
		cached_lxid = MyProc->lxid;
	}
	if (version)
		*version = cached_state == EXECLOG_SCHEMA_MISSING ? NULL : cached_version;
	return cached_state;
}

/*
 * execlog_require_current_schema
 *		Raise an error unless the installed schema is the library's.
 */
void
execlog_require_current_schema(void)
{
	const char *version;

	switch (execlog_schema_state(&version))
	{
		case EXECLOG_SCHEMA_CURRENT:
			return;
		case EXECLOG_SCHEMA_MISSING:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension \"execlog\" is not installed in this database")));
			break;
		case EXECLOG_SCHEMA_OLDER:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("execlog schema version %s is older than the library (%s)",
							version, EXECLOG_VERSION),
					 errhint("Run ALTER EXTENSION execlog UPDATE.")));
			break;
		case EXECLOG_SCHEMA_NEWER:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("execlog schema version %s is newer than the library (%s)",
							version, EXECLOG_VERSION),
					 errhint("Install the execlog library of version %s and restart the server.",
							 version)));
			break;
	}
}
