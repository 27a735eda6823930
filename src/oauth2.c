/*-------------------------------------------------------------------------
 *
 * oauth2.c
 *	  OAuth2 access tokens shared by all workers.
 *
 * A connection with "oauth2_client_credentials" auth needs an access token
 * from its token endpoint.  The token is fetched once per connection (its
 * id and updated_at, so that a changed connection gets a new one) until it
 * expires, whatever execlog.workers is: the workers share the tokens in
 * shared memory, never in a table.
 *
 * A worker that needs a token asks execlog_token_get():
 *
 *	- TOKEN_READY: a valid token is there, copied out;
 *	- TOKEN_FETCH: none, and nobody is fetching one: the caller fetches it
 *	  and must report the outcome with execlog_token_put() (a token or an
 *	  error); until then, every other worker gets TOKEN_WAIT;
 *	- TOKEN_WAIT: another worker is fetching it; execlog_token_put() sets
 *	  every worker's latch, and the waiter asks again.  A fetch that was
 *	  not reported within the HTTP timeout plus a margin (its worker died)
 *	  is taken over by the next one who asks.
 *
 * A fetch that failed is remembered with its (scrubbed) error, so that
 * the requests of the other workers that waited for it fail with the same
 * error instead of each fetching again; requests that come later try
 * again.  A token that
 * was answered with 401 is dropped by the first worker that reports it
 * (execlog_token_get with "stale"), and one new fetch follows.
 *
 * Tokens longer than EXECLOG_TOKEN_MAX bytes are not shared: the worker
 * that fetched it keeps it in its own cache (below), and each
 * worker fetches its own, as a WARNING says once per worker.  At most
 * EXECLOG_TOKEN_SLOTS connections share tokens at once; past that, the
 * least recently used token that nobody is fetching makes room.
 *
 * Everything in the shared store runs under one LWLock; nothing under it
 * does I/O, allocates or can fail (an error raised between transactions
 * would leave it held: the worker's recovery block releases all LWLocks as
 * well).
 *
 * The worker's side (the second half of this file): the transport
 * (http_transport.c) hands every request of a connection with OAuth2 auth
 * to execlog_oauth2_submit().  Each worker keeps a TokenEntry per
 * connection, with the token it uses and the requests waiting for one; a
 * token is fetched (grant_type=client_credentials) with a request of the
 * same transport, and once more when a request sent with it is answered
 * 401 (execlog_oauth2_refused).
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"
#include "http.h"

#include <curl/curl.h>

#include "lib/ilist.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

/* How long an unreported fetch holds off the others, past the timeout. */
#define FETCH_MARGIN_MS 5000

typedef struct SharedToken
{
	int64		connection_id;	/* 0: free */
	TimestampTz connection_updated_at;
	TimestampTz expires_at;		/* token valid until then */
	TimestampTz last_used;
	int			fetcher;		/* pid fetching one; 0: nobody */
	TimestampTz fetch_started;
	TimestampTz failed_at;		/* last fetch failed then; 0: it did not */
	char		error[256];		/* its error, scrubbed */
	int			len;			/* of token; 0: none */
	char		token[EXECLOG_TOKEN_MAX];
} SharedToken;

typedef struct SharedTokens
{
	LWLock	   *lock;
	SharedToken slots[EXECLOG_TOKEN_SLOTS];
} SharedTokens;

static SharedTokens *shared_tokens = NULL;

/* Shared memory the token store needs. */
Size
execlog_token_shmem_size(void)
{
	return MAXALIGN(sizeof(SharedTokens));
}

/* Ask for the store's memory and lock (from the shmem_request hook). */
void
execlog_token_shmem_request(void)
{
	RequestAddinShmemSpace(execlog_token_shmem_size());
	RequestNamedLWLockTranche("execlog tokens", 1);
}

/* Attach to the store, initialising it first (from the shmem_startup hook). */
void
execlog_token_shmem_startup(void)
{
	bool		found;

	shared_tokens = ShmemInitStruct("execlog tokens", execlog_token_shmem_size(), &found);
	if (!found)
	{
		memset(shared_tokens, 0, sizeof(SharedTokens));
		shared_tokens->lock = &(GetNamedLWLockTranche("execlog tokens"))->lock;
	}
}

/*
 * find_slot
 *		The connection's slot, or (make) a free one: a free slot, else the
 *		least recently used one that nobody is fetching.  NULL when all are
 *		being fetched.  Caller holds the lock exclusively.
 */
