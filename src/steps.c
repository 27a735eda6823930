/*-------------------------------------------------------------------------
 *
 * steps.c
 *	  Step kinds, {{ jsonpath }} placeholders, conditions and the execution
 *	  document they are evaluated against.
 *
 * The execution document is
 *	{"payload": …, "steps": {"<name>": {"output": …}}, "resume": …,
 *	 "context": …, "execution": {"id": …, "attempt": …}}
 *
 * A string in a step's config that is exactly one placeholder is replaced
 * by the value the jsonpath finds, keeping its JSON type; placeholders
 * inside a longer string are replaced by their text.  A placeholder that
 * finds nothing is an error: a step never runs with a silently empty value.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "parser/parse_param.h"
#include "storage/lock.h"
#include "tcop/dest.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/jsonpath.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/timeout.h"

/* Marker element appended to SQL output cut at execlog.max_payload_bytes. */
#define TRUNCATED_KEY "execlog_truncated"

/* ----------
 * Small jsonb helpers
 * ----------
 */

Jsonb *
execlog_jsonb_from_cstring(const char *s)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
}

/* The value under key in a jsonb object, or NULL when absent. */
static JsonbValue *
find_key(Jsonb *obj, const char *key)
{
	JsonbValue	k;

	if (obj == NULL || !JB_ROOT_IS_OBJECT(obj))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(&obj->root, JB_FOBJECT, &k);
}

/* The value under key in a jsonb object, or NULL (also for JSON null). */
Jsonb *
execlog_jsonb_get(Jsonb *obj, const char *key)
{
	JsonbValue *v = find_key(obj, key);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	return JsonbValueToJsonb(v);
}

/* The string under key in a jsonb object, or NULL when absent or not a string. */
char *
execlog_jsonb_get_text(Jsonb *obj, const char *key)
{
	JsonbValue *v = find_key(obj, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

Jsonb *
execlog_jsonb_string(const char *s)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = strlen(s);
	return JsonbValueToJsonb(&v);
}

/* Push a jsonb (scalar or container) as a value into a parse state. */
void
execlog_jsonb_push_value(JsonbParseState **state, JsonbIteratorToken tok, Jsonb *val)
{
	JsonbValue	v;

	if (val == NULL)
	{
		v.type = jbvNull;
		pushJsonbValue(state, tok, &v);
	}
	else if (JB_ROOT_IS_SCALAR(val))
	{
		JsonbExtractScalar(&val->root, &v);
		pushJsonbValue(state, tok, &v);
	}
	else
	{
		v.type = jbvBinary;
		v.val.binary.data = &val->root;
		v.val.binary.len = VARSIZE(val) - VARHDRSZ;
		pushJsonbValue(state, tok, &v);
	}
}

/* Push an object key. */
void
execlog_jsonb_push_key(JsonbParseState **state, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
}

/* Push a number as an object value. */
static void
push_int(JsonbParseState **state, int64 i)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(i);
	pushJsonbValue(state, WJB_VALUE, &v);
}

/* Build {"keys[0]": vals[0], ...}; a NULL value becomes JSON null. */
Jsonb *
execlog_jsonb_object(int n, const char **keys, Jsonb **vals)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;
	int			i;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < n; i++)
	{
		JsonbValue	k;

		k.type = jbvString;
		k.val.string.val = (char *) keys[i];
		k.val.string.len = strlen(keys[i]);
		pushJsonbValue(&state, WJB_KEY, &k);
		execlog_jsonb_push_value(&state, WJB_VALUE, vals[i]);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* A jsonb number. */
Jsonb *
execlog_jsonb_int(int64 i)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(i);
	return JsonbValueToJsonb(&v);
}

/*
 * execlog_document
 *		The execution document that placeholders and conditions see.
 */
