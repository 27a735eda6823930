/* ------------------------------------------------------------------------
 * t11 (bad-input corpus): on_failure.task.due is at most 1 year, like a
 * task step's "due" (1000000 years was accepted and then gave no due time).
 * The final body of execlog._on_failure_check(), identical to the full
 * script's (src/sql/45_alerts.sql); automations of 0.1 keep what they had
 * until they are next written.
 * ------------------------------------------------------------------------ */
CREATE OR REPLACE FUNCTION execlog._on_failure_check() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f jsonb := NEW.on_failure;
	part jsonb;
	k text;
	v jsonb;
	channel text;
	due interval;
BEGIN
	IF f IS NULL THEN
		RETURN NEW;
	END IF;
	IF jsonb_typeof(f) <> 'object' THEN
		RAISE EXCEPTION 'on_failure of automation "%" must be a JSON object', NEW.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example {"task": {"assignee": "ops"}, "alert": {"channel": "ops-slack"}}.';
	END IF;
	FOR k IN SELECT jsonb_object_keys(f) LOOP
		IF k NOT IN ('task', 'alert') THEN
			RAISE EXCEPTION 'unknown key "%" in on_failure of automation "%"', k, NEW.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'on_failure takes "task" and "alert".';
		END IF;
		IF jsonb_typeof(f -> k) <> 'object' THEN
			RAISE EXCEPTION 'on_failure.% of automation "%" must be a JSON object', k, NEW.name
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;

	part := f -> 'task';
	IF part IS NOT NULL THEN
		FOR k, v IN SELECT * FROM jsonb_each(part) LOOP
			IF k NOT IN ('assignee', 'title', 'body', 'due') THEN
				RAISE EXCEPTION 'unknown key "%" in on_failure.task of automation "%"', k, NEW.name
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'on_failure.task takes "assignee", "title", "body" and "due".';
			END IF;
			IF jsonb_typeof(v) <> 'string' THEN
				RAISE EXCEPTION 'on_failure.task.% of automation "%" must be a string', k, NEW.name
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		END LOOP;
		IF part ? 'due' THEN
			BEGIN
				due := (part ->> 'due')::interval;
			EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
				RAISE EXCEPTION 'on_failure.task.due of automation "%" is not an interval', NEW.name
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'For example "4 hours".';
			END;
			IF due <= interval '0' THEN
				RAISE EXCEPTION 'on_failure.task.due of automation "%" must be positive', NEW.name
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			/* as a task step's "due": a task is due within a year */
			IF due > interval '1 year' THEN
				RAISE EXCEPTION 'on_failure.task.due of automation "%" must be at most 1 year, not %', NEW.name, part ->> 'due'
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		END IF;
	END IF;

	part := f -> 'alert';
	IF part IS NOT NULL THEN
		FOR k, v IN SELECT * FROM jsonb_each(part) LOOP
			IF k NOT IN ('channel', 'target', 'message') THEN
				RAISE EXCEPTION 'unknown key "%" in on_failure.alert of automation "%"', k, NEW.name
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'on_failure.alert takes "channel", "target" and "message".';
			END IF;
			IF jsonb_typeof(v) <> 'string' THEN
				RAISE EXCEPTION 'on_failure.alert.% of automation "%" must be a string', k, NEW.name
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		END LOOP;
		channel := part ->> 'channel';
		IF channel IS NULL THEN
			RAISE EXCEPTION 'on_failure.alert of automation "%" needs "channel"', NEW.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Name a channel of execlog.channels, or use "email" with an address as "target".';
		END IF;
		IF channel ~* '^[a-z][a-z0-9+.-]*://' OR (part ->> 'target') ~* '^[a-z][a-z0-9+.-]*://' THEN
			RAISE EXCEPTION 'on_failure.alert of automation "%" cannot hold a URL', NEW.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Create a channel (INSERT INTO execlog.channels (account_id, name, kind, config) ...) and name it in "channel": its URL is kept secret there.';
		END IF;
		IF part ? 'target' THEN
			IF channel <> 'email' THEN
				RAISE EXCEPTION 'on_failure.alert of automation "%" has a "target" but channel "%" is not "email"', NEW.name, channel
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'Only "channel": "email" takes a literal address as "target"; other alerts name a channel.';
			END IF;
			IF NOT execlog._is_email(part ->> 'target') THEN
				RAISE EXCEPTION 'on_failure.alert.target of automation "%" is not an e-mail address', NEW.name
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'Give a plain address such as "ops@example.com".';
			END IF;
		ELSIF NOT EXISTS (SELECT 1 FROM execlog.channels c
						   WHERE c.account_id = NEW.account_id AND c.name = channel) THEN
			RAISE EXCEPTION 'channel "%" of on_failure.alert of automation "%" does not exist in its account', channel, NEW.name
				USING ERRCODE = 'undefined_object',
					  HINT = CASE WHEN channel IN ('slack', 'teams', 'webhook', 'email')
								  THEN 'Create a channel of that kind in execlog.channels and give its name.'
								  ELSE 'Create it in execlog.channels first.' END;
		END IF;
	END IF;
	RETURN NEW;
END
$$;