static SharedToken *
find_slot(int64 connection_id, TimestampTz updated_at, bool create)
{
	SharedToken *victim = NULL;
	int			i;

	for (i = 0; i < EXECLOG_TOKEN_SLOTS; i++)
	{
		SharedToken *s = &shared_tokens->slots[i];

		if (s->connection_id == connection_id && s->connection_updated_at == updated_at)
			return s;
	}
	if (!create)
		return NULL;
	for (i = 0; i < EXECLOG_TOKEN_SLOTS; i++)
	{
		SharedToken *s = &shared_tokens->slots[i];

		if (s->connection_id == 0)
		{
			victim = s;
			break;
		}
		/* an older version of the same connection goes first */
		if (s->fetcher == 0 &&
			(s->connection_id == connection_id ||
			 victim == NULL || s->last_used < victim->last_used))
			victim = s;
	}
	if (victim == NULL)
		return NULL;
	memset(victim, 0, offsetof(SharedToken, token));
	victim->connection_id = connection_id;
	victim->connection_updated_at = updated_at;
	return victim;
}

/*
 * execlog_token_get
 *		What to do for the connection's token (see the file header).  stale:
 *		a token the far end refused (401), dropped when it is still the
 *		shared one; NULL for none.  waiting_since: when the caller's requests
 *		began to wait for a fetch of another worker (0: they do not), so that
 *		a failure of that fetch is reported to them: TOKEN_FAILED with *error.
 */
TokenState
execlog_token_get(int64 connection_id, TimestampTz updated_at, const char *stale,
				  TimestampTz waiting_since, char **token, TimestampTz *expires_at,
				  char **error)
{
	TimestampTz now = GetCurrentTimestamp();
	SharedToken *s;
	TokenState	state;
	char		copy[Max(EXECLOG_TOKEN_MAX, 256)];
	int			copy_len = 0;

	if (shared_tokens == NULL)
		return TOKEN_FETCH;
	LWLockAcquire(shared_tokens->lock, LW_EXCLUSIVE);
	s = find_slot(connection_id, updated_at, true);
	if (s == NULL)
	{
		/* every slot is being fetched: do without sharing */
		LWLockRelease(shared_tokens->lock);
		return TOKEN_UNSHARED;
	}
	s->last_used = now;
	if (stale != NULL && s->len > 0 && strlen(stale) == (size_t) s->len &&
		memcmp(s->token, stale, s->len) == 0)
		s->len = 0;

	if (s->len > 0 && now < s->expires_at)
	{
		/* copied out under the lock, allocated after it */
		memcpy(copy, s->token, s->len);
		copy_len = s->len;
		*expires_at = s->expires_at;
		state = TOKEN_READY;
	}
	else if (waiting_since != 0 && s->failed_at >= waiting_since && s->fetcher == 0)
	{
		copy_len = strlcpy(copy, s->error, sizeof(s->error));
		state = TOKEN_FAILED;
	}
	else if (s->fetcher == 0 || s->fetcher == MyProcPid ||
			 s->fetch_started < now - (execlog_http_timeout_ms + FETCH_MARGIN_MS) * INT64CONST(1000))
	{
		s->fetcher = MyProcPid;
		s->fetch_started = now;
		state = TOKEN_FETCH;
	}
	else
		state = TOKEN_WAIT;
	LWLockRelease(shared_tokens->lock);

	if (state == TOKEN_READY)
		*token = pnstrdup(copy, copy_len);
	else if (state == TOKEN_FAILED)
		*error = pnstrdup(copy, copy_len);
	return state;
}

/*
 * execlog_token_put
 *		Report the outcome of a fetch this worker was given (TOKEN_FETCH):
 *		the token and its expiry, or NULL and the error.  Wakes the workers
 *		that wait for it.  Returns false when the token is too long to share.
 */
bool
execlog_token_put(int64 connection_id, TimestampTz updated_at, const char *token,
				  TimestampTz expires_at, const char *error)
{
	SharedToken *s;
	bool		shared = true;

	if (shared_tokens == NULL)
		return false;
	LWLockAcquire(shared_tokens->lock, LW_EXCLUSIVE);
	s = find_slot(connection_id, updated_at, false);
	if (s != NULL)
	{
		if (s->fetcher == MyProcPid)
			s->fetcher = 0;
		if (token != NULL)
		{
			size_t		len = strlen(token);

			s->failed_at = 0;
			if (len < EXECLOG_TOKEN_MAX)
			{
				memcpy(s->token, token, len);
				s->len = (int) len;
				s->expires_at = expires_at;
			}
			else
			{
				s->len = 0;
				shared = false;
			}
		}
		else
		{
			s->len = 0;
			s->failed_at = GetCurrentTimestamp();
			strlcpy(s->error, error ? error : "the token request failed", sizeof(s->error));
		}
	}
	LWLockRelease(shared_tokens->lock);
	execlog_wake_workers();
	return shared;
}