Jsonb *
execlog_document(ExecRun *run)
{
	JsonbParseState *state = NULL;
	ListCell   *lc;

	/* one parse state: each part is read once and the whole written once */
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	execlog_jsonb_push_key(&state, "context");
	execlog_jsonb_push_value(&state, WJB_VALUE, run->context);
	execlog_jsonb_push_key(&state, "execution");
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	execlog_jsonb_push_key(&state, "attempt");
	push_int(&state, run->attempt);
	execlog_jsonb_push_key(&state, "id");
	push_int(&state, run->id);
	pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	execlog_jsonb_push_key(&state, "payload");
	execlog_jsonb_push_value(&state, WJB_VALUE, run->payload);
	execlog_jsonb_push_key(&state, "resume");
	execlog_jsonb_push_value(&state, WJB_VALUE, run->resume);
	execlog_jsonb_push_key(&state, "steps");
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	foreach(lc, run->outputs)
	{
		StepOutput *o = (StepOutput *) lfirst(lc);

		execlog_jsonb_push_key(&state, o->name);
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		execlog_jsonb_push_key(&state, "output");
		execlog_jsonb_push_value(&state, WJB_VALUE, o->output);
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

/* ----------
 * Placeholders
 * ----------
 */

/*
 * call_jsonpath
 *		Call a jsonb_path_* function (doc, path, vars '{}', silent false).
 */
static Datum
call_jsonpath(PGFunction fn, Jsonb *doc, Datum path, bool *isnull)
{
	LOCAL_FCINFO(fcinfo, 4);
	Datum		result;
	static Jsonb *no_vars = NULL;

	if (no_vars == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		no_vars = execlog_jsonb_from_cstring("{}");
		MemoryContextSwitchTo(old);
	}
	InitFunctionCallInfoData(*fcinfo, NULL, 4, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = JsonbPGetDatum(doc);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = path;
	fcinfo->args[1].isnull = false;
	fcinfo->args[2].value = JsonbPGetDatum(no_vars);
	fcinfo->args[2].isnull = false;
	fcinfo->args[3].value = BoolGetDatum(false);
	fcinfo->args[3].isnull = false;
	result = fn(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

/*
 * eval_path
 *		First item the jsonpath expr finds in doc, or NULL.
 */
static Jsonb *
eval_path(Jsonb *doc, const char *expr)
{
	bool		isnull;
	Datum		result;

	result = call_jsonpath(jsonb_path_query_first, doc,
						   DirectFunctionCall1(jsonpath_in, CStringGetDatum(expr)),
						   &isnull);
	return isnull ? NULL : DatumGetJsonbP(result);
}

/* What placeholders are resolved against; the document is built lazily. */
typedef struct Resolver
{
	ExecRun    *run;
	Jsonb	   *doc;			/* NULL until a placeholder needs it */
} Resolver;

static Jsonb *
resolver_doc(Resolver *r)
{
	if (r->doc == NULL)
		r->doc = execlog_document(r->run);
	return r->doc;
}

/* Member key of an object jsonb, as a jsonb; NULL when it has none. */
static Jsonb *
member_of(Jsonb *obj, const char *key, int len)
{
	JsonbValue	v;

	if (obj == NULL || JB_ROOT_IS_SCALAR(obj) || !JB_ROOT_IS_OBJECT(obj) ||
		getKeyJsonValueFromContainer(&obj->root, key, len, &v) == NULL)
		return NULL;
	return JsonbValueToJsonb(&v);
}

/*
 * simple_path
 *		The common placeholder $.a.b.c (plain ASCII names, objects all the
 *		way), read from the execution's parts without building the
 *		document: the same value lax jsonpath finds.  NULL when the path is
 *		not that simple or finds nothing there (the caller then evaluates it
 *		against the document, for its result or its error).
 */
static Jsonb *
simple_path(ExecRun *run, const char *expr)
{
	const char *p = expr;
	const char *keys[16];
	int			lens[16];
	int			n = 0;
	int			i = 1;
	Jsonb	   *cur;

	if (*p++ != '$')
		return NULL;
	while (*p == '.')
	{
		const char *k = ++p;

		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_') ||
			n == lengthof(keys))
			return NULL;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9') || *p == '_')
			p++;
		keys[n] = k;
		lens[n++] = p - k;
	}
	if (*p != '\0' || n == 0)
		return NULL;

#define KEY_IS(j, lit) (lens[j] == (int) strlen(lit) && strncmp(keys[j], lit, lens[j]) == 0)
	if (KEY_IS(0, "payload"))
		cur = run->payload;
	else if (KEY_IS(0, "context"))
		cur = run->context;
	else if (KEY_IS(0, "resume"))
		cur = run->resume;
	else if (KEY_IS(0, "execution") && n == 2 && KEY_IS(1, "id"))
		return execlog_jsonb_int(run->id);
	else if (KEY_IS(0, "execution") && n == 2 && KEY_IS(1, "attempt"))
		return execlog_jsonb_int(run->attempt);
	else if (KEY_IS(0, "steps") && n >= 3 && KEY_IS(2, "output"))
	{
		ListCell   *lc;

		/* the document keeps the last output of a name */
		cur = NULL;
		foreach(lc, run->outputs)
		{
			StepOutput *o = (StepOutput *) lfirst(lc);

			if ((int) strlen(o->name) == lens[1] && strncmp(o->name, keys[1], lens[1]) == 0)
				cur = o->output;
		}
		i = 3;
	}
	else
		return NULL;
#undef KEY_IS

	for (; i < n && cur != NULL; i++)
		cur = member_of(cur, keys[i], lens[i]);
	return cur;
}

/*
 * resolve_placeholder
 *		Value of one placeholder; errors out clearly when it finds nothing
 *		or is not valid jsonpath.
 */
static Jsonb *
resolve_placeholder(Resolver *r, const char *raw)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	Jsonb	   *val = NULL;
	char	   *expr = pstrdup(raw);
	int			len;

	/* "{{ $.a }}" and "{{$.a}}" are the same placeholder */
	while (*expr == ' ' || *expr == '\t')
		expr++;
	len = strlen(expr);
	while (len > 0 && (expr[len - 1] == ' ' || expr[len - 1] == '\t'))
		expr[--len] = '\0';

	val = simple_path(r->run, expr);
	if (val != NULL)
		return val;
	PG_TRY();
	{
		val = eval_path(resolver_doc(r), expr);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not resolve placeholder \"{{ %s }}\": %s",
						expr, edata->message)));
	}
	PG_END_TRY();

	if (val == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("placeholder \"{{ %s }}\" matched nothing", expr),
				 errhint("Placeholders are evaluated against {\"payload\", \"steps\", \"resume\", \"context\", \"execution\"}.")));
	return val;
}

