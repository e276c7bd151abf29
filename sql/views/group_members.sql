-- Current members of every group, by group key.
CREATE OR REPLACE VIEW roster.group_members AS
SELECT
  g.key AS group_key,
  m.profile_id,
  m.entered_at
FROM roster_core.group_memberships AS m
JOIN roster_core.groups AS g ON g.id = m.group_id;
