
/* ------------------------------------------------------------------------
 * Channels and on_failure: validated when written (SPEC §6)
 *
 * Messages never repeat a channel's config: it is secret.
 * ------------------------------------------------------------------------ */

/* Whether a text is a plain e-mail address (local@domain, no display name). */
CREATE FUNCTION execlog._is_email(address text) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
	SELECT address OPERATOR(pg_catalog.~) '^[A-Za-z0-9.!#$%&''*+/=?^_`{|}~-]+@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$'
		   AND pg_catalog.length(address) OPERATOR(pg_catalog.<=) 254
$$;
COMMENT ON FUNCTION execlog._is_email(text) IS 'whether the text is a plain e-mail address (internal)';

/* Check a channel's config for its kind; refuses unknown keys and bad types. */
CREATE FUNCTION execlog._channels_check() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	allowed text[];
	k text;
	v jsonb;
	i integer := 0;
BEGIN
	IF jsonb_typeof(NEW.config) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'config of channel "%" must be a JSON object', NEW.name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	allowed := CASE NEW.kind
		WHEN 'slack' THEN ARRAY['url']
		WHEN 'teams' THEN ARRAY['url']
		WHEN 'webhook' THEN ARRAY['url', 'secret', 'headers']
		WHEN 'email' THEN ARRAY['to'] END;
	IF allowed IS NULL THEN
		RAISE EXCEPTION 'unknown channel kind "%"', NEW.kind
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A channel is of kind slack, teams, email or webhook.';
	END IF;
	FOR k IN SELECT jsonb_object_keys(NEW.config) LOOP
		IF NOT k = ANY (allowed) THEN
			RAISE EXCEPTION 'unknown key "%" in the config of % channel "%"', k, NEW.kind, NEW.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = format('The config of a %s channel takes: %s.', NEW.kind, array_to_string(allowed, ', '));
		END IF;
	END LOOP;
	IF NEW.kind = 'email' THEN
		v := NEW.config -> 'to';
		IF jsonb_typeof(v) IS DISTINCT FROM 'array' OR jsonb_array_length(v) = 0 THEN
			RAISE EXCEPTION 'e-mail channel "%" needs "to": a non-empty array of addresses', NEW.name
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'For example {"to": ["ops@example.com"]}.';
		END IF;
		FOR v IN SELECT jsonb_array_elements(NEW.config -> 'to') LOOP
			i := i + 1;
			IF jsonb_typeof(v) IS DISTINCT FROM 'string' OR NOT execlog._is_email(v #>> '{}') THEN
				RAISE EXCEPTION 'element % of "to" of e-mail channel "%" is not an e-mail address', i, NEW.name
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'Give plain addresses such as "ops@example.com".';
			END IF;
		END LOOP;
		RETURN NEW;
	END IF;
	v := NEW.config -> 'url';
	IF jsonb_typeof(v) IS DISTINCT FROM 'string' OR (v #>> '{}') !~* '^https?://[^/@[:space:]]+(/[^[:space:]]*)?$' THEN
		RAISE EXCEPTION '% channel "%" needs "url": an http or https URL', NEW.kind, NEW.name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NEW.config ? 'secret' AND (jsonb_typeof(NEW.config -> 'secret') IS DISTINCT FROM 'string'
								  OR NEW.config ->> 'secret' = '') THEN
		RAISE EXCEPTION '"secret" of webhook channel "%" must be a non-empty string', NEW.name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NEW.config ? 'headers' THEN
		IF jsonb_typeof(NEW.config -> 'headers') IS DISTINCT FROM 'object' THEN
			RAISE EXCEPTION '"headers" of webhook channel "%" must be an object of strings', NEW.name
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		FOR k, v IN SELECT * FROM jsonb_each(NEW.config -> 'headers') LOOP
			IF jsonb_typeof(v) IS DISTINCT FROM 'string' OR k !~ '^[A-Za-z0-9!#$%&''*+.^_`|~-]+$'
			   OR (v #>> '{}') ~ '[\r\n]' THEN
				RAISE EXCEPTION 'header "%" of webhook channel "%" is not a valid header', k, NEW.name
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'Header names are tokens; values are strings without line breaks.';
			END IF;
		END LOOP;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION execlog._channels_check() IS 'validates a channel''s config for its kind (internal)';

CREATE TRIGGER channels_check BEFORE INSERT OR UPDATE OF kind, config, name ON execlog.channels
	FOR EACH ROW EXECUTE FUNCTION execlog._channels_check();

/*
 * A channel named by an automation's on_failure cannot be deleted or
 * renamed away (the automation would lose its alert).
 */
CREATE FUNCTION execlog._channels_in_use() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a text;
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.name = OLD.name AND NEW.account_id = OLD.account_id THEN
		RETURN NEW;
	END IF;
	SELECT au.name INTO a FROM execlog.automations au
	 WHERE au.account_id = OLD.account_id
	   AND au.on_failure -> 'alert' ->> 'channel' = OLD.name
	   AND NOT (au.on_failure -> 'alert' ? 'target')
	 ORDER BY au.name LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'channel "%" is used by automation "%"', OLD.name, a
			USING ERRCODE = 'dependent_objects_still_exist',
				  HINT = 'Change the automation''s on_failure first.';
	END IF;
	RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION execlog._channels_in_use() IS 'keeps channels named by on_failure (internal)';

CREATE TRIGGER channels_in_use BEFORE DELETE OR UPDATE OF name, account_id ON execlog.channels
	FOR EACH ROW EXECUTE FUNCTION execlog._channels_in_use();

/*
 * Check automations.on_failure: {"task": {assignee, title, body, due},
 * "alert": {channel, target, message}}.  The alert's channel names a
 * channel of the automation's account, or is "email" with a literal
 * address as target; a URL is refused.
 */
CREATE FUNCTION execlog._on_failure_check() RETURNS trigger
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
COMMENT ON FUNCTION execlog._on_failure_check() IS 'validates automations.on_failure when it is written (internal)';

CREATE TRIGGER automations_on_failure_check BEFORE INSERT OR UPDATE OF on_failure, account_id, name ON execlog.automations
	FOR EACH ROW EXECUTE FUNCTION execlog._on_failure_check();