/* Text form of a jsonb value for interpolation: strings raw, others as JSON. */
static char *
jsonb_as_text(Jsonb *val)
{
	JsonbValue	v;

	if (JB_ROOT_IS_SCALAR(val))
	{
		JsonbExtractScalar(&val->root, &v);
		if (v.type == jbvString)
			return pnstrdup(v.val.string.val, v.val.string.len);
		if (v.type == jbvNull)
			return pstrdup("");
	}
	return JsonbToCString(NULL, &val->root, VARSIZE(val));
}

/*
 * resolve_string
 *		Resolve the placeholders of one string; *whole is set when the string
 *		is exactly one placeholder (the typed value is returned then).
 */
static Jsonb *
resolve_string(const char *s, int len, Resolver *r)
{
	const char *open;
	StringInfoData out;
	const char *p = s;
	const char *end = s + len;
	char	   *str = pnstrdup(s, len);
	char	   *trimmed = str;
	int			tlen;

	/* exactly one placeholder, maybe surrounded by blanks: keep the type */
	while (*trimmed == ' ' || *trimmed == '\t' || *trimmed == '\n')
		trimmed++;
	tlen = strlen(trimmed);
	while (tlen > 0 && (trimmed[tlen - 1] == ' ' || trimmed[tlen - 1] == '\t' ||
						trimmed[tlen - 1] == '\n'))
		tlen--;
	if (tlen >= 4 && strncmp(trimmed, "{{", 2) == 0 &&
		strncmp(trimmed + tlen - 2, "}}", 2) == 0)
	{
		char	   *inner = pnstrdup(trimmed + 2, tlen - 4);

		if (strstr(inner, "{{") == NULL && strstr(inner, "}}") == NULL)
			return resolve_placeholder(r, inner);
	}

	initStringInfo(&out);
	while (p < end && (open = strstr(p, "{{")) != NULL && open < end)
	{
		const char *close = strstr(open + 2, "}}");
		char	   *expr;

		if (close == NULL || close >= end)
			break;
		appendBinaryStringInfo(&out, p, open - p);
		expr = pnstrdup(open + 2, close - open - 2);
		appendStringInfoString(&out, jsonb_as_text(resolve_placeholder(r, expr)));
		p = close + 2;
	}
	appendBinaryStringInfo(&out, p, end - p);
	return execlog_jsonb_string(out.data);
}

