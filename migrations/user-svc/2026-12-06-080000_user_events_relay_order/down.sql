DROP INDEX IF EXISTS idx_vottery_user_events_unpublished;
CREATE INDEX IF NOT EXISTS idx_vottery_user_events_unpublished
    ON vottery_user_events (xact, sequence) WHERE published_at IS NULL;
