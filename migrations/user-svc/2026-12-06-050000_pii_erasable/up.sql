-- Whether a row's PII is encrypted under the user's own context key in security-svc, so that
-- destroying that key erases it (crypto-shredding). Rows encrypted before per-user contexts
-- keep false until `user-svc rewrap` moves them; `rewrap` finds them through this index.
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS pii_erasable BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS idx_vottery_users_shared_pii ON vottery_users (id)
    WHERE pii_encrypted AND NOT pii_erasable;
