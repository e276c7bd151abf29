-- Values set aside because they failed their property's type, with the reason.
CREATE OR REPLACE VIEW roster.invalid_values AS
SELECT
  v.profile_id,
  p.key AS property_key,
  p.type AS property_type,
  v.raw_value,
  v.reason,
  s.key AS source_key,
  v.seen_at
FROM roster_core.invalid_values AS v
JOIN roster_core.properties AS p ON p.id = v.property_id
LEFT JOIN roster_core.sources AS s ON s.id = v.source_id;
