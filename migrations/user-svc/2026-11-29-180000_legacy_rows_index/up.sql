-- Rows still holding plaintext PII (written before user-svc) are checked for duplicates on
-- every create; this keeps that check to those rows instead of scanning the whole table.
CREATE INDEX IF NOT EXISTS idx_vottery_users_legacy ON vottery_users (id) WHERE NOT pii_encrypted;
