/*-------------------------------------------------------------------------
 *
 * partition_restore.c
 *	  Restoring a dump that holds history partitions the workers made.
 *
 * The partitions of execlog.executions, execution_steps and transitions
 * that worker 0 makes (src/sql/80_partitions.sql) are ordinary tables of
 * the schema, not members of the extension, so pg_dump dumps them whole:
 * the table, "ALTER TABLE ONLY execlog.executions ATTACH PARTITION ...",
 * their rows, and then, after the data, their indexes and primary key
 * ("CREATE INDEX executions_active_p3 ON execlog.executions_p3 ...",
 * "ALTER TABLE ONLY execlog.executions_p3 ADD CONSTRAINT
 * executions_pkey_p3 PRIMARY KEY (id)", "ALTER INDEX
 * execlog.executions_active ATTACH PARTITION ...").  But the parents are
 * made by CREATE EXTENSION with their indexes, so the ATTACH already gave
 * the partition a clone of each parent index, under a name PostgreSQL
 * chose: the index and the primary key of the dump would then fail
 * ('relation already exists', 'multiple primary keys').
 *
 * Partition k's indexes are named <parent index>_p<k>.  So when such a
 * CREATE INDEX or ADD CONSTRAINT ... PRIMARY KEY names an index of a
 * history partition <parent index>_p<k> and the partition already has the
 * clone of that parent index, the clone takes the name and the statement
 * is done (as CREATE INDEX IF NOT EXISTS would be); the ALTER INDEX ...
 * ATTACH PARTITION that follows finds it attached already, which
 * PostgreSQL accepts silently.  Any other statement runs as it is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "execlog.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "commands/tablecmds.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/*
 * history_partition
 *		The OID of the relation rv names when it is a partition of one of
 *		execlog's history tables owned by the current user, else InvalidOid.
 */
static Oid
history_partition(RangeVar *rv)
{
	static const char *const parents[] = {"executions", "execution_steps", "transitions"};
	Oid			relid;
	Oid			parent;
	char	   *nsp;
	char	   *name;
	int			i;

	relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION ||
		!get_rel_relispartition(relid))
		return InvalidOid;
	parent = get_partition_parent(relid, true);
	nsp = get_namespace_name(get_rel_namespace(parent));
	name = get_rel_name(parent);
	if (nsp == NULL || name == NULL || strcmp(nsp, "execlog") != 0)
		return InvalidOid;
	for (i = 0; i < (int) lengthof(parents); i++)
		if (strcmp(name, parents[i]) == 0)
			return pg_class_ownercheck(relid, GetUserId()) ? relid : InvalidOid;
	return InvalidOid;
}

/*
 * adopt_clone
 *		Give the clone of parent index <p> on partition relid the name
 *		idxname = <p>_p<digits>; true when the partition then has its index
 *		of that name (made now or before).
 */
static bool
adopt_clone(Oid relid, const char *idxname)
{
	const char *suffix = strrchr(idxname, '_');
	const char *d;
	char	   *parent_name;
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;
	Oid			existing;
	bool		done = false;

	existing = get_relname_relid(idxname, get_rel_namespace(relid));
	if (OidIsValid(existing))
		return get_rel_relkind(existing) == RELKIND_INDEX &&
			IndexGetRelation(existing, true) == relid;
	if (suffix == NULL || suffix[1] != 'p' || suffix[2] == '\0')
		return false;
	for (d = suffix + 2; *d; d++)
		if (*d < '0' || *d > '9')
			return false;
	parent_name = pnstrdup(idxname, suffix - idxname);

	rel = table_open(relid, ShareLock);
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Oid			index = lfirst_oid(lc);
		Oid			parent;
		char	   *name;

		if (!get_rel_relispartition(index))
			continue;
		parent = get_partition_parent(index, true);
		name = get_rel_name(parent);
		if (name != NULL && strcmp(name, parent_name) == 0)
		{
			RenameRelationInternal(index, idxname, false, true);
			CommandCounterIncrement();
			done = true;
			break;
		}
	}
	list_free(indexes);
	table_close(rel, NoLock);
	return done;
}

/*
 * execlog_partition_restore_done
 *		Whether parsetree is a CREATE INDEX or an ALTER TABLE ... ADD
 *		CONSTRAINT ... PRIMARY KEY of a history partition whose index is
 *		there already (see the file header): then it is done, and the
 *		caller skips it.
 */
bool
execlog_partition_restore_done(Node *parsetree)
{
	if (!IsTransactionState())
		return false;
	if (IsA(parsetree, IndexStmt))
	{
		IndexStmt  *stmt = (IndexStmt *) parsetree;
		Oid			relid;

		if (stmt->idxname == NULL || stmt->primary || stmt->concurrent)
			return false;
		relid = history_partition(stmt->relation);
		return OidIsValid(relid) && adopt_clone(relid, stmt->idxname);
	}
	if (IsA(parsetree, AlterTableStmt))
	{
		AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
		AlterTableCmd *cmd;
		Constraint *con;
		Oid			relid;

		if (stmt->objtype != OBJECT_TABLE || list_length(stmt->cmds) != 1)
			return false;
		cmd = linitial(stmt->cmds);
		if (cmd->subtype != AT_AddConstraint || !IsA(cmd->def, Constraint))
			return false;
		con = (Constraint *) cmd->def;
		if (con->contype != CONSTR_PRIMARY || con->conname == NULL)
			return false;
		relid = history_partition(stmt->relation);
		return OidIsValid(relid) && adopt_clone(relid, con->conname);
	}
	return false;
}