/*
 * resolve_value
 *		Copy a jsonb value into the parse state, resolving placeholders in
 *		every string found on the way.
 */
static void
resolve_into(JsonbParseState **state, JsonbIteratorToken tok, JsonbValue *v, Resolver *r)
{
	if (v->type == jbvString && v->val.string.len >= 4 &&
		memchr(v->val.string.val, '{', v->val.string.len) != NULL)
	{
		Jsonb	   *val = resolve_string(v->val.string.val, v->val.string.len, r);

		execlog_jsonb_push_value(state, tok, val);
	}
	else
		pushJsonbValue(state, tok, v);
}

/*
 * execlog_resolve_config
 *		The config with every placeholder resolved: the step's input.
 */
Jsonb *
execlog_resolve_config(Jsonb *config, ExecRun *run)
{
	Resolver	r = {run, NULL};
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	JsonbParseState *state = NULL;
	JsonbValue *res = NULL;

	it = JsonbIteratorInit(&config->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_VALUE || tok == WJB_ELEM)
			resolve_into(&state, tok, &v, &r);
		else if (tok == WJB_KEY)
			res = pushJsonbValue(&state, tok, &v);
		else
			res = pushJsonbValue(&state, tok, NULL);
	}
	return JsonbValueToJsonb(res);
}

/*
 * execlog_condition_holds
 *		Whether a step's jsonpath condition is true for the document
 *		(false and unknown both skip the step).
 */
bool
execlog_condition_holds(Datum condition, Jsonb *doc)
{
	bool		isnull;
	Datum		result = call_jsonpath(jsonb_path_match, doc, condition, &isnull);

	return !isnull && DatumGetBool(result);
}

/* ----------
 * sql steps
 * ----------
 */

typedef struct VarParams
{
	Oid		   *types;
	int			ntypes;
} VarParams;

/* Parser hook: let the query decide the types of $1..$n, like PREPARE. */
static void
variable_params_setup(ParseState *pstate, void *arg)
{
	VarParams  *vp = (VarParams *) arg;

	setup_parse_variable_parameters(pstate, &vp->types, &vp->ntypes);
}

/*
 * bind_args
 *		Turn the resolved "args" array into parameters of the inferred types.
 */
