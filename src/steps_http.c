/*-------------------------------------------------------------------------
 *
 * steps_http.c
 *	  http steps, inside the batch transaction: validate a step and prepare
 *	  its request, and later turn the request's result into the step row.
 *
 * config: method (GET, or POST with a body), url or connection + path,
 * headers (object), body (JSON is sent as JSON; a string as is), timeout
 * (an interval; default execlog.http_timeout), expect (status codes that
 * count as success; default 2xx).
 *
 * output: {"status": 200, "headers": {…lower-case names…}, "body": …}; a
 * JSON body is parsed, other text kept as text, bytes that are not text
 * kept as {"encoding": "base64", "data": …}, and a body longer than
 * execlog.max_payload_bytes cut with a marker ("execlog_truncated").
 *
 * Secrets (a connection's auth) are used to send the request only: they are
 * never part of the stored input, and are scrubbed from what the far end
 * sends back.  Headers that carry credentials are stored as "[redacted]".
 *
 *-------------------------------------------------------------------------
 */
#include "http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <time.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/formatting.h"
#include "utils/memutils.h"

#define TRUNCATED_KEY "execlog_truncated"
#define REDACTED "[redacted]"

static SPIPlanPtr connection_plan = NULL;

/* ----------
 * Validation helpers
 * ----------
 */

/* RFC 9110 token characters: method and header names. */
static bool
is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL) || c >= 0x80)
			return false;
	}
	return true;
}

/* Header names whose values are credentials: stored redacted. */
static bool
is_sensitive_header(const char *name)
{
	static const char *const words[] = {"authorization", "cookie", "token", "secret",
	"password", "api-key", "apikey", "api_key", "signature"};
	char	   *lower = asc_tolower(name, strlen(name));
	int			i;

	for (i = 0; i < (int) lengthof(words); i++)
		if (strstr(lower, words[i]) != NULL)
			return true;
	return false;
}

/*
 * userinfo
 *		Where the userinfo of a URL ("user:password" before the host) is:
 *		false when the URL has none.  Plain text scanning, so that a URL
 *		libcurl would refuse is redacted all the same.
 */
static bool
userinfo(const char *url, const char **start, size_t *len)
{
	const char *p = strstr(url, "://");
	const char *end;
	const char *at = NULL;

	if (p == NULL)
		return false;
	p += 3;
	end = p + strcspn(p, "/?#");
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at == NULL)
		return false;
	*start = p;
	*len = at - p;
	return true;
}

/* The URL as it may be shown or stored: userinfo replaced by [redacted]. */
static char *
shown_url(const char *url)
{
	const char *start;
	size_t		len;

	if (url == NULL || !userinfo(url, &start, &len))
		return (char *) url;
	return psprintf("%.*s" REDACTED "%s", (int) (start - url), url, start + len);
}

