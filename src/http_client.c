/*-------------------------------------------------------------------------
 *
 * http_client.c
 *	  The worker's HTTP client: one libcurl multi handle that lives as long
 *	  as the worker, with many requests in flight.
 *
 * The batch transaction prepares requests (steps_http.c) and hands them
 * over with execlog_http_defer(); once it has committed, the worker sends
 * them (execlog_http_batch_done).  libcurl reports the sockets it wants
 * watched through CURLMOPT_SOCKETFUNCTION: they go into an epoll set of our
 * own, whose descriptor the worker waits on together with its latch
 * (WaitLatchOrSocket: an epoll descriptor is readable when any socket in it
 * is ready).  execlog_http_drive() then lets libcurl act on the ready
 * sockets and on its timer, and collects the finished transfers.  Their
 * executions are continued by the worker's next batch, which asks for each
 * result with execlog_http_result().
 *
 * Rules kept here:
 *	- libcurl callbacks never raise an error and never allocate memory that
 *	  could: they record what went wrong and return an error code to libcurl;
 *	  the rest is done once libcurl has returned;
 *	- every request has its own memory context under the long-lived "execlog
 *	  http" context, deleted as soon as its result has been recorded; easy
 *	  handles are reused, and the multi handle keeps connections alive;
 *	- a request never outlives its execution's time limit: its timeout is
 *	  capped at the deadline;
 *	- a request whose execution was cancelled is removed from the multi
 *	  handle (its connection is closed) and its step row failed;
 *	- connections made under one execlog.http_allow / http_deny stay in a
 *	  multi handle of their own: when the settings change, new requests go
 *	  to a new multi handle and the old one is closed once it is idle, so a
 *	  kept-alive connection cannot outlive the policy that allowed it;
 *	- OAuth2 tokens are fetched through the same multi handle, once per
 *	  connection for all workers while they are valid (oauth2.c shares
 *	  them), and once more after a 401;
 *	- at most execlog.max_connections_per_host transfers per host are in a
 *	  multi handle; the others wait, in order, on their host's queue;
 *	- a request keeps its step's row (see http.h): the row of one still in
 *	  flight after EXECLOG_HTTP_RECORD_AFTER_MS is written as "running", and
 *	  an aborted request's row is written as failed, with what was sent;
 *	- detached requests (alert deliveries, alert_send.c) share the multi
 *	  handles, the address policy and the per-host limits, but have no step
 *	  row, no time limit and no cancel: they do not count towards
 *	  execlog_http_saturated(), and their results wait on a list of their
 *	  own (execlog_http_take_detached); a detached request with a mail
 *	  (HttpMail) is sent over SMTP instead of HTTP.
 *
 *-------------------------------------------------------------------------
 */
#include "http.h"
#include "plans.h"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "executor/spi.h"
#include "lib/ilist.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* Response headers kept at most (libcurl limits single headers itself). */
#define MAX_HEADER_BYTES (256 * 1024)

/* Longest wait for answers while saturated (libcurl's timer wakes us too). */
#define MAX_WAIT_IN_FLIGHT_MS 1000

/* Idle easy handles kept for reuse. */
#define MAX_IDLE_EASY 256

/* One multi handle: the connections made under one policy. */
typedef struct HttpPool
{
	dlist_node	node;
	uint32		id;
	CURLM	   *multi;
	HttpPolicy *policy;
	int			max_host;		/* CURLMOPT_MAX_HOST_CONNECTIONS set */
	int			transfers;		/* easy handles added */
	bool		timer_set;
	TimestampTz timer_at;		/* when libcurl wants its timeout action */
	bool		retired;		/* the settings changed: close when idle */
} HttpPool;

/* A growing buffer that keeps at most 'limit' bytes but counts them all. */
typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	uint64		total;
	size_t		limit;
} Buf;

typedef enum ReqState
{
	REQ_WAITING,				/* for an OAuth2 token */
	REQ_RUNNING,				/* in a multi handle */
	REQ_DONE					/* result ready for a batch */
} ReqState;

struct TokenEntry;

typedef struct HttpReq
{
	dlist_node	node;			/* in waiting, running or done */
	MemoryContext cxt;			/* everything of this request */
	ReqState	state;
	bool		is_token;		/* fetches an OAuth2 token */
	bool		in_batch;		/* handed to a batch by finished_ids */
	bool		refreshed;		/* got a new token after a 401 */
	bool		recorded;		/* its step row was written as "running" */
	struct HostSlot *slot;		/* holds one of its host's connections */
	char	   *host_key;		/* "host:port" of its URL; NULL: not parsed yet */
	bool		no_host;		/* its URL has no host */
	struct TokenEntry *token;	/* its OAuth2 token entry */
	char	   *token_used;		/* the access token it was sent with */
	HttpSpec	spec;			/* copied into cxt */
	CURL	   *easy;
	HttpPool   *pool;
	struct curl_slist *slist;
	struct curl_slist *rcpt;	/* SMTP recipients of a mail */
	size_t		upload_off;		/* bytes of a mail handed to libcurl */
	Buf			head;
	Buf			body;
	long		timeout_ms;		/* timeout given to libcurl */
	bool		deadline_capped;	/* ... which is the time limit's */
	bool		oom;			/* a callback ran out of memory */
	char		denied[512];	/* why the open-socket callback refused */
	char		errbuf[CURL_ERROR_SIZE];
	HttpResult	result;
} HttpReq;

/* Waiting for another worker's token fetch, look again this often. */
#define TOKEN_POLL_MS 100

/* A cached OAuth2 token of one connection (id and updated_at). */
typedef struct TokenEntry
{
	dlist_node	node;
	int64		connection_id;
	TimestampTz updated_at;
	char	   *token_url;
	char	   *client_id;
	char	   *client_secret;
	char	   *scope;
	bool		client_basic;
	char	   *access_token;	/* NULL: none valid */
	TimestampTz expires_at;
	bool		fetching;		/* this worker fetches it */
	bool		fetch_shared;	/* ... for all workers (oauth2.c) */
	bool		unshared;		/* too long to share: this worker's own */
	bool		shared_wait;	/* another worker fetches it */
	TimestampTz wait_since;		/* since then */
	dlist_head	waiters;		/* HttpReq waiting for it */
} TokenEntry;

/*
 * Connections per host.  execlog.max_connections_per_host is enforced here
 * rather than left to libcurl, which keeps the transfers over the limit
 * pending and looks at all of them again whenever a connection frees up:
 * with hundreds of requests in flight to one host, that costs more than the
 * requests.  A request over the limit waits on its host's queue (state
 * REQ_WAITING) and is handed to libcurl when one of the host's transfers
 * ends.
 */
#define HOST_KEY_LEN 300

typedef struct HostSlot
{
	char		key[HOST_KEY_LEN];	/* "host:port" (hash key) */
	int			active;			/* transfers in a multi handle */
	dlist_head	queue;			/* HttpReq waiting for a connection */
	bool		busy;			/* in busy_hosts */
	dlist_node	busy_node;
} HostSlot;

/*
 * A step row to fail: its request was aborted or its result not used.  The
 * row may not have been written yet (see http.h): keep what it needs.
 */
typedef struct StaleStep
{
	int64		execution_id;
	int32		attempt;
	int32		position;
	int64		account_id;
	char	   *name;			/* in http_cxt */
	Jsonb	   *input;			/* in http_cxt */
	TimestampTz started_at;
	bool		answered;		/* the answer came, but too late */
} StaleStep;

static MemoryContext http_cxt = NULL;
static int	epoll_fd = -1;
static dlist_head pools;
static HttpPool *cur_pool = NULL;
static uint32 next_pool_id = 0;
static dlist_head running;
static dlist_head done;
static int	n_waiting = 0;
static int	n_running = 0;
static int	n_done = 0;
static dlist_head tokens;
static HTAB *host_slots = NULL;
static dlist_head busy_hosts;	/* HostSlot with requests queued */
static dlist_head deferred;		/* prepared by the batch, sent after commit */
static StaleStep *stale = NULL;
static int	n_stale = 0;
static int	cap_stale = 0;
static CURL *idle_easy[MAX_IDLE_EASY];
static int	n_idle_easy = 0;
static uint32 cancels_seen = 0;
static SPIPlanPtr gone_plan = NULL;
static SPIPlanPtr stale_plan = NULL;
static SPIPlanPtr slow_plan = NULL;
static dlist_head detached_done;	/* finished detached requests */
static int	n_detached = 0;		/* detached requests not finished yet */

static void start_transfer(HttpReq *req);
static void token_wait(HttpReq *req, const char *stale);
static bool url_host(const char *url, char *host, size_t hostlen, long *port);

/*
 * Run body for every request in flight, req being the request: running,
 * waiting for a token, or waiting for a connection.  body may remove req
 * from its list.
 */
