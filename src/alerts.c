/*-------------------------------------------------------------------------
 *
 * alerts.c
 *	  Alert rows: what an alert specification ({"channel", "target",
 *	  "message"}) becomes in execlog.alerts.
 *
 * An alert names a channel of the execution's account (the row keeps the
 * channel's id, kind and name, never its secret config), or is "email"
 * with a literal address as target.  The specification was validated
 * when the automation was written (_on_failure_check); the row is built
 * here, in one place, whatever creates it (an execution's follow-ups, a
 * recovered execution, an alert step).
 *
 * The kinds of channel are one table (alert_kinds): each formats the
 * request that delivers an alert, as SPEC §6 defines its payload, and says
 * which answers mean delivered.  alert_send.c sends the requests, retries
 * them and stores the outcome; nothing here stores anything.  A kind's
 * request names the secrets it carries (webhook URLs, signing keys, header
 * values, SMTP credentials): they are scrubbed from every error stored.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"
#include "alerts.h"

#include <time.h>

#include <curl/curl.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"

/*
 * The alert rows of a batch of alert specifications, in one statement.
 * Each specification resolves one way: a named channel of the account (no
 * target), or a literal e-mail address (channel "email" with a target); one
 * that resolves neither way (its channel is gone) makes no row.  The ids
 * are drawn in the statement so that each comes back with the position
 * (ord) of its specification, whatever order the rows are inserted in.
 */
static SavedStmt add_alerts = {
	"WITH want AS ("
	"  SELECT u.ord, u.execution_id, u.account_id, c.id AS channel_id,"
	"         coalesce(c.kind, 'email') AS kind, coalesce(c.name, u.target) AS target,"
	"         coalesce(u.message, 'execution ' OPERATOR(pg_catalog.||) u.execution_id::pg_catalog.text"
	"                             OPERATOR(pg_catalog.||) ' failed') AS message"
	"    FROM unnest($1::pg_catalog.int8[], $2::pg_catalog.int8[], $3::pg_catalog.text[],"
	"                $4::pg_catalog.text[], $5::pg_catalog.text[])"
	"         WITH ORDINALITY AS u(execution_id, account_id, channel, target, message, ord)"
	"    LEFT JOIN execlog.channels c"
	"      ON u.target IS NULL AND c.account_id OPERATOR(pg_catalog.=) u.account_id"
	"     AND c.name OPERATOR(pg_catalog.=) u.channel"
	"   WHERE c.id IS NOT NULL"
	"      OR (u.channel OPERATOR(pg_catalog.=) 'email' AND u.target IS NOT NULL)),"
	" made AS ("
	"  SELECT w.*, pg_catalog.nextval('execlog.alerts_id_seq'::pg_catalog.regclass) AS id"
	"    FROM want w),"
	" ins AS ("
	"  INSERT INTO execlog.alerts (id, execution_id, account_id, channel_id, channel, target,"
	"                              message, next_attempt_at)"
	"  SELECT m.id, m.execution_id, m.account_id, m.channel_id, m.kind, m.target, m.message,"
	"         pg_catalog.now()"
	"    FROM made m ORDER BY m.ord)"
	" SELECT m.ord, m.id FROM made m",
	5, {INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID}
};

/*
 * execlog_alert_batch_init
 *		Start an empty batch of alerts, kept in the current memory context.
 */
void
execlog_alert_batch_init(AlertBatch *b)
{
	memset(b, 0, sizeof(AlertBatch));
	b->cxt = CurrentMemoryContext;
}

/*
 * execlog_alert_batch_add
 *		Add the alert of a specification ({"channel", "target", "message"})
 *		for an execution to the batch; returns its index in the batch, or -1
 *		(with a warning) when it names no channel.
 */
