/*-------------------------------------------------------------------------
 *
 * alert_send.c
 *	  Alert delivery by the workers (SPEC §6): claims, retries, storm
 *	  control, and the outcome of every attempt.
 *
 * Deliveries are off the execution path: they go through the worker's HTTP
 * transport (http_transport.c), asynchronous and many in flight, whose
 * callback puts each finished one on the list of deliveries to record
 * (gathered for GATHER_MS, see execlog_alerts_wait_ms), each bounded by
 * execlog.http_timeout and subject to
 * execlog.http_allow / execlog.http_deny, so that a slow or dead receiver
 * delays neither executions nor other alerts.  A pass of the worker's loop
 * (execlog_alerts_pass) works in one short transaction, and only when there
 * is something to do (a delivery finished, alerts were created, an alert is
 * due):
 *
 *	1. record: the outcome of each delivery that finished: sent (sent_at),
 *	   or failed for now (error, and next_attempt_at after a delay doubling
 *	   from execlog.alert_retry_delay, or the receiver's longer Retry-After
 *	   of a 429 or 503), or failed for good after execlog.alert_max_attempts
 *	   tries;
 *	2. claim: due alerts (pending, next_attempt_at <= now), by one worker at
 *	   a time (a lock the others skip rather than wait for) and FOR UPDATE
 *	   SKIP LOCKED, so that two workers never send an alert at once.  Every
 *	   claim counts an attempt and leases the alert (next_attempt_at moves
 *	   past the time the delivery can take): an alert whose worker died
 *	   mid-delivery is due again when its lease ends, and is sent again with
 *	   the same Idempotency-Key and Message-ID (at-least-once);
 *	3. storm control: the first attempt of an alert of automation X to
 *	   channel C while the window of (X, C) is open (execlog.alert_coalesce
 *	   after an alert of X was sent to C) becomes "coalesced" into the
 *	   window's digest, an alert row created with the first coalesced alert
 *	   and due when the window closes; otherwise the alert opens the window
 *	   (execlog.alert_windows) and is sent.  A digest says how many more
 *	   executions failed since when, the latest error and up to
 *	   EXECLOG_DIGEST_MAX_IDS execution ids, and is delivered and retried
 *	   like any alert;
 *	4. after the commit: the claimed alerts are formatted by their kind of
 *	   channel (alerts.c) and sent.
 *
 * Secrets (channel configs, execlog.smtp_url's credentials) are read only
 * while formatting, kept in memory while a delivery is in flight, and
 * scrubbed from every error stored.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"
#include "alerts.h"

#include <limits.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "commands/trigger.h"
#include "lib/ilist.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include <curl/curl.h>

PG_FUNCTION_INFO_V1(execlog_alerts_wake);

/* Alerts claimed at most per pass. */
#define ALERT_BATCH 100

/* Deliveries a worker has in flight at most; it claims more as they end. */
#define ALERT_MAX_IN_FLIGHT 4096

/* Time added to a lease for recording the outcome after the answer. */
#define LEASE_MARGIN_MS 10000


/*
 * While executions wait (the worker's last batch ran some), alert passes
 * take at most this share (percent) of the worker's time: the next pass is
 * deferred by the time the last one took times (100 / share - 1), and by
 * at most ALERT_BUSY_MAX_DEFER_MS, so outcomes are recorded well within
 * their leases and an alert waits at most about that long for its claim.
 */
#define ALERT_BUSY_PERCENT 2
#define ALERT_BUSY_MAX_DEFER_MS 1000

/* Longest look without a reason: a safety net, not a poll. */
#define ALERT_RECHECK_MS 10000

/* Bytes of an answer's body kept in the error. */
#define ERROR_BODY_BYTES 200

/* The workers' advisory lock kind (worker.c) and the class of the claim lock. */
#define WORKER_LOCK_KIND 0x4558
#define ALERT_LOCK_CLASS 0x45584c41

/* Set when this backend created alerts (execlog_add_alert). */
bool		execlog_alerts_created = false;

/* Finished deliveries wait this long for others, to be recorded together. */
#define GATHER_MS 5

/* A delivery in the transport, and once finished on the "delivered" list. */
typedef struct Delivery
{
	dlist_node	node;			/* in delivered, once finished */
	int64		alert_id;
	HttpRequest *req;
	bool		mail;			/* over SMTP */
	TimestampTz finished_at;
} Delivery;

/* A delivery in flight, by alert id (its secrets scrub its outcome). */
typedef struct InFlight
{
	int64		alert_id;		/* hash key */
	int32		attempts;		/* the attempt in flight */
	const char *kind;			/* AlertKind name (static) */
	List	   *secrets;		/* strings, in inflight_cxt */
} InFlight;