/* ----------
 * The worker's token fetches
 * ----------
 */

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
	bool		fetch_shared;	/* ... for all workers */
	bool		unshared;		/* too long to share: this worker's own */
	bool		shared_wait;	/* another worker fetches it */
	TimestampTz wait_since;		/* since then */
	List	   *waiters;		/* HttpRequest waiting for it */
} TokenEntry;

static MemoryContext oauth_cxt = NULL;
static dlist_head tokens = DLIST_STATIC_INIT(tokens);

static void token_wait(HttpRequest *req, TokenEntry *t, const char *stale);

static char *
cxt_strdup(MemoryContext cxt, const char *s)
{
	return s ? MemoryContextStrdup(cxt, s) : NULL;
}

/* Free an entry nobody uses any more. */
static void
entry_free(TokenEntry *t)
{
	dlist_delete(&t->node);
	if (t->access_token)
		pfree(t->access_token);
	pfree(t->token_url);
	pfree(t->client_id);
	pfree(t->client_secret);
	if (t->scope)
		pfree(t->scope);
	list_free(t->waiters);
	pfree(t);
}

/* The token entry of a request's connection, created when missing. */
static TokenEntry *
token_entry(const HttpAuth *auth)
{
	dlist_mutable_iter iter;
	TokenEntry *t;

	if (oauth_cxt == NULL)
		oauth_cxt = AllocSetContextCreate(TopMemoryContext, "execlog oauth2",
										  ALLOCSET_SMALL_SIZES);
	dlist_foreach_modify(iter, &tokens)
	{
		t = dlist_container(TokenEntry, node, iter.cur);
		if (t->connection_id != auth->connection_id)
			continue;
		if (t->updated_at == auth->connection_updated_at)
			return t;
		/* the connection changed since: forget the old entry when unused */
		if (!t->fetching && t->waiters == NIL)
			entry_free(t);
	}
	t = MemoryContextAllocZero(oauth_cxt, sizeof(TokenEntry));
	t->connection_id = auth->connection_id;
	t->updated_at = auth->connection_updated_at;
	t->token_url = MemoryContextStrdup(oauth_cxt, auth->token_url);
	t->client_id = MemoryContextStrdup(oauth_cxt, auth->client_id);
	t->client_secret = MemoryContextStrdup(oauth_cxt, auth->client_secret);
	t->scope = cxt_strdup(oauth_cxt, auth->scope);
	t->client_basic = auth->client_basic;
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

static void token_done(HttpRequest *fetch, void *arg);

/*
 * token_fetch
 *		Start fetching a token (grant_type=client_credentials), with a
 *		request of the transport: the client credentials in the form, or
 *		with HTTP Basic.
 */
static void
token_fetch(TokenEntry *t)
{
	HttpSpec	spec;
	StringInfoData body;

	memset(&spec, 0, sizeof(spec));
	spec.method = "POST";
	spec.url = t->token_url;
	spec.timeout_ms = execlog_http_timeout_ms;
	if (t->client_basic)
	{
		spec.auth.type = HTTP_AUTH_BASIC;
		spec.auth.username = t->client_id;
		spec.auth.password = t->client_secret;
	}
	initStringInfo(&body);
	appendStringInfoString(&body, "grant_type=client_credentials");
	if (t->scope)
		appendStringInfo(&body, "&scope=%s", form_escape(t->scope));
	if (!t->client_basic)
		appendStringInfo(&body, "&client_id=%s&client_secret=%s",
						 form_escape(t->client_id), form_escape(t->client_secret));
	spec.body = body.data;
	spec.body_len = body.len;
	spec.headers = list_make2("Content-Type: application/x-www-form-urlencoded",
							  "Accept: application/json");
	spec.secrets = list_make1(t->client_secret);

	t->fetching = true;
	(void) execlog_http_submit(&spec, token_done, t);
	pfree(body.data);
}

/*
 * release_waiters
 *		Send the requests waiting for the entry's token, or fail them with
 *		why.
 */
static void
release_waiters(TokenEntry *t, const char *why)
{
	List	   *waiters = t->waiters;
	ListCell   *lc;

	/* take the waiters off the entry first: sending may queue again */
	t->waiters = NIL;
	foreach(lc, waiters)
	{
		HttpRequest *req = (HttpRequest *) lfirst(lc);

		if (why != NULL)
			execlog_http_fail(req, why);
		else
			execlog_http_send_with_token(req, t->access_token);
	}
	list_free(waiters);
}

/*
 * token_acquire
 *		Get the entry's token for its waiting requests: from the workers'
 *		shared store, by fetching it (for all workers), or by waiting for the
 *		worker that fetches it.  stale: a token refused with 401, or NULL.
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
			t->access_token = MemoryContextStrdup(oauth_cxt, token);
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

/*
 * execlog_oauth2_poll
 *		Ask again for the tokens other workers were fetching (the worker
 *		that fetches one sets our latch when it is there).
 */
void
execlog_oauth2_poll(void)
{
	dlist_iter	iter;

	dlist_foreach(iter, &tokens)
	{
		TokenEntry *t = dlist_container(TokenEntry, node, iter.cur);

		if (!t->shared_wait)
			continue;
		if (t->waiters == NIL)
			t->shared_wait = false;
		else if (!t->fetching)
			token_acquire(t, NULL);
	}
}

/* Whether some request waits for a token another worker fetches. */
bool
execlog_oauth2_waiting_for_others(void)
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
 *		Send a request with its connection's token, or keep it waiting until
 *		one comes.  stale: the token it was refused with (401), or NULL.
 */
static void
token_wait(HttpRequest *req, TokenEntry *t, const char *stale)
{
	MemoryContext old;

	if (t->access_token != NULL && GetCurrentTimestamp() < t->expires_at)
	{
		execlog_http_send_with_token(req, t->access_token);
		return;
	}
	old = MemoryContextSwitchTo(oauth_cxt);
	t->waiters = lappend(t->waiters, req);
	MemoryContextSwitchTo(old);
	if (!t->fetching && !t->shared_wait)
		token_acquire(t, stale);
}

/*
 * execlog_oauth2_submit
 *		The transport has a request of a connection with OAuth2 auth: send
 *		it with the connection's token, once there is one.
 */
void
execlog_oauth2_submit(HttpRequest *req, const HttpAuth *auth)
{
	token_wait(req, token_entry(auth), NULL);
}

/*
 * execlog_oauth2_refused
 *		A request sent with token_used was answered 401: the token may have
 *		been revoked, so it is dropped (here and for all workers) and the
 *		request sent again with a new one.  Returns true: the request is
 *		taken back.
 */
bool
execlog_oauth2_refused(HttpRequest *req, const HttpAuth *auth, const char *token_used)
{
	TokenEntry *t = token_entry(auth);

	if (t->access_token && strcmp(t->access_token, token_used) == 0)
	{
		pfree(t->access_token);
		t->access_token = NULL;
	}
	token_wait(req, t, token_used);
	return true;
}

/*
 * execlog_oauth2_forget
 *		A request waiting for a token is released (its caller gave it up).
 */
void
execlog_oauth2_forget(HttpRequest *req)
{
	dlist_iter	iter;

	dlist_foreach(iter, &tokens)
	{
		TokenEntry *t = dlist_container(TokenEntry, node, iter.cur);

		t->waiters = list_delete_ptr(t->waiters, req);
	}
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
 *		The transport's callback of a token fetch: send the waiting requests
 *		with the new token, or fail them with the reason.
 */
static void
token_done(HttpRequest *fetch, void *arg)
{
	TokenEntry *t = (TokenEntry *) arg;
	HttpResult *res = execlog_http_result(fetch);
	char	   *why = res->error ? pstrdup(res->error) : NULL;
	char	   *token = NULL;
	double		expires_in = 0;

	t->fetching = false;
	if (why != NULL)
		;
	else if (res->time_limit)
		why = psprintf("timed out after %d ms", execlog_http_timeout_ms);
	else if (res->status != 200)
		why = psprintf("the token endpoint answered with status %ld", res->status);
	else if (!parse_token(res->body ? res->body : "", &token, &expires_in))
		why = pstrdup("the token endpoint's answer has no \"access_token\"");

	if (token != NULL && why == NULL)
	{
		double		margin = expires_in > 60 ? 30 : expires_in / 10;

		if (t->access_token)
			pfree(t->access_token);
		t->access_token = MemoryContextStrdup(oauth_cxt, token);
		t->expires_at = GetCurrentTimestamp() +
			(TimestampTz) ((expires_in - margin) * USECS_PER_SEC);
	}
	else
	{
		char	   *msg = psprintf("could not get an OAuth2 token from %s: %s",
								   t->token_url, why);
		size_t		len;
		char	   *clean = execlog_http_scrub(res->secrets, msg, strlen(msg), &len);

		why = clean == msg ? msg : clean;
	}
	execlog_http_release(fetch);

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