/* Percent-decoded copy of len bytes of s (invalid escapes kept). */
static char *
percent_decode(const char *s, size_t len)
{
	char	   *out = palloc(len + 1);
	size_t		i,
				o = 0;

	for (i = 0; i < len; i++)
	{
		if (s[i] == '%' && i + 2 < len && isxdigit((unsigned char) s[i + 1]) &&
			isxdigit((unsigned char) s[i + 2]))
		{
			char		hex[3] = {s[i + 1], s[i + 2], '\0'};

			out[o++] = (char) strtol(hex, NULL, 16);
			i += 2;
		}
		else
			out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/*
 * url_secrets
 *		The credentials a URL carries, as they may show up anywhere: the
 *		password (or a user without password, a token), as written and
 *		decoded, "user:password", and its base64 form (HTTP Basic).
 */
static List *
url_secrets(List *secrets, const char *url)
{
	const char *start;
	size_t		len;
	const char *colon;
	char	   *creds;
	int			cap;
	char	   *b64;
	int			n;

	if (url == NULL || !userinfo(url, &start, &len) || len == 0)
		return secrets;
	colon = memchr(start, ':', len);
	if (colon == NULL)
	{
		secrets = lappend(secrets, pnstrdup(start, len));
		return lappend(secrets, percent_decode(start, len));
	}
	secrets = lappend(secrets, pnstrdup(colon + 1, len - (colon + 1 - start)));
	secrets = lappend(secrets, percent_decode(colon + 1, len - (colon + 1 - start)));
	secrets = lappend(secrets, pnstrdup(start, len));
	creds = psprintf("%s:%s", percent_decode(start, colon - start),
					 percent_decode(colon + 1, len - (colon + 1 - start)));
	secrets = lappend(secrets, creds);
	cap = pg_b64_enc_len(strlen(creds)) + 1;
	b64 = palloc(cap);
	n = pg_b64_encode(creds, strlen(creds), b64, cap);
	if (n > 0)
	{
		b64[n] = '\0';
		secrets = lappend(secrets, b64);
	}
	return secrets;
}

/*
 * check_url
 *		Refuse a URL libcurl cannot parse or that is not http(s); returns its
 *		host.  'what' names the URL in messages.
 */
static char *
check_url(const char *url, StepDef *def, const char *what)
{
	CURLU	   *u;
	CURLUcode	rc;
	char	   *scheme = NULL;
	char	   *host = NULL;
	char	   *scheme_copy = NULL;
	char	   *host_copy = NULL;
	const char *p;

	for (p = url; *p; p++)
	{
		if ((unsigned char) *p <= 0x20 || *p == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid URL \"%s\" in http step \"%s\"", shown_url(url), def->name),
					 errdetail("The %s contains a space or a control character.", what)));
	}

	u = curl_url();
	if (u == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	rc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (rc == CURLUE_OK)
		(void) curl_url_get(u, CURLUPART_HOST, &host, 0);
	if (scheme)
		scheme_copy = pstrdup(scheme);
	if (host)
		host_copy = pstrdup(host);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);

	if (rc != CURLUE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid URL \"%s\" in http step \"%s\"", shown_url(url), def->name),
				 errdetail("%s.", curl_url_strerror(rc))));
	if (pg_strcasecmp(scheme_copy, "http") != 0 && pg_strcasecmp(scheme_copy, "https") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("URL scheme \"%s\" is not allowed in http step \"%s\"",
						scheme_copy, def->name),
				 errhint("Only http and https URLs can be fetched.")));
	if (host_copy == NULL || host_copy[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid URL \"%s\" in http step \"%s\"", shown_url(url), def->name),
				 errdetail("The %s has no host.", what)));
	return host_copy;
}

/* Refuse a host that execlog.http_allow / http_deny refuse by name. */
static void
check_policy(const char *host)
{
	char		why[512];

	if (!execlog_http_policy_check_host(execlog_http_policy_current(), host,
										why, sizeof(why)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s", why)));
}

/* Text of a scalar config value (string, number, boolean), or NULL. */
static char *
scalar_text(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

/*
 * timeout_ms
 *		The step's timeout in milliseconds: an interval text such as "5 seconds" (a number is
 *		seconds).  Errors name the step.
 */
static int
timeout_ms(Jsonb *input, StepDef *def)
{
	Jsonb	   *t = execlog_jsonb_get(input, "timeout");
	JsonbValue	v;
	double		ms;

	if (t == NULL)
		return execlog_http_timeout_ms;
	if (!JB_ROOT_IS_SCALAR(t))
		goto bad;
	JsonbExtractScalar(&t->root, &v);
	if (v.type == jbvNumeric)
		ms = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
												NumericGetDatum(v.val.numeric))) * 1000.0;
	else if (v.type == jbvString)
	{
		char	   *text = pnstrdup(v.val.string.val, v.val.string.len);
		MemoryContext cxt = CurrentMemoryContext;
		Interval   *iv = NULL;

		PG_TRY();
		{
			iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(text),
													   ObjectIdGetDatum(InvalidOid),
													   Int32GetDatum(-1)));
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			FlushErrorState();
			iv = NULL;
		}
		PG_END_TRY();
		if (iv == NULL)
			goto bad;
		ms = ((double) iv->time + (double) iv->day * USECS_PER_DAY +
			  (double) iv->month * DAYS_PER_MONTH * USECS_PER_DAY) / 1000.0;
	}
	else
		goto bad;
	if (ms < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"timeout\" of http step \"%s\" must be positive", def->name)));
	return ms > INT_MAX ? INT_MAX : (int) ms;

bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("\"timeout\" of http step \"%s\" must be an interval, such as \"5 seconds\"",
					def->name)));
	return 0;					/* keep compiler quiet */
}

/*
 * expected_status
 *		Whether status counts as success: the "expect" list of the input, or
 *		2xx.  Bad lists are refused when preparing, so they cannot get here.
 */
static bool
expected_status(Jsonb *input, StepDef *def, long status)
{
	Jsonb	   *expect = execlog_jsonb_get(input, "expect");
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		found = false;

	if (expect == NULL)
		return status >= 200 && status <= 299;
	if (!JB_ROOT_IS_ARRAY(expect) || JB_ROOT_IS_SCALAR(expect))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"expect\" of http step \"%s\" must be an array of status codes",
						def->name)));
	it = JsonbIteratorInit(&expect->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *text;
		char	   *end;
		long		code;

		if (tok != WJB_ELEM)
			continue;
		text = (v.type == jbvNumeric || v.type == jbvString) ? scalar_text(&v) : NULL;
		code = text ? strtol(text, &end, 10) : 0;
		if (text == NULL || *end != '\0' || code < 100 || code > 599)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"expect\" of http step \"%s\" must list HTTP status codes (100 to 599)",
							def->name)));
		if (code == status)
			found = true;
	}
	return found;
}

/* ----------
 * Connections and their auth
 * ----------
 */

/* A required string field of an auth object. */
static char *
auth_field(Jsonb *auth, const char *key, const char *conn, bool required)
{
	char	   *v = execlog_jsonb_get_text(auth, key);

	if (v == NULL && required)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("auth of connection \"%s\" needs a \"%s\" string", conn, key)));
	if (v != NULL && (strchr(v, '\r') || strchr(v, '\n')))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" in the auth of connection \"%s\" contains a line break",
						key, conn)));
	return v;
}

/* Read a connection's auth object into out (which is zeroed). */
static void
parse_auth(Jsonb *auth, const char *conn, StepDef *def, HttpAuth *out)
{
	char	   *type;

	if (auth == NULL)
		return;
	type = execlog_jsonb_get_text(auth, "type");
	if (type == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("auth of connection \"%s\" needs a \"type\"", conn),
				 errhint("Auth types are bearer, basic and oauth2_client_credentials.")));
	if (strcmp(type, "bearer") == 0)
	{
		out->type = HTTP_AUTH_BEARER;
		out->token = auth_field(auth, "token", conn, true);
	}
	else if (strcmp(type, "basic") == 0)
	{
		out->type = HTTP_AUTH_BASIC;
		out->username = auth_field(auth, "username", conn, true);
		out->password = auth_field(auth, "password", conn, true);
	}
	else if (strcmp(type, "oauth2_client_credentials") == 0)
	{
		char	   *method;

		out->type = HTTP_AUTH_OAUTH2;
		out->token_url = auth_field(auth, "token_url", conn, true);
		out->client_id = auth_field(auth, "client_id", conn, true);
		out->client_secret = auth_field(auth, "client_secret", conn, true);
		out->scope = auth_field(auth, "scope", conn, false);
		method = auth_field(auth, "client_auth", conn, false);
		out->client_basic = method != NULL && strcmp(method, "basic") == 0;
		check_policy(check_url(out->token_url, def, "token_url"));
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown auth type \"%s\" of connection \"%s\"", type, conn),
				 errhint("Auth types are bearer, basic and oauth2_client_credentials.")));
}

/*
 * connection_url
 *		Look the named connection up in the execution's account; returns
 *		base_url joined with path and fills in the auth.
 */
