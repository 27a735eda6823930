/*-------------------------------------------------------------------------
 *
 * alerts.h
 *	  Alert delivery: what the workers know about an alert they deliver,
 *	  and the kinds of channel (SPEC §6).
 *
 *	alerts.c		alert rows; the table of channel kinds and their
 *					payloads (Slack, Teams, webhook, e-mail)
 *	alert_send.c	delivery by the workers: claims, retries, storm control,
 *					through the worker's HTTP transport (http_transport.c)
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXECLOG_ALERTS_H
#define EXECLOG_ALERTS_H

#include "http.h"

/* Execution ids a digest lists at most. */
#define EXECLOG_DIGEST_MAX_IDS 20

/* One alert being delivered, with the facts of its execution. */
typedef struct AlertFacts
{
	int64		id;
	int32		attempts;		/* tries made, this one included */
	char	   *kind;			/* slack, teams, webhook or email */
	char	   *target;			/* channel name or e-mail address */
	char	   *message;
	TimestampTz created_at;
	Jsonb	   *config;			/* the channel's (secret); NULL: literal address */

	/* the execution (for a digest: the latest one it reports) */
	int64		execution_id;
	char	   *automation;
	char	   *account;
	char	   *status;
	int32		attempt;
	char	   *error;			/* NULL: none */
	TimestampTz started_at;		/* 0: none */
	TimestampTz finished_at;	/* 0: none */

	/* a digest of coalesced alerts */
	bool		digest;
	int64		digest_count;	/* executions it reports */
	TimestampTz digest_since;	/* when the alert that opened the window was sent */
	int			n_digest_ids;
	int64		digest_ids[EXECLOG_DIGEST_MAX_IDS];
} AlertFacts;

/*
 * The request that delivers an alert, as a kind formats it; spec.secrets
 * lists the secrets it carries, scrubbed from whatever is stored.
 */
typedef struct AlertRequest
{
	HttpSpec	spec;
} AlertRequest;

/* A kind of channel. */
typedef struct AlertKind
{
	const char *name;

	/*
	 * Build the request delivering the alert into req (memory of the
	 * current context); false, with why, when it cannot be built (a setting
	 * is missing): the attempt fails with that error.
	 */
	bool		(*format) (AlertFacts *alert, AlertRequest *req, char **why);

	/* Whether an answer with this status means delivered. */
	bool		(*delivered) (long status);
} AlertKind;

/* alerts.c */
extern const AlertKind *execlog_alert_kind(const char *name);
extern void execlog_alert_add_secret(AlertRequest *req, const char *secret);
extern bool execlog_smtp_from_check(char **newval, void **extra, GucSource source);
extern bool execlog_smtp_split_url(const char *in, char **url, char **user,
								   char **password);
extern bool execlog_smtp_url_check(char **newval, void **extra, GucSource source);

/* alert_send.c: the worker's side */
extern bool execlog_alerts_created;
extern bool execlog_alerts_pass(long *sleep_ms);
extern long execlog_alerts_wait_ms(long wait_ms);

#endif							/* EXECLOG_ALERTS_H */
