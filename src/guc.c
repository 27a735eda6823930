/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  The execlog.* settings.
 *
 * Every setting is documented in README.md with its default and whether a
 * reload (SIGHUP) or a restart is needed to change it.
 *
 *-------------------------------------------------------------------------
 */
#include "execlog.h"
#include "http.h"
#include "alerts.h"

#include <limits.h>

#include "utils/guc.h"
#include "utils/memutils.h"

char	   *execlog_database = NULL;
int			execlog_workers = 2;
int			execlog_max_connections_per_host = 32;
int			execlog_http_timeout_ms = 30000;
int			execlog_max_payload_bytes = 1024 * 1024;
char	   *execlog_http_allow = NULL;
char	   *execlog_http_deny = NULL;
char	   *execlog_smtp_url = NULL;
char	   *execlog_ssl_ca_file = NULL;
char	   *execlog_smtp_from = NULL;
int			execlog_alert_max_attempts = 5;
int			execlog_alert_retry_delay_ms = 30000;
int			execlog_alert_coalesce_s = 300;
bool		execlog_alert_delivery = true;
int			execlog_retention_min = 0;
int			execlog_partition_interval_min = 1440;
int			execlog_batch_size = 100;

/*
 * execlog_define_gucs
 *		Define all execlog.* settings and reserve the prefix.
 */
void
execlog_define_gucs(void)
{
	DefineCustomStringVariable("execlog.database",
							   "Database whose automations the execlog workers run.",
							   NULL,
							   &execlog_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("execlog.workers",
							"Number of background workers that run executions.",
							"0 disables execution: executions stay pending.",
							&execlog_workers,
							2, 0, EXECLOG_MAX_WORKERS,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("execlog.max_connections_per_host",
							"Maximum number of concurrent HTTP connections per host and worker.",
							NULL,
							&execlog_max_connections_per_host,
							32, 1, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("execlog.http_timeout",
							"Default timeout of an HTTP step.",
							NULL,
							&execlog_http_timeout_ms,
							30000, 1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("execlog.max_payload_bytes",
							"Largest payload stored as is; larger ones are stored truncated with a marker.",
							NULL,
							&execlog_max_payload_bytes,
							1024 * 1024, 1024, MaxAllocSize / 4,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("execlog.http_allow",
							   "Hosts and CIDR ranges HTTP steps may connect to (empty: any not denied).",
							   NULL,
							   &execlog_http_allow,
							   "",
							   PGC_SIGHUP,
							   0,
							   execlog_http_list_check, NULL, NULL);

	DefineCustomStringVariable("execlog.http_deny",
							   "Hosts and CIDR ranges HTTP steps may never connect to.",
							   "Cloud metadata addresses are always denied unless explicitly allowed.",
							   &execlog_http_deny,
							   "",
							   PGC_SIGHUP,
							   0,
							   execlog_http_list_check, NULL, NULL);

	DefineCustomStringVariable("execlog.smtp_url",
							   "SMTP server used to deliver e-mail alerts, e.g. smtp://127.0.0.1:25.",
							   NULL,
							   &execlog_smtp_url,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   execlog_smtp_url_check, NULL, NULL);

	DefineCustomStringVariable("execlog.ssl_ca_file",
							   "CA certificates (PEM file) that verify TLS peers of http steps and alerts.",
							   "Applies to https, smtps and STARTTLS; empty: the system's CA store.",
							   &execlog_ssl_ca_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("execlog.smtp_from",
							   "Sender (From) of e-mail alerts.",
							   NULL,
							   &execlog_smtp_from,
							   "execlog@localhost",
							   PGC_SIGHUP,
							   0,
							   execlog_smtp_from_check, NULL, NULL);

	DefineCustomIntVariable("execlog.alert_max_attempts",
							"Delivery attempts of an alert before it is failed.",
							NULL,
							&execlog_alert_max_attempts,
							5, 1, 100,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("execlog.alert_retry_delay",
							"Delay before the second delivery attempt of an alert; it doubles with every further attempt.",
							"A longer Retry-After of the receiver wins.",
							&execlog_alert_retry_delay_ms,
							30000, 1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("execlog.alert_coalesce",
							"Window after an alert of an automation was sent to a channel in which its further alerts there are coalesced into one digest.",
							"0 turns coalescing off.",
							&execlog_alert_coalesce_s,
							300, 0, INT_MAX / 1000,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("execlog.alert_delivery",
							 "Whether the workers deliver alerts.",
							 "Off: alerts are still created and stay pending; they are delivered once it is on again.",
							 &execlog_alert_delivery,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("execlog.retention",
							"Finished executions older than this are pruned by the workers (0 keeps everything).",
							NULL,
							&execlog_retention_min,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("execlog.partition_interval",
							"Length of the time interval whose executions share one history partition.",
							"Worker 0 opens the next partition when an interval begins (UTC). Under a day is for tests.",
							&execlog_partition_interval_min,
							1440, 1, 366 * 1440,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("execlog.batch_size",
							"Number of executions a worker claims at once.",
							NULL,
							&execlog_batch_size,
							100, 1, 10000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("execlog");
}
