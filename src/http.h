/*-------------------------------------------------------------------------
 *
 * http.h
 *	  The worker's HTTP transport, and its two users: http steps and alert
 *	  deliveries.
 *
 * The transport (http_transport.c) sends requests through the one libcurl
 * multi handle of the worker (connections kept alive, the address policy
 * execlog.http_allow / http_deny, per-host limits, timeouts) and reports
 * each result, with its timing, to a callback of its caller.  It knows
 * nothing of executions, steps or alerts: its callers decide what to store.
 *
 * An http step never runs inside the batch transaction.  The executor
 * validates it (steps_http.c) and stops the execution there, keeping the
 * step's row in memory; once the batch commits, the step runner
 * (steps_http_flight.c) hands the request to the transport, and the worker
 * waits on the sockets and its latch together.  A finished request is
 * continued in a later batch, which writes the step's row with the result,
 * and the execution goes on with its next steps.  A fast request therefore
 * costs one write of its row; one still in flight after
 * EXECLOG_HTTP_RECORD_AFTER_MS has its row written as "running" meanwhile,
 * so that slow requests can be watched.
 *
 *	http_transport.c	multi handle, sockets, timeouts, scrub, Retry-After
 *	steps_http.c		http steps: validation, connections and auth,
 *						results to step rows
 *	steps_http_flight.c	http steps in flight: batches, cancels, slow and
 *						stale step rows
 *	oauth2.c			OAuth2 token fetches, and the tokens shared by the
 *						workers (shared memory)
 *	http_policy.c		execlog.http_allow / execlog.http_deny
 *	alert_send.c		alert deliveries, HTTP or SMTP
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXECLOG_HTTP_H
#define EXECLOG_HTTP_H

#include "engine.h"

#include <sys/socket.h>

#include "utils/guc.h"

/* Redirects a request follows at most. */
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

/* A request for the transport (copied by execlog_http_submit). */
typedef struct HttpSpec
{
	char	   *method;
	char	   *url;
	List	   *headers;		/* "Name: value" strings */
	char	   *body;			/* NULL: no body */
	int			body_len;
	int			timeout_ms;		/* the request's timeout */
	TimestampTz deadline;		/* 0, or a time the request never outlives */
	HttpAuth	auth;
	List	   *secrets;		/* values carried by the request that are
								 * secret: sensitive header values, URL
								 * credentials; scrubbed from what is stored */
	HttpMail   *mail;			/* SMTP instead of HTTP; NULL: HTTP */
} HttpSpec;

/* The outcome of a request, as the transport reports it. */
typedef struct HttpResult
{
	TimestampTz submitted_at;	/* handed to the transport */
	TimestampTz started_at;		/* (last) handed to libcurl; 0: never */
	TimestampTz finished_at;
	long		status;			/* 0: no response */
	char	   *headers;		/* raw header block of the final response */
	size_t		headers_len;
	char	   *body;			/* first bytes of the body */
	size_t		body_len;
	uint64		body_total;		/* bytes received (more than body_len: cut) */
	char	   *error;			/* transport failure; NULL when answered */
	bool		time_limit;		/* stopped at the spec's deadline */
	List	   *secrets;		/* every secret the request carried (strings),
								 * scrubbed from what is stored */
} HttpResult;

/* A request in the transport (http_transport.c). */
typedef struct HttpRequest HttpRequest;

/*
 * Called once a request has finished, answered or not, always from
 * execlog_http_drive() (also for a request that failed as it was
 * submitted).  It may release the request and submit others.
 */
typedef void (*HttpDoneCallback) (HttpRequest *req, void *arg);

/* http_transport.c */
extern void execlog_http_init(void);
extern HttpRequest *execlog_http_new(const HttpSpec *spec, HttpDoneCallback done,
									 void *arg);
extern void execlog_http_start(HttpRequest *req);
extern HttpRequest *execlog_http_submit(const HttpSpec *spec, HttpDoneCallback done,
										void *arg);
extern HttpResult *execlog_http_result(HttpRequest *req);
extern void execlog_http_release(HttpRequest *req);
extern void execlog_http_drive(void);
extern int	execlog_http_socket(void);
extern long execlog_http_wait_ms(long wait_ms);
extern char *execlog_http_scrub(List *secrets, const char *data, size_t len,
								size_t *newlen);
extern int	execlog_http_retry_after(const char *value);

/* http_transport.c, for oauth2.c: requests waiting for a token */
extern void execlog_http_send_with_token(HttpRequest *req, const char *token);
extern void execlog_http_fail(HttpRequest *req, const char *error);

/* ----------
 * http steps
 * ----------
 */

/* An http step's request, prepared in the batch transaction. */
typedef struct HttpStep
{
	HttpSpec	spec;			/* deadline: the execution's time limit */
	int64		execution_id;
	int32		attempt;
	int32		position;

	/*
	 * The step's row, kept in memory while the request is in flight: it is
	 * written by the batch that records the result, or as "running" once
	 * the request has been in flight for EXECLOG_HTTP_RECORD_AFTER_MS.
	 */
	int64		account_id;
	char	   *name;
	Jsonb	   *input;
	TimestampTz started_at;
} HttpStep;

/* In flight this long, an http step's row is written as "running". */
#define EXECLOG_HTTP_RECORD_AFTER_MS 250

/* A finished http step request, for the batch continuing its execution. */
typedef struct HttpStepResult
{
	HttpStep   *step;			/* the request, with its step row */
	HttpResult *res;			/* what the transport reported */
	bool		consumed;		/* taken by a batch */
} HttpStepResult;

/* steps_http.c: in the batch transaction */
extern Jsonb *execlog_http_prepare(ExecRun *run, StepDef *def, Jsonb *input,
								   HttpStep **step);
extern void execlog_http_finish(ExecRun *run, StepDef *def, StepRow *row,
								HttpResult *res);
extern Jsonb *execlog_http_stored_input(Jsonb *input);

/* steps_http_flight.c: the worker's side of http steps */
extern void execlog_http_steps_defer(HttpStep *step);
extern void execlog_http_steps_batch_done(void);
extern void execlog_http_steps_batch_abort(void);
extern List *execlog_http_steps_finished_ids(List *ids);
extern HttpStepResult *execlog_http_steps_result(int64 execution_id, int32 attempt,
												 int32 position);
extern HttpStepResult *execlog_http_steps_result_of(int64 execution_id, int32 attempt);
extern void execlog_http_steps_unconsume(HttpStepResult *res);
extern bool execlog_http_steps_saturated(void);
extern long execlog_http_steps_wait_ms(long max_ms);
extern void execlog_http_steps_check_cancels(int slot);
extern void execlog_http_steps_record_slow(void);

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

/* Waiting for another worker's token fetch, look again this often. */
#define EXECLOG_TOKEN_POLL_MS 100

/* oauth2.c: the worker's token fetches (called by the transport) */
extern void execlog_oauth2_submit(HttpRequest *req, const HttpAuth *auth);
extern bool execlog_oauth2_refused(HttpRequest *req, const HttpAuth *auth,
								   const char *token_used);
extern void execlog_oauth2_forget(HttpRequest *req);
extern void execlog_oauth2_poll(void);
extern bool execlog_oauth2_waiting_for_others(void);

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
