/*-------------------------------------------------------------------------
 *
 * http.h
 *	  http steps: what the batch transaction prepares, what the worker's
 *	  libcurl multi handle sends, and what comes back.
 *
 * An http step never runs inside the batch transaction.  The executor
 * validates it (steps_http.c) and stops the execution there, keeping the
 * step's row in memory; once the batch commits, the worker sends the
 * request through its multi handle (http_client.c) and waits on the sockets
 * and its latch together.  A finished request is continued in a later
 * batch, which writes the step's row with the result, and the execution
 * goes on with its next steps.  A fast request therefore costs one write of
 * its row; one still in flight after EXECLOG_HTTP_RECORD_AFTER_MS has its
 * row written as "running" meanwhile, so that slow requests can be watched.
 *
 *	steps_http.c	validation, connections and auth, results to step rows
 *	http_client.c	multi handle, sockets, OAuth2 token fetches, cancels
 *	oauth2.c		OAuth2 tokens shared by the workers (shared memory)
 *	http_policy.c	execlog.http_allow / execlog.http_deny
 *	alert_send.c	alert deliveries: detached requests, HTTP or SMTP
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXECLOG_HTTP_H
#define EXECLOG_HTTP_H

#include "engine.h"

#include <sys/socket.h>

#include "utils/guc.h"

/* Redirects an http step follows at most. */
#define EXECLOG_HTTP_MAX_REDIRECTS 5

typedef enum HttpAuthType
{
	HTTP_AUTH_NONE,
	HTTP_AUTH_BEARER,
	HTTP_AUTH_BASIC,
	HTTP_AUTH_OAUTH2
} HttpAuthType;

/* Credentials of a connection; kept in memory only, never stored. */
typedef struct HttpAuth
{
	HttpAuthType type;
	int64		connection_id;
	TimestampTz connection_updated_at;	/* with the id: the token cache key */
	char	   *token;			/* bearer */
	char	   *username;		/* basic */
	char	   *password;
	char	   *token_url;		/* oauth2_client_credentials */
	char	   *client_id;
	char	   *client_secret;
	char	   *scope;			/* NULL: none */
	bool		client_basic;	/* client credentials sent with HTTP Basic */
} HttpAuth;

/*
 * An e-mail to send over SMTP (alert deliveries): the request's url is the
 * smtp:// or smtps:// server without credentials, its body the whole
 * message (RFC 5322 header and body, CRLF line ends).
 */
typedef struct HttpMail
{
	char	   *from;			/* envelope sender */
	List	   *rcpt;			/* envelope recipients (char *) */
	char	   *username;		/* AUTH; NULL: none */
	char	   *password;
} HttpMail;

/* A validated request, prepared in the batch transaction. */
typedef struct HttpSpec
{
	int64		execution_id;
	int32		attempt;
	int32		position;
	char	   *method;
	char	   *url;
	List	   *headers;		/* "Name: value" strings */
	char	   *body;			/* NULL: no body */
	int			body_len;
	int			timeout_ms;		/* the step's timeout */
	TimestampTz deadline;		/* the execution's time limit */
	HttpAuth	auth;
	List	   *secrets;		/* values carried by the request that are
								 * secret: sensitive header values, URL
								 * credentials; scrubbed from what is stored */

	/*
	 * The step's row, kept in memory while the request is in flight: it is
	 * written by the batch that records the result, or as "running" once
	 * the request has been in flight for EXECLOG_HTTP_RECORD_AFTER_MS.
	 */
	int64		account_id;
	char	   *name;
	Jsonb	   *input;
	TimestampTz started_at;

	/*
	 * A request of another user of the transport (alert_send.c), sent with
	 * execlog_http_send(): no step row, no time limit, no cancel; its result
	 * is taken with execlog_http_take_detached().
	 */
	bool		detached;
	int64		tag;			/* the caller's id for it (an alert id) */
	HttpMail   *mail;			/* SMTP instead of HTTP; NULL: HTTP */
} HttpSpec;

/* In flight this long, an http step's row is written as "running". */
#define EXECLOG_HTTP_RECORD_AFTER_MS 250