static char *
connection_url(ExecRun *run, StepDef *def, const char *name, const char *path,
			   HttpAuth *auth)
{
	Datum		values[2];
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	char	   *base;
	Datum		d;
	Jsonb	   *authdoc = NULL;
	int			len;

	if (connection_plan == NULL)
	{
		Oid			types[2] = {INT8OID, TEXTOID};
		SPIPlanPtr	p = SPI_prepare("SELECT id, base_url, auth, updated_at"
									"  FROM execlog.connections"
									" WHERE account_id = $1 AND name = $2",
									2, types);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		connection_plan = p;
	}
	values[0] = Int64GetDatum(run->account_id);
	values[1] = CStringGetTextDatum(name);
	if (SPI_execute_plan(connection_plan, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "connection lookup failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("connection \"%s\" does not exist", name),
				 errdetail("http step \"%s\" looks connections up in the account of its automation.",
						   def->name)));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	auth->connection_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	base = SPI_getvalue(tup, desc, 2);
	d = SPI_getbinval(tup, desc, 3, &isnull);
	if (!isnull)
		authdoc = DatumGetJsonbPCopy(d);
	auth->connection_updated_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull));
	SPI_freetuptable(SPI_tuptable);

	parse_auth(authdoc, name, def, auth);

	if (path == NULL || path[0] == '\0')
		return base;
	if (strstr(path, "://") != NULL || strncmp(path, "//", 2) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"path\" of http step \"%s\" must be relative to the base_url of connection \"%s\"",
						def->name, name)));
	len = strlen(base);
	while (len > 0 && base[len - 1] == '/')
		len--;
	return psprintf("%.*s%s%s", len, base,
					(path[0] == '/' || path[0] == '?') ? "" : "/", path);
}

/* ----------
 * Preparing a request
 * ----------
 */

/*
 * execlog_http_prepare
 *		Validate an http step's resolved config and prepare its request;
 *		returns the input to store (credentials redacted).  Any problem is
 *		an error, which fails the step like any step error.
 */
