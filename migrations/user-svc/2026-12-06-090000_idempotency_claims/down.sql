ALTER TABLE vottery_idempotency_keys
    ALTER COLUMN status DROP NOT NULL,
    ADD COLUMN IF NOT EXISTS token uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN IF NOT EXISTS lease_until timestamptz,
    ADD CONSTRAINT vottery_idempotency_keys_check CHECK (status IS NOT NULL OR lease_until IS NOT NULL);
ALTER TABLE vottery_idempotency_keys ALTER COLUMN token DROP DEFAULT;
DROP TABLE IF EXISTS vottery_idempotency_claims;
