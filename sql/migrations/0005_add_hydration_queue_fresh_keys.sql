-- Hydration that skips what an import has just written, and takes the queue in order cheaply.

-- Column properties an import wrote for the profile while queueing it: hydration does not fetch
-- them again from their source (the values are as fresh as a second read would be). NULL means
-- "nothing known to be fresh": every property of every source is fetched. Any other queueing
-- (events, a config change, a merge) resets it to NULL.
ALTER TABLE roster_core.hydration_queue ADD COLUMN fresh_keys text[];
COMMENT ON COLUMN roster_core.hydration_queue.fresh_keys IS
  'Column property keys an import wrote since the profile was queued; hydration does not fetch them again. NULL: fetch everything';

-- Hydration takes the oldest entries first; without this index every batch sorted the whole queue.
CREATE INDEX hydration_queue_queued_at_profile_id_idx ON roster_core.hydration_queue (queued_at, profile_id);