Jsonb *
execlog_http_prepare(ExecRun *run, StepDef *def, Jsonb *input, HttpStep **stepp)
{
	HttpStep   *step = palloc0(sizeof(HttpStep));
	HttpSpec   *spec = &step->spec;
	char	   *url = execlog_jsonb_get_text(input, "url");
	char	   *connection = execlog_jsonb_get_text(input, "connection");
	char	   *method = execlog_jsonb_get_text(input, "method");
	Jsonb	   *headers = execlog_jsonb_get(input, "headers");
	Jsonb	   *body = execlog_jsonb_get(input, "body");
	bool		has_type = false;
	bool		has_key = false;
	char	   *host;

	step->execution_id = run->id;
	step->attempt = run->attempt;
	step->position = def->position;
	spec->deadline = run->deadline;

	/* where */
	if (connection != NULL)
	{
		if (url != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("http step \"%s\" has both a \"url\" and a \"connection\"", def->name),
					 errhint("Give a connection with a \"path\", or a full \"url\".")));
		url = connection_url(run, def, connection,
							 execlog_jsonb_get_text(input, "path"), &spec->auth);
	}
	else if (url == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("http step \"%s\" needs a \"url\" string or a \"connection\"", def->name)));
	host = check_url(url, def, "URL");
	check_policy(host);
	spec->url = url;
	spec->secrets = url_secrets(spec->secrets, url);

	/* how */
	if (method == NULL)
	{
		if (execlog_jsonb_get(input, "method") != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"method\" of http step \"%s\" must be a string", def->name)));
		method = body != NULL ? "POST" : "GET";
	}
	method = asc_toupper(method, strlen(method));
	if (!is_token(method) || strlen(method) > 32 ||
		(strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
		 strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0 &&
		 strcmp(method, "PATCH") != 0 && strcmp(method, "DELETE") != 0 &&
		 strcmp(method, "OPTIONS") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid HTTP method \"%s\" in http step \"%s\"", method, def->name)));
	spec->method = method;
	spec->timeout_ms = timeout_ms(input, def);
	(void) expected_status(input, def, 0);	/* refuses a bad list */

	/* headers */
	if (headers != NULL)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *name = NULL;

		if (!JB_ROOT_IS_OBJECT(headers))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"headers\" of http step \"%s\" must be an object", def->name)));
		it = JsonbIteratorInit(&headers->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_BEGIN_OBJECT || tok == WJB_END_OBJECT)
				continue;
			if (tok == WJB_KEY)
			{
				name = pnstrdup(v.val.string.val, v.val.string.len);
				if (!is_token(name))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid header name \"%s\" in http step \"%s\"",
									name, def->name),
							 errdetail("Header names are letters, digits and !#$%%&'*+-.^_`|~ only.")));
				continue;
			}
			if (tok == WJB_VALUE)
			{
				char	   *value = scalar_text(&v);
				bool		sensitive = is_sensitive_header(name);

				if (value == NULL && v.type != jbvNull)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("value of header \"%s\" in http step \"%s\" must be a string",
									name, def->name)));
				if (value != NULL && strpbrk(value, "\r\n") != NULL)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("value of header \"%s\" in http step \"%s\" contains a line break",
									name, def->name),
							 errdetail("Header values cannot contain CR or LF characters.")));
				if (v.type == jbvString && memchr(v.val.string.val, '\0', v.val.string.len))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("value of header \"%s\" in http step \"%s\" contains a NUL byte",
									name, def->name)));
				if (pg_strcasecmp(name, "Content-Type") == 0)
					has_type = true;
				if (pg_strcasecmp(name, "Idempotency-Key") == 0)
					has_key = true;
				/* "X-Foo": null sends nothing; the connection's credentials win */
				if (value != NULL &&
					!(pg_strcasecmp(name, "Authorization") == 0 &&
					  spec->auth.type != HTTP_AUTH_NONE))
					spec->headers = lappend(spec->headers, psprintf("%s: %s", name, value));
				/* an answer that echoes it back is stored redacted too */
				if (sensitive && value != NULL)
					spec->secrets = lappend(spec->secrets, value);
			}
		}
	}

	/* body */
	if (body != NULL)
	{
		JsonbValue	v;

		if (JB_ROOT_IS_SCALAR(body) && (JsonbExtractScalar(&body->root, &v), v.type == jbvString))
		{
			spec->body = pnstrdup(v.val.string.val, v.val.string.len);
			spec->body_len = v.val.string.len;
			if (!has_type)
				spec->headers = lappend(spec->headers, "Content-Type: text/plain; charset=utf-8");
		}
		else
		{
			spec->body = JsonbToCString(NULL, &body->root, VARSIZE(body));
			spec->body_len = strlen(spec->body);
			if (!has_type)
				spec->headers = lappend(spec->headers, "Content-Type: application/json");
		}
	}

	/* the same key for every attempt of this step of this execution */
	if (!has_key)
		spec->headers = lappend(spec->headers,
								psprintf("Idempotency-Key: execlog-%lld-%d",
										 (long long) run->id, def->position));

	*stepp = step;
	return execlog_http_stored_input(input);
}

/*
 * execlog_http_stored_input
 *		An http step's resolved config as stored in its input: the values of
 *		credential headers and a URL's userinfo replaced by "[redacted]".
 *		Works on any config, valid or not, so that a step refused while
 *		being prepared stores no secret either.
 */
Jsonb *
execlog_http_stored_input(Jsonb *input)
{
	Jsonb	   *headers = execlog_jsonb_get(input, "headers");
	char	   *url = execlog_jsonb_get_text(input, "url");
	const char *keys[2];
	Jsonb	   *vals[2];
	int			n = 0;

	if (url != NULL && shown_url(url) != url)
	{
		keys[n] = "url";
		vals[n++] = execlog_jsonb_string(shown_url(url));
	}
	if (headers != NULL && JB_ROOT_IS_OBJECT(headers))
	{
		JsonbParseState *state = NULL;
		JsonbValue *result = NULL;
		JsonbIterator *it = JsonbIteratorInit(&headers->root);
		JsonbValue	v;
		JsonbIteratorToken tok;
		bool		redact = false;
		bool		sensitive = false;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				sensitive = is_sensitive_header(pnstrdup(v.val.string.val,
														 v.val.string.len));
			if (tok == WJB_VALUE && sensitive && v.type != jbvNull)
			{
				v.type = jbvString;
				v.val.string.val = REDACTED;
				v.val.string.len = strlen(REDACTED);
				redact = true;
			}
			result = pushJsonbValue(&state, tok,
									tok == WJB_KEY || tok == WJB_VALUE ? &v : NULL);
		}
		if (redact)
		{
			keys[n] = "headers";
			vals[n++] = JsonbValueToJsonb(result);
		}
	}
	if (n == 0)
		return input;
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(input),
											  JsonbPGetDatum(execlog_jsonb_object(n, keys, vals))));
}

