-- The relay reads the unpublished rows in sequence order, a batch at a time: an index in that
-- order lets each round read just its batch instead of sorting the whole backlog.
DROP INDEX IF EXISTS idx_vottery_user_events_unpublished;
CREATE INDEX IF NOT EXISTS idx_vottery_user_events_unpublished
    ON vottery_user_events (sequence) WHERE published_at IS NULL;
