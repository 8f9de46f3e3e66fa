DROP INDEX IF EXISTS idx_vottery_users_shared_pii;
ALTER TABLE vottery_users DROP COLUMN IF EXISTS pii_erasable;
