/*-------------------------------------------------------------------------
 *
 * flatten.c
 *	  Flattening of process-context documents into relational rows
 *	  (SPEC section 8).
 *
 * execlog.flatten(doc, root, key) turns one JSON object into the rows of a
 * root table and of child tables, one output row per table row:
 *
 *	- the keys of nested objects are joined with "$" into column names
 *	  ("context$processId", "metadata$createdAt");
 *	- an array becomes a child table named
 *	  <parent table>$<object path to the array, keys joined with "&">$<key>,
 *	  or <parent table>$<key> when the array sits directly in the parent row;
 *	- every element is one row of that child table: an object is flattened
 *	  like the root (its own arrays become grandchild tables named the same
 *	  way from the child table's name); a scalar or null gives one column
 *	  "value"; an array gives a row without columns of its own whose
 *	  elements form the table <child table>$value;
 *	- every child row carries the root key column in its record, its 1-based
 *	  ordinal, its row key "<root key>/<ordinal>[/<ordinal>...]" (one ordinal
 *	  per array level, so it is unique within its table) and its parent
 *	  row's key (the root key on the first level);
 *	- empty objects add no column, empty arrays add no row, nulls are kept
 *	  as JSON nulls.
 *
 * Documents that cannot be flattened unambiguously raise an error instead of
 * losing data: a document that is not an object, a missing or null key
 * column, two keys giving the same column name (such as "a$b" and
 * "a": {"b": ...}), two different arrays giving the same table name, or
 * nesting deeper than FLATTEN_MAX_DEPTH levels.
 *
 * The walk reads the jsonb in place: scalars are never copied until the
 * record of a row is built, and memory is reset after every row, so the cost
 * follows the size of the document.
 *
 * execlog._flatten_schema(doc, root, key) is an aggregate over the same walk.
 * Instead of rows it collects, over many documents, the tables, their
 * parents, their row counts and the JSON types seen in each column.
 *
 * execlog._flatten_execution(...) and the aggregate
 * execlog._flatten_execution_schema(...) do the same for the process
 * context of an execution given its parts (id, automation id, context,
 * timestamps, status), without building execlog.context_document() first;
 * execlog.export_contexts() uses them to create and widen tables, then load
 * the rows.
 *
 *-------------------------------------------------------------------------
 */
#include "execlog.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(execlog_flatten);
PG_FUNCTION_INFO_V1(execlog_flatten_schema_trans);
PG_FUNCTION_INFO_V1(execlog_flatten_schema_final);
PG_FUNCTION_INFO_V1(execlog_flatten_execution);
PG_FUNCTION_INFO_V1(execlog_flatten_execution_schema_trans);

/* Root table and key column of process contexts (execlog.context_document). */
#define CONTEXT_ROOT	"execution_context"
#define CONTEXT_KEY		"context$processId"

/* Deepest nesting of objects and arrays that can be flattened. */
#define FLATTEN_MAX_DEPTH	100

/* JSON types seen in a column, as bits (see SchemaColumn). */
#define FLAT_T_NULL		0x01
#define FLAT_T_STRING	0x02
#define FLAT_T_NUMERIC	0x04
#define FLAT_T_BOOL		0x08

struct SchemaTable;

/*
 * A table met while walking one document: the root table, or the child
 * table of one array occurrence.  "sig" spells the logical path to the array
 * unambiguously (every key length-prefixed), so that two different arrays
 * that get the same name can be told apart.
 */
typedef struct FlatTable
{
	char	   *name;
	int			namelen;
	char	   *sig;
	int			siglen;
	struct FlatTable *parent;	/* NULL for the root table */
	int			level;			/* 0 for the root table */
	struct SchemaTable *schema; /* aggregate mode: its entry */
} FlatTable;

/* An array found in a row; its elements are flattened after the row. */
typedef struct FlatArray
{
	FlatTable  *table;
	JsonbContainer *container;
	int			depth;			/* nesting depth of the array itself */
} FlatArray;

/* The row being built on one array level (buffers reused row after row). */
typedef struct FlatRow
{
	JsonbPair  *pairs;
	int			npairs;
	int			maxpairs;
	FlatArray  *arrays;
	int			narrays;
	int			maxarrays;
} FlatRow;

/* Everything the walk needs; lives as long as the caller's context. */
typedef struct FlatState
{
	MemoryContext cxt;			/* long-lived buffers */
	MemoryContext doccxt;		/* reset for every document */
	MemoryContext rowcxt;		/* reset after every row */

	char	   *root;			/* name of the root table */
	int			rootlen;
	char	   *key;			/* name of the root key column */
	int			keylen;

	/* the current document */
	JsonbValue	keyval;			/* value of its key column */
	StringInfoData colname;		/* column name prefix while walking a row */
	StringInfoData path;		/* "&"-joined object path while walking a row */
	StringInfoData sigpath;		/* the same path, unambiguous */
	StringInfoData rowkey;		/* key of the row being flattened */
	FlatTable **tables;			/* every child table occurrence */
	int			ntables;
	int			maxtables;

	FlatRow		rows[FLATTEN_MAX_DEPTH + 1];	/* one per array level */

	/* output: rows into a tuplestore, or a schema for the aggregate */
	Tuplestorestate *tupstore;
	TupleDesc	tupdesc;
	struct FlatSchema *schema;
} FlatState;