int
execlog_alert_batch_add(AlertBatch *b, int64 execution_id, int64 account_id, Jsonb *spec)
{
	char	   *channel = execlog_jsonb_get_text(spec, "channel");
	char	   *target = execlog_jsonb_get_text(spec, "target");
	char	   *message = execlog_jsonb_get_text(spec, "message");
	MemoryContext old;
	AlertWant  *w;

	if (channel == NULL)
	{
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alert of execution %lld names no channel",
						(long long) execution_id)));
		return -1;
	}
	old = MemoryContextSwitchTo(b->cxt);
	if (b->n == b->cap)
	{
		b->cap = Max(16, b->cap * 2);
		b->wants = b->wants ? repalloc(b->wants, sizeof(AlertWant) * b->cap)
			: palloc(sizeof(AlertWant) * b->cap);
	}
	w = &b->wants[b->n];
	w->execution_id = execution_id;
	w->account_id = account_id;
	w->channel = pstrdup(channel);
	w->target = target ? pstrdup(target) : NULL;
	w->message = message ? pstrdup(message) : NULL;
	w->id = 0;
	w->error = NULL;
	MemoryContextSwitchTo(old);
	return b->n++;
}

/* An array of n texts (NULL elements for NULL pointers). */
static Datum
text_array(char **texts, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;

	for (i = 0; i < n; i++)
	{
		nulls[i] = texts[i] == NULL;
		d[i] = texts[i] ? CStringGetTextDatum(texts[i]) : (Datum) 0;
	}
	return PointerGetDatum(construct_md_array(d, nulls, 1, dims, lbs, TEXTOID, -1,
											  false, TYPALIGN_INT));
}

/*
 * insert_wants
 *		Create the alert rows of wants[from .. from + n - 1] with one
 *		statement and set their ids; warn about those whose channel is gone.
 */
static void
insert_wants(AlertBatch *b, int from, int n)
{
	Datum		values[5];
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *accounts = palloc(sizeof(Datum) * n);
	char	  **channels = palloc(sizeof(char *) * n);
	char	  **targets = palloc(sizeof(char *) * n);
	char	  **messages = palloc(sizeof(char *) * n);
	uint64		made;
	uint64		r;
	int			i;

	for (i = 0; i < n; i++)
	{
		AlertWant  *w = &b->wants[from + i];

		ids[i] = Int64GetDatum(w->execution_id);
		accounts[i] = Int64GetDatum(w->account_id);
		channels[i] = w->channel;
		targets[i] = w->target;
		messages[i] = w->message;
	}
	values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, sizeof(int64), true,
												TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(accounts, n, INT8OID, sizeof(int64), true,
												TYPALIGN_DOUBLE));
	values[2] = text_array(channels, n);
	values[3] = text_array(targets, n);
	values[4] = text_array(messages, n);
	made = execlog_run_saved(&add_alerts, values, NULL, false);
	for (r = 0; r < made; r++)
	{
		bool		isnull;
		int64		ord = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
													  SPI_tuptable->tupdesc, 1, &isnull));
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
													 SPI_tuptable->tupdesc, 2, &isnull));

		if (ord >= 1 && ord <= n)
			b->wants[from + ord - 1].id = id;
	}
	SPI_freetuptable(SPI_tuptable);
	for (i = 0; i < n; i++)
	{
		AlertWant  *w = &b->wants[from + i];

		if (w->id == 0)
			ereport(WARNING,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("alert of execution %lld not created: channel \"%s\" does not exist in its account",
							(long long) w->execution_id, w->channel)));
	}
	/* this worker delivers them in its next pass (alert_send.c) */
	if (made > 0)
		execlog_alerts_created = true;
}

/* insert_wants in a subtransaction (see execlog_try) */
typedef struct InsertCall
{
	AlertBatch *b;
	int			from;
	int			n;
} InsertCall;

static void
insert_call(void *arg)
{
	InsertCall *c = (InsertCall *) arg;

	insert_wants(c->b, c->from, c->n);
}

/*
 * execlog_alert_batch_flush
 *		Create the batch's alert rows, set-based, in the current transaction;
 *		afterwards each alert of the batch has its id (0: not created, its
 *		channel is gone, a warning says so) or, when its row could not be
 *		written, the error why.  When the one statement fails, each alert is
 *		created alone, so that one bad row does not lose the others.  The
 *		batch is empty afterwards; what it held stays readable until the
 *		next add.
 */
