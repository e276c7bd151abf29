-- Inbound events as analysts read them: one row per stored event, kept for
-- ROSTER_EVENT_RETENTION_DAYS days. event is the track name, or the page or screen name.
CREATE OR REPLACE VIEW roster.events AS
SELECT
  e.id AS event_id,
  e.message_id,
  e.type,
  e.event,
  e.user_id,
  e.anonymous_id,
  e.previous_id,
  e.group_id,
  e.profile_id,
  e.properties,
  e.traits,
  e.context,
  k.name AS write_key_name,
  e.occurred_at,
  e.received_at,
  e.processed_at
FROM roster_core.events AS e
LEFT JOIN roster_core.write_keys AS k ON k.id = e.write_key_id;