/* Hash key for names of arbitrary length. */
typedef struct NameKey
{
	const char *str;
	int			len;
} NameKey;

/* Aggregate mode: one column of one table. */
typedef struct SchemaColumn
{
	NameKey		key;			/* column name (hash key; must be first) */
	int			types;			/* FLAT_T_* bits seen */
} SchemaColumn;

/* Aggregate mode: one table. */
typedef struct SchemaTable
{
	NameKey		key;			/* table name (hash key; must be first) */
	char	   *sig;
	int			siglen;
	struct SchemaTable *parent;
	int			level;
	int			order;			/* order of first appearance */
	int64		rows;
	HTAB	   *columns;
} SchemaTable;

/* Aggregate state. */
typedef struct FlatSchema
{
	MemoryContext cxt;
	HTAB	   *tables;
	int			ntables;
	FlatState	st;
} FlatSchema;

static void flat_element(FlatState *st, FlatTable *table, JsonbValue *elem,
						 int level, int ordinal, int depth);

/*
 * name_key_hash
 *		Hash a NameKey (dynahash callback).
 */
static uint32
name_key_hash(const void *key, Size keysize)
{
	const NameKey *k = (const NameKey *) key;

	return hash_bytes((const unsigned char *) k->str, k->len);
}

/*
 * name_key_match
 *		Compare two NameKeys (dynahash callback; 0 means equal).
 */
static int
name_key_match(const void *key1, const void *key2, Size keysize)
{
	const NameKey *a = (const NameKey *) key1;
	const NameKey *b = (const NameKey *) key2;

	if (a->len != b->len)
		return 1;
	return memcmp(a->str, b->str, a->len);
}

/*
 * name_hash_create
 *		Create a hash table keyed by NameKey, in the given context.
 */
static HTAB *
name_hash_create(const char *what, Size entrysize, MemoryContext cxt)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(NameKey);
	ctl.entrysize = entrysize;
	ctl.hash = name_key_hash;
	ctl.match = name_key_match;
	ctl.hcxt = cxt;
	return hash_create(what, 32, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

/*
 * flat_state_init
 *		Set up a FlatState whose memory lives under "cxt".
 */
static void
flat_state_init(FlatState *st, MemoryContext cxt)
{
	MemoryContext old;

	memset(st, 0, sizeof(FlatState));
	st->cxt = cxt;
	st->doccxt = AllocSetContextCreate(cxt, "execlog flatten document",
									   ALLOCSET_DEFAULT_SIZES);
	st->rowcxt = AllocSetContextCreate(cxt, "execlog flatten row",
									   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	initStringInfo(&st->colname);
	initStringInfo(&st->path);
	initStringInfo(&st->sigpath);
	initStringInfo(&st->rowkey);
	MemoryContextSwitchTo(old);
}

/*
 * flat_state_names
 *		Check and store the root table name and the key column name.
 */
static void
flat_state_names(FlatState *st, const char *root, const char *key)
{
	if (root[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("root table name must not be empty")));
	if (key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key column name must not be empty")));
	if (st->root == NULL || strcmp(st->root, root) != 0)
	{
		if (st->root)
			pfree(st->root);
		st->root = NULL;
		st->root = MemoryContextStrdup(st->cxt, root);
		st->rootlen = strlen(root);
	}
	if (st->key == NULL || strcmp(st->key, key) != 0)
	{
		if (st->key)
			pfree(st->key);
		st->key = NULL;
		st->key = MemoryContextStrdup(st->cxt, key);
		st->keylen = strlen(key);
	}
}

/*
 * truncate_string
 *		Cut a StringInfo back to "len" bytes.
 */
static inline void
truncate_string(StringInfo s, int len)
{
	s->len = len;
	s->data[len] = '\0';
}

/*
 * append_sig_part
 *		Append one length-prefixed part ("o" object key, "a" array key) to
 *		a path signature, so that no two different paths spell the same.
 */
static void
append_sig_part(StringInfo s, char kind, const char *str, int len)
{
	appendStringInfo(s, "%c%d:", kind, len);
	appendBinaryStringInfo(s, str, len);
}

/*
 * check_depth
 *		Refuse documents nested more deeply than FLATTEN_MAX_DEPTH.
 */
static inline void
check_depth(int depth)
{
	if (depth > FLATTEN_MAX_DEPTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("JSON document is nested too deeply to flatten"),
				 errdetail("Objects and arrays can be nested at most %d levels deep.",
						   FLATTEN_MAX_DEPTH)));
	check_stack_depth();
}

/*
 * row_add_pair
 *		Add one column to the row being built.
 */
static void
row_add_pair(FlatState *st, FlatRow *row, char *name, int namelen, JsonbValue *val)
{
	JsonbPair  *p;

	if (row->npairs >= row->maxpairs)
	{
		int			newmax = Max(16, row->maxpairs * 2);

		if (row->pairs == NULL)
			row->pairs = MemoryContextAlloc(st->cxt, newmax * sizeof(JsonbPair));
		else
			row->pairs = repalloc_huge(row->pairs, newmax * sizeof(JsonbPair));
		row->maxpairs = newmax;
	}
	p = &row->pairs[row->npairs];
	p->key.type = jbvString;
	p->key.val.string.val = name;
	p->key.val.string.len = namelen;
	p->value = *val;
	p->order = row->npairs;
	row->npairs++;
}

/*
 * row_add_array
 *		Note an array of the row being built; it becomes the child table
 *		"<table>$<path>$<key>" (or "<table>$<key>" with an empty path).
 */
static void
row_add_array(FlatState *st, FlatRow *row, FlatTable *table, bool nested,
			  const char *key, int keylen, JsonbContainer *container, int depth)
{
	FlatTable  *child;
	FlatArray  *a;
	StringInfoData buf;
	MemoryContext old;

	old = MemoryContextSwitchTo(st->doccxt);

	child = palloc(sizeof(FlatTable));
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, table->name, table->namelen);
	appendStringInfoChar(&buf, '$');
	if (nested)
	{
		appendBinaryStringInfo(&buf, st->path.data, st->path.len);
		appendStringInfoChar(&buf, '$');
	}
	appendBinaryStringInfo(&buf, key, keylen);
	child->name = buf.data;
	child->namelen = buf.len;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, table->sig, table->siglen);
	appendBinaryStringInfo(&buf, st->sigpath.data, st->sigpath.len);
	append_sig_part(&buf, 'a', key, keylen);
	child->sig = buf.data;
	child->siglen = buf.len;

	child->parent = table;
	child->level = table->level + 1;
	child->schema = NULL;

	if (st->ntables >= st->maxtables)
	{
		st->maxtables = Max(8, st->maxtables * 2);
		if (st->tables == NULL)
			st->tables = palloc(st->maxtables * sizeof(FlatTable *));
		else
			st->tables = repalloc_huge(st->tables, st->maxtables * sizeof(FlatTable *));
	}
	st->tables[st->ntables++] = child;

	MemoryContextSwitchTo(old);

	if (row->narrays >= row->maxarrays)
	{
		int			newmax = Max(4, row->maxarrays * 2);

		if (row->arrays == NULL)
			row->arrays = MemoryContextAlloc(st->cxt, newmax * sizeof(FlatArray));
		else
			row->arrays = repalloc_huge(row->arrays, newmax * sizeof(FlatArray));
		row->maxarrays = newmax;
	}
	a = &row->arrays[row->narrays++];
	a->table = child;
	a->container = container;
	a->depth = depth;
}

