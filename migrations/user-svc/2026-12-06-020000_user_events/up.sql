-- The outbox of user events: each row is written in the same statement or transaction as the
-- change it describes. `sequence` orders a transaction's events; `xact` (the writing
-- transaction's id) orders transactions, so the feed can serve only rows no running
-- transaction can still precede. `published_at` is set by the NATS relay after the ack.
CREATE TABLE IF NOT EXISTS vottery_user_events (
    sequence bigserial PRIMARY KEY,
    id uuid NOT NULL UNIQUE,
    type text NOT NULL,
    subject integer NOT NULL,
    payload jsonb NOT NULL,
    xact xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS idx_vottery_user_events_feed
    ON vottery_user_events (xact, sequence);
CREATE INDEX IF NOT EXISTS idx_vottery_user_events_unpublished
    ON vottery_user_events (xact, sequence) WHERE published_at IS NULL;
