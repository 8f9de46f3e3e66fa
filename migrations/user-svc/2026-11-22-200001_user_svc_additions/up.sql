-- What user-svc adds to the customer's tables: room for ciphertext, blind indexes, a row
-- version, the record signature, audit hash-chain columns, and the updated_at trigger.
-- Existing rows keep their values; `encrypt-existing` encrypts them in place afterwards.

-- A status declared as an enum type is turned into text with the same values.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'vottery_users' AND column_name = 'status' AND data_type = 'USER-DEFINED') THEN
        ALTER TABLE vottery_users ALTER COLUMN status DROP DEFAULT;
        ALTER TABLE vottery_users ALTER COLUMN status TYPE VARCHAR(20) USING status::text;
        ALTER TABLE vottery_users ALTER COLUMN status SET DEFAULT 'pending';
    END IF;
END $$;

-- Ciphertext does not fit VARCHAR(50)/VARCHAR(100)/DATE.
ALTER TABLE vottery_users ALTER COLUMN sngine_email TYPE TEXT;
ALTER TABLE vottery_users ALTER COLUMN sngine_phone TYPE TEXT;
ALTER TABLE vottery_users ALTER COLUMN first_name TYPE TEXT;
ALTER TABLE vottery_users ALTER COLUMN last_name TYPE TEXT;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'vottery_users' AND column_name = 'date_of_birth' AND data_type = 'date') THEN
        ALTER TABLE vottery_users ALTER COLUMN date_of_birth TYPE TEXT USING to_char(date_of_birth, 'YYYY-MM-DD');
    END IF;
END $$;

-- Blind indexes (HMAC of the normalised value) carry uniqueness and exact lookup.
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS email_bidx TEXT;
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS phone_bidx TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS uq_vottery_users_email_bidx ON vottery_users (email_bidx);
CREATE UNIQUE INDEX IF NOT EXISTS uq_vottery_users_phone_bidx ON vottery_users (phone_bidx);
CREATE INDEX IF NOT EXISTS idx_vottery_users_status ON vottery_users (status);

-- Whether the PII columns hold ciphertext (false for rows written before this service).
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS pii_encrypted BOOLEAN NOT NULL DEFAULT false;
-- Bumped by every write through user-svc; the ETag.
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS row_version BIGINT NOT NULL DEFAULT 1;
-- `vault:v<N>:...` signature over the canonical form of the row's signed columns.
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS record_signature TEXT;

-- Value checks for the columns this service writes; NOT VALID so existing rows never block
-- the migration, while every new write is checked.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'check_vottery_users_status') THEN
        ALTER TABLE vottery_users ADD CONSTRAINT check_vottery_users_status
            CHECK (status IN ('pending', 'verified', 'active', 'suspended')) NOT VALID;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'check_vottery_users_user_type') THEN
        ALTER TABLE vottery_users ADD CONSTRAINT check_vottery_users_user_type
            CHECK (user_type IN ('voter', 'individual_creator', 'organization_creator')) NOT VALID;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'check_vottery_users_admin_role') THEN
        ALTER TABLE vottery_users ADD CONSTRAINT check_vottery_users_admin_role
            CHECK (admin_role IS NULL OR admin_role IN
                   ('manager', 'admin', 'moderator', 'auditor', 'editor', 'advertiser', 'analyst')) NOT VALID;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'check_vottery_users_subscription_status') THEN
        ALTER TABLE vottery_users ADD CONSTRAINT check_vottery_users_subscription_status
            CHECK (subscription_status IN ('free', 'subscribed')) NOT VALID;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'check_vottery_users_gender') THEN
        ALTER TABLE vottery_users ADD CONSTRAINT check_vottery_users_gender
            CHECK (gender IS NULL OR gender IN ('male', 'female', 'other', 'prefer_not_to_say')) NOT VALID;
    END IF;
END $$;

-- updated_at follows every change, whoever makes it.
CREATE OR REPLACE FUNCTION vottery_set_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at := (now() AT TIME ZONE 'UTC');
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER trg_vottery_users_updated_at
    BEFORE UPDATE ON vottery_users
    FOR EACH ROW EXECUTE FUNCTION vottery_set_updated_at();

-- Audit trail: who acted, and a per-user hash chain (each row's hash covers the previous one).
-- Rows written by other services have no chain columns and are shown as unchained.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'vottery_audit_logs' AND column_name = 'details' AND data_type = 'json') THEN
        ALTER TABLE vottery_audit_logs ALTER COLUMN details TYPE JSONB USING details::jsonb;
    END IF;
END $$;
ALTER TABLE vottery_audit_logs ADD COLUMN IF NOT EXISTS actor_id INT;
ALTER TABLE vottery_audit_logs ADD COLUMN IF NOT EXISTS request_id TEXT;
ALTER TABLE vottery_audit_logs ADD COLUMN IF NOT EXISTS chain_key BIGINT;
ALTER TABLE vottery_audit_logs ADD COLUMN IF NOT EXISTS chain_seq BIGINT;
ALTER TABLE vottery_audit_logs ADD COLUMN IF NOT EXISTS prev_hash TEXT;
ALTER TABLE vottery_audit_logs ADD COLUMN IF NOT EXISTS row_hash TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS uq_vottery_audit_chain ON vottery_audit_logs (chain_key, chain_seq);
CREATE INDEX IF NOT EXISTS idx_vottery_audit_user_id ON vottery_audit_logs (user_id, id);

-- The head of each chain, so that a deleted last row is detected too.
CREATE TABLE IF NOT EXISTS vottery_audit_chain_heads (
    chain_key  BIGINT PRIMARY KEY,
    last_seq   BIGINT NOT NULL,
    last_hash  TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