/*
 * flat_collect
 *		Add the scalars of object "obj" to "row" as columns, descending into
 *		nested objects (column names joined with "$") and noting arrays.
 *
 * "nested" is false for the object that is the row itself: its keys are
 * the column names as they are.  "skip_ids" leaves out the keys processId
 * and executionTemplateID, which the execution's own values replace (see
 * flat_execution).  Runs in the row context.
 */
static void
flat_collect(FlatState *st, FlatRow *row, FlatTable *table,
			 JsonbContainer *obj, int depth, bool nested, bool skip_ids)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	char	   *key = NULL;
	int			keylen = 0;
	bool		skip = false;
	int			save_col = st->colname.len;
	int			save_path = st->path.len;
	int			save_sig = st->sigpath.len;

	check_depth(depth);

	it = JsonbIteratorInit(obj);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = v.val.string.val;
			keylen = v.val.string.len;
			skip = skip_ids &&
				((keylen == 9 && memcmp(key, "processId", 9) == 0) ||
				 (keylen == 19 && memcmp(key, "executionTemplateID", 19) == 0));
			continue;
		}
		if (tok != WJB_VALUE || skip)
			continue;

		if (v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
		{
			/* nested object: its keys become "<prefix>$<key>" columns */
			if (nested)
			{
				appendStringInfoChar(&st->colname, '$');
				appendStringInfoChar(&st->path, '&');
			}
			appendBinaryStringInfo(&st->colname, key, keylen);
			appendBinaryStringInfo(&st->path, key, keylen);
			append_sig_part(&st->sigpath, 'o', key, keylen);
			flat_collect(st, row, table, v.val.binary.data, depth + 1, true, false);
			truncate_string(&st->colname, save_col);
			truncate_string(&st->path, save_path);
			truncate_string(&st->sigpath, save_sig);
		}
		else if (v.type == jbvBinary)
		{
			/* an array: a child table, flattened after this row */
			check_depth(depth + 1);
			row_add_array(st, row, table, nested, key, keylen,
						  v.val.binary.data, depth + 1);
		}
		else if (!nested)
		{
			/* a top-level key of the row: the name is the key itself */
			row_add_pair(st, row, key, keylen, &v);
		}
		else
		{
			char	   *name;
			int			namelen = save_col + 1 + keylen;

			name = palloc(namelen + 1);
			memcpy(name, st->colname.data, save_col);
			name[save_col] = '$';
			memcpy(name + save_col + 1, key, keylen);
			name[namelen] = '\0';
			row_add_pair(st, row, name, namelen, &v);
		}
	}
}

/*
 * pair_cmp
 *		Order pairs the way jsonb stores object keys: shorter keys first,
 *		then bytewise.
 */
static inline int
pair_cmp(const JsonbPair *a, const JsonbPair *b)
{
	int			la = a->key.val.string.len;
	int			lb = b->key.val.string.len;

	if (la != lb)
		return la > lb ? 1 : -1;
	return memcmp(a->key.val.string.val, b->key.val.string.val, la);
}

