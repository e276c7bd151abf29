-- Events: Segment-style ingestion, write keys, anonymous identity, profile merges and
-- outbound event delivery.

-- The time Roster calls "now" in rules and event windows. A database or session can pin it
-- (SET roster.clock = '2005-08-30') to replay history; unset, it is the transaction time.
CREATE FUNCTION roster_core.clock() RETURNS timestamptz
LANGUAGE sql STABLE
AS $$ SELECT COALESCE(NULLIF(current_setting('roster.clock', true), '')::timestamptz, now()) $$;

-- Settings that are not objects of their own (e.g. which property a Segment userId names).
CREATE TABLE roster_core.settings (
  key text PRIMARY KEY,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE roster_core.write_keys (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  -- sha256 of the key; the key itself is shown once, when created, and never stored.
  key_hash text NOT NULL,
  -- The first characters of the key, so people can tell keys apart.
  key_prefix text NOT NULL,
  -- 'cli' for keys made with `roster write-key create`, 'config' for keys from config files.
  origin text NOT NULL DEFAULT 'cli',
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  CONSTRAINT write_keys_name_key UNIQUE (name),
  CONSTRAINT write_keys_key_hash_key UNIQUE (key_hash),
  CONSTRAINT write_keys_origin_check CHECK (origin IN ('cli', 'config'))
);

-- Every event ever received, partitioned by day of receipt so that retention drops whole
-- partitions instead of deleting rows under the ingestion path.
CREATE TABLE roster_core.events (
  id bigint GENERATED ALWAYS AS IDENTITY,
  message_id text NOT NULL,
  type text NOT NULL,
  -- The track event name, or the page or screen name.
  event text,
  user_id text,
  anonymous_id text,
  -- alias: the identity being linked to user_id.
  previous_id text,
  group_id text,
  properties jsonb NOT NULL DEFAULT '{}',
  traits jsonb NOT NULL DEFAULT '{}',
  context jsonb NOT NULL DEFAULT '{}',
  write_key_id bigint,
  -- The client's timestamp corrected for its clock skew (timestamp + receivedAt - sentAt).
  occurred_at timestamptz NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  profile_id bigint,
  processed_at timestamptz,
  CONSTRAINT events_pkey PRIMARY KEY (id, received_at),
  CONSTRAINT events_type_check CHECK (type IN ('identify', 'track', 'page', 'screen', 'group', 'alias'))
) PARTITION BY RANGE (received_at);

-- Catches rows no daily partition covers; partitions are created days ahead so it stays empty.
CREATE TABLE roster_core.events_default PARTITION OF roster_core.events DEFAULT;

CREATE INDEX events_pending_idx ON roster_core.events (received_at, id) WHERE processed_at IS NULL;
CREATE INDEX events_profile_id_event_occurred_at_idx ON roster_core.events (profile_id, event, occurred_at);

COMMENT ON COLUMN roster_core.events.occurred_at IS 'When the event happened, corrected for the client clock skew using sentAt';

-- messageIds seen within the de-duplication window (default 7 days).
CREATE TABLE roster_core.event_message_ids (
  message_id text PRIMARY KEY,
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_message_ids_received_at_idx ON roster_core.event_message_ids (received_at);

-- Anonymous ids (devices, browsers) and the profile each currently stands for.
CREATE TABLE roster_core.anonymous_ids (
  anonymous_id text PRIMARY KEY,
  profile_id bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT anonymous_ids_profile_id_fkey FOREIGN KEY (profile_id) REFERENCES roster_core.profiles (id) ON DELETE CASCADE
);
CREATE INDEX anonymous_ids_profile_id_idx ON roster_core.anonymous_ids (profile_id);

-- Every merge of one profile into another, and the rule that allowed it.
CREATE TABLE roster_core.profile_merges (
  id bigserial PRIMARY KEY,
  from_profile_id bigint NOT NULL,
  into_profile_id bigint NOT NULL,
  reason text NOT NULL,
  details jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Event types a destination wants forwarded, enriched with the profile's mapped properties.
ALTER TABLE roster_core.destinations ADD COLUMN event_names text[] NOT NULL DEFAULT '{}';

-- Events waiting to be forwarded to a destination, and what became of each.
CREATE TABLE roster_core.outbound_events (
  id bigserial PRIMARY KEY,
  destination_id bigint NOT NULL,
  event_id bigint NOT NULL,
  profile_id bigint NOT NULL,
  -- waiting: the profile is not hydrated yet; ready: send it; then sent, failed or skipped.
  status text NOT NULL DEFAULT 'waiting',
  attempts integer NOT NULL DEFAULT 0,
  payload jsonb,
  error_code text,
  error_message text,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz,
  CONSTRAINT outbound_events_status_check CHECK (status IN ('waiting', 'ready', 'sent', 'failed', 'skipped')),
  CONSTRAINT outbound_events_destination_id_event_id_key UNIQUE (destination_id, event_id),
  CONSTRAINT outbound_events_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES roster_core.destinations (id) ON DELETE CASCADE
);
CREATE INDEX outbound_events_due_idx ON roster_core.outbound_events (destination_id, next_attempt_at) WHERE status IN ('waiting', 'ready');
CREATE INDEX outbound_events_profile_id_idx ON roster_core.outbound_events (profile_id) WHERE status = 'waiting';