static ParamListInfo
bind_args(Jsonb *args, VarParams *vp)
{
	int			n = 0;
	ParamListInfo params;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			i = 0;

	if (args != NULL)
	{
		if (!JB_ROOT_IS_ARRAY(args) || JB_ROOT_IS_SCALAR(args))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"args\" of an sql step must be an array")));
		n = JB_ROOT_COUNT(args);
	}
	params = makeParamList(Max(n, vp->ntypes));
	for (i = 0; i < params->numParams; i++)
	{
		params->params[i].isnull = true;
		params->params[i].pflags = PARAM_FLAG_CONST;
		/* a parameter the query leaves untyped stays "unknown", like a literal */
		params->params[i].ptype = (i < vp->ntypes && OidIsValid(vp->types[i])) ?
			vp->types[i] : TEXTOID;
	}
	if (n == 0)
		return params;

	i = 0;
	it = JsonbIteratorInit(&args->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *text;
		Oid			typinput;
		Oid			typioparam;

		if (tok != WJB_ELEM)
			continue;
		if (v.type == jbvNull)
		{
			i++;
			continue;
		}
		if (v.type == jbvString)
			text = pnstrdup(v.val.string.val, v.val.string.len);
		else if (v.type == jbvBinary)
			text = JsonbToCString(NULL, v.val.binary.data, v.val.binary.len);
		else
		{
			Jsonb	   *scalar = JsonbValueToJsonb(&v);

			text = JsonbToCString(NULL, &scalar->root, VARSIZE(scalar));
		}
		getTypeInputInfo(params->params[i].ptype, &typinput, &typioparam);
		params->params[i].value = OidInputFunctionCall(typinput, text, typioparam, -1);
		params->params[i].isnull = false;
		i++;
	}
	return params;
}

/*
 * RowsReceiver
 *		Where the rows of an sql step go: a DestReceiver that turns each row
 *		into JSON as the executor produces it.
 *
 * A row is converted in a scratch context reset after every row, appended
 * to the output while the output stays under execlog.max_payload_bytes,
 * and from then on only counted (rows and JSON bytes, for the marker).  So
 * the worker's memory does not grow with the size of the result: the rows
 * are never materialised, as SPI's tuple table would hold them all.  Every
 * statement of the query that returns rows starts the output again
 * (rStartup): the last statement's rows are the step's output, as with
 * SPI_tuptable.
 */
typedef struct RowsReceiver
{
	DestReceiver pub;
	MemoryContext cxt;			/* where the output lives */
	MemoryContext rowcxt;		/* one row's scratch, reset after each */
	TupleDesc	desc;			/* blessed copy of the result's descriptor */
	StringInfoData buf;			/* "[" and the rows kept */
	bool		started;		/* a statement returned rows */
	uint64		rows;			/* rows of the last such statement */
	uint64		kept;			/* rows in buf */
	int64		bytes;			/* JSON text of all rows, with separators */
} RowsReceiver;

/* A statement that returns rows begins: start the output again. */
static void
rows_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	RowsReceiver *r = (RowsReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(r->cxt);

	r->desc = BlessTupleDesc(CreateTupleDescCopy(typeinfo));
	if (r->buf.data == NULL)
		initStringInfo(&r->buf);
	resetStringInfo(&r->buf);
	appendStringInfoChar(&r->buf, '[');
	r->started = true;
	r->rows = 0;
	r->kept = 0;
	r->bytes = 0;
	MemoryContextSwitchTo(old);
}

/* One row: keep its JSON while it fits, count it anyway. */
static bool
rows_receive(TupleTableSlot *slot, DestReceiver *self)
{
	RowsReceiver *r = (RowsReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(r->rowcxt);
	bool		should_free;
	HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
	Datum		row = heap_copy_tuple_as_datum(tuple, r->desc);
	text	   *json = DatumGetTextPP(DirectFunctionCall1(row_to_json, row));
	int			len = VARSIZE_ANY_EXHDR(json);

	r->bytes += len + 1;
	/* the buffer grows in its own context (repalloc) */
	if (r->kept == r->rows && r->buf.len + len + 1 < execlog_max_payload_bytes)
	{
		if (r->rows > 0)
			appendStringInfoChar(&r->buf, ',');
		appendBinaryStringInfo(&r->buf, VARDATA_ANY(json), len);
		r->kept++;
	}
	r->rows++;
	MemoryContextSwitchTo(old);
	MemoryContextReset(r->rowcxt);
	return true;
}

static void
rows_shutdown(DestReceiver *self)
{
}

static void
rows_destroy(DestReceiver *self)
{
}

/* A receiver for one sql step, in the current memory context. */
static RowsReceiver *
rows_receiver_create(void)
{
	RowsReceiver *r = palloc0(sizeof(RowsReceiver));

	r->pub.receiveSlot = rows_receive;
	r->pub.rStartup = rows_startup;
	r->pub.rShutdown = rows_shutdown;
	r->pub.rDestroy = rows_destroy;
	/* not DestNone: SPI would report a SELECT as SPI_OK_UTILITY */
	r->pub.mydest = DestTuplestore;
	r->cxt = CurrentMemoryContext;
	r->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "execlog sql step row",
									  ALLOCSET_DEFAULT_SIZES);
	return r;
}