/*
 * pair_qsort_cmp
 *		pair_cmp for qsort and bsearch.
 */
static int
pair_qsort_cmp(const void *a, const void *b)
{
	return pair_cmp((const JsonbPair *) a, (const JsonbPair *) b);
}

/*
 * row_sort
 *		Sort the columns of a row and refuse duplicate names.
 *
 * The walk yields the keys of each object in jsonb order already, so rows
 * are nearly sorted: an insertion sort does it with few moves, and qsort
 * only handles rows with many columns.
 */
static void
row_sort(FlatState *st, FlatRow *row, FlatTable *table)
{
	JsonbPair  *pairs = row->pairs;
	int			n = row->npairs;
	int			i;

	if (n > 64)
		qsort(pairs, n, sizeof(JsonbPair), pair_qsort_cmp);
	else
	{
		for (i = 1; i < n; i++)
		{
			JsonbPair	tmp;
			int			j;

			if (pair_cmp(&pairs[i - 1], &pairs[i]) <= 0)
				continue;
			tmp = pairs[i];
			j = i - 1;
			while (j > 0 && pair_cmp(&pairs[j - 1], &tmp) > 0)
				j--;
			memmove(&pairs[j + 1], &pairs[j], (i - j) * sizeof(JsonbPair));
			pairs[j] = tmp;
		}
	}

	for (i = 1; i < n; i++)
	{
		JsonbValue *k = &pairs[i].key;

		if (pair_cmp(&pairs[i - 1], &pairs[i]) != 0)
			continue;
		if (table->level > 0 && k->val.string.len == st->keylen &&
			memcmp(k->val.string.val, st->key, st->keylen) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("duplicate column \"%s\" in flattened table \"%s\"",
							pnstrdup(k->val.string.val, k->val.string.len),
							table->name),
					 errdetail("Rows of child tables carry the key column \"%s\" of the root row, so their own keys cannot give that name.",
							   st->key)));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("duplicate column \"%s\" in flattened table \"%s\"",
						pnstrdup(k->val.string.val, k->val.string.len),
						table->name),
				 errdetail("Keys of nested objects are joined with \"$\", so a key that contains \"$\" can give the same column name as a nested key.")));
	}
}

/*
 * row_find
 *		The value of column "name" in a sorted row, or NULL.
 */
static JsonbValue *
row_find(FlatRow *row, const char *name, int namelen)
{
	JsonbPair	probe;
	JsonbPair  *found;

	probe.key.type = jbvString;
	probe.key.val.string.val = (char *) name;
	probe.key.val.string.len = namelen;
	found = bsearch(&probe, row->pairs, row->npairs, sizeof(JsonbPair), pair_qsort_cmp);
	return found ? &found->value : NULL;
}

/*
 * schema_table
 *		Aggregate mode: the entry of a table, created on first sight.
 */
static SchemaTable *
schema_table(struct FlatSchema *schema, FlatTable *table)
{
	NameKey		key;
	SchemaTable *t;
	bool		found;

	key.str = table->name;
	key.len = table->namelen;
	t = hash_search(schema->tables, &key, HASH_ENTER, &found);
	if (!found)
	{
		t->key.str = MemoryContextAlloc(schema->cxt, table->namelen + 1);
		memcpy((char *) t->key.str, table->name, table->namelen + 1);
		t->sig = MemoryContextAlloc(schema->cxt, table->siglen + 1);
		memcpy(t->sig, table->sig, table->siglen + 1);
		t->siglen = table->siglen;
		t->parent = table->parent ? table->parent->schema : NULL;
		t->level = table->level;
		t->order = schema->ntables++;
		t->rows = 0;
		t->columns = name_hash_create("execlog flatten columns",
									  sizeof(SchemaColumn), schema->cxt);
	}
	else if (t->siglen != table->siglen || memcmp(t->sig, table->sig, t->siglen) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("two different arrays give the same flattened table \"%s\"",
						table->name),
				 errdetail("Keys are joined with \"$\" and \"&\" to name child tables, so keys that contain those characters can give two arrays the same name.")));
	return t;
}

/*
 * schema_add_row
 *		Aggregate mode: count a row and record the JSON types of its columns.
 */
static void
schema_add_row(struct FlatSchema *schema, FlatTable *table, FlatRow *row)
{
	SchemaTable *t;
	int			i;

	if (table->schema == NULL)
		table->schema = schema_table(schema, table);
	t = table->schema;
	t->rows++;

	for (i = 0; i < row->npairs; i++)
	{
		JsonbPair  *p = &row->pairs[i];
		NameKey		key;
		SchemaColumn *c;
		bool		found;
		int			type;

		key.str = p->key.val.string.val;
		key.len = p->key.val.string.len;
		c = hash_search(t->columns, &key, HASH_ENTER, &found);
		if (!found)
		{
			char	   *copy = MemoryContextAlloc(schema->cxt, key.len + 1);

			memcpy(copy, key.str, key.len);
			copy[key.len] = '\0';
			c->key.str = copy;
			c->types = 0;
		}
		switch (p->value.type)
		{
			case jbvString:
				type = FLAT_T_STRING;
				break;
			case jbvNumeric:
				type = FLAT_T_NUMERIC;
				break;
			case jbvBool:
				type = FLAT_T_BOOL;
				break;
			default:
				type = FLAT_T_NULL;
				break;
		}
		c->types |= type;
	}
}