#define FOREACH_IN_FLIGHT(req, body) \
	do { \
		dlist_mutable_iter fi_; \
		dlist_iter	fo_; \
		dlist_foreach_modify(fi_, &running) \
		{ \
			HttpReq    *req = dlist_container(HttpReq, node, fi_.cur); \
			body; \
		} \
		dlist_foreach(fo_, &tokens) \
		{ \
			dlist_foreach_modify(fi_, &dlist_container(TokenEntry, node, fo_.cur)->waiters) \
			{ \
				HttpReq    *req = dlist_container(HttpReq, node, fi_.cur); \
				body; \
			} \
		} \
		dlist_foreach(fo_, &busy_hosts) \
		{ \
			dlist_foreach_modify(fi_, &dlist_container(HostSlot, busy_node, fo_.cur)->queue) \
			{ \
				HttpReq    *req = dlist_container(HttpReq, node, fi_.cur); \
				body; \
			} \
		} \
	} while (0)
static void fail_stale(void);
static long record_due_ms(TimestampTz now);

/* ----------
 * Small helpers
 * ----------
 */

/*
 * buf_append
 *		Append to a buffer, keeping at most its limit; false when out of
 *		memory.  Called from libcurl callbacks: never raises an error.
 */
static bool
buf_append(MemoryContext cxt, Buf *b, const char *p, size_t n)
{
	size_t		keep;

	b->total += n;
	if (b->len >= b->limit)
		return true;
	keep = Min(n, b->limit - b->len);
	if (b->len + keep + 1 > b->cap)
	{
		size_t		cap = Max(b->cap * 2, 1024);
		char	   *data;

		while (cap < b->len + keep + 1)
			cap *= 2;
		data = MemoryContextAllocExtended(cxt, cap, MCXT_ALLOC_NO_OOM | MCXT_ALLOC_HUGE);
		if (data == NULL)
			return false;
		if (b->data)
		{
			memcpy(data, b->data, b->len);
			pfree(b->data);
		}
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, keep);
	b->len += keep;
	b->data[b->len] = '\0';
	return true;
}

static void
buf_reset(Buf *b, size_t limit)
{
	if (b->data)
		pfree(b->data);
	memset(b, 0, sizeof(Buf));
	b->limit = limit;
}

/*
 * execlog_http_scrub
 *		Copy of data (len bytes) with every secret of the list replaced by
 *		"[redacted]", leftmost first; *newlen is the new length.  The one
 *		scrub for everything an http request leaves behind: transport
 *		errors, response headers and bodies.  Secrets shorter than 4 bytes
 *		are left alone (they would redact ordinary text, and are no secret).
 *		Returns data itself when there is nothing to scrub.
 */
char *
execlog_http_scrub(List *secrets, const char *data, size_t len, size_t *newlen)
{
	StringInfoData out;
	size_t		pos = 0;

	*newlen = len;
	if (secrets == NIL)
		return (char *) data;
	initStringInfo(&out);
	while (pos < len)
	{
		const char *best = NULL;
		size_t		bestlen = 0;
		ListCell   *lc;

		foreach(lc, secrets)
		{
			const char *secret = (const char *) lfirst(lc);
			size_t		sl = strlen(secret);
			const char *hit;

			if (sl < 4)
				continue;
			hit = memmem(data + pos, len - pos, secret, sl);
			/* at the same place, the longer secret wins */
			if (hit && (best == NULL || hit < best || (hit == best && sl > bestlen)))
			{
				best = hit;
				bestlen = sl;
			}
		}
		if (best == NULL)
		{
			appendBinaryStringInfo(&out, data + pos, len - pos);
			break;
		}
		appendBinaryStringInfo(&out, data + pos, best - (data + pos));
		appendStringInfoString(&out, "[redacted]");
		pos = (best - data) + bestlen;
	}
	*newlen = out.len;
	return out.data;
}

/* Copy of s with every secret of the request replaced. */
static char *
scrub_text(HttpReq *req, const char *s)
{
	size_t		len;
	char	   *out = execlog_http_scrub(req->result.secrets, s, strlen(s), &len);

	return out == s ? pstrdup(s) : out;
}

/*
 * url_host
 *		Host (into a buffer) and port of a URL; false when it cannot be
 *		parsed.  Allocates with libcurl's malloc only: safe in callbacks.
 */
static bool
url_host(const char *url, char *host, size_t hostlen, long *port)
{
	CURLU	   *u = curl_url();
	char	   *h = NULL;
	char	   *p = NULL;
	bool		ok = false;

	if (u == NULL || url == NULL)
	{
		curl_url_cleanup(u);
		return false;
	}
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK && strlen(h) < hostlen)
	{
		strcpy(host, h);
		ok = true;
		if (port)
		{
			*port = 0;
			if (curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK)
				*port = strtol(p, NULL, 10);
		}
	}
	curl_free(h);
	curl_free(p);
	curl_url_cleanup(u);
	return ok;
}

/* ----------
 * libcurl callbacks: no errors raised, no allocation that could raise one
 * ----------
 */

/* CURLMOPT_SOCKETFUNCTION: keep our epoll set in step with libcurl. */
static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	HttpPool   *pool = (HttpPool *) userp;
	struct epoll_event ev;

	if (what == CURL_POLL_REMOVE)
	{
		/* libcurl may have closed it already: errors do not matter */
		(void) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) |
		((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	ev.data.u64 = ((uint64) pool->id << 32) | (uint32) s;
	if (epoll_ctl(epoll_fd, socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) != 0)
	{
		int			op = (errno == EEXIST) ? EPOLL_CTL_MOD :
			(errno == ENOENT) ? EPOLL_CTL_ADD : -1;

		if (op < 0 || epoll_ctl(epoll_fd, op, s, &ev) != 0)
			return -1;
	}
	if (socketp == NULL)
		curl_multi_assign(pool->multi, s, pool);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: remember when libcurl wants to act on timeouts. */
static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	HttpPool   *pool = (HttpPool *) userp;

	if (timeout_ms < 0)
		pool->timer_set = false;
	else
	{
		pool->timer_set = true;
		pool->timer_at = GetCurrentTimestamp() + (TimestampTz) timeout_ms * 1000;
	}
	return 0;
}

static size_t
body_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpReq    *req = (HttpReq *) userdata;

	if (!buf_append(req->cxt, &req->body, ptr, size * nmemb))
	{
		req->oom = true;
		return 0;
	}
	return size * nmemb;
}

static size_t
header_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpReq    *req = (HttpReq *) userdata;
	size_t		n = size * nmemb;

	/* a new status line: a redirect or an interim (1xx) response before */
	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
	{
		req->head.len = 0;
		req->head.total = 0;
	}
	if (!buf_append(req->cxt, &req->head, ptr, n))
	{
		req->oom = true;
		return 0;
	}
	return n;
}

/*
 * open_socket_cb
 *		CURLOPT_OPENSOCKETFUNCTION: the policy check at connect time, with
 *		the address the host resolved to and the host of the URL being
 *		fetched (after redirects, the new one).
 */
static curl_socket_t
open_socket_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	HttpReq    *req = (HttpReq *) clientp;
	char	   *url = NULL;
	char		host[256];
	curl_socket_t s;

	if (purpose != CURLSOCKTYPE_IPCXN)
	{
		snprintf(req->denied, sizeof(req->denied), "connection refused: unexpected socket type");
		return CURL_SOCKET_BAD;
	}
	host[0] = '\0';
	if (curl_easy_getinfo(req->easy, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK ||
		!url_host(url, host, sizeof(host), NULL))
		host[0] = '\0';
	if (!execlog_http_policy_check_addr(req->pool->policy, host[0] ? host : NULL,
										&address->addr, req->denied, sizeof(req->denied)))
		return CURL_SOCKET_BAD;
	req->denied[0] = '\0';
	s = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
	return s < 0 ? CURL_SOCKET_BAD : s;
}

/* ----------
 * Multi handles
 * ----------
 */

/*
 * current_pool
 *		The multi handle for new requests: a new one when the policy
 *		settings changed (the old one closes once idle).
 */