void
execlog_alert_batch_flush(AlertBatch *b)
{
	InsertCall	c = {b, 0, b->n};
	ErrorData  *edata;
	int			i;

	b->flushed = b->n;
	b->n = 0;
	if (b->flushed == 0)
		return;
	edata = execlog_try(insert_call, &c);
	if (edata == NULL)
		return;
	for (i = 0; i < b->flushed; i++)
	{
		c.from = i;
		c.n = 1;
		b->wants[i].id = 0;
		edata = execlog_try(insert_call, &c);
		if (edata != NULL)
			b->wants[i].error = MemoryContextStrdup(b->cxt, edata->message);
	}
}

/*
 * execlog_add_alert
 *		Create the alert row of one alert specification for an execution,
 *		now; returns its id, or 0 (with a warning) when its channel is gone
 *		or it names none.  An error writing the row is raised.
 */
int64
execlog_add_alert(int64 execution_id, int64 account_id, Jsonb *spec)
{
	AlertBatch	b;

	execlog_alert_batch_init(&b);
	if (execlog_alert_batch_add(&b, execution_id, account_id, spec) < 0)
		return 0;
	insert_wants(&b, 0, 1);
	return b.wants[0].id;
}

/* ------------------------------------------------------------------------
 * Payloads of the kinds of channel (SPEC §6)
 * ------------------------------------------------------------------------ */

/* Longest error text put into a message (Slack limits a field to 2000). */
#define MAX_ERROR_CHARS 1500

/* Longest message text put into a Slack block (Slack limits it to 3000). */
#define MAX_BLOCK_CHARS 2900

/* The secrets of a delivery, scrubbed from stored errors (alert_send.c). */
void
execlog_alert_add_secret(AlertRequest *req, const char *secret)
{
	if (secret != NULL && secret[0] != '\0')
		req->spec.secrets = lappend(req->spec.secrets, pstrdup(secret));
}

/* At most n characters (not bytes) of a UTF-8 text, with "…" when cut. */
static char *
clip(const char *s, int n)
{
	int			len = strlen(s);
	int			bytes;

	if (pg_mbstrlen_with_len(s, len) <= n)
		return pstrdup(s);
	bytes = pg_mbcharcliplen(s, len, n);
	return psprintf("%.*s\u2026", bytes, s);
}

/* A timestamp in ISO 8601, UTC ("2026-12-02T13:16:03.123456+00:00"). */
static char *
iso_time(TimestampTz ts)
{
	int			utc = 0;

	return JsonEncodeDateTime(NULL, TimestampTzGetDatum(ts), TIMESTAMPTZOID, &utc);
}

/* Append a JSON string, or null for NULL. */
static void
json_str(StringInfo buf, const char *s)
{
	if (s == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, s);
}

/* Append a timestamp as a JSON string, or null for 0. */
static void
json_time(StringInfo buf, TimestampTz ts)
{
	if (ts == 0)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, iso_time(ts));
}

/* Slack's escaping of text: &, < and > (https://api.slack.com/reference/surfaces/formatting). */
static char *
slack_escape(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (; *s; s++)
	{
		if (*s == '&')
			appendStringInfoString(&buf, "&amp;");
		else if (*s == '<')
			appendStringInfoString(&buf, "&lt;");
		else if (*s == '>')
			appendStringInfoString(&buf, "&gt;");
		else
			appendStringInfoChar(&buf, *s);
	}
	return buf.data;
}

/* The error of the execution as shown in messages. */
static char *
shown_error(AlertFacts *a)
{
	return clip(a->error ? a->error : "(none)", MAX_ERROR_CHARS);
}

/* An HTTP POST of a JSON body to the channel's url. */
static bool
json_post(AlertFacts *a, AlertRequest *req, StringInfo body, char **why)
{
	char	   *url = a->config ? execlog_jsonb_get_text(a->config, "url") : NULL;
	char	   *path;

	if (url == NULL)
	{
		*why = psprintf("%s channel \"%s\" has no url", a->kind, a->target);
		return false;
	}
	req->spec.method = "POST";
	req->spec.url = url;
	req->spec.body = body->data;
	req->spec.body_len = body->len;
	req->spec.headers = lappend(req->spec.headers, "Content-Type: application/json; charset=utf-8");
	/* the whole URL is the secret of an incoming webhook; so is its path */
	execlog_alert_add_secret(req, url);
	path = strstr(url, "://");
	path = path ? strchr(path + 3, '/') : NULL;
	if (path != NULL && strlen(path) >= 8)
		execlog_alert_add_secret(req, path + 1);
	return true;
}