/*
 * flat_emit
 *		Output the row built in "row": a tuple (table_name, row_key,
 *		parent_key, ordinal, record), or, for the aggregate, its schema.
 *		"parentkeylen" is the length of the parent row's key within
 *		st->rowkey, or -1 for the root row.  Resets the row context.
 */
static void
flat_emit(FlatState *st, FlatRow *row, FlatTable *table, int parentkeylen, int ordinal)
{
	if (st->schema != NULL)
		schema_add_row(st->schema, table, row);
	else
	{
		MemoryContext old = MemoryContextSwitchTo(st->rowcxt);
		JsonbValue	obj;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		obj.type = jbvObject;
		obj.val.object.nPairs = row->npairs;
		obj.val.object.pairs = row->pairs;

		values[0] = PointerGetDatum(cstring_to_text_with_len(table->name, table->namelen));
		values[1] = PointerGetDatum(cstring_to_text_with_len(st->rowkey.data, st->rowkey.len));
		if (parentkeylen < 0)
		{
			nulls[2] = true;
			nulls[3] = true;
			values[2] = values[3] = (Datum) 0;
		}
		else
		{
			values[2] = PointerGetDatum(cstring_to_text_with_len(st->rowkey.data, parentkeylen));
			values[3] = Int32GetDatum(ordinal);
		}
		values[4] = JsonbPGetDatum(JsonbValueToJsonb(&obj));
		tuplestore_putvalues(st->tupstore, st->tupdesc, values, nulls);
		MemoryContextSwitchTo(old);
	}
	MemoryContextReset(st->rowcxt);
}

/*
 * flat_children
 *		Flatten the elements of every array noted in the row of "level".
 */
static void
flat_children(FlatState *st, int level)
{
	FlatRow    *row = &st->rows[level];
	int			i;

	for (i = 0; i < row->narrays; i++)
	{
		FlatArray  *a = &row->arrays[i];
		JsonbIterator *it;
		JsonbIteratorToken tok;
		JsonbValue	v;
		int			ordinal = 0;
		MemoryContext old;

		/* the iterator must outlive the rows emitted on the way */
		old = MemoryContextSwitchTo(st->doccxt);
		it = JsonbIteratorInit(a->container);
		MemoryContextSwitchTo(old);
		for (;;)
		{
			old = MemoryContextSwitchTo(st->doccxt);
			tok = JsonbIteratorNext(&it, &v, true);
			MemoryContextSwitchTo(old);
			if (tok == WJB_DONE)
				break;
			if (tok != WJB_ELEM)
				continue;
			ordinal++;
			flat_element(st, a->table, &v, level + 1, ordinal, a->depth + 1);
		}
	}
}

/*
 * flat_element
 *		Flatten one array element as row "ordinal" of "table", then its own
 *		arrays.
 */
static void
flat_element(FlatState *st, FlatTable *table, JsonbValue *elem,
			 int level, int ordinal, int depth)
{
	FlatRow    *row = &st->rows[level];
	int			parentkeylen = st->rowkey.len;
	MemoryContext old;

	if (elem->type == jbvBinary)
		check_depth(depth);
	row->npairs = 0;
	row->narrays = 0;
	appendStringInfo(&st->rowkey, "/%d", ordinal);

	old = MemoryContextSwitchTo(st->rowcxt);
	row_add_pair(st, row, st->key, st->keylen, &st->keyval);
	if (elem->type == jbvBinary && JsonContainerIsObject(elem->val.binary.data))
	{
		resetStringInfo(&st->colname);
		resetStringInfo(&st->path);
		resetStringInfo(&st->sigpath);
		flat_collect(st, row, table, elem->val.binary.data, depth, false, false);
	}
	else if (elem->type == jbvBinary)
	{
		/* an array in an array: a row whose elements form <table>$value */
		resetStringInfo(&st->path);
		resetStringInfo(&st->sigpath);
		row_add_array(st, row, table, false, "value", 5,
					  elem->val.binary.data, depth);
	}
	else
		row_add_pair(st, row, "value", 5, elem);
	MemoryContextSwitchTo(old);

	row_sort(st, row, table);
	flat_emit(st, row, table, parentkeylen, ordinal);
	flat_children(st, level);
	truncate_string(&st->rowkey, parentkeylen);
}

/*
 * table_cmp
 *		Order table occurrences by name (for the clash check).
 */
static int
table_cmp(const void *a, const void *b)
{
	const FlatTable *ta = *(FlatTable *const *) a;
	const FlatTable *tb = *(FlatTable *const *) b;

	if (ta->namelen != tb->namelen)
		return ta->namelen > tb->namelen ? 1 : -1;
	return memcmp(ta->name, tb->name, ta->namelen);
}

/*
 * check_table_clashes
 *		Refuse a document in which two different arrays give one table name
 *		(keys containing "$" or "&" can do that).
 */
