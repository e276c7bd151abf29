-- Import and export runs with their counts and errors.
CREATE OR REPLACE VIEW roster.runs AS
SELECT
  r.id AS run_id,
  r.kind,
  COALESCE(s.key, d.key) AS object_key,
  r.status,
  r.trigger,
  r.counts,
  r.error_code,
  r.error_message,
  r.created_at,
  r.started_at,
  r.finished_at
FROM roster_core.runs AS r
LEFT JOIN roster_core.sources AS s ON s.id = r.source_id
LEFT JOIN roster_core.destinations AS d ON d.id = r.destination_id;
