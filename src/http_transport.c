/*-------------------------------------------------------------------------
 *
 * http_transport.c
 *	  The worker's HTTP transport: one libcurl multi handle that lives as
 *	  long as the worker, with many requests in flight.
 *
 * A caller hands a request over with execlog_http_submit() and a callback;
 * the transport sends it, and once it has finished (answered or not) calls
 * the callback, whose caller reads the result (execlog_http_result) and
 * then releases the request.  The transport writes no table and knows
 * nothing of executions, steps or alerts: the step runner
 * (steps_http_flight.c) and the alert sender (alert_send.c) decide what to
 * store, and when a request of theirs is no longer wanted (a cancel), they
 * release it, which aborts it wherever it is.
 *
 * libcurl reports the sockets it wants watched through
 * CURLMOPT_SOCKETFUNCTION: they go into an epoll set of our own, whose
 * descriptor the worker waits on together with its latch
 * (WaitLatchOrSocket: an epoll descriptor is readable when any socket in it
 * is ready).  execlog_http_drive() then lets libcurl act on the ready
 * sockets and on its timer, and reports the finished transfers.
 *
 * Rules kept here:
 *	- libcurl callbacks never raise an error and never allocate memory that
 *	  could: they record what went wrong and return an error code to libcurl;
 *	  the rest is done once libcurl has returned;
 *	- every request has its own memory context under the long-lived "execlog
 *	  http" context, deleted when its caller releases it; easy handles are
 *	  reused, and the multi handle keeps connections alive;
 *	- a request never outlives its spec's deadline (an http step's time
 *	  limit): its timeout is capped at it, and the result says so;
 *	- connections made under one execlog.http_allow / http_deny stay in a
 *	  multi handle of their own: when the settings change, new requests go
 *	  to a new multi handle and the old one is closed once it is idle, so a
 *	  kept-alive connection cannot outlive the policy that allowed it;
 *	- at most execlog.max_connections_per_host transfers per host are in a
 *	  multi handle; the others wait, in order, on their host's queue;
 *	- a request of a connection with OAuth2 auth waits for its token
 *	  (oauth2.c fetches it, through this transport) and is sent again once
 *	  with a fresh token after a 401;
 *	- TLS peers are verified against execlog.ssl_ca_file when it is set
 *	  (else the system's CA store), for https, smtps and STARTTLS alike;
 *	- a request with a mail (HttpMail) is sent over SMTP instead of HTTP.
 *
 *-------------------------------------------------------------------------
 */
#include "http.h"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "common/base64.h"
#include "lib/ilist.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

/* Response headers kept at most (libcurl limits single headers itself). */
#define MAX_HEADER_BYTES (256 * 1024)

/* Idle easy handles kept for reuse. */
#define MAX_IDLE_EASY 256

/* Longest Retry-After honoured (one day). */
#define MAX_RETRY_AFTER_S 86400

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
	REQ_NEW,					/* made, not sent yet */
	REQ_TOKEN,					/* waiting for an OAuth2 token (oauth2.c) */
	REQ_HOST,					/* waiting for a connection to its host */
	REQ_RUNNING,				/* in a multi handle */
	REQ_DONE					/* finished: its caller has the result */
} ReqState;

struct HttpRequest
{
	dlist_node	node;			/* in its host's queue (REQ_HOST), or in
								 * finished until its callback is called */
	bool		reported;		/* its callback was called */
	MemoryContext cxt;			/* everything of this request */
	ReqState	state;
	HttpDoneCallback done;
	void	   *done_arg;
	bool		refreshed;		/* got a new token after a 401 */
	struct HostSlot *slot;		/* holds one of its host's connections */
	char	   *host_key;		/* "host:port" of its URL; NULL: not parsed yet */
	bool		no_host;		/* its URL has no host */
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
	bool		deadline_capped;	/* ... which is the deadline's */
	bool		oom;			/* a callback ran out of memory */
	char		denied[512];	/* why the open-socket callback refused */
	char		errbuf[CURL_ERROR_SIZE];
	HttpResult	result;
};

typedef HttpRequest HttpReq;

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
	dlist_head	queue;			/* HttpReq waiting for a connection (REQ_HOST) */
	bool		busy;			/* in busy_hosts */
	dlist_node	busy_node;
} HostSlot;