static void
check_table_clashes(FlatState *st)
{
	int			i;

	if (st->ntables < 2)
		return;
	qsort(st->tables, st->ntables, sizeof(FlatTable *), table_cmp);
	for (i = 1; i < st->ntables; i++)
	{
		FlatTable  *a = st->tables[i - 1];
		FlatTable  *b = st->tables[i];

		if (table_cmp(&a, &b) == 0 &&
			(a->siglen != b->siglen || memcmp(a->sig, b->sig, a->siglen) != 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("two different arrays give the same flattened table \"%s\"",
							a->name),
					 errdetail("Keys are joined with \"$\" and \"&\" to name child tables, so keys that contain those characters can give two arrays the same name.")));
	}
}

/*
 * json_kind
 *		"array", "scalar" etc. for the error about a document that is not an
 *		object.
 */
static const char *
json_kind(Jsonb *doc)
{
	if (JB_ROOT_IS_SCALAR(doc))
	{
		JsonbValue	v;

		if (JsonbExtractScalar(&doc->root, &v))
		{
			switch (v.type)
			{
				case jbvNull:
					return "null";
				case jbvString:
					return "string";
				case jbvNumeric:
					return "number";
				case jbvBool:
					return "boolean";
				default:
					break;
			}
		}
		return "scalar";
	}
	return "array";
}

/*
 * flat_begin_document
 *		Reset the state for a new document; returns its root table.
 */
static FlatTable *
flat_begin_document(FlatState *st)
{
	FlatRow    *row = &st->rows[0];
	FlatTable  *roottable;

	MemoryContextReset(st->doccxt);
	MemoryContextReset(st->rowcxt);
	st->tables = NULL;
	st->ntables = 0;
	st->maxtables = 0;

	roottable = MemoryContextAllocZero(st->doccxt, sizeof(FlatTable));
	roottable->name = st->root;
	roottable->namelen = st->rootlen;
	roottable->sig = "r";
	roottable->siglen = 1;

	row->npairs = 0;
	row->narrays = 0;
	resetStringInfo(&st->colname);
	resetStringInfo(&st->path);
	resetStringInfo(&st->sigpath);
	resetStringInfo(&st->rowkey);
	return roottable;
}

/*
 * flat_finish_document
 *		Once the root row is collected: find its key, output it, then the
 *		child tables, and check that no two arrays share a table name.
 */
static void
flat_finish_document(FlatState *st, FlatTable *roottable)
{
	FlatRow    *row = &st->rows[0];
	JsonbValue *keyval;

	row_sort(st, row, roottable);

	/* the key column identifies the document's rows */
	keyval = row_find(row, st->key, st->keylen);
	if (keyval == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("JSON document has no key column \"%s\"", st->key),
				 errdetail("The key column must be a scalar column of the root row, such as \"context$processId\".")));
	switch (keyval->type)
	{
		case jbvString:
			appendBinaryStringInfo(&st->rowkey, keyval->val.string.val,
								   keyval->val.string.len);
			break;
		case jbvNumeric:
			appendStringInfoString(&st->rowkey,
								   DatumGetCString(DirectFunctionCall1(numeric_out,
																	   NumericGetDatum(keyval->val.numeric))));
			break;
		case jbvBool:
			appendStringInfoString(&st->rowkey, keyval->val.boolean ? "true" : "false");
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("key column \"%s\" of the JSON document is null", st->key)));
	}
	st->keyval = *keyval;

	flat_emit(st, row, roottable, -1, 0);
	flat_children(st, 0);
	check_table_clashes(st);
}

/*
 * flat_document
 *		Flatten one document: its root row, then its child tables.
 */
static void
flat_document(FlatState *st, Jsonb *doc)
{
	FlatTable  *roottable;
	MemoryContext old;

	if (!JB_ROOT_IS_OBJECT(doc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot flatten a JSON %s", json_kind(doc)),
				 errdetail("Only a JSON object can be flattened into rows.")));

	roottable = flat_begin_document(st);
	old = MemoryContextSwitchTo(st->rowcxt);
	flat_collect(st, &st->rows[0], roottable, &doc->root, 1, false, false);
	MemoryContextSwitchTo(old);
	flat_finish_document(st, roottable);
}

/*
 * string_value
 *		A JsonbValue for a text datum, or a JSON null.
 */
static void
string_value(JsonbValue *v, FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		v->type = jbvNull;
	else
	{
		text	   *t = PG_GETARG_TEXT_PP(argno);

		v->type = jbvString;
		v->val.string.val = VARDATA_ANY(t);
		v->val.string.len = VARSIZE_ANY_EXHDR(t);
	}
}

/*
 * flat_execution
 *		Flatten the process context of an execution from its parts, exactly
 *		as flat_document would flatten execlog.context_document() of it,
 *		without building that document:
 *		(id, automation_id, context, created_at, updated_at, status), the
 *		timestamps and the status already as text, context an object.
 */
