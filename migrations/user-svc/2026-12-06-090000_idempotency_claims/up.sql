-- A request's claim on its idempotency key lives in an unlogged table of its own: a claim only
-- says a request with the key is running, so it needs no durability (after a crash, PostgreSQL
-- empties the table; a claim lost that way belongs to a request that changed nothing, and a
-- retry claims the key again). Claiming a key therefore costs one statement and no WAL flush.
-- vottery_idempotency_keys keeps the answers alone, each inserted by the statement or
-- transaction of its change, so a crash still leaves both or neither.
CREATE UNLOGGED TABLE IF NOT EXISTS vottery_idempotency_claims (
    scope text NOT NULL,
    idempotency_key text NOT NULL,
    fingerprint bytea NOT NULL,
    token uuid NOT NULL,
    lease_until timestamptz NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX IF NOT EXISTS idx_vottery_idempotency_claims_lease
    ON vottery_idempotency_claims (lease_until);

DELETE FROM vottery_idempotency_keys WHERE status IS NULL;
ALTER TABLE vottery_idempotency_keys
    DROP CONSTRAINT IF EXISTS vottery_idempotency_keys_check,
    DROP COLUMN IF EXISTS token,
    DROP COLUMN IF EXISTS lease_until,
    ALTER COLUMN status SET NOT NULL;