static MemoryContext alert_cxt = NULL;	/* one pass: reset every pass */
static MemoryContext inflight_cxt = NULL;	/* deliveries in flight */
static HTAB *inflight = NULL;
static TimestampTz next_due = 0;	/* earliest next_attempt_at known; 0: none */
static TimestampTz last_look = 0;
static uint64 wakeups_seen = 0;
static List *unreleased = NIL;	/* Delivery taken, not yet released (inflight_cxt) */
static dlist_head delivered = DLIST_STATIC_INIT(delivered);	/* finished, not taken */
static int	n_in_flight = 0;	/* deliveries sent, not finished */
static TimestampTz deferred_until = 0;	/* a busy worker's next pass; 0: none */
static bool delivery_paused = false;	/* execlog.alert_delivery was off */

/* The outcomes of attempts, written by one statement (record_stmt). */
typedef struct Outcomes
{
	int			n;
	int			cap;
	Datum	   *ids;
	Datum	   *attempts;
	Datum	   *status;
	Datum	   *error;
	bool	   *error_null;
	Datum	   *sent_at;
	bool	   *sent_null;
	Datum	   *next_at;
	bool	   *next_null;
} Outcomes;

static SavedStmt record_stmt = {
	"UPDATE execlog.alerts a"
	"   SET status = u.status, error = coalesce(u.error, a.error),"
	"       sent_at = u.sent_at, next_attempt_at = u.next_at"
	"  FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::text[],"
	"              $5::timestamptz[], $6::timestamptz[])"
	"       AS u(id, attempts, status, error, sent_at, next_at)"
	" WHERE a.id = u.id AND a.attempts = u.attempts AND a.status = 'pending'",
	6, {INT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
	TIMESTAMPTZARRAYOID}, NULL, true
};

/*
 * Record outcomes ($3..$8, as record_stmt) and claim due alerts: count the
 * attempt and lease them ($2 ms), in one statement (the statement triggers
 * on alerts run once).  The LEFT JOINs keep an alert whose channel is gone
 * (it is failed) and so on.
 */
static SavedStmt claim_stmt = {
	"WITH recorded AS ("
	"  UPDATE execlog.alerts a"
	"     SET status = u.status, error = coalesce(u.error, a.error),"
	"         sent_at = u.sent_at, next_attempt_at = u.next_at"
	"    FROM unnest($3::bigint[], $4::integer[], $5::text[], $6::text[],"
	"                $7::timestamptz[], $8::timestamptz[])"
	"         AS u(id, attempts, status, error, sent_at, next_at)"
	"   WHERE a.id = u.id AND a.attempts = u.attempts AND a.status = 'pending'),"
	" due AS ("
	"  SELECT a.id FROM execlog.alerts a"
	"   WHERE a.status = 'pending' AND a.next_attempt_at <= pg_catalog.now()"
	"   ORDER BY a.next_attempt_at, a.id LIMIT $1 FOR UPDATE SKIP LOCKED),"
	" claimed AS ("
	"  UPDATE execlog.alerts a SET attempts = a.attempts + 1,"
	"         next_attempt_at = pg_catalog.now() + pg_catalog.make_interval(secs => $2::float8 / 1000)"
	"    FROM due WHERE a.id = due.id"
	"  RETURNING a.id, a.attempts, a.channel, a.target, a.message, a.created_at,"
	"            a.channel_id, a.execution_id)"
	" SELECT c.id, c.attempts, c.channel, c.target, c.message, c.created_at,"
	"        c.channel_id, ch.config, e.id, e.automation_id, au.name, ac.name,"
	"        e.status::text, e.attempt, e.error, e.started_at, e.finished_at,"
	"        EXISTS (SELECT 1 FROM execlog.alerts d WHERE d.digest_id = c.id)"
	"   FROM claimed c"
	"   JOIN execlog.executions e ON e.id = c.execution_id"
	"   LEFT JOIN execlog.automations au ON au.id = e.automation_id"
	"   LEFT JOIN execlog.accounts ac ON ac.id = e.account_id"
	"   LEFT JOIN execlog.channels ch ON ch.id = c.channel_id"
	"  ORDER BY c.id",
	8, {INT4OID, INT8OID, INT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID}, NULL, true
};

static SavedStmt window_get_stmt = {
	"SELECT w.closes_at, w.digest_id FROM execlog.alert_windows w"
	" WHERE w.automation_id = $1 AND w.channel = $2",
	2, {INT8OID, TEXTOID}, NULL, true
};

static SavedStmt window_open_stmt = {
	"INSERT INTO execlog.alert_windows AS w (automation_id, channel, opened_at, closes_at)"
	" VALUES ($1, $2, pg_catalog.now(),"
	"         pg_catalog.now() + pg_catalog.make_interval(secs => $3::float8))"
	" ON CONFLICT (automation_id, channel) DO UPDATE"
	"   SET opened_at = excluded.opened_at, closes_at = excluded.closes_at, digest_id = NULL",
	3, {INT8OID, TEXTOID, INT4OID}, NULL, true
};

