-- Membership history as change sets, and memberships without per-row foreign-key checks.
--
-- A group recompute can move tens of thousands of profiles at once. One history row per
-- profile (four index entries each) and two foreign-key triggers per new member made such a
-- recompute several times slower than the scan that finds the members. History is now one row
-- per group, action and statement, holding the ids it moved; roster.group_membership_history
-- still shows one row per profile.

CREATE TABLE roster_core.group_membership_changes (
  id bigserial PRIMARY KEY,
  group_id bigint NOT NULL,
  action text NOT NULL,
  reason text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  -- The profiles that entered or left, in ascending id order.
  profile_ids bigint[] NOT NULL,
  CONSTRAINT group_membership_changes_action_check CHECK (action IN ('enter', 'exit')),
  CONSTRAINT group_membership_changes_reason_check CHECK (reason IN ('data_change', 'rule_change', 'manual', 'time_passing', 'merge')),
  CONSTRAINT group_membership_changes_profile_ids_check CHECK (cardinality(profile_ids) > 0)
);
CREATE INDEX group_membership_changes_group_id_at_idx ON roster_core.group_membership_changes (group_id, at);
COMMENT ON TABLE roster_core.group_membership_changes IS
  'Entries into and exits from groups: one row per group, action and statement, with the profiles it moved';

-- Earlier rows, one change set per group, action, reason and time (one statement's rows share
-- their time), in the order they were written.
INSERT INTO roster_core.group_membership_changes (group_id, action, reason, at, profile_ids)
SELECT h.group_id, h.action, h.reason, h.at, array_agg(h.profile_id ORDER BY h.profile_id)
FROM roster_core.group_membership_history AS h
GROUP BY h.group_id, h.action, h.reason, h.at
ORDER BY min(h.id);

-- The views over the old table are re-created from sql/views after migrations.
DROP TABLE roster_core.group_membership_history CASCADE;

-- Export marks counted rows of the old table; the next export of each destination is a full diff.
DELETE FROM roster_core.export_marks;

CREATE OR REPLACE FUNCTION roster.group_members_as_of(group_key text, at timestamptz)
RETURNS TABLE (profile_id bigint, entered_at timestamptz)
LANGUAGE sql
STABLE
AS $$
  SELECT
    last_action.profile_id,
    last_action.at AS entered_at
  FROM (
    SELECT DISTINCT ON (moved.profile_id)
      moved.profile_id,
      c.action,
      c.at
    FROM roster_core.group_membership_changes AS c
    JOIN roster_core.groups AS g ON g.id = c.group_id
    CROSS JOIN LATERAL unnest(c.profile_ids) AS moved (profile_id)
    WHERE g.key = group_members_as_of.group_key
      AND c.at <= group_members_as_of.at
    ORDER BY moved.profile_id, c.at DESC, c.id DESC
  ) AS last_action
  WHERE last_action.action = 'enter'
$$;

-- Memberships lose their foreign keys: the recompute and incremental statements insert ids they
-- have just read from roster_core.profiles, manual additions check the ids first, and deleting
-- profiles or groups removes their memberships through these statement-level triggers.
ALTER TABLE roster_core.group_memberships
  DROP CONSTRAINT group_memberships_profile_id_fkey,
  DROP CONSTRAINT group_memberships_group_id_fkey;

CREATE FUNCTION roster_core.delete_memberships_of_profiles() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  DELETE FROM roster_core.group_memberships AS m
  USING gone
  WHERE m.profile_id = gone.id;
  RETURN NULL;
END
$$;
CREATE TRIGGER profiles_delete_memberships
  AFTER DELETE ON roster_core.profiles
  REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION roster_core.delete_memberships_of_profiles();

CREATE FUNCTION roster_core.delete_memberships_of_groups() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  DELETE FROM roster_core.group_memberships AS m
  USING gone
  WHERE m.group_id = gone.id;
  RETURN NULL;
END
$$;
CREATE TRIGGER groups_delete_memberships
  AFTER DELETE ON roster_core.groups
  REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION roster_core.delete_memberships_of_groups();

COMMENT ON COLUMN roster_core.profiles.revision IS
  'Increases whenever a value of the profile changes; group entries and exits are ordered by roster_core.group_membership_changes.id';
