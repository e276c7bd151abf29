-- Lighter writes for imports: hydration skips what an import has just written, takes its queue
-- in order through an index, and identities and queue entries have no per-row foreign keys.

-- Properties an import read from its own source and wrote for the profile while queueing it
-- (its columns, and its aggregates when it could fetch them): hydration does not fetch them
-- again (the values are as fresh as a second read would be). NULL means "nothing known to be
-- fresh": every property of every source is fetched. Any other queueing (events, a config
-- change, a merge) resets it to NULL.
ALTER TABLE roster_core.hydration_queue ADD COLUMN fresh_keys text[];
COMMENT ON COLUMN roster_core.hydration_queue.fresh_keys IS
  'Property keys an import wrote from its source since the profile was queued; hydration does not fetch them again. NULL: fetch everything';

-- Hydration takes the oldest entries first; without this index every batch sorted the whole queue.
CREATE INDEX hydration_queue_queued_at_profile_id_idx ON roster_core.hydration_queue (queued_at, profile_id);

-- Identities and queue entries lose their per-row foreign-key checks. An import writes two
-- identities and a queue entry per new profile, and the three checks (each a lookup and a row
-- lock on the referenced row) took longer than the rows themselves. Every writer inserts ids it
-- has just read or inserted in the same transaction; deleting profiles or properties still
-- removes their rows, through these statement-level triggers.
ALTER TABLE roster_core.identities
  DROP CONSTRAINT identities_profile_id_fkey,
  DROP CONSTRAINT identities_property_id_fkey;
ALTER TABLE roster_core.hydration_queue
  DROP CONSTRAINT hydration_queue_profile_id_fkey;

CREATE FUNCTION roster_core.delete_identities_and_queue_of_profiles() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  DELETE FROM roster_core.identities AS i
  USING gone
  WHERE i.profile_id = gone.id;
  DELETE FROM roster_core.hydration_queue AS q
  USING gone
  WHERE q.profile_id = gone.id;
  RETURN NULL;
END
$$;
CREATE TRIGGER profiles_delete_identities_and_queue
  AFTER DELETE ON roster_core.profiles
  REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION roster_core.delete_identities_and_queue_of_profiles();

-- TRUNCATE fires no delete triggers; emptying profiles empties what pointed at them, as the
-- foreign keys' CASCADE did.
-- (DELETE, not TRUNCATE: the same statement may be truncating one of them.)
CREATE FUNCTION roster_core.empty_identities_and_queue() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  DELETE FROM roster_core.identities;
  DELETE FROM roster_core.hydration_queue;
  RETURN NULL;
END
$$;
CREATE TRIGGER profiles_truncate_identities_and_queue
  AFTER TRUNCATE ON roster_core.profiles
  FOR EACH STATEMENT EXECUTE FUNCTION roster_core.empty_identities_and_queue();

CREATE FUNCTION roster_core.delete_identities_of_properties() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  DELETE FROM roster_core.identities AS i
  USING gone
  WHERE i.property_id = gone.id;
  RETURN NULL;
END
$$;
CREATE TRIGGER properties_delete_identities
  AFTER DELETE ON roster_core.properties
  REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION roster_core.delete_identities_of_properties();