/* The digest of an open window, due when it closes; $1 is its first coalesced alert. */
static SavedStmt digest_add_stmt = {
	"WITH d AS ("
	"  INSERT INTO execlog.alerts (execution_id, account_id, channel_id, channel, target,"
	"                              message, next_attempt_at)"
	"  SELECT a.execution_id, a.account_id, a.channel_id, a.channel, a.target,"
	"         'digest of coalesced alerts', w.closes_at"
	"    FROM execlog.alerts a, execlog.alert_windows w"
	"   WHERE a.id = $1 AND w.automation_id = $2 AND w.channel = $3"
	"  RETURNING id)"
	" UPDATE execlog.alert_windows w SET digest_id = d.id FROM d"
	"  WHERE w.automation_id = $2 AND w.channel = $3 RETURNING d.id",
	3, {INT8OID, INT8OID, TEXTOID}, NULL, true
};

static SavedStmt coalesce_stmt = {
	"UPDATE execlog.alerts a"
	"   SET status = 'coalesced', digest_id = u.digest, attempts = 0, next_attempt_at = NULL"
	"  FROM unnest($1::bigint[], $2::bigint[]) AS u(id, digest)"
	" WHERE a.id = u.id",
	2, {INT8ARRAYOID, INT8ARRAYOID}, NULL, true
};

/* What a digest reports: the coalesced alerts pointing to it, latest executions first. */
static SavedStmt digest_facts_stmt = {
	"SELECT n.cnt, n.since, n.ids, e.id, e.status::text, e.attempt, e.error,"
	"       e.started_at, e.finished_at,"
	"       pg_catalog.to_char(n.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
	"  FROM (SELECT pg_catalog.count(DISTINCT c.execution_id) AS cnt,"
	"               pg_catalog.min(c.created_at) AS since,"
	"               pg_catalog.max(c.execution_id) AS last,"
	"               ARRAY(SELECT DISTINCT c2.execution_id FROM execlog.alerts c2"
	"                      WHERE c2.digest_id = $1 ORDER BY c2.execution_id DESC LIMIT $2) AS ids"
	"          FROM execlog.alerts c WHERE c.digest_id = $1) n"
	"  JOIN execlog.executions e ON e.id = n.last",
	2, {INT8OID, INT4OID}, NULL, true
};

static SavedStmt digest_message_stmt = {
	"UPDATE execlog.alerts SET message = $2, execution_id = $3 WHERE id = $1",
	3, {INT8OID, TEXTOID, INT8OID}, NULL, true
};

static SavedStmt next_due_stmt = {
	"SELECT pg_catalog.min(a.next_attempt_at) FROM execlog.alerts a WHERE a.status = 'pending'",
	0, {0}, NULL, true
};

/* ----------
 * Small helpers
 * ----------
 */

