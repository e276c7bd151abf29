-- Incremental export diffs: each destination remembers up to which profile revision and which
-- membership history row a successful diff has seen, so the next diff reads only what changed
-- after that point instead of every member and every export_state row.

-- A revision or history id is "seen" only when every transaction that could still hold a lower
-- one had finished before the diff read the data: `revision` and `history_id` are such safe
-- points. `pending_*` is the point read at the start of the last successful diff while other
-- transactions (`pending_vxids`) were still running; it becomes safe once they have all ended
-- before a later successful diff.
CREATE TABLE roster_core.export_marks (
  destination_id bigint PRIMARY KEY,
  -- The destination's config_hash the marks were taken under; a change means a full diff.
  config_hash text NOT NULL,
  revision bigint NOT NULL,
  history_id bigint NOT NULL,
  pending_revision bigint,
  pending_history_id bigint,
  pending_vxids text[],
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT export_marks_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES roster_core.destinations (id) ON DELETE CASCADE
);
COMMENT ON TABLE roster_core.export_marks IS
  'Per destination, the profile revision and membership history id up to which a successful export diff has seen every change';

-- Profiles a destination must reconsider on its next run whatever their revision: records it
-- rejected (retried until accepted, or until the same payload was refused too often).
CREATE TABLE roster_core.export_due (
  destination_id bigint NOT NULL,
  profile_id bigint NOT NULL,
  CONSTRAINT export_due_pkey PRIMARY KEY (destination_id, profile_id),
  CONSTRAINT export_due_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES roster_core.destinations (id) ON DELETE CASCADE
);

-- Entering or leaving a group no longer rewrites the profile row: the history row's id orders
-- membership changes for exports.
COMMENT ON COLUMN roster_core.profiles.revision IS
  'Increases whenever a value of the profile changes; group entries and exits are ordered by roster_core.group_membership_history.id';