static void
flat_execution(FlatState *st, FunctionCallInfo fcinfo)
{
	static char *const names[] = {
		"context$processId", "context$executionTemplateID",
		"metadata$createdAt", "metadata$updatedAt", "status"
	};
	FlatTable  *roottable;
	FlatRow    *row = &st->rows[0];
	Jsonb	   *context;
	JsonbValue	vals[5];
	char	   *ids[2];
	MemoryContext old;
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("execution id, automation id and context must not be null")));
	context = PG_GETARG_JSONB_P(2);
	if (!JB_ROOT_IS_OBJECT(context))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot flatten a JSON %s", json_kind(context)),
				 errdetail("The context of an execution must be passed as a JSON object.")));

	roottable = flat_begin_document(st);
	old = MemoryContextSwitchTo(st->rowcxt);

	/* "context": the execution's context, its ids replaced by ours */
	appendStringInfoString(&st->colname, "context");
	appendStringInfoString(&st->path, "context");
	append_sig_part(&st->sigpath, 'o', "context", 7);
	flat_collect(st, row, roottable, &context->root, 2, true, true);
	resetStringInfo(&st->colname);
	resetStringInfo(&st->path);
	resetStringInfo(&st->sigpath);

	for (i = 0; i < 2; i++)
	{
		ids[i] = MemoryContextAlloc(st->doccxt, 24);
		snprintf(ids[i], 24, INT64_FORMAT, PG_GETARG_INT64(i));
		vals[i].type = jbvString;
		vals[i].val.string.val = ids[i];
		vals[i].val.string.len = strlen(ids[i]);
	}
	string_value(&vals[2], fcinfo, 3);
	string_value(&vals[3], fcinfo, 4);
	string_value(&vals[4], fcinfo, 5);
	for (i = 0; i < 5; i++)
		row_add_pair(st, row, names[i], strlen(names[i]), &vals[i]);
	MemoryContextSwitchTo(old);

	flat_finish_document(st, roottable);
}

/*
 * flatten_srf_state
 *		The walk state of a set-returning call, kept in fn_extra so that a
 *		call per document (a lateral join over many executions) does not
 *		rebuild its buffers.
 */
static FlatState *
flatten_srf_state(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FlatState  *st = (FlatState *) fcinfo->flinfo->fn_extra;

	InitMaterializedSRF(fcinfo, 0);
	if (st == NULL)
	{
		st = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(FlatState));
		flat_state_init(st, fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = st;
	}
	st->tupstore = rsinfo->setResult;
	st->tupdesc = rsinfo->setDesc;
	st->schema = NULL;
	return st;
}

/*
 * flatten_srf_done
 *		Leave nothing that points into this call's arguments.
 */
static void
flatten_srf_done(FlatState *st)
{
	MemoryContextReset(st->doccxt);
	MemoryContextReset(st->rowcxt);
	st->tupstore = NULL;
	st->tupdesc = NULL;
}

/*
 * execlog_flatten
 *		execlog.flatten(doc jsonb, root text, key text)
 *		RETURNS TABLE (table_name text, row_key text, parent_key text,
 *					   ordinal int, record jsonb)
 */
Datum
execlog_flatten(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);
	char	   *root = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(2));
	FlatState  *st = flatten_srf_state(fcinfo);

	flat_state_names(st, root, key);
	flat_document(st, doc);
	flatten_srf_done(st);
	return (Datum) 0;
}

/*
 * execlog_flatten_execution
 *		execlog._flatten_execution(id bigint, automation_id bigint,
 *								   context jsonb, created_at text,
 *								   updated_at text, status text)
 *		The same rows as execlog.flatten(execlog.context_document(e)), from
 *		the parts of the execution (see flat_execution).
 */
Datum
execlog_flatten_execution(PG_FUNCTION_ARGS)
{
	FlatState  *st = flatten_srf_state(fcinfo);

	flat_state_names(st, CONTEXT_ROOT, CONTEXT_KEY);
	flat_execution(st, fcinfo);
	flatten_srf_done(st);
	return (Datum) 0;
}

/*
 * schema_state
 *		The aggregate state, created on the first row.
 */
static FlatSchema *
schema_state(FunctionCallInfo fcinfo, const char *root, const char *key)
{
	MemoryContext aggcxt;
	FlatSchema *schema;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "flatten schema function called in non-aggregate context");
	if (!PG_ARGISNULL(0))
		return (FlatSchema *) PG_GETARG_POINTER(0);

	schema = MemoryContextAllocZero(aggcxt, sizeof(FlatSchema));
	schema->cxt = aggcxt;
	schema->tables = name_hash_create("execlog flatten tables",
									  sizeof(SchemaTable), aggcxt);
	flat_state_init(&schema->st, aggcxt);
	flat_state_names(&schema->st, root, key);
	schema->st.schema = schema;
	return schema;
}

/*
 * execlog_flatten_schema_trans
 *		Transition function of execlog._flatten_schema(doc, root, key):
 *		walk one document and add its tables and columns to the state.
 *		The root and key of the first row apply to the whole aggregate.
 */
Datum
execlog_flatten_schema_trans(PG_FUNCTION_ARGS)
{
	FlatSchema *schema;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	if (PG_ARGISNULL(0) && (PG_ARGISNULL(2) || PG_ARGISNULL(3)))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("root table name and key column name must not be null")));
	schema = schema_state(fcinfo,
						  PG_ARGISNULL(0) ? text_to_cstring(PG_GETARG_TEXT_PP(2)) : NULL,
						  PG_ARGISNULL(0) ? text_to_cstring(PG_GETARG_TEXT_PP(3)) : NULL);
	flat_document(&schema->st, PG_GETARG_JSONB_P(1));
	MemoryContextReset(schema->st.doccxt);
	PG_RETURN_POINTER(schema);
}

/*
 * execlog_flatten_execution_schema_trans
 *		Transition function of execlog._flatten_execution_schema(id,
 *		automation_id, context, created_at, updated_at, status): the schema
 *		of the process contexts of executions, from their parts.
 */
