-- Every entry into and exit from a group, with when and why.
CREATE OR REPLACE VIEW roster.group_membership_history AS
SELECT
  g.key AS group_key,
  h.profile_id,
  h.action,
  h.reason,
  h.at
FROM roster_core.group_membership_history AS h
JOIN roster_core.groups AS g ON g.id = h.group_id;
