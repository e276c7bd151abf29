-- Records whose unique values pointed at different profiles, and how each was resolved.
CREATE OR REPLACE VIEW roster.identity_conflicts AS
SELECT
  c.id AS conflict_id,
  s.key AS source_key,
  c.run_id,
  c.property_key,
  c.value,
  c.profile_id,
  c.other_profile_id,
  c.resolution,
  c.record_ref,
  c.created_at
FROM roster_core.identity_conflicts AS c
LEFT JOIN roster_core.sources AS s ON s.id = c.source_id;