/*
 * rows_output
 *		The step's output: the rows kept as a JSON array and, when some were
 *		not kept, a last element {"execlog_truncated": true, "rows": <all
 *		rows>, "rows_kept": …, "bytes": <JSON text of all rows>}.  An empty
 *		array when the last statement returns no rows.
 */
static Jsonb *
rows_output(RowsReceiver *r, bool last_returns_rows)
{
	MemoryContextDelete(r->rowcxt);
	if (!r->started || !last_returns_rows)
		return execlog_jsonb_from_cstring("[]");
	if (r->kept < r->rows)
		appendStringInfo(&r->buf, "%s{\"" TRUNCATED_KEY "\": true, \"rows\": " UINT64_FORMAT
						 ", \"rows_kept\": " UINT64_FORMAT ", \"bytes\": " INT64_FORMAT "}",
						 r->kept > 0 ? "," : "", r->rows, r->kept, r->bytes);
	appendStringInfoChar(&r->buf, ']');
	return execlog_jsonb_from_cstring(r->buf.data);
}

/*
 * returns_rows
 *		Whether the statement that set SPI's result code (the last one of
 *		the query) returns rows, as its output then is the step's.
 */
static bool
returns_rows(SPIPlanPtr plan, int rc)
{
	List	   *sources;

	switch (rc)
	{
		case SPI_OK_SELECT:
		case SPI_OK_INSERT_RETURNING:
		case SPI_OK_DELETE_RETURNING:
		case SPI_OK_UPDATE_RETURNING:
			return true;
		case SPI_OK_UTILITY:
			/* EXPLAIN, SHOW and the like return rows, most utilities none */
			sources = SPI_plan_get_plan_sources(plan);
			return sources != NIL &&
				((CachedPlanSource *) llast(sources))->resultDesc != NULL;
		default:
			return false;
	}
}

/*
 * execlog_cap_payload
 *		A payload to store, cut at execlog.max_payload_bytes: a value whose
 *		JSON text is longer becomes the marker an HTTP body cut at the limit
 *		gets, {"execlog_truncated": true, "bytes": <JSON text length>,
 *		"bytes_kept": <kept>, "text": <the start of the JSON text>}, whose
 *		own JSON text stays within the limit.  NULL stays NULL.
 */
Jsonb *
execlog_cap_payload(Jsonb *val)
{
	char	   *text;
	int			len;
	int			budget;
	int			cost = 0;
	int			kept = 0;
	const char *keys[4];
	Jsonb	   *vals[4];

	if (val == NULL)
		return NULL;
	text = JsonbToCString(NULL, &val->root, VARSIZE(val));
	len = strlen(text);
	if (len <= execlog_max_payload_bytes)
	{
		pfree(text);
		return val;
	}

	/* room for the marker's keys and figures; quoting doubles " and \ */
	budget = Max(execlog_max_payload_bytes - 128, 0);
	while (kept < len)
	{
		int			c = (text[kept] == '"' || text[kept] == '\\') ? 2 : 1;

		if (cost + c > budget)
			break;
		cost += c;
		kept++;
	}
	kept = pg_mbcliplen(text, len, kept);
	text[kept] = '\0';

	keys[0] = TRUNCATED_KEY;
	vals[0] = execlog_jsonb_from_cstring("true");
	keys[1] = "bytes";
	vals[1] = execlog_jsonb_int((int64) len);
	keys[2] = "bytes_kept";
	vals[2] = execlog_jsonb_int((int64) kept);
	keys[3] = "text";
	vals[3] = execlog_jsonb_string(text);
	return execlog_jsonb_object(4, keys, vals);
}