static MemoryContext http_cxt = NULL;
static int	epoll_fd = -1;
static dlist_head pools;
static HttpPool *cur_pool = NULL;
static uint32 next_pool_id = 0;
static HTAB *host_slots = NULL;
static dlist_head busy_hosts;	/* HostSlot with requests queued */
static dlist_head finished;		/* HttpReq finished, callback not called yet */
static CURL *idle_easy[MAX_IDLE_EASY];
static int	n_idle_easy = 0;

static void start_transfer(HttpReq *req);
static bool url_host(const char *url, char *host, size_t hostlen, long *port);


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
copy_spec(HttpReq *req, const HttpSpec *spec)
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
	c->secrets = NIL;
	MemoryContextSwitchTo(old);
	foreach(lc, spec->secrets)
		add_secret(req, (const char *) lfirst(lc));
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

/*
 * req_done
 *		The request is finished: its caller is told by report_finished(),
 *		once the transport's own work is done (a callback may release it).
 */
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
	dlist_push_tail(&finished, &req->node);
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
	req->state = REQ_HOST;
	dlist_push_tail(&slot->queue, &req->node);
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
 *		at its deadline (or on its host's queue).
 */
static void
start_transfer(HttpReq *req)
{
	HttpPool   *pool;
	HostSlot   *slot;
	CURL	   *e;
	long		timeout = req->spec.timeout_ms;
	ListCell   *lc;
	struct curl_slist *sl = NULL;
	MemoryContext old;
	const char *bad_opt = NULL;
	CURLcode	opt_rc = CURLE_OK;

	req->deadline_capped = false;
	if (req->spec.deadline != 0)
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

	if (req->spec.auth.type == HTTP_AUTH_BASIC)
	{
		SETOPT(e, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
		SETOPT(e, CURLOPT_USERNAME, req->spec.auth.username);
		SETOPT(e, CURLOPT_PASSWORD, req->spec.auth.password);
	}
	if (execlog_ssl_ca_file != NULL && execlog_ssl_ca_file[0] != '\0')
		SETOPT(e, CURLOPT_CAINFO, execlog_ssl_ca_file);

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
	req->result.started_at = GetCurrentTimestamp();
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

/* ----------
 * Finishing transfers
 * ----------
 */

/*
 * transfer_done
 *		A transfer finished (answered or not): record its result, or, for a
 *		connection with OAuth2 auth answered 401, let oauth2.c send it again
 *		once with a fresh token.
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
	detach_transfer(req);

	if (error == NULL && !req->result.time_limit && status == 401 &&
		req->spec.auth.type == HTTP_AUTH_OAUTH2 && !req->refreshed)
	{
		/* the token may have been revoked: a new one, once */
		req->refreshed = true;
		req->state = REQ_TOKEN;
		if (execlog_oauth2_refused(req, &req->spec.auth, req->token_used))
			return;
	}
	req->result.status = error ? 0 : status;
	if (error)
		req_fail(req, error);
	else
		req_done(req);
}

/*
 * report_finished
 *		Call the callbacks of the finished requests, once the transport's
 *		lists are consistent: a callback may release its request, and may
 *		hand requests waiting for a token back to the transport (oauth2.c),
 *		which can finish more.
 */
static void
report_finished(void)
{
	while (!dlist_is_empty(&finished))
	{
		HttpReq    *req = dlist_container(HttpReq, node, dlist_pop_head_node(&finished));

		req->reported = true;
		req->done(req, req->done_arg);
	}
}

/*
 * execlog_http_drive
 *		Let libcurl act on the sockets that are ready and on its timers, then
 *		report the finished transfers.  Never blocks.
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
	execlog_oauth2_poll();
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
	report_finished();
}

/* ----------
 * The callers' side
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
	dlist_init(&busy_hosts);
	dlist_init(&finished);
}

/* The descriptor the worker waits on (readable: some socket is ready). */
int
execlog_http_socket(void)
{
	return epoll_fd;
}

/*
 * execlog_http_new
 *		A request (a copy of spec) not sent yet: execlog_http_start() sends
 *		it, execlog_http_release() drops it.  done(req, arg) is called once
 *		it has finished, from a later execlog_http_drive().  The credentials
 *		of its auth and mail are added to the secrets scrubbed from its
 *		result.
 */
HttpRequest *
execlog_http_new(const HttpSpec *spec, HttpDoneCallback done, void *arg)
{
	HttpReq    *req = new_req();

	copy_spec(req, spec);
	req->state = REQ_NEW;
	req->done = done;
	req->done_arg = arg;
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
			break;
		case HTTP_AUTH_NONE:
			break;
	}
	if (req->spec.mail != NULL && req->spec.mail->password != NULL)
		add_secret(req, req->spec.mail->password);
	return req;
}

