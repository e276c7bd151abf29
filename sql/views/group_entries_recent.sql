-- Entries into groups over the last 7 days (who entered this week), with why and whether the
-- profile is still a member now.
CREATE OR REPLACE VIEW roster.group_entries_recent AS
SELECT
  g.key AS group_key,
  moved.profile_id,
  c.reason,
  c.at AS entered_at,
  EXISTS (
    SELECT 1
    FROM roster_core.group_memberships AS m
    WHERE m.group_id = c.group_id
      AND m.profile_id = moved.profile_id
  ) AS is_member
FROM roster_core.group_membership_changes AS c
JOIN roster_core.groups AS g ON g.id = c.group_id
CROSS JOIN LATERAL unnest(c.profile_ids) AS moved (profile_id)
WHERE c.action = 'enter'
  AND c.at >= now() - interval '7 days';
