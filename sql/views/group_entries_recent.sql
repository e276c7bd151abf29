-- Entries into groups over the last 7 days (who entered this week), with why and whether the
-- profile is still a member now.
CREATE OR REPLACE VIEW roster.group_entries_recent AS
SELECT
  g.key AS group_key,
  h.profile_id,
  h.reason,
  h.at AS entered_at,
  EXISTS (
    SELECT 1
    FROM roster_core.group_memberships AS m
    WHERE m.group_id = h.group_id
      AND m.profile_id = h.profile_id
  ) AS is_member
FROM roster_core.group_membership_history AS h
JOIN roster_core.groups AS g ON g.id = h.group_id
WHERE h.action = 'enter'
  AND h.at >= now() - interval '7 days';