static void
begin_tx(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end_tx(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * run_stmt
 *		execlog_run_saved, then back to the pass's memory: SPI leaves its own
 *		procedure context current after every call, and what a pass prepares
 *		must outlive the transaction.
 */
static uint64
run_stmt(SavedStmt *stmt, Datum *values, const char *nulls, bool read_only)
{
	uint64		n = execlog_run_saved(stmt, values, nulls, read_only);

	MemoryContextSwitchTo(alert_cxt);
	return n;
}

static Datum
col(int row, int c, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, c, isnull);
}

static char *
col_text(int row, int c)
{
	bool		isnull;
	Datum		d = col(row, c, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static TimestampTz
col_time(int row, int c)
{
	bool		isnull;
	Datum		d = col(row, c, &isnull);

	return isnull ? 0 : DatumGetTimestampTz(d);
}

static Datum
array_of(Datum *values, bool *nulls, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, type,
											  typlen, typbyval, typalign));
}

/* Text safe to store: valid UTF-8 on one line, else '?' for odd bytes. */
static char *
safe_line(const char *s, size_t len)
{
	char	   *copy = pnstrdup(s, len);
	size_t		i;
	bool		utf8 = pg_encoding_verifymbstr(PG_UTF8, copy, len) == (int) len;

	for (i = 0; copy[i]; i++)
	{
		unsigned char c = (unsigned char) copy[i];

		if (c == '\r' || c == '\n' || c == '\t')
			copy[i] = ' ';
		else if (c < 0x20 || (c >= 0x80 && !utf8))
			copy[i] = '?';
	}
	return utf8 ? pg_any_to_server(copy, strlen(copy), PG_UTF8) : copy;
}

/* Copy of s with every secret replaced by "[redacted]". */
static char *
scrub(const char *s, List *secrets)
{
	size_t		len;
	char	   *out = execlog_http_scrub(secrets, s, strlen(s), &len);

	return out == s ? pstrdup(s) : out;
}

/* The value of a header in a raw header block, or NULL. */
static char *
header_value(const char *raw, size_t len, const char *name)
{
	char	   *copy = pnstrdup(raw ? raw : "", len);
	char	   *line;
	char	   *save = NULL;
	size_t		nl = strlen(name);

	for (line = strtok_r(copy, "\r\n", &save); line != NULL;
		 line = strtok_r(NULL, "\r\n", &save))
	{
		if (pg_strncasecmp(line, name, nl) == 0 && line[nl] == ':')
		{
			char	   *v = line + nl + 1;
			size_t		vl;

			v += strspn(v, " \t");
			vl = strlen(v);
			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				v[--vl] = '\0';
			return v;
		}
	}
	return NULL;
}

/* The reason phrase of the status line, or "". */
static char *
reason_phrase(const char *raw, size_t len)
{
	char	   *copy = pnstrdup(raw ? raw : "", len);
	char	   *eol = strpbrk(copy, "\r\n");
	char	   *sp;

	if (eol)
		*eol = '\0';
	if (strncmp(copy, "HTTP/", 5) != 0 || (sp = strchr(copy, ' ')) == NULL ||
		(sp = strchr(sp + 1, ' ')) == NULL)
		return "";
	return sp + 1;
}

/* Read the workers' wake-up counter (bumped by commits that enqueue work). */
static uint64
wakeups_now(void)
{
	uint64		w;

	SpinLockAcquire(&execlog_shared->mutex);
	w = execlog_shared->wakeups;
	SpinLockRelease(&execlog_shared->mutex);
	return w;
}

/* Longest delay between two attempts (one day). */
#define MAX_DELAY_S 86400

/* ----------
 * Outcomes
 * ----------
 */

static void
outcomes_init(Outcomes *o, int cap)
{
	memset(o, 0, sizeof(Outcomes));
	o->cap = Max(cap, 1);
	o->ids = palloc(sizeof(Datum) * o->cap);
	o->attempts = palloc(sizeof(Datum) * o->cap);
	o->status = palloc(sizeof(Datum) * o->cap);
	o->error = palloc(sizeof(Datum) * o->cap);
	o->error_null = palloc(sizeof(bool) * o->cap);
	o->sent_at = palloc(sizeof(Datum) * o->cap);
	o->sent_null = palloc(sizeof(bool) * o->cap);
	o->next_at = palloc(sizeof(Datum) * o->cap);
	o->next_null = palloc(sizeof(bool) * o->cap);
}

/*
 * outcome_add
 *		One attempt's outcome: error NULL means delivered; else the alert is
 *		failed for good after execlog.alert_max_attempts tries, or tried
 *		again after a delay doubling from execlog.alert_retry_delay (or a
 *		longer Retry-After, retry_ms >= 0); final fails it for good at once.
 */
static void
outcome_add(Outcomes *o, int64 id, int32 attempts, const char *error,
			int64 retry_ms, TimestampTz at, bool final)
{
	int			i = o->n++;

	Assert(i < o->cap);
	o->ids[i] = Int64GetDatum(id);
	o->attempts[i] = Int32GetDatum(attempts);
	o->error_null[i] = error == NULL;
	o->error[i] = error ? CStringGetTextDatum(error) : (Datum) 0;
	o->sent_null[i] = error != NULL;
	o->sent_at[i] = TimestampTzGetDatum(at);
	o->next_null[i] = true;
	o->next_at[i] = (Datum) 0;
	if (error == NULL)
		o->status[i] = CStringGetTextDatum("sent");
	else if (final || attempts >= execlog_alert_max_attempts)
		o->status[i] = CStringGetTextDatum("failed");
	else
	{
		int64		delay = execlog_alert_retry_delay_ms;
		int			k;

		for (k = 1; k < attempts && delay < (int64) MAX_DELAY_S * 1000; k++)
			delay *= 2;
		delay = Min(delay, (int64) MAX_DELAY_S * 1000);
		if (retry_ms > delay)
			delay = retry_ms;
		o->status[i] = CStringGetTextDatum("pending");
		o->next_null[i] = false;
		o->next_at[i] = TimestampTzGetDatum(at + delay * 1000);
	}
}

/* The outcomes as the six array arguments of record_stmt (from values[0]). */
static void
outcomes_args(Outcomes *o, Datum *values)
{
	values[0] = array_of(o->ids, NULL, o->n, INT8OID);
	values[1] = array_of(o->attempts, NULL, o->n, INT4OID);
	values[2] = array_of(o->status, NULL, o->n, TEXTOID);
	values[3] = array_of(o->error, o->error_null, o->n, TEXTOID);
	values[4] = array_of(o->sent_at, o->sent_null, o->n, TIMESTAMPTZOID);
	values[5] = array_of(o->next_at, o->next_null, o->n, TIMESTAMPTZOID);
}

static void
outcomes_write(Outcomes *o)
{
	Datum		values[6];

	if (o->n == 0)
		return;
	outcomes_args(o, values);
	run_stmt(&record_stmt, values, NULL, false);
	o->n = 0;
}

/*
 * result_outcome
 *		The outcome of a finished delivery: delivered when its kind says so,
 *		else an error naming the answer (status, reason, start of the body)
 *		or the transport's failure, scrubbed of the delivery's secrets.
 */
static void
result_outcome(Outcomes *o, Delivery *d)
{
	bool		found;
	HttpResult *res = execlog_http_result(d->req);
	InFlight   *f = hash_search(inflight, &d->alert_id, HASH_FIND, &found);
	const AlertKind *kind;
	char	   *error = NULL;
	int64		retry_ms = -1;

	if (!found)
		return;
	kind = execlog_alert_kind(f->kind);
	if (res->error != NULL)
		error = res->error;
	else if (res->time_limit)
		error = psprintf("timed out after %d ms", execlog_http_timeout_ms);
	else if (kind == NULL || !kind->delivered(res->status))
	{
		const char *reason = reason_phrase(res->headers, res->headers_len);
		size_t		blen = Min(res->body_len, ERROR_BODY_BYTES);

		if (d->mail)
			error = psprintf("the SMTP server answered %ld", res->status);
		else
		{
			/* keep whole characters of the body */
			if (blen < res->body_len && res->body)
				blen = pg_encoding_mbcliplen(PG_UTF8, res->body, res->body_len, blen);
			error = psprintf("%ld%s%s%s%s", res->status, reason[0] ? " " : "", reason,
							 blen > 0 ? ": " : "", blen > 0 ? pnstrdup(res->body, blen) : "");
		}
		if (res->status == 429 || res->status == 503)
		{
			int			after = execlog_http_retry_after(header_value(res->headers,
																	   res->headers_len,
																	   "Retry-After"));

			retry_ms = after < 0 ? -1 : (int64) after * 1000;
		}
	}
	if (error != NULL)
		error = scrub(safe_line(error, strlen(error)), f->secrets);
	outcome_add(o, f->alert_id, f->attempts, error, retry_ms, res->finished_at, false);

	list_free_deep(f->secrets);
	hash_search(inflight, &d->alert_id, HASH_REMOVE, NULL);
}

/* ----------
 * Claims and storm control
 * ----------
 */

/* A coalescing window seen in this pass. */
typedef struct Window
{
	char		key[64];		/* "<automation id> <channel key>" */
	TimestampTz closes_at;		/* 0: none open */
	int64		digest_id;		/* 0: none yet */
} Window;

/* The channel key of an alert: its channel, or its literal address. */
static char *
channel_key(bool has_channel, int64 channel_id, const char *target)
{
	return has_channel ? psprintf("channel %lld", (long long) channel_id)
		: psprintf("email %s", target);
}

/* The window of (automation, channel), looked up once per pass. */
static Window *
window_of(HTAB *windows, int64 automation_id, const char *chan)
{
	char		key[64];
	bool		found;
	Window	   *w;
	Datum		values[2];

	snprintf(key, sizeof(key), "%lld %s", (long long) automation_id, chan);
	w = hash_search(windows, key, HASH_ENTER, &found);
	if (found)
		return w;
	w->closes_at = 0;
	w->digest_id = 0;
	values[0] = Int64GetDatum(automation_id);
	values[1] = CStringGetTextDatum(chan);
	if (run_stmt(&window_get_stmt, values, NULL, true) == 1)
	{
		bool		isnull;
		Datum		d;

		w->closes_at = col_time(0, 1);
		d = col(0, 2, &isnull);
		w->digest_id = isnull ? 0 : DatumGetInt64(d);
	}
	SPI_freetuptable(SPI_tuptable);
	return w;
}

/*
 * digest_facts
 *		Fill a digest's facts from the alerts it coalesced (the latest
 *		execution's, how many, since when, which) and store its message.
 */
static void
digest_facts(AlertFacts *a)
{
	Datum		values[3];
	bool		isnull;
	Datum		d;
	StringInfoData msg;
	int			i;
	char	   *since;

	values[0] = Int64GetDatum(a->id);
	values[1] = Int32GetDatum(EXECLOG_DIGEST_MAX_IDS);
	if (run_stmt(&digest_facts_stmt, values, NULL, true) != 1)
	{
		SPI_freetuptable(SPI_tuptable);
		return;
	}
	a->digest_count = DatumGetInt64(col(0, 1, &isnull));
	a->digest_since = col_time(0, 2);
	d = col(0, 3, &isnull);
	a->n_digest_ids = 0;
	if (!isnull)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		deconstruct_array(DatumGetArrayTypeP(d), INT8OID, 8, true, TYPALIGN_DOUBLE,
						  &elems, &nulls, &n);
		for (i = 0; i < n && i < EXECLOG_DIGEST_MAX_IDS; i++)
			a->digest_ids[a->n_digest_ids++] = DatumGetInt64(elems[i]);
	}
	a->execution_id = DatumGetInt64(col(0, 4, &isnull));
	a->status = col_text(0, 5);
	a->attempt = DatumGetInt32(col(0, 6, &isnull));
	a->error = col_text(0, 7);
	a->started_at = col_time(0, 8);
	a->finished_at = col_time(0, 9);
	since = col_text(0, 10);
	SPI_freetuptable(SPI_tuptable);

	initStringInfo(&msg);
	appendStringInfo(&msg, "%lld more execution%s of \"%s\" failed since %s UTC",
					 (long long) a->digest_count, a->digest_count == 1 ? "" : "s",
					 a->automation, since ? since : "?");
	appendStringInfo(&msg, "\nLatest error: %s", a->error ? a->error : "(none)");
	appendStringInfoString(&msg, "\nExecutions:");
	for (i = 0; i < a->n_digest_ids; i++)
		appendStringInfo(&msg, "%s %lld", i ? "," : "", (long long) a->digest_ids[i]);
	if (a->digest_count > a->n_digest_ids)
		appendStringInfoString(&msg, ", \u2026");
	a->message = msg.data;

	values[0] = Int64GetDatum(a->id);
	values[1] = CStringGetTextDatum(a->message);
	values[2] = Int64GetDatum(a->execution_id);
	run_stmt(&digest_message_stmt, values, NULL, false);
}