/* ----------
 * Recording a result
 * ----------
 */

/* A header of the response, values of repeated names joined. */
typedef struct RespHeader
{
	char	   *name;			/* lower case */
	StringInfoData value;
} RespHeader;

/*
 * parse_headers
 *		Split the raw header block into RespHeaders; *reason is the reason
 *		phrase of the status line ("" when none, as in HTTP/2).
 */
static List *
parse_headers(const char *raw, size_t len, char **reason)
{
	List	   *headers = NIL;
	char	   *copy = pnstrdup(raw, len);
	char	   *line;
	char	   *save = NULL;
	RespHeader *last = NULL;
	bool		first = true;

	*reason = "";
	for (line = strtok_r(copy, "\r\n", &save); line != NULL;
		 line = strtok_r(NULL, "\r\n", &save))
	{
		char	   *colon;
		char	   *value;
		ListCell   *lc;
		RespHeader *h = NULL;

		if (first && strncmp(line, "HTTP/", 5) == 0)
		{
			char	   *sp = strchr(line, ' ');

			if (sp && (sp = strchr(sp + 1, ' ')) != NULL)
				*reason = pstrdup(sp + 1);
			first = false;
			continue;
		}
		first = false;
		if ((line[0] == ' ' || line[0] == '\t') && last != NULL)
		{
			/* obsolete line folding */
			appendStringInfoChar(&last->value, ' ');
			appendStringInfoString(&last->value, line + strspn(line, " \t"));
			continue;
		}
		colon = strchr(line, ':');
		if (colon == NULL || colon == line)
			continue;
		*colon = '\0';
		value = colon + 1;
		value += strspn(value, " \t");
		while (*value && (value[strlen(value) - 1] == ' ' || value[strlen(value) - 1] == '\t'))
			value[strlen(value) - 1] = '\0';
		line = asc_tolower(line, strlen(line));
		foreach(lc, headers)
		{
			if (strcmp(((RespHeader *) lfirst(lc))->name, line) == 0)
			{
				h = (RespHeader *) lfirst(lc);
				break;
			}
		}
		if (h == NULL)
		{
			h = palloc(sizeof(RespHeader));
			h->name = line;
			initStringInfo(&h->value);
			headers = lappend(headers, h);
		}
		else
			appendStringInfoString(&h->value, ", ");
		appendStringInfoString(&h->value, value);
		last = h;
	}
	return headers;
}

static char *
header_value(List *headers, const char *name)
{
	ListCell   *lc;

	foreach(lc, headers)
	{
		RespHeader *h = (RespHeader *) lfirst(lc);

		if (strcmp(h->name, name) == 0)
			return h->value.data;
	}
	return NULL;
}

/* Text safe to store: bytes that are not valid UTF-8 become '?'. */
static char *
safe_text(const char *s, size_t len)
{
	char	   *copy = pnstrdup(s, len);
	size_t		i;

	if (pg_encoding_verifymbstr(PG_UTF8, copy, len) == (int) len)
		return pg_any_to_server(copy, len, PG_UTF8);
	for (i = 0; i < len; i++)
		if ((unsigned char) copy[i] >= 0x80 || copy[i] == '\0')
			copy[i] = '?';
	return copy;
}

/* Push the response headers as an object value. */
static void
push_headers(JsonbParseState **state, List *headers)
{
	ListCell   *lc;

	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	foreach(lc, headers)
	{
		RespHeader *h = (RespHeader *) lfirst(lc);
		JsonbValue	k;
		JsonbValue	v;

		k.type = jbvString;
		k.val.string.val = safe_text(h->name, strlen(h->name));
		k.val.string.len = strlen(k.val.string.val);
		v.type = jbvString;
		v.val.string.val = safe_text(h->value.data, h->value.len);
		v.val.string.len = strlen(v.val.string.val);
		pushJsonbValue(state, WJB_KEY, &k);
		pushJsonbValue(state, WJB_VALUE, &v);
	}
	pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/* Text in an encoding converted to the server's, or NULL when invalid. */
static char *
to_server(const char *data, size_t len, int encoding)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *volatile result = NULL;

	PG_TRY();
	{
		char	   *copy = pnstrdup(data, len);

		result = pg_any_to_server(copy, len, encoding);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		result = NULL;
	}
	PG_END_TRY();
	return result;
}

