-- Every entry into and exit from a group, with when and why: one row per profile.
CREATE OR REPLACE VIEW roster.group_membership_history AS
SELECT
  g.key AS group_key,
  moved.profile_id,
  c.action,
  c.reason,
  c.at
FROM roster_core.group_membership_changes AS c
JOIN roster_core.groups AS g ON g.id = c.group_id
CROSS JOIN LATERAL unnest(c.profile_ids) AS moved (profile_id);
