
/* ------------------------------------------------------------------------
 * Alert delivery by the workers (src/alert_send.c, SPEC §6)
 * ------------------------------------------------------------------------ */

/*
 * Storm control: the coalescing window of each (automation, channel) an
 * alert was sent to.  Within it, further alerts of the automation to the
 * channel are coalesced into the window's digest, sent when it closes.
 */
CREATE TABLE execlog.alert_windows (
	automation_id bigint NOT NULL REFERENCES execlog.automations ON DELETE CASCADE,
	channel		text NOT NULL,
	opened_at	timestamptz NOT NULL,
	closes_at	timestamptz NOT NULL,
	digest_id	bigint,
	PRIMARY KEY (automation_id, channel)
);
COMMENT ON TABLE execlog.alert_windows IS 'coalescing windows of alerts per automation and channel (execlog.alert_coalesce; internal)';
COMMENT ON COLUMN execlog.alert_windows.automation_id IS 'the automation whose alerts are coalesced';
COMMENT ON COLUMN execlog.alert_windows.channel IS '"channel <id>", or "email <address>" for a literal address';
COMMENT ON COLUMN execlog.alert_windows.opened_at IS 'when the alert that opened the window was sent';
COMMENT ON COLUMN execlog.alert_windows.closes_at IS 'when the window closes and its digest is due';
COMMENT ON COLUMN execlog.alert_windows.digest_id IS 'the digest alert of the window, once an alert was coalesced';
ALTER TABLE execlog.alert_windows ENABLE ROW LEVEL SECURITY;
ALTER TABLE execlog.alert_windows FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON execlog.alert_windows
	USING (automation_id IN (SELECT a.id FROM execlog.automations a));
SELECT pg_catalog.pg_extension_config_dump('execlog.alert_windows', '');

/* a digest finds the alerts it coalesced; deleting an alert finds its coalesced ones */
CREATE INDEX alerts_digest ON execlog.alerts (digest_id) WHERE digest_id IS NOT NULL;

/* new alerts wake the workers at commit, whoever creates them */
CREATE FUNCTION execlog._alerts_wake() RETURNS trigger
	LANGUAGE c AS 'MODULE_PATHNAME', 'execlog_alerts_wake';
COMMENT ON FUNCTION execlog._alerts_wake() IS 'wakes the workers at commit to deliver new alerts (internal)';
REVOKE ALL ON FUNCTION execlog._alerts_wake() FROM PUBLIC;
CREATE TRIGGER alerts_wake AFTER INSERT ON execlog.alerts
	FOR EACH STATEMENT EXECUTE FUNCTION execlog._alerts_wake();