/*
 * format_slack
 *		Slack incoming webhook: {"text", "blocks": [message section, section
 *		of fields with automation, execution, status, attempt, error]}.
 */
static bool
format_slack(AlertFacts *a, AlertRequest *req, char **why)
{
	StringInfoData b;
	char	   *text = slack_escape(a->message);

	initStringInfo(&b);
	appendStringInfoString(&b, "{\"text\":");
	escape_json(&b, text);
	appendStringInfoString(&b, ",\"blocks\":[{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":");
	escape_json(&b, clip(text, MAX_BLOCK_CHARS));
	appendStringInfoString(&b, "}},{\"type\":\"section\",\"fields\":[");
	appendStringInfoString(&b, "{\"type\":\"mrkdwn\",\"text\":");
	escape_json(&b, psprintf("*Automation*\n%s", slack_escape(a->automation)));
	appendStringInfoString(&b, "},{\"type\":\"mrkdwn\",\"text\":");
	escape_json(&b, psprintf("*Execution*\n%lld", (long long) a->execution_id));
	appendStringInfoString(&b, "},{\"type\":\"mrkdwn\",\"text\":");
	escape_json(&b, psprintf("*Status*\n%s", a->status));
	appendStringInfoString(&b, "},{\"type\":\"mrkdwn\",\"text\":");
	escape_json(&b, psprintf("*Attempt*\n%d", a->attempt));
	appendStringInfoString(&b, "},{\"type\":\"mrkdwn\",\"text\":");
	escape_json(&b, psprintf("*Error*\n%s", slack_escape(shown_error(a))));
	appendStringInfoString(&b, "}]}]}");
	return json_post(a, req, &b, why);
}

/* Slack answers a delivered message with 200 "ok". */
static bool
status_200(long status)
{
	return status == 200;
}

static bool
status_2xx(long status)
{
	return status >= 200 && status < 300;
}

/*
 * format_teams
 *		Teams Workflows webhook: a message with one Adaptive Card (1.4): a
 *		TextBlock with the message, a FactSet with automation, execution,
 *		status and error.
 */
static bool
format_teams(AlertFacts *a, AlertRequest *req, char **why)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfoString(&b, "{\"type\":\"message\",\"attachments\":[{"
						   "\"contentType\":\"application/vnd.microsoft.card.adaptive\","
						   "\"contentUrl\":null,\"content\":{"
						   "\"$schema\":\"http://adaptivecards.io/schemas/adaptive-card.json\","
						   "\"type\":\"AdaptiveCard\",\"version\":\"1.4\",\"body\":["
						   "{\"type\":\"TextBlock\",\"text\":");
	escape_json(&b, a->message);
	appendStringInfoString(&b, ",\"wrap\":true,\"weight\":\"Bolder\"},"
						   "{\"type\":\"FactSet\",\"facts\":["
						   "{\"title\":\"Automation\",\"value\":");
	escape_json(&b, a->automation);
	appendStringInfoString(&b, "},{\"title\":\"Execution\",\"value\":");
	escape_json(&b, psprintf("%lld", (long long) a->execution_id));
	appendStringInfoString(&b, "},{\"title\":\"Status\",\"value\":");
	escape_json(&b, a->status);
	appendStringInfoString(&b, "},{\"title\":\"Error\",\"value\":");
	escape_json(&b, shown_error(a));
	appendStringInfoString(&b, "}]}]}}]}");
	return json_post(a, req, &b, why);
}