/*
 * execlog_http_start
 *		Send a request made by execlog_http_new(): a connection with OAuth2
 *		auth first waits for its token (oauth2.c).
 */
void
execlog_http_start(HttpRequest *req)
{
	Assert(req->state == REQ_NEW);
	req->result.submitted_at = GetCurrentTimestamp();
	if (req->spec.auth.type == HTTP_AUTH_OAUTH2)
	{
		req->state = REQ_TOKEN;
		execlog_oauth2_submit(req, &req->spec.auth);
		return;
	}
	start_transfer(req);
}

/* execlog_http_new() and execlog_http_start() at once. */
HttpRequest *
execlog_http_submit(const HttpSpec *spec, HttpDoneCallback done, void *arg)
{
	HttpRequest *req = execlog_http_new(spec, done, arg);

	execlog_http_start(req);
	return req;
}

/*
 * execlog_http_send_with_token
 *		oauth2.c: send a request that waited for its access token.
 */
void
execlog_http_send_with_token(HttpRequest *req, const char *token)
{
	Assert(req->state == REQ_TOKEN);
	req->token_used = MemoryContextStrdup(req->cxt, token);
	add_secret(req, req->token_used);
	start_transfer(req);
}

/*
 * execlog_http_fail
 *		oauth2.c: fail a request that waited for its access token.
 */
void
execlog_http_fail(HttpRequest *req, const char *error)
{
	Assert(req->state == REQ_TOKEN);
	req_fail(req, error);
}

/* The result of a finished request (valid until it is released). */
HttpResult *
execlog_http_result(HttpRequest *req)
{
	Assert(req->state == REQ_DONE);
	return &req->result;
}

/*
 * execlog_http_release
 *		Free a request: a finished one once its result has been used, or one
 *		still in flight, which is aborted (its connection is closed) and
 *		never reported.
 */
void
execlog_http_release(HttpRequest *req)
{
	switch (req->state)
	{
		case REQ_NEW:
			break;
		case REQ_TOKEN:
			execlog_oauth2_forget(req);
			break;
		case REQ_HOST:
			dlist_delete(&req->node);
			break;
		case REQ_RUNNING:
			break;
		case REQ_DONE:
			if (!req->reported)
				dlist_delete(&req->node);
			break;
	}
	free_req(req);
}

/*
 * execlog_http_wait_ms
 *		How long the worker may wait for its latch or its sockets, given
 *		that its callers would wait wait_ms: less when libcurl's timer is due
 *		sooner, when a finished request is still to be reported, or when a
 *		token another worker fetches may come.
 */
long
execlog_http_wait_ms(long wait_ms)
{
	dlist_iter	iter;
	TimestampTz now = GetCurrentTimestamp();
	long		wait = wait_ms;

	if (!dlist_is_empty(&finished))
		return 0;
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
	if (wait > EXECLOG_TOKEN_POLL_MS && execlog_oauth2_waiting_for_others())
		wait = EXECLOG_TOKEN_POLL_MS;
	return wait;
}

/*
 * execlog_http_retry_after
 *		Seconds a Retry-After value asks to wait (delay-seconds or an
 *		HTTP-date), at most a day; -1 when none or unreadable.  For http
 *		steps and alert deliveries alike.
 */
int
execlog_http_retry_after(const char *value)
{
	char	   *end;
	long		s;

	if (value == NULL || *value == '\0')
		return -1;
	errno = 0;
	s = strtol(value, &end, 10);
	if (end == value || *end != '\0' || errno != 0)
	{
		time_t		t = curl_getdate(value, NULL);

		if (t < 0)
			return -1;
		s = (long) (t - time(NULL));
	}
	s = Max(s, 0);
	return (int) Min(s, MAX_RETRY_AFTER_S);
}
