-- The core of Roster: apps, sources, properties, profiles, identity, groups, destinations,
-- export state, runs and events. Internal tables live in roster_core; the views analysts
-- read live in roster (sql/views/).

CREATE SCHEMA IF NOT EXISTS roster;

CREATE TABLE roster_core.apps (
  id bigserial PRIMARY KEY,
  key text NOT NULL,
  type text NOT NULL,
  options jsonb NOT NULL DEFAULT '{}',
  -- Names of the environment variables that hold each secret option; never the secret itself.
  secret_envs jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT apps_key_key UNIQUE (key)
);

CREATE TABLE roster_core.sources (
  id bigserial PRIMARY KEY,
  key text NOT NULL,
  app_id bigint NOT NULL,
  options jsonb NOT NULL DEFAULT '{}',
  schedule_interval_ms bigint,
  schedule_cron text,
  next_run_at timestamptz,
  -- The high-water mark of the last committed batch: {"value": ..., "tieBreaker": ...}.
  cursor jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT sources_key_key UNIQUE (key),
  CONSTRAINT sources_app_id_fkey FOREIGN KEY (app_id) REFERENCES roster_core.apps (id)
);

CREATE TABLE roster_core.properties (
  id bigserial PRIMARY KEY,
  key text NOT NULL,
  type text NOT NULL,
  is_unique boolean NOT NULL DEFAULT false,
  is_list boolean NOT NULL DEFAULT false,
  source_id bigint,
  -- How the value is fetched: {"kind": "column" | "aggregate" | "query", ...}.
  fetch_options jsonb NOT NULL DEFAULT '{}',
  -- The typed column of roster_core.profiles that holds this property's values.
  column_name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT properties_key_key UNIQUE (key),
  CONSTRAINT properties_column_name_key UNIQUE (column_name),
  CONSTRAINT properties_type_check CHECK (type IN ('string', 'email', 'integer', 'float', 'boolean', 'date', 'url', 'phone')),
  CONSTRAINT properties_unique_not_list_check CHECK (NOT (is_unique AND is_list)),
  CONSTRAINT properties_source_id_fkey FOREIGN KEY (source_id) REFERENCES roster_core.sources (id)
);

CREATE SEQUENCE roster_core.profile_revision_seq;