/*
 * execlog_refuse_query_placeholders
 *		Refuse an sql step whose stored query holds a placeholder ("{{" and a
 *		later "}}"): resolved, it would be pasted into the SQL text.  Steps
 *		written since 0.2 are refused by the steps trigger already.
 */
void
execlog_refuse_query_placeholders(StepDef *step)
{
	char	   *query = execlog_jsonb_get_text(step->config, "query");
	const char *open;

	if (query != NULL && (open = strstr(query, "{{")) != NULL &&
		strstr(open + 2, "}}") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("placeholders are not allowed in the query of sql step \"%s\"",
						step->name),
				 errhint("Pass values in \"args\" and use them as $1, $2, ... in the query.")));
}

/*
 * become_run_as
 *		Switch to the role as a security-restricted operation, with the
 *		settings a session of the role would have in this database: the
 *		configured search_path instead of the worker's pinned one, then the
 *		ALTER ROLE / ALTER DATABASE ... SET values (global, database, role,
 *		role in database: later ones win), applied as the role.  All undone
 *		with the caller's GUC nest level.  SPI connected, as the worker.
 */
static void
become_run_as(Oid role, int save_sec_context)
{
	Oid			argtypes[2] = {OIDOID, OIDOID};
	Datum		values[2];
	ArrayType **configs;
	uint64		n;
	uint64		i;

	values[0] = ObjectIdGetDatum(MyDatabaseId);
	values[1] = ObjectIdGetDatum(role);
	if (SPI_execute_with_args("SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s"
							  " WHERE s.setdatabase OPERATOR(pg_catalog.=) ANY (ARRAY[0, $1]::pg_catalog.oid[])"
							  "   AND s.setrole OPERATOR(pg_catalog.=) ANY (ARRAY[0, $2]::pg_catalog.oid[])"
							  " ORDER BY s.setrole OPERATOR(pg_catalog.<>) 0::pg_catalog.oid,"
							  "          s.setdatabase OPERATOR(pg_catalog.<>) 0::pg_catalog.oid",
							  2, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the settings of role %u", role);
	n = SPI_processed;
	configs = palloc0(sizeof(ArrayType *) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		config = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1,
										   &isnull);

		if (!isnull)
			configs[i] = DatumGetArrayTypePCopy(config);
	}

	SetUserIdAndSecContext(role, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	(void) set_config_option("search_path", GetConfigOptionResetString("search_path"),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	for (i = 0; i < n; i++)
		if (configs[i] != NULL)
			ProcessGUCArray(configs[i], PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE);
}

/*
 * clean_step_session
 *		Undo what a step's query left in the worker's session beyond its
 *		transaction: session-level advisory locks.  (Settings go with the
 *		GUC nest level; PREPARE, LISTEN and temporary tables are refused in a
 *		security-restricted operation.)  Only in a worker: a backend calling
 *		the engine keeps its own session as it is.
 */
static void
clean_step_session(void)
{
	if (!IsBackgroundWorker)
		return;
	LockReleaseSession(USER_LOCKMETHOD);
}

/*
 * execlog_run_sql_step
 *		Run an sql step's query as the automation's run_as role, with its
 *		args bound as parameters and a timeout not past the time limit.
 *
 * SET commands in the query are undone afterwards, session advisory locks
 * released (success or failure), and the query runs
 * as a security-restricted operation, so it cannot change the worker's
 * session.  Its rows go to a RowsReceiver as they are produced: memory stays
 * within a constant plus execlog.max_payload_bytes whatever the size of the
 * result, and the marker still counts every row.
 */
Jsonb *
execlog_run_sql_step(ExecRun *run, StepDef *step, Jsonb *input)
{
	char	   *query = execlog_jsonb_get_text(input, "query");
	Jsonb	   *args = execlog_jsonb_get(input, "args");
	Oid			role;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	long		remaining_ms;
	SPIPlanPtr	plan;
	SPIPrepareOptions popts;
	SPIExecuteOptions eopts;
	VarParams	vp = {NULL, 0};
	int			rc;
	RowsReceiver *receiver;
	Jsonb	   *output;

	if (query == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sql step \"%s\" has no \"query\" string", step->name)));

	role = get_role_oid(run->run_as, true);
	if (!OidIsValid(role))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" does not exist", run->run_as),
				 errdetail("The automation runs its sql steps as this role (run_as).")));

	/* round up, so the timeout fires at or after the deadline, never before */
	remaining_ms = (long) ((run->deadline - GetCurrentTimestamp() + 999) / 1000) + 1;
	if (remaining_ms < 1)
		remaining_ms = 1;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	save_nestlevel = NewGUCNestLevel();
	become_run_as(role, save_sec_context);

	memset(&popts, 0, sizeof(popts));
	popts.parserSetup = variable_params_setup;
	popts.parserSetupArg = &vp;
	popts.cursorOptions = CURSOR_OPT_PARALLEL_OK;
	plan = SPI_prepare_extended(query, &popts);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare_extended failed: %s", SPI_result_code_string(SPI_result));

	memset(&eopts, 0, sizeof(eopts));
	eopts.params = bind_args(args, &vp);
	eopts.read_only = false;
	eopts.allow_nonatomic = false;
	/* the rows go to the receiver one by one, never into SPI_tuptable */
	receiver = rows_receiver_create();
	eopts.dest = (DestReceiver *) receiver;

	enable_timeout_after(STATEMENT_TIMEOUT, (int) Min(remaining_ms, INT_MAX));
	PG_TRY();
	{
		rc = SPI_execute_plan_extended(plan, &eopts);
	}
	PG_CATCH();
	{
		disable_timeout(STATEMENT_TIMEOUT, false);
		clean_step_session();
		PG_RE_THROW();
	}
	PG_END_TRY();
	disable_timeout(STATEMENT_TIMEOUT, false);
	clean_step_session();
	if (rc == SPI_ERROR_TRANSACTION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("an sql step cannot control transactions"),
				 errdetail("COMMIT, ROLLBACK, SAVEPOINT and the like are not allowed in a step."),
				 errhint("Each step runs in a subtransaction of its execution: it commits with the execution's record, or not at all.")));
	if (rc == SPI_ERROR_COPY)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("an sql step cannot run COPY to or from the client")));
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan_extended failed: %s", SPI_result_code_string(rc));

	output = rows_output(receiver, returns_rows(plan, rc));
	SPI_freeplan(plan);

	SetUserIdAndSecContext(save_userid, save_sec_context);
	AtEOXact_GUC(false, save_nestlevel);
	return output;
}

