-- Lighter index work on the event write path.

-- messageIds are opaque: compared byte by byte ("C") instead of by the database's language
-- rules, which made every probe of the de-duplication key pay for a locale comparison.
ALTER TABLE roster_core.event_message_ids ALTER COLUMN message_id TYPE text COLLATE "C";

-- Events arrive without a profile; only resolved events are looked up by profile (rules over
-- events, event properties, merges), so unresolved ones need no entry in this index.
DROP INDEX roster_core.events_profile_id_event_occurred_at_idx;
CREATE INDEX events_profile_id_event_occurred_at_idx ON roster_core.events (profile_id, event, occurred_at) WHERE profile_id IS NOT NULL;