-- One row per profile. Each property gets a typed column of its own (added and dropped by
-- `roster apply`), so Postgres compares and indexes values natively: see docs/architecture.md.
CREATE TABLE roster_core.profiles (
  id bigserial PRIMARY KEY,
  -- Bumped on every change of a value or a group membership; exports compare against it.
  revision bigint NOT NULL DEFAULT nextval('roster_core.profile_revision_seq'),
  -- Per property key: {"createdAt": ..., "updatedAt": ...} of its current value.
  value_times jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON COLUMN roster_core.profiles.revision IS 'Increases whenever a value or a group membership of the profile changes';

-- Identity: each value of a unique property points at exactly one profile.
CREATE TABLE roster_core.identities (
  property_id bigint NOT NULL,
  value text NOT NULL,
  profile_id bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT identities_pkey PRIMARY KEY (property_id, value),
  CONSTRAINT identities_property_id_fkey FOREIGN KEY (property_id) REFERENCES roster_core.properties (id) ON DELETE CASCADE,
  CONSTRAINT identities_profile_id_fkey FOREIGN KEY (profile_id) REFERENCES roster_core.profiles (id) ON DELETE CASCADE
);
CREATE INDEX identities_profile_id_idx ON roster_core.identities (profile_id);

-- Values that failed their property's type, kept with the reason instead of being dropped.
CREATE TABLE roster_core.invalid_values (
  profile_id bigint NOT NULL,
  property_id bigint NOT NULL,
  raw_value text,
  reason text NOT NULL,
  source_id bigint,
  seen_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT invalid_values_pkey PRIMARY KEY (profile_id, property_id),
  CONSTRAINT invalid_values_profile_id_fkey FOREIGN KEY (profile_id) REFERENCES roster_core.profiles (id) ON DELETE CASCADE,
  CONSTRAINT invalid_values_property_id_fkey FOREIGN KEY (property_id) REFERENCES roster_core.properties (id) ON DELETE CASCADE
);

-- Two unique values of one record that point at different profiles, and what was done about it.
CREATE TABLE roster_core.identity_conflicts (
  id bigserial PRIMARY KEY,
  source_id bigint,
  run_id bigint,
  property_key text NOT NULL,
  value text NOT NULL,
  profile_id bigint NOT NULL,
  other_profile_id bigint NOT NULL,
  resolution text NOT NULL,
  record_ref text,
  created_at timestamptz NOT NULL DEFAULT now()
);
-- A conflict is reported once, however often the same record is read again.
CREATE UNIQUE INDEX identity_conflicts_pair_idx ON roster_core.identity_conflicts (property_key, value, profile_id, other_profile_id);

CREATE TABLE roster_core.groups (
  id bigserial PRIMARY KEY,
  key text NOT NULL,
  type text NOT NULL,
  rule jsonb,
  is_time_relative boolean NOT NULL DEFAULT false,
  -- The rule compiled to a predicate over roster_core.profiles, with literals inlined safely.
  compiled_sql text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT groups_key_key UNIQUE (key),
  CONSTRAINT groups_type_check CHECK (type IN ('manual', 'calculated'))
);

CREATE TABLE roster_core.group_memberships (
  group_id bigint NOT NULL,
  profile_id bigint NOT NULL,
  entered_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT group_memberships_pkey PRIMARY KEY (group_id, profile_id),
  CONSTRAINT group_memberships_group_id_fkey FOREIGN KEY (group_id) REFERENCES roster_core.groups (id) ON DELETE CASCADE,
  CONSTRAINT group_memberships_profile_id_fkey FOREIGN KEY (profile_id) REFERENCES roster_core.profiles (id) ON DELETE CASCADE
);
CREATE INDEX group_memberships_profile_id_idx ON roster_core.group_memberships (profile_id);

CREATE TABLE roster_core.group_membership_history (
  id bigserial PRIMARY KEY,
  group_id bigint NOT NULL,
  profile_id bigint NOT NULL,
  action text NOT NULL,
  reason text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT group_membership_history_action_check CHECK (action IN ('enter', 'exit'))
);
CREATE INDEX group_membership_history_group_id_at_idx ON roster_core.group_membership_history (group_id, at);
CREATE INDEX group_membership_history_profile_id_idx ON roster_core.group_membership_history (profile_id);

CREATE TABLE roster_core.destinations (
  id bigserial PRIMARY KEY,
  key text NOT NULL,
  app_id bigint NOT NULL,
  options jsonb NOT NULL DEFAULT '{}',
  -- Destination field name -> property key.
  mapping jsonb NOT NULL DEFAULT '{}',
  -- Hash of everything that shapes a payload; a change makes every member a candidate again.
  config_hash text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT destinations_key_key UNIQUE (key),
  CONSTRAINT destinations_app_id_fkey FOREIGN KEY (app_id) REFERENCES roster_core.apps (id)
);

CREATE TABLE roster_core.destination_groups (
  destination_id bigint NOT NULL,
  group_id bigint NOT NULL,
  CONSTRAINT destination_groups_pkey PRIMARY KEY (destination_id, group_id),
  CONSTRAINT destination_groups_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES roster_core.destinations (id) ON DELETE CASCADE,
  CONSTRAINT destination_groups_group_id_fkey FOREIGN KEY (group_id) REFERENCES roster_core.groups (id)
);

CREATE TABLE roster_core.runs (
  id bigserial PRIMARY KEY,
  kind text NOT NULL,
  source_id bigint,
  destination_id bigint,
  status text NOT NULL DEFAULT 'queued',
  trigger text NOT NULL DEFAULT 'manual',
  counts jsonb NOT NULL DEFAULT '{}',
  error_code text,
  error_message text,
  cursor_before jsonb,
  cursor_after jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  -- Touched after every committed batch; a running run whose heartbeat stops is abandoned.
  heartbeat_at timestamptz,
  finished_at timestamptz,
  CONSTRAINT runs_kind_check CHECK (kind IN ('import', 'export')),
  CONSTRAINT runs_status_check CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  CONSTRAINT runs_source_id_fkey FOREIGN KEY (source_id) REFERENCES roster_core.sources (id) ON DELETE CASCADE,
  CONSTRAINT runs_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES roster_core.destinations (id) ON DELETE CASCADE
);
-- At most one unfinished run per source and per destination.
CREATE UNIQUE INDEX runs_active_source_idx ON roster_core.runs (source_id) WHERE status IN ('queued', 'running') AND source_id IS NOT NULL;
CREATE UNIQUE INDEX runs_active_destination_idx ON roster_core.runs (destination_id) WHERE status IN ('queued', 'running') AND destination_id IS NOT NULL;

-- The last successful export of each profile to each destination: the baseline of the next diff.
CREATE TABLE roster_core.export_state (
  destination_id bigint NOT NULL,
  profile_id bigint NOT NULL,
  revision bigint NOT NULL,
  payload_hash text NOT NULL,
  -- The destination's config_hash when this was sent; a config change makes the profile due again.
  config_hash text NOT NULL DEFAULT '',
  is_removed boolean NOT NULL DEFAULT false,
  exported_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT export_state_pkey PRIMARY KEY (destination_id, profile_id),
  CONSTRAINT export_state_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES roster_core.destinations (id) ON DELETE CASCADE
);

-- The export ledger: one row per record per attempt.
CREATE TABLE roster_core.export_records (
  id bigserial PRIMARY KEY,
  run_id bigint NOT NULL,
  destination_id bigint NOT NULL,
  profile_id bigint NOT NULL,
  action text NOT NULL,
  payload jsonb NOT NULL,
  payload_hash text NOT NULL,
  revision bigint NOT NULL,
  status text NOT NULL DEFAULT 'pending',
  error_code text,
  error_message text,
  -- False when the destination refused the data itself: the same payload is not sent again.
  is_retryable boolean,
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  CONSTRAINT export_records_action_check CHECK (action IN ('create', 'update', 'remove')),
  CONSTRAINT export_records_status_check CHECK (status IN ('pending', 'sent', 'failed')),
  CONSTRAINT export_records_run_id_fkey FOREIGN KEY (run_id) REFERENCES roster_core.runs (id) ON DELETE CASCADE
);
CREATE INDEX export_records_run_id_idx ON roster_core.export_records (run_id);
CREATE INDEX export_records_destination_id_profile_id_idx ON roster_core.export_records (destination_id, profile_id);

-- Profiles whose properties must be refreshed from every source.
CREATE TABLE roster_core.hydration_queue (
  profile_id bigint PRIMARY KEY,
  queued_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT hydration_queue_profile_id_fkey FOREIGN KEY (profile_id) REFERENCES roster_core.profiles (id) ON DELETE CASCADE
);