static HttpPool *
current_pool(void)
{
	HttpPolicy *policy = execlog_http_policy_current();

	if (cur_pool != NULL && cur_pool->policy != policy)
	{
		cur_pool->retired = true;
		cur_pool = NULL;
	}
	if (cur_pool == NULL)
	{
		HttpPool   *pool = MemoryContextAllocZero(http_cxt, sizeof(HttpPool));

		pool->multi = curl_multi_init();
		if (pool->multi == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl multi handle")));
		pool->id = ++next_pool_id;
		pool->policy = policy;
		execlog_http_policy_retain(policy);
		if (curl_multi_setopt(pool->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
			curl_multi_setopt(pool->multi, CURLMOPT_SOCKETDATA, pool) != CURLM_OK ||
			curl_multi_setopt(pool->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
			curl_multi_setopt(pool->multi, CURLMOPT_TIMERDATA, pool) != CURLM_OK)
		{
			curl_multi_cleanup(pool->multi);
			pool->multi = NULL;
			execlog_http_policy_release(policy);
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not configure a libcurl multi handle")));
		}
		dlist_push_tail(&pools, &pool->node);
		cur_pool = pool;
	}
	if (cur_pool->max_host != execlog_max_connections_per_host)
	{
		cur_pool->max_host = execlog_max_connections_per_host;
		if (curl_multi_setopt(cur_pool->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
							  (long) cur_pool->max_host) != CURLM_OK)
			ereport(WARNING,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not set libcurl's connection limit per host"),
					 errdetail("execlog enforces execlog.max_connections_per_host itself.")));
	}
	return cur_pool;
}

static HttpPool *
pool_by_id(uint32 id)
{
	dlist_iter	iter;

	dlist_foreach(iter, &pools)
	{
		HttpPool   *pool = dlist_container(HttpPool, node, iter.cur);

		if (pool->id == id)
			return pool;
	}
	return NULL;
}

/* Close retired multi handles that have nothing in flight. */
static void
close_idle_pools(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &pools)
	{
		HttpPool   *pool = dlist_container(HttpPool, node, iter.cur);

		if (pool->retired && pool->transfers == 0)
		{
			curl_multi_cleanup(pool->multi);
			dlist_delete(&pool->node);
			execlog_http_policy_release(pool->policy);
			pfree(pool);
		}
	}
}

static CURL *
get_easy(void)
{
	if (n_idle_easy > 0)
		return idle_easy[--n_idle_easy];
	return curl_easy_init();
}

static void
put_easy(CURL *easy)
{
	if (n_idle_easy < MAX_IDLE_EASY)
	{
		curl_easy_reset(easy);
		idle_easy[n_idle_easy++] = easy;
	}
	else
		curl_easy_cleanup(easy);
}

/* ----------
 * Requests
 * ----------
 */

static char *
cxt_strdup(MemoryContext cxt, const char *s)
{
	return s ? MemoryContextStrdup(cxt, s) : NULL;
}

/* A new request with its own memory context. */
static HttpReq *
new_req(void)
{
	MemoryContext cxt = AllocSetContextCreate(http_cxt, "execlog http request",
											  ALLOCSET_SMALL_SIZES);
	HttpReq    *req = MemoryContextAllocZero(cxt, sizeof(HttpReq));

	req->cxt = cxt;
	return req;
}

/* One more secret of the request, kept in its context (no limit). */
static void
add_secret(HttpReq *req, const char *secret)
{
	MemoryContext old;

	if (secret == NULL)
		return;
	old = MemoryContextSwitchTo(req->cxt);
	req->result.secrets = lappend(req->result.secrets, pstrdup(secret));
	MemoryContextSwitchTo(old);
}

/* Deep copy of a spec into the request's context. */
static void
copy_spec(HttpReq *req, HttpSpec *spec)
{
	MemoryContext old = MemoryContextSwitchTo(req->cxt);
	HttpSpec   *c = &req->spec;
	ListCell   *lc;

	*c = *spec;
	c->method = pstrdup(spec->method);
	c->url = pstrdup(spec->url);
	c->headers = NIL;
	foreach(lc, spec->headers)
		c->headers = lappend(c->headers, pstrdup((char *) lfirst(lc)));
	if (spec->body)
	{
		c->body = palloc(spec->body_len + 1);
		memcpy(c->body, spec->body, spec->body_len);
		c->body[spec->body_len] = '\0';
	}
	c->auth.token = cxt_strdup(req->cxt, spec->auth.token);
	c->auth.username = cxt_strdup(req->cxt, spec->auth.username);
	c->auth.password = cxt_strdup(req->cxt, spec->auth.password);
	c->auth.token_url = cxt_strdup(req->cxt, spec->auth.token_url);
	c->auth.client_id = cxt_strdup(req->cxt, spec->auth.client_id);
	c->auth.client_secret = cxt_strdup(req->cxt, spec->auth.client_secret);
	c->auth.scope = cxt_strdup(req->cxt, spec->auth.scope);
	c->name = cxt_strdup(req->cxt, spec->name);
	if (spec->mail != NULL)
	{
		c->mail = palloc0(sizeof(HttpMail));
		c->mail->from = pstrdup(spec->mail->from);
		c->mail->rcpt = NIL;
		foreach(lc, spec->mail->rcpt)
			c->mail->rcpt = lappend(c->mail->rcpt, pstrdup((char *) lfirst(lc)));
		c->mail->username = cxt_strdup(req->cxt, spec->mail->username);
		c->mail->password = cxt_strdup(req->cxt, spec->mail->password);
	}
	c->input = spec->input ? (Jsonb *) PG_DETOAST_DATUM_COPY(JsonbPGetDatum(spec->input)) : NULL;
	c->secrets = NIL;
	MemoryContextSwitchTo(old);
	foreach(lc, spec->secrets)
		add_secret(req, (const char *) lfirst(lc));
	req->result.spec = c;

	req->result.execution_id = spec->execution_id;
	req->result.attempt = spec->attempt;
	req->result.position = spec->position;
}


static void
list_remove_req(HttpReq *req)
{
	dlist_delete(&req->node);
	if (req->state == REQ_WAITING)
		n_waiting--;
	else if (req->state == REQ_RUNNING)
		n_running--;
	else
		n_done--;
}

/* Take a running request out of its multi handle and give its handle back. */
static void
detach_transfer(HttpReq *req)
{
	if (req->slot != NULL)
	{
		HostSlot   *slot = req->slot;

		req->slot = NULL;
		/* forget an idle host */
		if (--slot->active == 0 && !slot->busy && dlist_is_empty(&slot->queue))
			hash_search(host_slots, slot->key, HASH_REMOVE, NULL);
	}
	if (req->easy != NULL)
	{
		curl_multi_remove_handle(req->pool->multi, req->easy);
		req->pool->transfers--;
		put_easy(req->easy);
		req->easy = NULL;
	}
	if (req->slist != NULL)
	{
		curl_slist_free_all(req->slist);
		req->slist = NULL;
	}
	if (req->rcpt != NULL)
	{
		curl_slist_free_all(req->rcpt);
		req->rcpt = NULL;
	}
}

static void
free_req(HttpReq *req)
{
	detach_transfer(req);
	MemoryContextDelete(req->cxt);
}

/* The request is finished: its result waits for the next batch. */
static void
req_done(HttpReq *req)
{
	req->result.finished_at = GetCurrentTimestamp();
	req->result.headers = req->head.data;
	req->result.headers_len = req->head.len;
	req->result.body = req->body.data;
	req->result.body_len = req->body.len;
	req->result.body_total = req->body.total;
	req->state = REQ_DONE;
	if (req->spec.detached)
	{
		/* not for a batch: taken by execlog_http_take_detached */
		dlist_push_tail(&detached_done, &req->node);
		n_detached--;
		return;
	}
	dlist_push_tail(&done, &req->node);
	n_done++;
}

/* The request failed before or without an answer. */
static void
req_fail(HttpReq *req, const char *error)
{
	MemoryContext old = MemoryContextSwitchTo(req->cxt);

	req->result.error = scrub_text(req, error);
	MemoryContextSwitchTo(old);
	req_done(req);
}

static struct curl_slist *
slist_add(HttpReq *req, struct curl_slist *list, const char *line)
{
	struct curl_slist *n = curl_slist_append(list, line);

	if (n == NULL)
		req->oom = true;
	return n ? n : list;
}

/* The host slot of a request's URL; NULL when the URL has no host. */
static HostSlot *
host_slot(HttpReq *req)
{
	HostSlot   *slot;
	bool		found;

	if (req->host_key == NULL && !req->no_host)
	{
		char		host[256];
		long		port = 0;

		/* parsed once, though a queued request comes here again */
		if (url_host(req->spec.url, host, sizeof(host), &port))
		{
			MemoryContext old = MemoryContextSwitchTo(req->cxt);

			req->host_key = psprintf("%s:%ld", host, port);
			MemoryContextSwitchTo(old);
		}
		else
			req->no_host = true;
	}
	if (req->no_host || strlen(req->host_key) >= HOST_KEY_LEN)
		return NULL;
	if (host_slots == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = HOST_KEY_LEN;
		ctl.entrysize = sizeof(HostSlot);
		ctl.hcxt = http_cxt;
		host_slots = hash_create("execlog http hosts", 64, &ctl,
								 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	slot = hash_search(host_slots, req->host_key, HASH_ENTER, &found);
	if (!found)
	{
		slot->active = 0;
		dlist_init(&slot->queue);
		slot->busy = false;
	}
	return slot;
}

/*
 * host_has_room
 *		Whether the request's host (*slotp) has a connection to spare; if
 *		not, queue the request on it.
 */
static bool
host_has_room(HttpReq *req, HostSlot **slotp)
{
	HostSlot   *slot = host_slot(req);

	*slotp = slot;
	if (slot == NULL || slot->active < Max(execlog_max_connections_per_host, 1))
		return true;
	req->state = REQ_WAITING;
	dlist_push_tail(&slot->queue, &req->node);
	n_waiting++;
	if (!slot->busy)
	{
		dlist_push_tail(&busy_hosts, &slot->busy_node);
		slot->busy = true;
	}
	return false;
}

/*
 * start_queued
 *		Hand queued requests to libcurl as their hosts' connections free up.
 */
static void
start_queued(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &busy_hosts)
	{
		HostSlot   *slot = dlist_container(HostSlot, busy_node, iter.cur);

		while (!dlist_is_empty(&slot->queue) &&
			   slot->active < Max(execlog_max_connections_per_host, 1))
		{
			HttpReq    *req = dlist_container(HttpReq, node, dlist_pop_head_node(&slot->queue));

			n_waiting--;
			start_transfer(req);
		}
		if (dlist_is_empty(&slot->queue))
		{
			dlist_delete(&slot->busy_node);
			slot->busy = false;
		}
	}
}

/*
 * SETOPT: curl_easy_setopt whose failure is kept (the first failing
 * option's name and code) instead of ignored; start_transfer then fails
 * the request rather than run it without an option (the address policy
 * callback, the protocol limits).
 */
#define SETOPT(h, opt, val) \
	do { \
		CURLcode	setopt_rc_ = curl_easy_setopt((h), (opt), (val)); \
		if (setopt_rc_ != CURLE_OK && bad_opt == NULL) \
		{ \
			bad_opt = #opt; \
			opt_rc = setopt_rc_; \
		} \
	} while (0)

/* CURLOPT_READFUNCTION of a mail: the message, from the request's body. */
static size_t
mail_read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	HttpReq    *req = (HttpReq *) userdata;
	size_t		left = (size_t) req->spec.body_len - req->upload_off;
	size_t		n = Min(size * nitems, left);

	memcpy(buf, req->spec.body + req->upload_off, n);
	req->upload_off += n;
	return n;
}

/*
 * mail_options
 *		The options of a mail sent over SMTP, set after (and over) the HTTP
 *		ones: smtp:// upgrades with STARTTLS when the server offers it,
 *		smtps:// is TLS from the start; AUTH with the credentials given
 *		apart from the URL.  Returns the first option that failed, or NULL.
 */
static const char *
mail_options(HttpReq *req, CURL *e, CURLcode *rc)
{
	HttpMail   *mail = req->spec.mail;
	const char *bad_opt = NULL;
	CURLcode	opt_rc = CURLE_OK;
	ListCell   *lc;
	MemoryContext old = MemoryContextSwitchTo(req->cxt);

	foreach(lc, mail->rcpt)
		req->rcpt = slist_add(req, req->rcpt, psprintf("<%s>", (char *) lfirst(lc)));
	MemoryContextSwitchTo(old);
	req->upload_off = 0;
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
	SETOPT(e, CURLOPT_PROTOCOLS, (long) (CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
	SETOPT(e, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(e, CURLOPT_HTTPHEADER, (struct curl_slist *) NULL);
	SETOPT(e, CURLOPT_USE_SSL, (long) CURLUSESSL_TRY);
	SETOPT(e, CURLOPT_MAIL_FROM, psprintf("<%s>", mail->from));
	SETOPT(e, CURLOPT_MAIL_RCPT, req->rcpt);
	SETOPT(e, CURLOPT_UPLOAD, 1L);
	SETOPT(e, CURLOPT_READFUNCTION, mail_read_cb);
	SETOPT(e, CURLOPT_READDATA, req);
	SETOPT(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t) req->spec.body_len);
	if (mail->username != NULL)
	{
		SETOPT(e, CURLOPT_USERNAME, mail->username);
		SETOPT(e, CURLOPT_PASSWORD, mail->password ? mail->password : "");
	}
	*rc = opt_rc;
	return bad_opt;
}

/*
 * start_transfer
 *		Put a request into the current multi handle, with its timeout capped
 *		at the execution's time limit (or on its host's queue).
 */
static void
start_transfer(HttpReq *req)
{
	HttpPool   *pool;
	HostSlot   *slot;
	CURL	   *e;
	long		timeout = req->is_token ? execlog_http_timeout_ms : req->spec.timeout_ms;
	ListCell   *lc;
	struct curl_slist *sl = NULL;
	MemoryContext old;
	const char *bad_opt = NULL;
	CURLcode	opt_rc = CURLE_OK;

	req->deadline_capped = false;
	if (!req->is_token && !req->spec.detached)
	{
		TimestampTz now = GetCurrentTimestamp();
		int64		remaining = (req->spec.deadline - now) / 1000;

		if (remaining <= 0)
		{
			req->result.time_limit = true;
			req_done(req);
			return;
		}
		if (remaining <= timeout)
		{
			timeout = (long) remaining;
			req->deadline_capped = true;
		}
	}
	if (!host_has_room(req, &slot))
		return;					/* queued: started when a connection frees up */
	req->timeout_ms = timeout;
	req->denied[0] = '\0';
	req->errbuf[0] = '\0';
	req->oom = false;
	buf_reset(&req->head, MAX_HEADER_BYTES);
	buf_reset(&req->body, (size_t) execlog_max_payload_bytes);

	pool = current_pool();
	e = get_easy();
	if (e == NULL)
	{
		req_fail(req, "out of memory: could not create a libcurl handle");
		return;
	}
	req->easy = e;
	req->pool = pool;

	old = MemoryContextSwitchTo(req->cxt);
	foreach(lc, req->spec.headers)
		sl = slist_add(req, sl, (char *) lfirst(lc));
	switch (req->spec.auth.type)
	{
		case HTTP_AUTH_BEARER:
			sl = slist_add(req, sl, psprintf("Authorization: Bearer %s", req->spec.auth.token));
			break;
		case HTTP_AUTH_OAUTH2:
			if (!req->is_token)
				sl = slist_add(req, sl, psprintf("Authorization: Bearer %s", req->token_used));
			break;
		case HTTP_AUTH_BASIC:
		case HTTP_AUTH_NONE:
			break;
	}
	/* no "Expect: 100-continue" round trip for large bodies */
	sl = slist_add(req, sl, "Expect:");
	MemoryContextSwitchTo(old);
	req->slist = sl;

	SETOPT(e, CURLOPT_PRIVATE, req);
	SETOPT(e, CURLOPT_URL, req->spec.url);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(e, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	SETOPT(e, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
	SETOPT(e, CURLOPT_REDIR_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SETOPT(e, CURLOPT_FOLLOWLOCATION, 1L);
	SETOPT(e, CURLOPT_MAXREDIRS, (long) EXECLOG_HTTP_MAX_REDIRECTS);
	SETOPT(e, CURLOPT_PROXY, "");	/* no proxy from the environment */
	SETOPT(e, CURLOPT_NOSIGNAL, 1L);
	SETOPT(e, CURLOPT_TIMEOUT_MS, timeout);
	SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(e, CURLOPT_USERAGENT, "execlog/" EXECLOG_VERSION);
	SETOPT(e, CURLOPT_ERRORBUFFER, req->errbuf);
	SETOPT(e, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
	SETOPT(e, CURLOPT_OPENSOCKETDATA, req);
	SETOPT(e, CURLOPT_WRITEFUNCTION, body_cb);
	SETOPT(e, CURLOPT_WRITEDATA, req);
	SETOPT(e, CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(e, CURLOPT_HEADERDATA, req);
	SETOPT(e, CURLOPT_HTTPHEADER, sl);

	if (req->spec.auth.type == HTTP_AUTH_BASIC ||
		(req->is_token && req->spec.auth.client_basic))
	{
		SETOPT(e, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
		SETOPT(e, CURLOPT_USERNAME, req->is_token ? req->spec.auth.client_id :
						 req->spec.auth.username);
		SETOPT(e, CURLOPT_PASSWORD, req->is_token ? req->spec.auth.client_secret :
						 req->spec.auth.password);
	}

	if (req->spec.mail != NULL)
	{
		const char *mail_bad = mail_options(req, e, &opt_rc);

		if (mail_bad != NULL && bad_opt == NULL)
			bad_opt = mail_bad;
	}
	else if (strcmp(req->spec.method, "HEAD") == 0)
		SETOPT(e, CURLOPT_NOBODY, 1L);
	else if (req->spec.body != NULL || strcmp(req->spec.method, "POST") == 0)
	{
		SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE,
						 (curl_off_t) (req->spec.body ? req->spec.body_len : 0));
		SETOPT(e, CURLOPT_POSTFIELDS, req->spec.body ? req->spec.body : "");
		if (strcmp(req->spec.method, "POST") != 0)
			SETOPT(e, CURLOPT_CUSTOMREQUEST, req->spec.method);
	}
	else if (strcmp(req->spec.method, "GET") != 0)
		SETOPT(e, CURLOPT_CUSTOMREQUEST, req->spec.method);

	if (bad_opt != NULL)
	{
		/* never run a request without its policy callback or protocol limits */
		detach_transfer(req);
		req_fail(req, psprintf("could not set libcurl option %s: %s", bad_opt,
							   curl_easy_strerror(opt_rc)));
		return;
	}
	if (req->oom)
	{
		detach_transfer(req);
		req_fail(req, "out of memory while preparing the request");
		return;
	}
	if (curl_multi_add_handle(pool->multi, e) != CURLM_OK)
	{
		req->easy = NULL;
		put_easy(e);
		curl_slist_free_all(req->slist);
		req->slist = NULL;
		req_fail(req, "could not start the request");
		return;
	}
	pool->transfers++;
	req->slot = slot;
	if (slot != NULL)
		slot->active++;
	req->state = REQ_RUNNING;
	dlist_push_tail(&running, &req->node);
	n_running++;
}

/*
 * describe_error
 *		A clear message for a transfer that got no answer.
 */
static char *
describe_error(HttpReq *req, CURLcode rc)
{
	char	   *url = NULL;
	char		host[256];
	long		port = 0;
	long		os_errno = 0;
	const char *detail = req->errbuf[0] ? req->errbuf : curl_easy_strerror(rc);
	char	   *where;

	if (req->denied[0])
		return pstrdup(req->denied);
	if (req->oom)
		return pstrdup("out of memory while receiving the response");

	curl_easy_getinfo(req->easy, CURLINFO_EFFECTIVE_URL, &url);
	if (!url_host(url, host, sizeof(host), &port))
		strcpy(host, "?");
	where = port ? psprintf("%s:%ld", host, port) : pstrdup(host);

	switch (rc)
	{
		case CURLE_COULDNT_CONNECT:
			curl_easy_getinfo(req->easy, CURLINFO_OS_ERRNO, &os_errno);
			return psprintf("could not connect to %s: %s", where,
							os_errno ? strerror((int) os_errno) : detail);
		case CURLE_OPERATION_TIMEDOUT:
			return psprintf("timed out after %ld ms", req->timeout_ms);
		case CURLE_COULDNT_RESOLVE_HOST:
			return psprintf("could not resolve host \"%s\"", host);
		case CURLE_TOO_MANY_REDIRECTS:
			return psprintf("too many redirects (more than %d)", EXECLOG_HTTP_MAX_REDIRECTS);
		case CURLE_UNSUPPORTED_PROTOCOL:
			/* an http(s) URL: the answer was not HTTP (libcurl's "HTTP/0.9") */
			if (url != NULL && (pg_strncasecmp(url, "http://", 7) == 0 ||
								pg_strncasecmp(url, "https://", 8) == 0))
				return psprintf("invalid HTTP response from %s", where);
			return psprintf("redirect to \"%s\" refused: only http and https URLs can be fetched",
							url ? url : "?");
		case CURLE_WEIRD_SERVER_REPLY:
			return psprintf("invalid HTTP response from %s", where);
		case CURLE_OUT_OF_MEMORY:
			/* libcurl's limit on one header line (CURL_MAX_HTTP_HEADER) */
			return psprintf("header too large in the response from %s", where);
#if LIBCURL_VERSION_NUM >= 0x080600
		case CURLE_TOO_LARGE:
			return psprintf("header too large in the response from %s", where);
#endif
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
			return psprintf("TLS error with %s: %s", where, detail);
		case CURLE_GOT_NOTHING:
			return psprintf("%s closed the connection without answering", where);
		default:
			return psprintf("request to %s failed: %s", where, detail);
	}
}

/* ----------
 * OAuth2 client credentials
 * ----------
 */

/* The token entry of a request's connection, created when missing. */
static TokenEntry *
token_entry(HttpAuth *auth)
{
	dlist_mutable_iter iter;
	TokenEntry *t;

	dlist_foreach_modify(iter, &tokens)
	{
		t = dlist_container(TokenEntry, node, iter.cur);
		if (t->connection_id != auth->connection_id)
			continue;
		if (t->updated_at == auth->connection_updated_at)
			return t;
		/* the connection changed since: forget the old entry when unused */
		if (!t->fetching && dlist_is_empty(&t->waiters))
		{
			dlist_delete(&t->node);
			if (t->access_token)
				pfree(t->access_token);
			pfree(t->token_url);
			pfree(t->client_id);
			pfree(t->client_secret);
			if (t->scope)
				pfree(t->scope);
			pfree(t);
		}
	}
	t = MemoryContextAllocZero(http_cxt, sizeof(TokenEntry));
	t->connection_id = auth->connection_id;
	t->updated_at = auth->connection_updated_at;
	t->token_url = MemoryContextStrdup(http_cxt, auth->token_url);
	t->client_id = MemoryContextStrdup(http_cxt, auth->client_id);
	t->client_secret = MemoryContextStrdup(http_cxt, auth->client_secret);
	t->scope = cxt_strdup(http_cxt, auth->scope);
	t->client_basic = auth->client_basic;
	dlist_init(&t->waiters);
	dlist_push_tail(&tokens, &t->node);
	return t;
}

static char *
form_escape(const char *s)
{
	char	   *e = curl_easy_escape(NULL, s, 0);
	char	   *copy;

	if (e == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	copy = pstrdup(e);
	curl_free(e);
	return copy;
}

/* Start fetching a token (grant_type=client_credentials). */
static void
token_fetch(TokenEntry *t)
{
	HttpReq    *req = new_req();
	MemoryContext old = MemoryContextSwitchTo(req->cxt);
	StringInfoData body;

	req->is_token = true;
	req->token = t;
	req->spec.method = "POST";
	req->spec.url = pstrdup(t->token_url);
	req->spec.auth.type = HTTP_AUTH_NONE;
	req->spec.auth.client_basic = t->client_basic;
	req->spec.auth.client_id = pstrdup(t->client_id);
	req->spec.auth.client_secret = pstrdup(t->client_secret);
	initStringInfo(&body);
	appendStringInfoString(&body, "grant_type=client_credentials");
	if (t->scope)
		appendStringInfo(&body, "&scope=%s", form_escape(t->scope));
	if (!t->client_basic)
		appendStringInfo(&body, "&client_id=%s&client_secret=%s",
						 form_escape(t->client_id), form_escape(t->client_secret));
	req->spec.body = body.data;
	req->spec.body_len = body.len;
	req->spec.headers = list_make2("Content-Type: application/x-www-form-urlencoded",
								   "Accept: application/json");
	MemoryContextSwitchTo(old);
	add_secret(req, t->client_secret);

	t->fetching = true;
	start_transfer(req);
}

/* Send a request with an access token. */
static void
send_with_token(HttpReq *req, const char *token)
{
	req->token_used = MemoryContextStrdup(req->cxt, token);
	add_secret(req, req->token_used);
	start_transfer(req);
}

/*
 * release_waiters
 *		Send the requests waiting for the entry's token, or fail them with
 *		why.
 */
static void
release_waiters(TokenEntry *t, const char *why)
{
	dlist_head	waiters;
	dlist_mutable_iter iter;

	/* take the waiters off the entry first: sending may queue again */
	dlist_init(&waiters);
	dlist_foreach_modify(iter, &t->waiters)
	{
		HttpReq    *req = dlist_container(HttpReq, node, iter.cur);

		list_remove_req(req);
		dlist_push_tail(&waiters, &req->node);
	}
	dlist_foreach_modify(iter, &waiters)
	{
		HttpReq    *req = dlist_container(HttpReq, node, iter.cur);

		dlist_delete(&req->node);
		if (why != NULL)
			req_fail(req, why);
		else
			send_with_token(req, t->access_token);
	}
}

/*
 * token_acquire
 *		Get the entry's token for its waiting requests: from the workers'
 *		shared store (oauth2.c), by fetching it (for all workers), or by
 *		waiting for the worker that fetches it.  stale: a token refused
 *		with 401, or NULL.
 */
static void
token_acquire(TokenEntry *t, const char *stale)
{
	char	   *token = NULL;
	char	   *error = NULL;
	TimestampTz expires_at = 0;

	if (t->unshared)
	{
		t->fetch_shared = false;
		token_fetch(t);
		return;
	}
	switch (execlog_token_get(t->connection_id, t->updated_at, stale,
							  t->shared_wait ? t->wait_since : 0,
							  &token, &expires_at, &error))
	{
		case TOKEN_READY:
			t->shared_wait = false;
			if (t->access_token)
				pfree(t->access_token);
			t->access_token = MemoryContextStrdup(http_cxt, token);
			t->expires_at = expires_at;
			release_waiters(t, NULL);
			break;
		case TOKEN_FETCH:
		case TOKEN_UNSHARED:
			t->shared_wait = false;
			/* with no room in the store, nobody waits for this fetch */
			t->fetch_shared = true;
			token_fetch(t);
			break;
		case TOKEN_WAIT:
			if (!t->shared_wait)
			{
				t->shared_wait = true;
				t->wait_since = GetCurrentTimestamp();
			}
			break;
		case TOKEN_FAILED:
			t->shared_wait = false;
			release_waiters(t, error);
			break;
	}
}

/* Ask again for the tokens other workers were fetching. */
static void
token_poll(void)
{
	dlist_iter	iter;

	dlist_foreach(iter, &tokens)
	{
		TokenEntry *t = dlist_container(TokenEntry, node, iter.cur);

		if (!t->shared_wait)
			continue;
		if (dlist_is_empty(&t->waiters))
			t->shared_wait = false;
		else if (!t->fetching)
			token_acquire(t, NULL);
	}
}

/* Whether some request waits for a token another worker fetches. */
static bool
token_waiting_for_others(void)
{
	dlist_iter	iter;

	dlist_foreach(iter, &tokens)
	{
		if (dlist_container(TokenEntry, node, iter.cur)->shared_wait)
			return true;
	}
	return false;
}

/*
 * token_wait
 *		Send a request with its connection's token, or queue it until one
 *		comes.  stale: the token it was refused with (401), or NULL.
 */
static void
token_wait(HttpReq *req, const char *stale)
{
	TokenEntry *t = req->token;

	if (t->access_token != NULL && GetCurrentTimestamp() < t->expires_at)
	{
		send_with_token(req, t->access_token);
		return;
	}
	req->state = REQ_WAITING;
	dlist_push_tail(&t->waiters, &req->node);
	n_waiting++;
	if (!t->fetching && !t->shared_wait)
		token_acquire(t, stale);
}

/* Read access_token and expires_in from a token response. */
static bool
parse_token(const char *body, char **token, double *expires_in)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = false;

	PG_TRY();
	{
		Jsonb	   *doc = execlog_jsonb_from_cstring(body);
		Jsonb	   *exp = execlog_jsonb_get(doc, "expires_in");

		*token = execlog_jsonb_get_text(doc, "access_token");
		*expires_in = 3600;
		if (exp != NULL && JB_ROOT_IS_SCALAR(exp))
		{
			JsonbValue	v;

			JsonbExtractScalar(&exp->root, &v);
			if (v.type == jbvNumeric)
				*expires_in = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
																 NumericGetDatum(v.val.numeric)));
		}
		ok = *token != NULL && (*token)[0] != '\0' && strpbrk(*token, "\r\n") == NULL;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * token_done
 *		A token fetch finished: send the waiting requests with the new token,
 *		or fail them with the reason.
 */
static void
token_done(HttpReq *fetch, char *error, long status)
{
	TokenEntry *t = fetch->token;
	char	   *why = error;
	char	   *token = NULL;
	double		expires_in = 0;

	t->fetching = false;
	if (why != NULL)
		;
	else if (status != 200)
		why = psprintf("the token endpoint answered with status %ld", status);
	else if (!parse_token(fetch->body.data ? fetch->body.data : "", &token, &expires_in))
		why = pstrdup("the token endpoint's answer has no \"access_token\"");

	if (token != NULL && why == NULL)
	{
		double		margin = expires_in > 60 ? 30 : expires_in / 10;

		if (t->access_token)
			pfree(t->access_token);
		t->access_token = MemoryContextStrdup(http_cxt, token);
		t->expires_at = GetCurrentTimestamp() +
			(TimestampTz) ((expires_in - margin) * USECS_PER_SEC);
	}
	else
		why = scrub_text(fetch, psprintf("could not get an OAuth2 token from %s: %s",
										 t->token_url, why));
	free_req(fetch);

	/* the other workers use it too, or learn why there is none */
	if (t->fetch_shared &&
		!execlog_token_put(t->connection_id, t->updated_at,
						   why == NULL ? t->access_token : NULL, t->expires_at, why) &&
		why == NULL)
	{
		t->unshared = true;
		ereport(WARNING,
				(errmsg("the OAuth2 token of connection %lld is too long to share between workers",
						(long long) t->connection_id),
				 errdetail("Tokens of %d bytes or more are fetched by each worker.",
						   EXECLOG_TOKEN_MAX)));
	}
	t->fetch_shared = false;
	release_waiters(t, why);
}

/* ----------
 * Finishing transfers
 * ----------
 */

/*
 * transfer_done
 *		A transfer finished (answered or not): record its result, or send it
 *		again once with a fresh token after a 401.
 */
static void
transfer_done(HttpReq *req, CURLcode rc)
{
	long		status = 0;
	char	   *error = NULL;

	curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK || req->denied[0])
	{
		if (rc == CURLE_OPERATION_TIMEDOUT && req->deadline_capped)
			req->result.time_limit = true;
		else
			error = describe_error(req, rc);
	}
	list_remove_req(req);
	detach_transfer(req);

	if (req->is_token)
	{
		token_done(req, error, status);
		return;
	}
	if (error == NULL && !req->result.time_limit && status == 401 &&
		req->spec.auth.type == HTTP_AUTH_OAUTH2 && !req->refreshed)
	{
		TokenEntry *t = req->token;

		/* the token may have been revoked: fetch a new one, once */
		req->refreshed = true;
		if (t->access_token && strcmp(t->access_token, req->token_used) == 0)
		{
			pfree(t->access_token);
			t->access_token = NULL;
		}
		token_wait(req, req->token_used);
		return;
	}
	req->result.status = error ? 0 : status;
	if (error)
		req_fail(req, error);
	else
		req_done(req);
}

/*
 * execlog_http_drive
 *		Let libcurl act on the sockets that are ready and on its timers, then
 *		collect the finished transfers.  Never blocks.
 */
void
execlog_http_drive(void)
{
	struct epoll_event events[64];
	int			n;
	int			i;
	int			still;
	dlist_iter	iter;
	TimestampTz now;

	if (epoll_fd < 0)
		return;
	token_poll();
	do
	{
		n = epoll_wait(epoll_fd, events, lengthof(events), 0);
		for (i = 0; i < n; i++)
		{
			HttpPool   *pool = pool_by_id((uint32) (events[i].data.u64 >> 32));
			int			fd = (int) (events[i].data.u64 & 0xffffffff);
			int			flags = 0;

			if (pool == NULL)
				continue;
			if (events[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (events[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (events[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(pool->multi, fd, flags, &still);
		}
	} while (n == lengthof(events));

	/*
	 * Timeouts: libcurl calls the timer callback only when its next timeout
	 * changes, and its own clock may still see a timeout we think is due as
	 * pending: ask it as well, so that no timeout is ever lost.
	 */
	now = GetCurrentTimestamp();
	dlist_foreach(iter, &pools)
	{
		HttpPool   *pool = dlist_container(HttpPool, node, iter.cur);
		long		ms = -1;

		(void) curl_multi_timeout(pool->multi, &ms);
		if (ms == 0 || (pool->timer_set && pool->timer_at <= now))
		{
			pool->timer_set = false;
			curl_multi_socket_action(pool->multi, CURL_SOCKET_TIMEOUT, 0, &still);
		}
	}

	dlist_foreach(iter, &pools)
	{
		HttpPool   *pool = dlist_container(HttpPool, node, iter.cur);
		CURLMsg    *msg;
		int			left;

		while ((msg = curl_multi_info_read(pool->multi, &left)) != NULL)
		{
			HttpReq    *req = NULL;
			CURLcode	rc = msg->data.result;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &req);
			if (req != NULL)
				transfer_done(req, rc);
		}
	}
	start_queued();
	close_idle_pools();
}

/* ----------
 * The worker's side
 * ----------
 */

/*
 * execlog_http_init
 *		Set up libcurl and the epoll set, once per worker.
 */
void
execlog_http_init(void)
{
	if (http_cxt != NULL)
		return;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not initialize libcurl")));
	epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (epoll_fd < 0)
		ereport(ERROR,
				(errcode_for_socket_access(),
				 errmsg("could not create an epoll set: %m")));
	http_cxt = AllocSetContextCreate(TopMemoryContext, "execlog http",
									 ALLOCSET_DEFAULT_SIZES);
	dlist_init(&pools);
	dlist_init(&running);
	dlist_init(&done);
	dlist_init(&tokens);
	dlist_init(&deferred);
	dlist_init(&busy_hosts);
	dlist_init(&detached_done);
}

/* The descriptor the worker waits on (readable: some socket is ready). */
int
execlog_http_socket(void)
{
	return epoll_fd;
}

/*
 * execlog_http_defer
 *		Keep a copy of a request prepared by the batch; it is sent once the
 *		batch has committed (execlog_http_batch_done).
 */
void
execlog_http_defer(HttpSpec *spec)
{
	HttpReq    *req = new_req();

	copy_spec(req, spec);
	dlist_push_tail(&deferred, &req->node);
}

/*
 * submit
 *		Send one prepared request (after a token, for OAuth2 connections).
 */
static void
submit(HttpReq *req)
{
	switch (req->spec.auth.type)
	{
		case HTTP_AUTH_BEARER:
			add_secret(req, req->spec.auth.token);
			break;
		case HTTP_AUTH_BASIC:
			{
				/* the encoded credentials are as secret as the password */
				char	   *creds = psprintf("%s:%s", req->spec.auth.username,
											 req->spec.auth.password);
				int			cap = pg_b64_enc_len(strlen(creds)) + 1;
				char	   *b64 = palloc(cap);
				int			len = pg_b64_encode(creds, strlen(creds), b64, cap);

				add_secret(req, req->spec.auth.password);
				if (len > 0)
				{
					b64[len] = '\0';
					add_secret(req, b64);
				}
				break;
			}
		case HTTP_AUTH_OAUTH2:
			add_secret(req, req->spec.auth.client_secret);
			req->token = token_entry(&req->spec.auth);
			token_wait(req, NULL);
			return;
		case HTTP_AUTH_NONE:
			break;
	}
	if (req->spec.mail != NULL && req->spec.mail->password != NULL)
		add_secret(req, req->spec.mail->password);
	start_transfer(req);
}

/* Remember the step row of a request to fail (req is freed next). */
static void
stale_add(HttpReq *req, bool answered)
{
	StaleStep  *st;
	HttpSpec   *spec = &req->spec;

	if (n_stale == cap_stale)
	{
		cap_stale = Max(cap_stale * 2, 16);
		stale = stale ? repalloc(stale, sizeof(StaleStep) * cap_stale) :
			MemoryContextAlloc(http_cxt, sizeof(StaleStep) * cap_stale);
	}
	st = &stale[n_stale++];
	st->execution_id = req->result.execution_id;
	st->attempt = req->result.attempt;
	st->position = req->result.position;
	st->account_id = spec->account_id;
	st->name = cxt_strdup(http_cxt, spec->name ? spec->name : "");
	st->input = spec->input ? (Jsonb *) MemoryContextAlloc(http_cxt, VARSIZE(spec->input)) : NULL;
	if (st->input)
		memcpy(st->input, spec->input, VARSIZE(spec->input));
	st->started_at = spec->started_at;
	st->answered = answered;
}

/*
 * execlog_http_batch_done
 *		After the batch committed: drop the results it recorded, remember the
 *		ones it could not use (their executions stopped running meanwhile),
 *		and send the requests it prepared.
 */
void
execlog_http_batch_done(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &done)
	{
		HttpReq    *req = dlist_container(HttpReq, node, iter.cur);

		if (!req->in_batch)
			continue;
		if (!req->result.consumed)
			stale_add(req, true);
		list_remove_req(req);
		free_req(req);
	}
	dlist_foreach_modify(iter, &deferred)
	{
		HttpReq    *req = dlist_container(HttpReq, node, iter.cur);

		dlist_delete(&req->node);
		submit(req);
	}
	execlog_http_drive();
}

/*
 * execlog_http_batch_abort
 *		The batch failed as a whole (its transaction aborted): the requests
 *		it prepared are dropped unsent, and the results it took are given
 *		back, to be continued by a later batch.
 */
void
execlog_http_batch_abort(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &done)
	{
		HttpReq    *req = dlist_container(HttpReq, node, iter.cur);

		req->in_batch = false;
		req->result.consumed = false;
	}
	dlist_foreach_modify(iter, &deferred)
	{
		HttpReq    *req = dlist_container(HttpReq, node, iter.cur);

		dlist_delete(&req->node);
		free_req(req);
	}
}

/*
 * execlog_http_finished_ids
 *		Add the executions whose requests finished to ids (int64 *), for the
 *		batch that continues them.
 */
List *
execlog_http_finished_ids(List *ids)
{
	dlist_iter	iter;

	dlist_foreach(iter, &done)
	{
		HttpReq    *req = dlist_container(HttpReq, node, iter.cur);
		int64	   *id;

		if (req->in_batch)
			continue;
		req->in_batch = true;
		id = palloc(sizeof(int64));
		*id = req->result.execution_id;
		ids = lappend(ids, id);
	}
	return ids;
}

/*
 * execlog_http_result
 *		The result of the request of this step of this attempt, for the batch
 *		continuing it; NULL when there is none.
 */
HttpResult *
execlog_http_result(int64 execution_id, int32 attempt, int32 position)
{
	dlist_iter	iter;

	dlist_foreach(iter, &done)
	{
		HttpReq    *req = dlist_container(HttpReq, node, iter.cur);

		if (req->in_batch && !req->result.consumed &&
			req->result.execution_id == execution_id &&
			req->result.attempt == attempt && req->result.position == position)
		{
			req->result.consumed = true;
			return &req->result;
		}
	}
	return NULL;
}

/*
 * execlog_http_result_of
 *		The result of the request of an execution's attempt whose step row
 *		was not written yet (see http.h), for the batch continuing it; NULL
 *		when there is none.
 */
HttpResult *
execlog_http_result_of(int64 execution_id, int32 attempt)
{
	dlist_iter	iter;

	dlist_foreach(iter, &done)
	{
		HttpReq    *req = dlist_container(HttpReq, node, iter.cur);

		if (req->in_batch && !req->result.consumed && !req->recorded &&
			req->result.execution_id == execution_id && req->result.attempt == attempt)
		{
			req->result.consumed = true;
			return &req->result;
		}
	}
	return NULL;
}

/*
 * execlog_http_unconsume
 *		The batch could not use this result after all (its execution was
 *		cancelled meanwhile): its step row is failed after the batch.
 */
void
execlog_http_unconsume(HttpResult *res)
{
	res->consumed = false;
}

/*
 * execlog_http_saturated
 *		Whether the worker has enough requests in flight: it then continues
 *		what finished before claiming more executions.
 */
bool
execlog_http_saturated(void)
{
	return n_waiting + n_running - n_detached + n_done >= Max(2 * execlog_batch_size, 32);
}

/*
 * Results are continued in batches: a finished request waits up to this
 * long for others to finish, while the worker keeps driving the rest.
 */
#define GATHER_MS 5

/* Results not yet handed to a batch, and the time the oldest finished. */
static int
ready_results(TimestampTz *oldest)
{
	dlist_iter	iter;
	int			n = 0;

	*oldest = 0;
	dlist_foreach(iter, &done)
	{
		HttpReq    *req = dlist_container(HttpReq, node, iter.cur);

		if (req->in_batch)
			continue;
		if (n == 0 || req->result.finished_at < *oldest)
			*oldest = req->result.finished_at;
		n++;
	}
	return n;
}

/*
 * execlog_http_wait_ms
 *		How long the worker may wait for its latch or its sockets before the
 *		next pass: at most max_ms (0: other work is waiting), less when
 *		libcurl's timer is due sooner.  Finished requests are continued once
 *		a batch of them is ready, nothing else is in flight, or the oldest has
 *		waited GATHER_MS; with enough requests in flight, the worker waits
 *		for answers before claiming more.
 */
long
execlog_http_wait_ms(long max_ms)
{
	dlist_iter	iter;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz oldest;
	int			ready = ready_results(&oldest);
	int			inflight = n_running + n_waiting - n_detached;
	long		wait = max_ms;

	if (n_stale > 0)
		return 0;
	if (!dlist_is_empty(&detached_done))
	{
		/* detached results too are recorded in batches (alert_send.c) */
		HttpReq    *first = dlist_head_element(HttpReq, node, &detached_done);
		long		age = (long) ((now - first->result.finished_at) / 1000);

		if (n_detached == 0 || age >= GATHER_MS)
			return 0;
		wait = Min(wait, GATHER_MS - age);
	}
	if (ready > 0)
	{
		long		age = (long) ((now - oldest) / 1000);

		if (inflight == 0 || ready >= execlog_batch_size || age >= GATHER_MS)
			return 0;
		wait = GATHER_MS - age;
	}
	else if (max_ms == 0)
	{
		if (inflight == 0 || !execlog_http_saturated())
			return 0;
		wait = MAX_WAIT_IN_FLIGHT_MS;
	}
	/* a slow request's row is due to be written as "running" */
	{
		long		rec = record_due_ms(now);

		if (rec >= 0 && rec < wait)
			wait = rec;
	}
	dlist_foreach(iter, &pools)
	{
		HttpPool   *pool = dlist_container(HttpPool, node, iter.cur);
		long		ms = -1;

		if (pool->timer_set)
		{
			int64		due = (pool->timer_at - now + 999) / 1000;

			if (due < wait)
				wait = due < 0 ? 0 : (long) due;
		}
		if (curl_multi_timeout(pool->multi, &ms) == CURLM_OK && ms >= 0 && ms < wait)
			wait = ms;
	}
	/* the worker fetching a token sets our latch; look now and then anyway */
	if (wait > TOKEN_POLL_MS && token_waiting_for_others())
		wait = TOKEN_POLL_MS;
	return wait;
}

/* Abort every request of an execution (its executions stopped running). */
static void
abort_requests_of(int64 execution_id)
{
	FOREACH_IN_FLIGHT(req,
					  if (req->is_token || req->spec.detached ||
						  req->result.execution_id != execution_id)
					  continue;
					  stale_add(req, false);
					  list_remove_req(req);
					  free_req(req));
}

static Datum
array_of(Datum *values, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_array(values, n, type, typlen, typbyval, typalign));
}


/*
 * execlog_http_check_cancels
 *		Inside a worker transaction: when a cancel was committed for one of
 *		this worker's executions since the last look, abort the requests of
 *		executions that are no longer running here; then fail the step rows
 *		of aborted requests and of results that came too late.
 */
void
execlog_http_check_cancels(int slot)
{
	uint32		seen;
	Datum		values[3];

	SpinLockAcquire(&execlog_shared->mutex);
	seen = execlog_shared->slots[slot].http_cancels;
	SpinLockRelease(&execlog_shared->mutex);

	if (seen != cancels_seen && n_running + n_waiting > 0)
	{
		Datum	   *ids = palloc(sizeof(Datum) * (n_running + n_waiting));
		Datum	   *attempts = palloc(sizeof(Datum) * (n_running + n_waiting));
		int			n = 0;
		uint64		i;
		List	   *gone = NIL;
		ListCell   *lc;

		FOREACH_IN_FLIGHT(req,
						  if (req->is_token || req->spec.detached)
						  continue;
						  ids[n] = Int64GetDatum(req->result.execution_id);
						  attempts[n++] = Int32GetDatum(req->result.attempt));
		if (gone_plan == NULL)
		{
			Oid			types[3] = {INT8ARRAYOID, INT4ARRAYOID, INT4OID};

			gone_plan = execlog_keyed_prepare("SELECT u.id FROM unnest($1, $2) AS u(id, attempt)"
								  " WHERE NOT EXISTS (SELECT 1 FROM execlog.executions e"
								  "                    WHERE e.id = u.id AND e.attempt = u.attempt"
								  "                      AND e.status = 'running' AND e.worker = $3)",
								  3, types);
		}
		values[0] = array_of(ids, n, INT8OID);
		values[1] = array_of(attempts, n, INT4OID);
		values[2] = Int32GetDatum(slot);
		execlog_keyed_plan(gone_plan);
		if (SPI_execute_plan(gone_plan, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not check the executions of requests in flight");
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			int64	   *id = palloc(sizeof(int64));

			*id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
											  1, &isnull));
			gone = lappend(gone, id);
		}
		SPI_freetuptable(SPI_tuptable);
		foreach(lc, gone)
			abort_requests_of(*(int64 *) lfirst(lc));
	}
	cancels_seen = seen;

	if (n_stale > 0)
		fail_stale();
}

/* Columns of the step rows written by this file (stale and slow ones). */
#define ROW_COLS 8

/* The step rows being written, column by column (see rows_init). */
static Datum *row_vals[ROW_COLS];
static bool *row_nulls[ROW_COLS];

static void
rows_init(int n)
{
	int			k;

	for (k = 0; k < ROW_COLS; k++)
	{
		row_vals[k] = palloc(sizeof(Datum) * Max(n, 1));
		row_nulls[k] = palloc0(sizeof(bool) * Max(n, 1));
	}
}

static void
rows_set(int i, int64 id, int32 attempt, int32 position, int64 account_id,
		 const char *name, Jsonb *input, TimestampTz started_at, bool answered)
{
	row_vals[0][i] = Int64GetDatum(id);
	row_vals[1][i] = Int32GetDatum(attempt);
	row_vals[2][i] = Int32GetDatum(position);
	row_vals[3][i] = Int64GetDatum(account_id);
	row_vals[4][i] = CStringGetTextDatum(name ? name : "");
	row_vals[5][i] = input ? JsonbPGetDatum(input) : (Datum) 0;
	row_nulls[5][i] = input == NULL;
	row_vals[6][i] = TimestampTzGetDatum(started_at);
	row_vals[7][i] = BoolGetDatum(answered);
}

/* Run a statement on the rows set so far: $1..$8 are their columns. */
static void
rows_run(SPIPlanPtr plan, int n, int expect)
{
	static const Oid elem[ROW_COLS] = {INT8OID, INT4OID, INT4OID, INT8OID, TEXTOID,
	JSONBOID, TIMESTAMPTZOID, BOOLOID};
	Datum		values[ROW_COLS];
	int			k;

	for (k = 0; k < ROW_COLS; k++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;
		int			dims[1] = {n};
		int			lbs[1] = {1};

		get_typlenbyvalalign(elem[k], &typlen, &typbyval, &typalign);
		values[k] = PointerGetDatum(construct_md_array(row_vals[k], row_nulls[k], 1, dims, lbs,
													   elem[k], typlen, typbyval, typalign));
	}
	execlog_keyed_plan(plan);
	if (SPI_execute_plan(plan, values, NULL, false, 0) != expect)
		elog(ERROR, "could not record the step rows of requests");
}

#define ROW_ARGS \
	"unnest($1::bigint[], $2::integer[], $3::integer[], $4::bigint[], $5::text[]," \
	"       $6::jsonb[], $7::timestamptz[], $8::boolean[])" \
	" AS u(id, attempt, position, account_id, name, input, started_at, answered)"

static const Oid row_types[ROW_COLS] = {INT8ARRAYOID, INT4ARRAYOID, INT4ARRAYOID,
INT8ARRAYOID, TEXTARRAYOID, JSONBARRAYOID, TIMESTAMPTZARRAYOID, BOOLARRAYOID};

/*
 * fail_stale
 *		Fail the step rows of aborted requests and of answers that came too
 *		late (their executions stopped running), writing the rows that were
 *		still kept in memory.
 */
static void
fail_stale(void)
{
	int			i;

	if (stale_plan == NULL)
		stale_plan = execlog_keyed_prepare(
						"INSERT INTO execlog.execution_steps AS s"
						"  (execution_id, attempt, position, account_id, name, kind, status,"
						"   started_at, finished_at, input, error)"
						" SELECT u.id, u.attempt, u.position, u.account_id, u.name, 'http', 'failed',"
						"        u.started_at, pg_catalog.now(), u.input,"
						"        CASE WHEN e.attempt <> u.attempt"
						"             THEN 'request aborted: a new attempt started'"
						"             WHEN u.answered"
						"             THEN 'answer discarded: the execution is '"
						"                  || e.status::text || ', no longer running'"
						"             ELSE 'request aborted: the execution is '"
						"                  || e.status::text || ', no longer running' END"
						"   FROM " ROW_ARGS
						"   JOIN execlog.executions e ON e.id = u.id"
						"  WHERE e.status <> 'running' OR e.attempt <> u.attempt"
						" ON CONFLICT (execution_id, attempt, position) DO UPDATE"
						"   SET status = 'failed', finished_at = excluded.finished_at,"
						"       error = excluded.error"
						" WHERE s.status = 'running'",
						ROW_COLS, (Oid *) row_types);
	rows_init(n_stale);
	for (i = 0; i < n_stale; i++)
		rows_set(i, stale[i].execution_id, stale[i].attempt, stale[i].position,
				 stale[i].account_id, stale[i].name, stale[i].input,
				 stale[i].started_at, stale[i].answered);
	rows_run(stale_plan, n_stale, SPI_OK_INSERT);
	for (i = 0; i < n_stale; i++)
	{
		pfree(stale[i].name);
		if (stale[i].input)
			pfree(stale[i].input);
	}
	n_stale = 0;
}

/* Whether a request in flight has its row to write as "running" by now. */
static bool
slow_unrecorded(HttpReq *req, TimestampTz now)
{
	return !req->is_token && !req->spec.detached && !req->recorded &&
		TimestampDifferenceExceeds(req->spec.started_at, now, EXECLOG_HTTP_RECORD_AFTER_MS);
}


/*
 * execlog_http_record_slow
 *		Inside a worker transaction: write the step rows of requests in
 *		flight for EXECLOG_HTTP_RECORD_AFTER_MS or more as "running", so
 *		that step_log shows what a slow request sent while it waits.
 */
void
execlog_http_record_slow(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int			n = 0;

	FOREACH_IN_FLIGHT(req, if (slow_unrecorded(req, now)) n++);
	if (n == 0)
		return;
	if (slow_plan == NULL)
		slow_plan = execlog_keyed_prepare(
						"INSERT INTO execlog.execution_steps"
						"  (execution_id, attempt, position, account_id, name, kind, status,"
						"   started_at, input)"
						" SELECT u.id, u.attempt, u.position, u.account_id, u.name, 'http', 'running',"
						"        u.started_at, u.input"
						"   FROM " ROW_ARGS
						"   JOIN execlog.executions e ON e.id = u.id"
						"  WHERE e.status = 'running' AND e.attempt = u.attempt"
						" ON CONFLICT (execution_id, attempt, position) DO NOTHING",
						ROW_COLS, (Oid *) row_types);
	rows_init(n);
	n = 0;
	FOREACH_IN_FLIGHT(req,
					  if (slow_unrecorded(req, now))
					  {
						  rows_set(n++, req->result.execution_id, req->result.attempt,
								   req->result.position, req->spec.account_id, req->spec.name,
								   req->spec.input, req->spec.started_at, false);
						  req->recorded = true;
					  });
	rows_run(slow_plan, n, SPI_OK_INSERT);
}

/*
 * record_due_ms
 *		Milliseconds until the next request in flight has its row to write
 *		(0: now); -1 when none.
 */
static long
record_due_ms(TimestampTz now)
{
	TimestampTz first = 0;

	FOREACH_IN_FLIGHT(req,
					  if (!req->is_token && !req->spec.detached && !req->recorded &&
						  (first == 0 || req->spec.started_at < first))
					  first = req->spec.started_at);
	if (first == 0)
		return -1;
	first += (TimestampTz) EXECLOG_HTTP_RECORD_AFTER_MS * 1000;
	return first <= now ? 0 : (long) ((first - now + 999) / 1000);
}

/* ----------
 * Detached requests: other users of the transport (alert deliveries)
 * ----------
 */

/*
 * execlog_http_send
 *		Send a detached request now (a copy of spec): it shares the multi
 *		handles and the address policy, but not the batches of the steps.
 */
void
execlog_http_send(HttpSpec *spec)
{
	HttpReq    *req = new_req();

	Assert(spec->detached);
	copy_spec(req, spec);
	n_detached++;
	submit(req);
}

/*
 * execlog_http_take_detached
 *		The next finished detached request, or NULL; give it back with
 *		execlog_http_release() once its result has been used.
 */
HttpResult *
execlog_http_take_detached(void)
{
	HttpReq    *req;

	if (dlist_is_empty(&detached_done))
		return NULL;
	req = dlist_container(HttpReq, node, dlist_pop_head_node(&detached_done));
	return &req->result;
}

/* Free a detached request taken with execlog_http_take_detached(). */
void
execlog_http_release(HttpResult *res)
{
	HttpReq    *req = (HttpReq *) ((char *) res - offsetof(HttpReq, result));

	free_req(req);
}

/* Detached requests sent and not finished yet. */
int
execlog_http_detached_in_flight(void)
{
	return n_detached;
}