/* The outcome of a request, turned into the step row by a later batch. */
typedef struct HttpResult
{
	int64		execution_id;
	int32		attempt;
	int32		position;
	TimestampTz finished_at;
	long		status;			/* 0: no response */
	char	   *headers;		/* raw header block of the final response */
	size_t		headers_len;
	char	   *body;			/* first bytes of the body */
	size_t		body_len;
	uint64		body_total;		/* bytes received (more than body_len: cut) */
	char	   *error;			/* transport failure; NULL when answered */
	bool		time_limit;		/* stopped by the execution's time limit */
	List	   *secrets;		/* every secret the request carried (strings),
								 * scrubbed from what is stored */
	bool		consumed;		/* taken by a batch */
	HttpSpec   *spec;			/* the request, with its step row */
} HttpResult;

/* steps_http.c: in the batch transaction */
extern Jsonb *execlog_http_prepare(ExecRun *run, StepDef *def, Jsonb *input,
								   HttpSpec **spec);
extern void execlog_http_finish(ExecRun *run, StepDef *def, StepRow *row,
								HttpResult *res);
extern Jsonb *execlog_http_stored_input(Jsonb *input);
extern int	execlog_http_retry_after(const char *value);

/* http_client.c: the worker's side */
extern void execlog_http_init(void);
extern void execlog_http_defer(HttpSpec *spec);
extern void execlog_http_batch_done(void);
extern void execlog_http_batch_abort(void);
extern void execlog_http_drive(void);
extern int	execlog_http_socket(void);
extern long execlog_http_wait_ms(long max_ms);
extern bool execlog_http_saturated(void);
extern List *execlog_http_finished_ids(List *ids);
extern HttpResult *execlog_http_result(int64 execution_id, int32 attempt,
									   int32 position);
extern HttpResult *execlog_http_result_of(int64 execution_id, int32 attempt);
extern void execlog_http_unconsume(HttpResult *res);
extern void execlog_http_check_cancels(int slot);
extern void execlog_http_record_slow(void);
extern char *execlog_http_scrub(List *secrets, const char *data, size_t len,
								size_t *newlen);

/* http_client.c: detached requests (alert deliveries) */
extern void execlog_http_send(HttpSpec *spec);
extern HttpResult *execlog_http_take_detached(void);
extern void execlog_http_release(HttpResult *res);
extern int	execlog_http_detached_in_flight(void);

/* oauth2.c: OAuth2 tokens shared by the workers */
#define EXECLOG_TOKEN_SLOTS 32	/* connections sharing a token at once */
#define EXECLOG_TOKEN_MAX 8192	/* longer tokens are not shared */

typedef enum TokenState
{
	TOKEN_READY,				/* a valid token: use it */
	TOKEN_FETCH,				/* fetch it, then execlog_token_put() */
	TOKEN_WAIT,					/* another worker fetches it: ask again */
	TOKEN_FAILED,				/* the fetch waited for failed: *error */
	TOKEN_UNSHARED				/* no room: fetch it for this worker only */
} TokenState;

extern Size execlog_token_shmem_size(void);
extern void execlog_token_shmem_request(void);
extern void execlog_token_shmem_startup(void);
extern TokenState execlog_token_get(int64 connection_id, TimestampTz updated_at,
									const char *stale, TimestampTz waiting_since,
									char **token, TimestampTz *expires_at,
									char **error);
extern bool execlog_token_put(int64 connection_id, TimestampTz updated_at,
							  const char *token, TimestampTz expires_at,
							  const char *error);

/* http_policy.c */
typedef struct HttpPolicy HttpPolicy;

extern HttpPolicy *execlog_http_policy_current(void);
extern void execlog_http_policy_retain(HttpPolicy *policy);
extern void execlog_http_policy_release(HttpPolicy *policy);
extern bool execlog_http_policy_check_host(HttpPolicy *policy, const char *host,
										   char *why, size_t whylen);
extern bool execlog_http_policy_check_addr(HttpPolicy *policy, const char *host,
										   const struct sockaddr *sa,
										   char *why, size_t whylen);
extern bool execlog_http_list_check(char **newval, void **extra, GucSource source);

#endif							/* EXECLOG_HTTP_H */
