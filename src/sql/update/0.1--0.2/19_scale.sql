--
-- Issue 13 (scale): execlog.start_many(), the set-based enqueue.
--
CREATE FUNCTION execlog.start_many(automation text, payloads jsonb[], account text DEFAULT NULL)
	RETURNS SETOF bigint LANGUAGE c AS 'MODULE_PATHNAME', 'execlog_start_many';
COMMENT ON FUNCTION execlog.start_many(text, jsonb[], text) IS 'start an automation once per payload (manual trigger) in one statement; returns the execution ids in the order of the payloads';
REVOKE ALL ON FUNCTION execlog.start_many(text, jsonb[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION execlog.start_many(text, jsonb[], text) TO execlog_operator;