/* Lower-case hex of bytes. */
static char *
hex(const uint8 *data, int len)
{
	char	   *out = palloc(len * 2 + 1);
	int			i;

	for (i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", data[i]);
	out[len * 2] = '\0';
	return out;
}

/*
 * signature
 *		"t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
 */
static char *
signature(const char *secret, const char *body, int body_len)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char	   *t = psprintf("%ld", (long) time(NULL));
	bool		ok;

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	ok = pg_hmac_init(ctx, (const uint8 *) secret, strlen(secret)) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) t, strlen(t)) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) ".", 1) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) body, body_len) == 0 &&
		pg_hmac_final(ctx, mac, sizeof(mac)) == 0;
	if (!ok)
	{
		const char *err = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not sign an alert: %s", err)));
	}
	pg_hmac_free(ctx);
	return psprintf("t=%s,v1=%s", t, hex(mac, sizeof(mac)));
}

/*
 * format_webhook
 *		Generic webhook: {"alert": {id, message, created_at[, digest]},
 *		"execution": {id, automation, account, status, attempt, error,
 *		started_at, finished_at}}, with Idempotency-Key, the channel's
 *		headers and, with a secret, X-Execlog-Signature.
 */
static bool
format_webhook(AlertFacts *a, AlertRequest *req, char **why)
{
	StringInfoData b;
	Jsonb	   *headers = a->config ? execlog_jsonb_get(a->config, "headers") : NULL;
	char	   *secret = a->config ? execlog_jsonb_get_text(a->config, "secret") : NULL;
	int			i;

	initStringInfo(&b);
	appendStringInfo(&b, "{\"alert\":{\"id\":%lld,\"message\":", (long long) a->id);
	escape_json(&b, a->message);
	appendStringInfoString(&b, ",\"created_at\":");
	json_time(&b, a->created_at);
	if (a->digest)
	{
		appendStringInfo(&b, ",\"digest\":{\"count\":%lld,\"since\":", (long long) a->digest_count);
		json_time(&b, a->digest_since);
		appendStringInfoString(&b, ",\"execution_ids\":[");
		for (i = 0; i < a->n_digest_ids; i++)
			appendStringInfo(&b, "%s%lld", i ? "," : "", (long long) a->digest_ids[i]);
		appendStringInfoString(&b, "]}");
	}
	appendStringInfo(&b, "},\"execution\":{\"id\":%lld,\"automation\":", (long long) a->execution_id);
	escape_json(&b, a->automation);
	appendStringInfoString(&b, ",\"account\":");
	escape_json(&b, a->account);
	appendStringInfoString(&b, ",\"status\":");
	escape_json(&b, a->status);
	appendStringInfo(&b, ",\"attempt\":%d,\"error\":", a->attempt);
	json_str(&b, a->error);
	appendStringInfoString(&b, ",\"started_at\":");
	json_time(&b, a->started_at);
	appendStringInfoString(&b, ",\"finished_at\":");
	json_time(&b, a->finished_at);
	appendStringInfoString(&b, "}}");

	if (!json_post(a, req, &b, why))
		return false;
	req->spec.headers = lappend(req->spec.headers,
								psprintf("Idempotency-Key: execlog-alert-%lld", (long long) a->id));
	if (headers != NULL && JB_ROOT_IS_OBJECT(headers))
	{
		JsonbIterator *it = JsonbIteratorInit(&headers->root);
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *name = NULL;

		/* validated when written: token names, values without CR/LF */
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				name = pnstrdup(v.val.string.val, v.val.string.len);
			else if (tok == WJB_VALUE && v.type == jbvString && name != NULL)
			{
				char	   *value = pnstrdup(v.val.string.val, v.val.string.len);

				if (strpbrk(value, "\r\n") == NULL)
				{
					req->spec.headers = lappend(req->spec.headers,
												psprintf("%s: %s", name, value));
					execlog_alert_add_secret(req, value);
				}
			}
		}
	}
	if (secret != NULL)
	{
		req->spec.headers = lappend(req->spec.headers,
									psprintf("X-Execlog-Signature: %s",
											 signature(secret, b.data, b.len)));
		execlog_alert_add_secret(req, secret);
	}
	return true;
}

/* ----------
 * E-mail (RFC 5322 over SMTP)
 * ----------
 */

