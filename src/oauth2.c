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
 * that fetched it keeps it in its own cache (http_client.c), and each
 * worker fetches its own, as a WARNING says once per worker.  At most
 * EXECLOG_TOKEN_SLOTS connections share tokens at once; past that, the
 * least recently used token that nobody is fetching makes room.
 *
 * Everything here runs under one LWLock; nothing under it does I/O,
 * allocates or can fail (an error raised between transactions would leave
 * it held: the worker's recovery block releases all LWLocks as well).
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"
#include "http.h"

#include "miscadmin.h"
#include "storage/lwlock.h"
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
