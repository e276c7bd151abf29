-- What each destination last received successfully about each profile.
CREATE OR REPLACE VIEW roster.export_state AS
SELECT
  d.key AS destination_key,
  s.profile_id,
  s.is_removed,
  s.payload_hash,
  s.revision,
  s.exported_at
FROM roster_core.export_state AS s
JOIN roster_core.destinations AS d ON d.id = s.destination_id;