/* Whether a text is all ASCII without control characters but tab. */
static bool
is_plain_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s >= 0x7f || ((unsigned char) *s < 0x20 && *s != '\t'))
			return false;
	return true;
}

/* base64 of bytes. */
static char *
b64(const char *data, int len)
{
	int			cap = pg_b64_enc_len(len) + 1;
	char	   *out = palloc(cap);
	int			n = pg_b64_encode(data, len, out, cap);

	if (n < 0)
		elog(ERROR, "could not encode base64");
	out[n] = '\0';
	return out;
}

/*
 * subject_header
 *		"Subject: ..." as is when plain ASCII, else RFC 2047 encoded words
 *		(UTF-8, base64) of whole characters, folded onto lines of their own.
 */
static char *
subject_header(const char *subject)
{
	StringInfoData buf;
	int			len = strlen(subject);
	int			off = 0;

	if (is_plain_ascii(subject))
		return psprintf("Subject: %s\r\n", subject);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "Subject:");
	while (off < len)
	{
		/* 45 bytes give 60 of base64: a word of 72 characters at most */
		int			n = 0;

		while (off + n < len)
		{
			int			cl = pg_utf_mblen((const unsigned char *) subject + off + n);

			if (n + cl > 45)
				break;
			n += cl;
		}
		if (n == 0)
			n = Min(len - off, pg_utf_mblen((const unsigned char *) subject + off));
		appendStringInfo(&buf, "%s=?UTF-8?B?%s?=", off ? "\r\n " : " ",
						 b64(subject + off, n));
		off += n;
	}
	appendStringInfoString(&buf, "\r\n");
	return buf.data;
}