/*
 * body_text
 *		The body as text in the server encoding, or NULL when it is not text
 *		(invalid in its charset, or holding NUL bytes).  A body cut short may
 *		end inside a character: that partial character is dropped.
 */
static char *
body_text(const char *data, size_t len, bool truncated, const char *content_type)
{
	int			encoding = PG_UTF8;
	const char *cs = content_type ? strcasestr(content_type, "charset=") : NULL;

	if (cs != NULL)
	{
		char		name[64];
		size_t		n;

		cs += strlen("charset=");
		if (*cs == '"')
			cs++;
		n = strcspn(cs, "\"; \t");
		if (n < sizeof(name))
		{
			int			e;

			memcpy(name, cs, n);
			name[n] = '\0';
			e = pg_char_to_encoding(name);
			if (e >= 0 && e != PG_SQL_ASCII && PG_VALID_BE_ENCODING(e))
				encoding = e;
		}
	}
	if (encoding == PG_UTF8)
	{
		int			valid = pg_encoding_verifymbstr(PG_UTF8, data, len);

		if (valid != (int) len)
		{
			if (!truncated || len - valid >= 4)
				return NULL;
			len = valid;
		}
	}
	return to_server(data, len, encoding);
}

static bool
is_json_type(const char *content_type)
{
	char	   *t;
	size_t		n;

	if (content_type == NULL)
		return false;
	n = strcspn(content_type, "; \t");
	t = asc_tolower(content_type, n);
	return strcmp(t, "application/json") == 0 || strcmp(t, "text/json") == 0 ||
		(n > 5 && strcmp(t + n - 5, "+json") == 0);
}

/* Parse text as JSON; NULL when it is not. */
static Jsonb *
try_json(const char *text)
{
	MemoryContext cxt = CurrentMemoryContext;
	Jsonb	   *volatile result = NULL;

	PG_TRY();
	{
		result = execlog_jsonb_from_cstring(text);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		result = NULL;
	}
	PG_END_TRY();
	return result;
}

static Jsonb *
base64_jsonb(const char *data, size_t len)
{
	int			cap = pg_b64_enc_len((int) len) + 1;
	char	   *out = palloc(cap);
	int			n = pg_b64_encode(data, (int) len, out, cap);

	if (n < 0)
		elog(ERROR, "could not encode the response body");
	out[n] = '\0';
	return execlog_jsonb_string(out);
}

/*
 * body_jsonb
 *		The body as stored: parsed JSON, text, base64, or cut with a marker.
 */
static Jsonb *
body_jsonb(HttpResult *res, const char *content_type)
{
	bool		truncated = res->body_total > res->body_len;
	size_t		len;
	char	   *data = execlog_http_scrub(res->secrets, res->body ? res->body : "", res->body_len, &len);
	char	   *text;

	if (res->body_total == 0)
		return is_json_type(content_type) ? NULL : execlog_jsonb_string("");

	text = body_text(data, len, truncated, content_type);
	if (!truncated)
	{
		Jsonb	   *json;
		const char *keys[2] = {"data", "encoding"};
		Jsonb	   *vals[2];

		if (text == NULL)
		{
			vals[0] = base64_jsonb(data, len);
			vals[1] = execlog_jsonb_string("base64");
			return execlog_jsonb_object(2, keys, vals);
		}
		if (is_json_type(content_type) && (json = try_json(text)) != NULL)
			return json;
		return execlog_jsonb_string(text);
	}
	else
	{
		const char *keys[5];
		Jsonb	   *vals[5];

		keys[0] = TRUNCATED_KEY;
		vals[0] = execlog_jsonb_from_cstring("true");
		keys[1] = "bytes";
		vals[1] = execlog_jsonb_int((int64) res->body_total);
		if (text != NULL)
		{
			keys[2] = "bytes_kept";
			vals[2] = execlog_jsonb_int((int64) strlen(text));
			keys[3] = "text";
			vals[3] = execlog_jsonb_string(text);
			return execlog_jsonb_object(4, keys, vals);
		}
		/* base64 grows by a third: keep the stored size within the limit */
		len = Min(len, (size_t) execlog_max_payload_bytes / 4 * 3);
		keys[2] = "bytes_kept";
		vals[2] = execlog_jsonb_int((int64) len);
		keys[3] = "encoding";
		vals[3] = execlog_jsonb_string("base64");
		keys[4] = "data";
		vals[4] = base64_jsonb(data, len);
		return execlog_jsonb_object(5, keys, vals);
	}
}

