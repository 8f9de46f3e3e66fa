-- Idempotency keys of mutating requests (the `Idempotency-Key` header), per caller. A request
-- claims its key before it runs (`token`, with a lease while it runs); its answer is stored by
-- the statement or transaction that commits its change, so a crash leaves both or neither.
-- The answer holds no plaintext PII: a user it shows is kept as the stored row, ciphertexts and
-- all (`answer_user`), and decrypted again when the answer is replayed. Rows are pruned after
-- `idempotency.retention_hours`.
CREATE TABLE IF NOT EXISTS vottery_idempotency_keys (
    scope text NOT NULL,
    idempotency_key text NOT NULL,
    fingerprint bytea NOT NULL,
    token uuid NOT NULL,
    lease_until timestamptz,
    status smallint,
    answer_user jsonb,
    answer_body jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, idempotency_key),
    CHECK (status IS NOT NULL OR lease_until IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS idx_vottery_idempotency_keys_created
    ON vottery_idempotency_keys (created_at);