/* An RFC 5322 date of now: "Wed, 02 Dec 2026 13:16:03 +0000". */
static char *
mail_date(void)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t		now = time(NULL);
	struct tm	tm;

	gmtime_r(&now, &tm);
	return psprintf("%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
					months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The address of "Name <address>" or of a plain address; NULL when bad. */
static char *
mail_address(const char *from)
{
	const char *lt = strchr(from, '<');
	char	   *addr;
	char	   *at;

	if (lt != NULL)
	{
		const char *gt = strchr(lt, '>');

		if (gt == NULL || gt[1] != '\0')
			return NULL;
		addr = pnstrdup(lt + 1, gt - lt - 1);
	}
	else
		addr = pstrdup(from);
	at = strchr(addr, '@');
	if (at == NULL || at == addr || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
		strpbrk(addr, " \t\r\n<>()[],;:\\\"") != NULL)
		return NULL;
	return addr;
}

/* Text with CR and LF replaced by spaces (for header fields). */
static char *
one_line(const char *s)
{
	char	   *out = pstrdup(s);
	char	   *p;

	for (p = out; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	return out;
}

/* Body lines with CRLF ends (a bare CR or LF becomes CRLF). */
static void
append_crlf(StringInfo buf, const char *s)
{
	for (; *s; s++)
	{
		if (*s == '\r')
		{
			if (s[1] == '\n')
				s++;
			appendStringInfoString(buf, "\r\n");
		}
		else if (*s == '\n')
			appendStringInfoString(buf, "\r\n");
		else
			appendStringInfoChar(buf, *s);
	}
}

/*
 * format_email
 *		An e-mail through execlog.smtp_url: From execlog.smtp_from, To the
 *		channel's addresses (one message for all) or the literal target,
 *		Subject "[execlog] <automation> <status>: execution <id>", Date,
 *		Message-ID (the same for every attempt), a text/plain UTF-8 body
 *		with the message and the execution's facts.
 */
static bool
format_email(AlertFacts *a, AlertRequest *req, char **why)
{
	HttpMail   *mail = palloc0(sizeof(HttpMail));
	StringInfoData text;
	StringInfoData msg;
	char	   *from = mail_address(execlog_smtp_from ? execlog_smtp_from : "");
	char	   *domain;
	char	   *subject;
	ListCell   *lc;
	bool		first = true;
	bool		plain;
	int			maxline = 0;
	int			cur = 0;
	char	   *p;

	if (execlog_smtp_url == NULL || execlog_smtp_url[0] == '\0')
	{
		*why = pstrdup("execlog.smtp_url is not set");
		return false;
	}
	if (from == NULL)
	{
		*why = pstrdup("execlog.smtp_from is not an e-mail address");
		return false;
	}
	if (!execlog_smtp_split_url(execlog_smtp_url, &req->spec.url, &mail->username,
								&mail->password))
	{
		*why = pstrdup("execlog.smtp_url is not an smtp:// or smtps:// URL");
		return false;
	}
	execlog_alert_add_secret(req, mail->password);
	if (mail->password != NULL)
	{
		/* AUTH PLAIN sends base64 of "\0user\0password" */
		char	   *creds = psprintf("%c%s%c%s", '\0', mail->username, '\0', mail->password);
		int			clen = 2 + strlen(mail->username) + strlen(mail->password);

		execlog_alert_add_secret(req, b64(creds, clen));
	}
	mail->from = from;
	if (a->config != NULL)
	{
		Jsonb	   *to = execlog_jsonb_get(a->config, "to");

		if (to != NULL && JB_ROOT_IS_ARRAY(to))
		{
			JsonbIterator *it = JsonbIteratorInit(&to->root);
			JsonbValue	v;
			JsonbIteratorToken tok;

			while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
				if (tok == WJB_ELEM && v.type == jbvString)
					mail->rcpt = lappend(mail->rcpt, pnstrdup(v.val.string.val, v.val.string.len));
		}
	}
	else
		mail->rcpt = list_make1(pstrdup(a->target));
	if (mail->rcpt == NIL)
	{
		*why = psprintf("e-mail channel \"%s\" has no addresses", a->target);
		return false;
	}
	domain = strchr(from, '@') + 1;

	/* the body: the message and the execution's facts */
	initStringInfo(&text);
	appendStringInfo(&text, "%s\n\n", a->message);
	appendStringInfo(&text, "Automation: %s\n", a->automation);
	appendStringInfo(&text, "Account: %s\n", a->account);
	appendStringInfo(&text, "Execution: %lld\n", (long long) a->execution_id);
	appendStringInfo(&text, "Status: %s\n", a->status);
	appendStringInfo(&text, "Attempt: %d\n", a->attempt);
	appendStringInfo(&text, "Error: %s\n", a->error ? a->error : "(none)");
	if (a->started_at)
		appendStringInfo(&text, "Started: %s\n", iso_time(a->started_at));
	if (a->finished_at)
		appendStringInfo(&text, "Finished: %s\n", iso_time(a->finished_at));
	if (a->digest)
	{
		int			i;

		appendStringInfoString(&text, "Executions:");
		for (i = 0; i < a->n_digest_ids; i++)
			appendStringInfo(&text, " %lld", (long long) a->digest_ids[i]);
		appendStringInfoString(&text, "\n");
	}
	plain = true;
	for (p = text.data; *p; p++)
	{
		if ((unsigned char) *p >= 0x80 || *p == '\r')
			plain = false;
		cur = (*p == '\n') ? 0 : cur + 1;
		maxline = Max(maxline, cur);
	}
	if (maxline > 900)
		plain = false;

	if (a->digest)
		subject = psprintf("[execlog] %s: %lld more executions failed", one_line(a->automation),
						   (long long) a->digest_count);
	else
		subject = psprintf("[execlog] %s %s: execution %lld", one_line(a->automation), a->status,
						   (long long) a->execution_id);

	initStringInfo(&msg);
	appendStringInfo(&msg, "From: %s\r\n", one_line(execlog_smtp_from));
	appendStringInfoString(&msg, "To: ");
	foreach(lc, mail->rcpt)
	{
		appendStringInfo(&msg, "%s%s", first ? "" : ",\r\n ", (char *) lfirst(lc));
		first = false;
	}
	appendStringInfoString(&msg, "\r\n");
	appendStringInfoString(&msg, subject_header(subject));
	appendStringInfo(&msg, "Date: %s\r\n", mail_date());
	appendStringInfo(&msg, "Message-ID: <execlog-alert-%lld@%s>\r\n", (long long) a->id, domain);
	appendStringInfoString(&msg, "MIME-Version: 1.0\r\n");
	appendStringInfoString(&msg, "Content-Type: text/plain; charset=utf-8\r\n");
	if (plain)
	{
		appendStringInfoString(&msg, "Content-Transfer-Encoding: 7bit\r\n\r\n");
		append_crlf(&msg, text.data);
	}
	else
	{
		StringInfoData canon;
		char	   *enc;
		int			len;
		int			off;

		/* text is encoded in its canonical form: CRLF line ends */
		initStringInfo(&canon);
		append_crlf(&canon, text.data);
		enc = b64(canon.data, canon.len);
		len = strlen(enc);

		appendStringInfoString(&msg, "Content-Transfer-Encoding: base64\r\n\r\n");
		for (off = 0; off < len; off += 76)
			appendStringInfo(&msg, "%.*s\r\n", Min(76, len - off), enc + off);
	}
	req->spec.method = "SMTP";
	req->spec.body = msg.data;
	req->spec.body_len = msg.len;
	req->spec.mail = mail;
	execlog_alert_add_secret(req, execlog_smtp_url);
	return true;
}

/*
 * execlog_smtp_split_url
 *		Split execlog.smtp_url into the URL without credentials (*url) and
 *		the credentials (URL-decoded; NULL when none); false when it is not
 *		an smtp:// or smtps:// URL with a host.
 */
bool
execlog_smtp_split_url(const char *in, char **url, char **user, char **password)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	char	   *us = NULL;
	char	   *pw = NULL;
	char	   *out = NULL;
	bool		ok = false;

	*url = *user = *password = NULL;
	if (u == NULL)
		return false;
	if (curl_url_set(u, CURLUPART_URL, in, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		(strcmp(scheme, "smtp") == 0 || strcmp(scheme, "smtps") == 0) &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != '\0')
	{
		if (curl_url_get(u, CURLUPART_USER, &us, CURLU_URLDECODE) == CURLUE_OK)
			*user = pstrdup(us);
		if (curl_url_get(u, CURLUPART_PASSWORD, &pw, CURLU_URLDECODE) == CURLUE_OK)
			*password = pstrdup(pw);
		if (curl_url_set(u, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
			curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
			curl_url_get(u, CURLUPART_URL, &out, 0) == CURLUE_OK)
		{
			*url = pstrdup(out);
			ok = true;
		}
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(us);
	curl_free(pw);
	curl_free(out);
	curl_url_cleanup(u);
	return ok;
}

/* GUC check of execlog.smtp_url: empty, or an smtp:// or smtps:// URL. */
bool
execlog_smtp_url_check(char **newval, void **extra, GucSource source)
{
	char	   *url;
	char	   *user;
	char	   *password;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!execlog_smtp_split_url(*newval, &url, &user, &password))
	{
		/* never repeat the value: it may hold a password */
		GUC_check_errdetail("execlog.smtp_url must be an smtp:// or smtps:// URL with a host.");
		return false;
	}
	return true;
}

/* GUC check of execlog.smtp_from: an address, or "Name <address>". */
bool
execlog_smtp_from_check(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || strpbrk(*newval, "\r\n") != NULL || mail_address(*newval) == NULL)
	{
		GUC_check_errdetail("execlog.smtp_from must be an e-mail address such as \"execlog@example.com\" or \"execlog <execlog@example.com>\".");
		return false;
	}
	return true;
}

/* libcurl reports a refused mail as an error; an answer is a delivery. */
static bool
smtp_accepted(long status)
{
	return status == 0 || (status >= 200 && status < 300);
}

/* The kinds of channel. */
static const AlertKind alert_kinds[] = {
	{"slack", format_slack, status_200},
	{"teams", format_teams, status_2xx},
	{"webhook", format_webhook, status_2xx},
	{"email", format_email, smtp_accepted},
};

/* The kind of a channel by name; NULL when unknown. */
const AlertKind *
execlog_alert_kind(const char *name)
{
	int			i;

	for (i = 0; i < (int) lengthof(alert_kinds); i++)
		if (strcmp(alert_kinds[i].name, name) == 0)
			return &alert_kinds[i];
	return NULL;
}
