/*-------------------------------------------------------------------------
 *
 * watch_attach.c
 *	  A clear error for attaching a watched table to a partitioned table
 *	  that the same automation watches.
 *
 * The row trigger of a watch is named execlog_watch_<automation id>, and
 * PostgreSQL clones a partitioned table's row triggers to the partitions it
 * attaches.  When an automation watches both a partitioned table p (or an
 * ancestor of it) and a table l, ALTER TABLE p ATTACH PARTITION l would
 * fail deep in the cloning with 'trigger "execlog_watch_1" for relation "l"
 * already exists'.  A ProcessUtility hook checks such an ATTACH PARTITION
 * first and fails it with an error that says which automation watches both
 * and what to do (unwatch the table: once attached, the watch of the
 * partitioned table covers it).  It reads only pg_trigger, so it needs no
 * rights in execlog, and does nothing in a database without execlog.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "execlog.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "commands/extension.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

/* A row trigger of a watch found on a relation. */
typedef struct WatchTrigger
{
	char	   *name;			/* execlog_watch_<automation id> */
	Oid			relid;			/* the relation it is on */
	bool		own;			/* made on this relation, not a clone */
} WatchTrigger;

/*
 * watch_triggers
 *		Append to list the row triggers on relid that call fire (the
 *		watches' function), as WatchTrigger.
 */
static List *
watch_triggers(List *list, Oid relid, Oid fire)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	rel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, TriggerRelidNameIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_trigger trig = (Form_pg_trigger) GETSTRUCT(tuple);

		if (trig->tgfoid == fire &&
			strncmp(NameStr(trig->tgname), "execlog_watch_", 14) == 0)
		{
			WatchTrigger *w = palloc(sizeof(WatchTrigger));

			w->name = pstrdup(NameStr(trig->tgname));
			w->relid = relid;
			w->own = !OidIsValid(trig->tgparentid);
			list = lappend(list, w);
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return list;
}

/* The relation's name, schema-qualified where needed, for messages. */
static char *
relation_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * check_attach
 *		Fail ATTACH PARTITION of partition (and its partitions) to parent
 *		when a row trigger of a watch on parent has the name of one of
 *		theirs.
 */
static void
check_attach(RangeVar *parent_rv, RangeVar *partition_rv)
{
	Oid			parent;
	Oid			partition;
	Oid			fire;
	List	   *above;
	List	   *below = NIL;
	ListCell   *lc;
	ListCell   *lc2;

	if (!OidIsValid(get_extension_oid("execlog", true)))
		return;
	fire = LookupFuncName(list_make2(makeString("execlog"), makeString("_watch_fire")),
						  0, NULL, true);
	if (!OidIsValid(fire))
		return;
	/* (PostgreSQL reports relations that do not exist) */
	parent = RangeVarGetRelid(parent_rv, NoLock, true);
	partition = RangeVarGetRelid(partition_rv, NoLock, true);
	if (!OidIsValid(parent) || !OidIsValid(partition))
		return;

	above = watch_triggers(NIL, parent, fire);
	if (above == NIL)
		return;
	foreach(lc, find_all_inheritors(partition, NoLock, NULL))
		below = watch_triggers(below, lfirst_oid(lc), fire);

	foreach(lc, above)
	{
		WatchTrigger *a = lfirst(lc);

		foreach(lc2, below)
		{
			WatchTrigger *b = lfirst(lc2);
			Oid			watched = b->relid;
			Oid			watched_above = a->relid;
			ListCell   *lc3;

			if (strcmp(a->name, b->name) != 0)
				continue;
			/* the partitioned table watched: the nearest with its own */
			if (!a->own)
				foreach(lc3, get_partition_ancestors(parent))
				{
					ListCell   *lc4;
					bool		found = false;

					foreach(lc4, watch_triggers(NIL, lfirst_oid(lc3), fire))
					{
						WatchTrigger *c = lfirst(lc4);

						if (c->own && strcmp(c->name, a->name) == 0)
							found = true;
					}
					if (found)
					{
						watched_above = lfirst_oid(lc3);
						break;
					}
				}
			/* the table watched by itself: where the trigger was made */
			if (!b->own)
				foreach(lc3, below)
				{
					WatchTrigger *c = lfirst(lc3);

					if (c->own && strcmp(c->name, b->name) == 0)
						watched = c->relid;
				}
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("cannot attach table %s as a partition of %s",
							relation_name(partition), relation_name(parent)),
					 errdetail("Automation %s watches both %s and %s: their row triggers \"%s\" would be one.",
							   a->name + 14, relation_name(watched_above),
							   relation_name(watched), a->name),
					 errhint("Unwatch %s for that automation first, with execlog.unwatch(): once attached, the watch of the partitioned table covers it.",
							 relation_name(watched))));
		}
	}
}

/*
 * execlog_process_utility
 *		Skip the index statements of a restore that are done already
 *		(partition_restore.c), check ALTER TABLE ... ATTACH PARTITION
 *		(check_attach), then run the statement as it would have run.
 */
static void
execlog_process_utility(PlannedStmt *pstmt, const char *queryString,
						bool readOnlyTree, ProcessUtilityContext context,
						ParamListInfo params, QueryEnvironment *queryEnv,
						DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	/* restoring a dump: an index of a history partition there already */
	if (execlog_partition_restore_done(parsetree))
		return;

	if (IsA(parsetree, AlterTableStmt) && IsTransactionState())
	{
		AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
		ListCell   *lc;

		if (stmt->objtype == OBJECT_TABLE)
			foreach(lc, stmt->cmds)
			{
				AlterTableCmd *cmd = lfirst(lc);

				if (cmd->subtype == AT_AttachPartition)
					check_attach(stmt->relation, ((PartitionCmd *) cmd->def)->name);
			}
	}

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context,
							 params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * execlog_watch_attach_init
 *		Install the hook (from _PG_init).
 */
void
execlog_watch_attach_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = execlog_process_utility;
}
