
/* ------------------------------------------------------------------------
 * Engine: indexes the workers' claims and due-time lookups use
 * ------------------------------------------------------------------------ */

/* pending executions, and resumed ones waiting for a worker */
CREATE INDEX executions_to_claim ON execlog.executions (id)
	WHERE status = 'pending' OR (status = 'running' AND worker IS NULL);

/* queued executions of throttled automations */
CREATE INDEX executions_queued ON execlog.executions (automation_id, id)
	WHERE status = 'queued';
