-- The export ledger: every record of every export run, its payload and the destination's answer.
CREATE OR REPLACE VIEW roster.export_records AS
SELECT
  r.id AS record_id,
  r.run_id,
  d.key AS destination_key,
  r.profile_id,
  r.action,
  r.status,
  r.error_code,
  r.error_message,
  r.payload,
  r.payload_hash,
  r.created_at,
  r.finished_at
FROM roster_core.export_records AS r
JOIN roster_core.destinations AS d ON d.id = r.destination_id;