/* A delivery prepared in the claim transaction, sent after its commit. */
typedef struct Prepared
{
	AlertRequest req;
	int64		alert_id;
	int32		attempts;
	const char *kind;
} Prepared;

/* worker_xact_lock of worker.c, without waiting: false when another holds it. */
static bool
claim_lock(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) ALERT_LOCK_CLASS, 0,
						 WORKER_LOCK_KIND);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * claim
 *		Record the outcomes in o and claim due alerts (one statement),
 *		coalesce those of open windows, format the others; returns the list
 *		of Prepared deliveries (in alert_cxt).  Alerts that cannot be
 *		formatted get their failed attempt in o.  Without the claim lock (or
 *		room) nothing is claimed and the outcomes stay in o.
 */
static List *
claim(Outcomes *o, int room, bool *full)
{
	Datum		values[8];
	uint64		n;
	uint64		i;
	int64		lease_ms;
	List	   *prepared = NIL;
	AlertFacts *rows;
	bool	   *has_channel;
	int64	   *channel_ids;
	int64	   *automation_ids;
	bool	   *has_config;
	HASHCTL		ctl;
	HTAB	   *windows;
	Datum	   *co_ids;
	Datum	   *co_digests;
	int			n_co = 0;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			limit = Min(ALERT_BATCH, room);

	*full = false;
	if (limit <= 0 || !claim_lock())
		return NIL;

	/*
	 * The lease: requests to one host wait for its connections in order, so
	 * the last one claimed may wait for all before it.
	 */
	lease_ms = (int64) execlog_http_timeout_ms *
		(1 + (n_in_flight + limit) / Max(execlog_max_connections_per_host, 1)) +
		LEASE_MARGIN_MS;
	values[0] = Int32GetDatum(limit);
	values[1] = Int64GetDatum(lease_ms);
	outcomes_args(o, values + 2);
	n = run_stmt(&claim_stmt, values, NULL, false);
	o->n = 0;
	*full = n == (uint64) limit;
	if (n == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return NIL;
	}
	rows = palloc0(sizeof(AlertFacts) * n);
	has_channel = palloc(sizeof(bool) * n);
	has_config = palloc(sizeof(bool) * n);
	channel_ids = palloc(sizeof(int64) * n);
	automation_ids = palloc(sizeof(int64) * n);
	for (i = 0; i < n; i++)
	{
		AlertFacts *a = &rows[i];
		bool		isnull;
		Datum		d;

		a->id = DatumGetInt64(col(i, 1, &isnull));
		a->attempts = DatumGetInt32(col(i, 2, &isnull));
		a->kind = col_text(i, 3);
		a->target = col_text(i, 4);
		a->message = col_text(i, 5);
		a->created_at = col_time(i, 6);
		d = col(i, 7, &isnull);
		has_channel[i] = !isnull;
		channel_ids[i] = isnull ? 0 : DatumGetInt64(d);
		d = col(i, 8, &isnull);
		has_config[i] = !isnull;
		a->config = isnull ? NULL : DatumGetJsonbPCopy(d);
		a->execution_id = DatumGetInt64(col(i, 9, &isnull));
		automation_ids[i] = DatumGetInt64(col(i, 10, &isnull));
		a->automation = col_text(i, 11);
		if (a->automation == NULL)
			a->automation = "?";
		a->account = col_text(i, 12);
		if (a->account == NULL)
			a->account = "?";
		a->status = col_text(i, 13);
		a->attempt = DatumGetInt32(col(i, 14, &isnull));
		a->error = col_text(i, 15);
		a->started_at = col_time(i, 16);
		a->finished_at = col_time(i, 17);
		a->digest = DatumGetBool(col(i, 18, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = 64;
	ctl.entrysize = sizeof(Window);
	ctl.hcxt = CurrentMemoryContext;
	windows = hash_create("execlog alert windows", 16, &ctl,
						  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	co_ids = palloc(sizeof(Datum) * n);
	co_digests = palloc(sizeof(Datum) * n);

	for (i = 0; i < n; i++)
	{
		AlertFacts *a = &rows[i];
		const AlertKind *kind = execlog_alert_kind(a->kind);
		Prepared   *p;
		char	   *why = NULL;

		if (kind == NULL || (has_channel[i] && !has_config[i]) ||
			(!has_channel[i] && (strcmp(a->kind, "email") != 0 ||
								 strchr(a->target, '@') == NULL)))
		{
			/* its channel was deleted: nothing to deliver to, ever */
			outcome_add(o, a->id, a->attempts,
						psprintf("channel \"%s\" no longer exists", a->target), -1, now, true);
			continue;
		}

		/* storm control: a first attempt in an open window is coalesced */
		if (a->digest)
			digest_facts(a);
		else if (a->attempts == 1 && execlog_alert_coalesce_s > 0)
		{
			char	   *chan = channel_key(has_channel[i], channel_ids[i], a->target);
			Window	   *w = window_of(windows, automation_ids[i], chan);

			if (w->closes_at > now)
			{
				if (w->digest_id == 0)
				{
					values[0] = Int64GetDatum(a->id);
					values[1] = Int64GetDatum(automation_ids[i]);
					values[2] = CStringGetTextDatum(chan);
					if (run_stmt(&digest_add_stmt, values, NULL, false) == 1)
					{
						bool		isnull;

						w->digest_id = DatumGetInt64(col(0, 1, &isnull));
					}
					SPI_freetuptable(SPI_tuptable);
				}
				if (w->digest_id != 0)
				{
					co_ids[n_co] = Int64GetDatum(a->id);
					co_digests[n_co++] = Int64GetDatum(w->digest_id);
					continue;
				}
			}
			else
			{
				values[0] = Int64GetDatum(automation_ids[i]);
				values[1] = CStringGetTextDatum(chan);
				values[2] = Int32GetDatum(execlog_alert_coalesce_s);
				run_stmt(&window_open_stmt, values, NULL, false);
				w->closes_at = now + (TimestampTz) execlog_alert_coalesce_s * USECS_PER_SEC;
				w->digest_id = 0;
			}
		}

		p = palloc0(sizeof(Prepared));
		p->attempts = a->attempts;
		p->kind = kind->name;
		if (!kind->format(a, &p->req, &why))
		{
			char	   *error = scrub(why ? why : "the alert could not be formatted",
									  p->req.spec.secrets);

			outcome_add(o, a->id, a->attempts, error, -1, now, false);
			continue;
		}
		p->alert_id = a->id;
		p->req.spec.timeout_ms = execlog_http_timeout_ms;
		prepared = lappend(prepared, p);
	}
	if (n_co > 0)
	{
		values[0] = array_of(co_ids, NULL, n_co, INT8OID);
		values[1] = array_of(co_digests, NULL, n_co, INT8OID);
		run_stmt(&coalesce_stmt, values, NULL, false);
	}
	return prepared;
}

/* Note when the next alert is due. */
static void
look_next_due(void)
{
	bool		isnull;
	Datum		d;

	run_stmt(&next_due_stmt, NULL, NULL, true);
	d = col(0, 1, &isnull);
	next_due = isnull ? 0 : DatumGetTimestampTz(d);
	SPI_freetuptable(SPI_tuptable);
}

/* The transport's callback: a delivery finished, to be recorded. */
static void
delivery_done(HttpRequest *req, void *arg)
{
	Delivery   *d = (Delivery *) arg;

	d->finished_at = execlog_http_result(req)->finished_at;
	dlist_push_tail(&delivered, &d->node);
	n_in_flight--;
}

/* Free a delivery taken from the delivered list. */
static void
delivery_free(Delivery *d)
{
	execlog_http_release(d->req);
	pfree(d);
}

/* Send the prepared deliveries, remembering their secrets. */
static void
send_prepared(List *prepared)
{
	ListCell   *lc;

	foreach(lc, prepared)
	{
		Prepared   *p = (Prepared *) lfirst(lc);
		bool		found;
		InFlight   *f = hash_search(inflight, &p->alert_id, HASH_ENTER, &found);
		MemoryContext old;
		ListCell   *sc;
		Delivery   *d;

		if (found)
			list_free_deep(f->secrets);
		f->attempts = p->attempts;
		f->kind = p->kind;
		f->secrets = NIL;
		old = MemoryContextSwitchTo(inflight_cxt);
		foreach(sc, p->req.spec.secrets)
			f->secrets = lappend(f->secrets, pstrdup((char *) lfirst(sc)));
		d = MemoryContextAllocZero(inflight_cxt, sizeof(Delivery));
		d->alert_id = p->alert_id;
		d->mail = p->req.spec.mail != NULL;
		MemoryContextSwitchTo(old);
		n_in_flight++;
		d->req = execlog_http_submit(&p->req.spec, delivery_done, d);
	}
}

/*
 * execlog_alerts_pass
 *		One pass of alert delivery in the worker's loop (see the file
 *		header); lowers *sleep_ms to the time until the next alert is due.
 *		Returns true when more alerts may be due right away.  busy: the
 *		worker ran executions in this loop (more may wait), so the pass
 *		yields to them (ALERT_BUSY_PERCENT).  With execlog.alert_delivery
 *		off, the outcomes of deliveries in flight are recorded, nothing is
 *		claimed.
 */
bool
execlog_alerts_pass(long *sleep_ms, bool busy)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		wakeups = wakeups_now();
	List	   *results = NIL;
	List	   *prepared = NIL;
	Outcomes	o;
	MemoryContext old;
	bool		full = false;
	ListCell   *lc;
	MemoryContext caller = CurrentMemoryContext;

	if (alert_cxt == NULL)
	{
		HASHCTL		ctl;

		alert_cxt = AllocSetContextCreate(TopMemoryContext, "execlog alerts",
										  ALLOCSET_DEFAULT_SIZES);
		inflight_cxt = AllocSetContextCreate(TopMemoryContext, "execlog alerts in flight",
											 ALLOCSET_DEFAULT_SIZES);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(InFlight);
		ctl.hcxt = inflight_cxt;
		inflight = hash_create("execlog alerts in flight", 256, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	/* executions wait: this pass is deferred (see ALERT_BUSY_PERCENT) */
	if (busy && deferred_until > now)
	{
		int64		ms = (deferred_until - now) / 1000;

		*sleep_ms = Min(*sleep_ms, (long) Max(ms + 1, 1));
		return false;
	}
	MemoryContextReset(alert_cxt);

	/* results taken by a pass that failed: their alerts are due again later */
	foreach(lc, unreleased)
		delivery_free((Delivery *) lfirst(lc));
	list_free(unreleased);
	unreleased = NIL;

	while (!dlist_is_empty(&delivered))
	{
		Delivery   *d = dlist_container(Delivery, node, dlist_pop_head_node(&delivered));

		old = MemoryContextSwitchTo(inflight_cxt);
		unreleased = lappend(unreleased, d);
		MemoryContextSwitchTo(old);
	}
	results = unreleased;
	if (!execlog_alert_delivery)
	{
		/* nothing is claimed: no due time to wake up for */
		delivery_paused = true;
		next_due = 0;
		if (results == NIL)
			goto sleep;
	}
	else if (results == NIL && !execlog_alerts_created && wakeups == wakeups_seen &&
			 !delivery_paused && !(next_due != 0 && next_due <= now) &&
			 !TimestampDifferenceExceeds(last_look, now, ALERT_RECHECK_MS))
		goto sleep;

	execlog_alerts_created = false;
	delivery_paused = !execlog_alert_delivery;
	wakeups_seen = wakeups;
	last_look = now;

	begin_tx("execlog: delivering alerts");
	MemoryContextSwitchTo(alert_cxt);

	outcomes_init(&o, list_length(results) + ALERT_BATCH);
	foreach(lc, results)
		result_outcome(&o, (Delivery *) lfirst(lc));
	prepared = claim(&o, execlog_alert_delivery ? ALERT_MAX_IN_FLIGHT - n_in_flight : 0,
					 &full);
	/* outcomes not recorded by the claim, and attempts that failed in it */
	outcomes_write(&o);
	if (execlog_alert_delivery)
		look_next_due();

	/*
	 * An outcome lost in a crash loses nothing that matters: the alert stays
	 * leased and is sent again (at least once), so a pass that only records
	 * outcomes need not wait for the WAL flush.  A pass that claimed new
	 * attempts does: the attempt must be counted on disk before its request
	 * leaves, or a crash would forget a try the receiver saw (attempts would
	 * undercount, and crashes could retry beyond alert_max_attempts).
	 */
	if (prepared == NIL)
		(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	end_tx();
	MemoryContextSwitchTo(caller);

	/* the outcomes are stored: the results can go */
	foreach(lc, results)
		delivery_free((Delivery *) lfirst(lc));
	list_free(unreleased);
	unreleased = NIL;
	send_prepared(prepared);

	/* a busy worker's next pass waits (ALERT_BUSY_PERCENT of its time) */
	deferred_until = 0;
	if (busy)
	{
		TimestampTz end = GetCurrentTimestamp();
		int64		defer = (end - now) * (100 / ALERT_BUSY_PERCENT - 1);

		deferred_until = end + Min(defer, (int64) ALERT_BUSY_MAX_DEFER_MS * 1000);
	}

sleep:
	if (next_due != 0)
	{
		int64		ms = (next_due - GetCurrentTimestamp()) / 1000;

		*sleep_ms = Min(*sleep_ms, (long) Max(ms + 1, 1));
	}
	return full;
}

/*
 * execlog_alerts_wait_ms
 *		How long the worker may wait, as far as alert deliveries go, given
 *		that the rest would wait wait_ms: finished deliveries are recorded
 *		once none is in flight any more, or the oldest has waited GATHER_MS.
 */
long
execlog_alerts_wait_ms(long wait_ms)
{
	Delivery   *first;
	long		age;

	if (dlist_is_empty(&delivered))
		return wait_ms;
	first = dlist_head_element(Delivery, node, &delivered);
	age = (long) ((GetCurrentTimestamp() - first->finished_at) / 1000);
	if (n_in_flight == 0 || age >= GATHER_MS)
		return 0;
	return Min(wait_ms, GATHER_MS - age);
}

/*
 * execlog_alerts_wake
 *		Trigger on alerts (AFTER INSERT, per statement): wake the workers
 *		when the transaction commits, so that they deliver the new alerts.
 */
Datum
execlog_alerts_wake(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("execlog._alerts_wake() must be called as a trigger")));
	execlog_wake_at_commit();
	return PointerGetDatum(NULL);
}
