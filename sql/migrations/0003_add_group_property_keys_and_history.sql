-- Incremental group evaluation by changed property, and membership history as of a time.

-- The property keys a calculated group's rule reads, written by `roster apply`. A profile whose
-- changed keys miss every one of them cannot change membership, so the group is skipped. NULL
-- means "not known" (groups applied before this column existed): such a group is evaluated on
-- every change until its rule is applied again.
ALTER TABLE roster_core.groups ADD COLUMN property_keys text[];
COMMENT ON COLUMN roster_core.groups.property_keys IS
  'Property keys the rule reads; NULL when unknown, which makes every profile change re-evaluate the group';

-- The property keys that changed since the profile was queued. NULL means "unknown" (a new
-- profile, a merge, a refetch after a config change), and then hydration re-evaluates every
-- calculated group for the profile.
ALTER TABLE roster_core.hydration_queue ADD COLUMN changed_keys text[];
COMMENT ON COLUMN roster_core.hydration_queue.changed_keys IS
  'Property keys changed since the profile was queued; NULL when unknown (every group is re-evaluated)';

-- NOT VALID: rows written before the check existed are left alone; every new row is checked.
ALTER TABLE roster_core.group_membership_history
  ADD CONSTRAINT group_membership_history_reason_check
  CHECK (reason IN ('data_change', 'rule_change', 'manual', 'time_passing', 'merge')) NOT VALID;
COMMENT ON COLUMN roster_core.group_membership_history.reason IS
  'Why the profile entered or left: data_change, rule_change, manual, time_passing or merge';

-- Serves "the last action per profile at or before T" for one group.
CREATE INDEX group_membership_history_group_id_profile_id_at_idx
  ON roster_core.group_membership_history (group_id, profile_id, at, id);

-- Members of a group as of a past time, rebuilt from the history: a profile was a member at
-- `at` when its last entry or exit at or before that time was an entry. Rows sharing a
-- timestamp (one transaction) are ordered by id, which follows the order they were written.
CREATE FUNCTION roster.group_members_as_of(group_key text, at timestamptz)
RETURNS TABLE (profile_id bigint, entered_at timestamptz)
LANGUAGE sql
STABLE
AS $$
  SELECT
    last_action.profile_id,
    last_action.at AS entered_at
  FROM (
    SELECT DISTINCT ON (h.profile_id)
      h.profile_id,
      h.action,
      h.at
    FROM roster_core.group_membership_history AS h
    JOIN roster_core.groups AS g ON g.id = h.group_id
    WHERE g.key = group_members_as_of.group_key
      AND h.at <= group_members_as_of.at
    ORDER BY h.profile_id, h.at DESC, h.id DESC
  ) AS last_action
  WHERE last_action.action = 'enter'
$$;
COMMENT ON FUNCTION roster.group_members_as_of(text, timestamptz) IS
  'Members of the group with this key at the given time, rebuilt from roster_core.group_membership_history';