/*
 * execlog_feedback_step
 *		Merge the resolved fields into context.<key> (post-action feedback).
 */
Jsonb *
execlog_feedback_step(ExecRun *run, Jsonb *input)
{
	Jsonb	   *fields = execlog_jsonb_get(input, "fields");
	char	   *key = execlog_jsonb_get_text(input, "key");
	Jsonb	   *current;
	Jsonb	   *merged;
	const char *keys[1];
	Jsonb	   *vals[1];

	if (fields == NULL || !JB_ROOT_IS_OBJECT(fields))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feedback step needs a \"fields\" object")));
	if (key == NULL && execlog_jsonb_get(input, "key") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"key\" of a feedback step must be a string")));
	if (key != NULL && key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"key\" of a feedback step must not be empty")));
	if (key == NULL)
		key = "celonis_postaction_feedback";

	current = execlog_jsonb_get(run->context, key);
	if (current != NULL && JB_ROOT_IS_OBJECT(current))
		merged = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
													JsonbPGetDatum(current),
													JsonbPGetDatum(fields)));
	else
		merged = fields;

	keys[0] = key;
	vals[0] = merged;
	run->context = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
													  JsonbPGetDatum(run->context),
													  JsonbPGetDatum(execlog_jsonb_object(1, keys, vals))));
	run->context_changed = true;
	return fields;
}