Datum
execlog_flatten_execution_schema_trans(PG_FUNCTION_ARGS)
{
	FlatSchema *schema = schema_state(fcinfo, CONTEXT_ROOT, CONTEXT_KEY);
	LOCAL_FCINFO(args, 6);
	int			i;

	/* shift the arguments by one, past the state */
	InitFunctionCallInfoData(*args, NULL, 6, InvalidOid, NULL, NULL);
	for (i = 0; i < 6; i++)
	{
		args->args[i].value = fcinfo->args[i + 1].value;
		args->args[i].isnull = fcinfo->args[i + 1].isnull;
	}
	flat_execution(&schema->st, args);
	MemoryContextReset(schema->st.doccxt);
	PG_RETURN_POINTER(schema);
}

/*
 * table_order_cmp
 *		Order schema tables by first appearance (parents before children).
 */
static int
table_order_cmp(const void *a, const void *b)
{
	const SchemaTable *ta = *(SchemaTable *const *) a;
	const SchemaTable *tb = *(SchemaTable *const *) b;

	return ta->order - tb->order;
}

/*
 * column_name_cmp
 *		Order schema columns by name.
 */
static int
column_name_cmp(const void *a, const void *b)
{
	const SchemaColumn *ca = *(SchemaColumn *const *) a;
	const SchemaColumn *cb = *(SchemaColumn *const *) b;
	int			r = memcmp(ca->key.str, cb->key.str, Min(ca->key.len, cb->key.len));

	if (r != 0)
		return r;
	return ca->key.len - cb->key.len;
}

/*
 * push_string
 *		pushJsonbValue of a string key or value.
 */
static void
push_string(JsonbParseState **ps, JsonbIteratorToken tok, const char *str, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) str;
	v.val.string.len = len;
	pushJsonbValue(ps, tok, &v);
}

/*
 * push_int
 *		pushJsonbValue of an integer value.
 */
static void
push_int(JsonbParseState **ps, int64 n)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(n);
	pushJsonbValue(ps, WJB_VALUE, &v);
}

/*
 * execlog_flatten_schema_final
 *		Final function of execlog._flatten_schema: a JSON array with one
 *		object per table, parents first:
 *		{"table": name, "parent": name or null, "level": n, "rows": n,
 *		 "columns": {"<column>": "numeric" | "boolean" | "text", ...}}.
 *		A column is numeric or boolean when every non-null value was of that
 *		JSON type, text otherwise (strings, mixed types, only nulls).
 */
Datum
execlog_flatten_schema_final(PG_FUNCTION_ARGS)
{
	FlatSchema *schema;
	SchemaTable **tables;
	HASH_SEQ_STATUS seq;
	SchemaTable *t;
	JsonbParseState *ps = NULL;
	JsonbValue *result;
	int			n = 0;
	int			i;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	schema = (FlatSchema *) PG_GETARG_POINTER(0);

	tables = palloc(Max(schema->ntables, 1) * sizeof(SchemaTable *));
	hash_seq_init(&seq, schema->tables);
	while ((t = hash_seq_search(&seq)) != NULL)
		tables[n++] = t;
	qsort(tables, n, sizeof(SchemaTable *), table_order_cmp);

	pushJsonbValue(&ps, WJB_BEGIN_ARRAY, NULL);
	for (i = 0; i < n; i++)
	{
		SchemaColumn **cols;
		SchemaColumn *c;
		long		ncols = hash_get_num_entries(tables[i]->columns);
		int			nc = 0;
		int			j;

		t = tables[i];
		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		push_string(&ps, WJB_KEY, "table", 5);
		push_string(&ps, WJB_VALUE, t->key.str, t->key.len);
		push_string(&ps, WJB_KEY, "parent", 6);
		if (t->parent)
			push_string(&ps, WJB_VALUE, t->parent->key.str, t->parent->key.len);
		else
		{
			JsonbValue	null;

			null.type = jbvNull;
			pushJsonbValue(&ps, WJB_VALUE, &null);
		}
		push_string(&ps, WJB_KEY, "level", 5);
		push_int(&ps, t->level);
		push_string(&ps, WJB_KEY, "rows", 4);
		push_int(&ps, t->rows);
		push_string(&ps, WJB_KEY, "columns", 7);

		cols = palloc(Max(ncols, 1) * sizeof(SchemaColumn *));
		hash_seq_init(&seq, t->columns);
		while ((c = hash_seq_search(&seq)) != NULL)
			cols[nc++] = c;
		qsort(cols, nc, sizeof(SchemaColumn *), column_name_cmp);

		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		for (j = 0; j < nc; j++)
		{
			int			types = cols[j]->types & ~FLAT_T_NULL;
			const char *type;

			if (types == FLAT_T_NUMERIC)
				type = "numeric";
			else if (types == FLAT_T_BOOL)
				type = "boolean";
			else
				type = "text";
			push_string(&ps, WJB_KEY, cols[j]->key.str, cols[j]->key.len);
			push_string(&ps, WJB_VALUE, type, strlen(type));
		}
		pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
		pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	}
	result = pushJsonbValue(&ps, WJB_END_ARRAY, NULL);

	PG_RETURN_JSONB_P(JsonbValueToJsonb(result));
}