/* Common reason phrases, for responses without one (HTTP/2). */
static const char *
standard_reason(long status)
{
	switch (status)
	{
		case 200: return "OK";
		case 201: return "Created";
		case 202: return "Accepted";
		case 204: return "No Content";
		case 301: return "Moved Permanently";
		case 302: return "Found";
		case 304: return "Not Modified";
		case 400: return "Bad Request";
		case 401: return "Unauthorized";
		case 403: return "Forbidden";
		case 404: return "Not Found";
		case 405: return "Method Not Allowed";
		case 408: return "Request Timeout";
		case 409: return "Conflict";
		case 410: return "Gone";
		case 413: return "Content Too Large";
		case 422: return "Unprocessable Content";
		case 429: return "Too Many Requests";
		case 500: return "Internal Server Error";
		case 501: return "Not Implemented";
		case 502: return "Bad Gateway";
		case 503: return "Service Unavailable";
		case 504: return "Gateway Timeout";
		default: return "";
	}
}

/*
 * execlog_http_finish
 *		Fill an http step's row from its request's result: status, output,
 *		error, http_status.  Marks the run expired when the time limit
 *		stopped the request, and notes Retry-After for its retry.
 */
void
execlog_http_finish(ExecRun *run, StepDef *def, StepRow *row, HttpResult *res)
{
	List	   *headers;
	char	   *reason;
	JsonbParseState *state = NULL;
	JsonbValue	status;
	size_t		hlen;
	char	   *hdata;

	row->output = NULL;
	row->finished_at = res ? res->finished_at : GetCurrentTimestamp();
	if (res == NULL)
	{
		row->status = "failed";
		row->error = "interrupted: the result of the request was lost";
		return;
	}
	if (res->time_limit)
	{
		row->status = "failed";
		row->error = psprintf("time limit of %s exceeded", run->time_limit_text);
		run->expired = true;
		return;
	}
	if (res->error != NULL)
	{
		row->status = "failed";
		row->error = res->error;
		return;
	}

	hdata = execlog_http_scrub(res->secrets, res->headers ? res->headers : "", res->headers_len, &hlen);
	headers = parse_headers(hdata, hlen, &reason);
	if (reason[0] == '\0')
		reason = (char *) standard_reason(res->status);
	row->http_status = (int32) res->status;
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	execlog_jsonb_push_key(&state, "body");
	execlog_jsonb_push_value(&state, WJB_VALUE,
							 body_jsonb(res, header_value(headers, "content-type")));
	execlog_jsonb_push_key(&state, "headers");
	push_headers(&state, headers);
	execlog_jsonb_push_key(&state, "status");
	status.type = jbvNumeric;
	status.val.numeric = int64_to_numeric(res->status);
	pushJsonbValue(&state, WJB_VALUE, &status);
	row->output = JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));

	if (expected_status(row->input, def, res->status))
	{
		row->status = "success";
		return;
	}
	row->status = "failed";
	row->error = reason[0] ? psprintf("%ld %s", res->status, safe_text(reason, strlen(reason)))
		: psprintf("%ld", res->status);
	if (res->status == 429 || res->status == 503)
	{
		int			s = execlog_http_retry_after(header_value(headers, "retry-after"));

		if (s >= 0)
			run->retry_not_before = row->finished_at + (TimestampTz) s * USECS_PER_SEC;
	}
}
