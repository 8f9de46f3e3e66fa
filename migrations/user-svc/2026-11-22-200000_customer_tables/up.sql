-- The customer's tables (seed 000), stated in PostgreSQL. They may already exist with rows:
-- everything here is IF NOT EXISTS and nothing is dropped. The auth- and biometric-services own
-- devices, biometrics, sessions, otps and webauthn challenges; they are created here only so
-- that a fresh stack works.

CREATE TABLE IF NOT EXISTS vottery_users (
    id                      SERIAL PRIMARY KEY,
    sngine_email            VARCHAR(255) NOT NULL UNIQUE,
    sngine_phone            VARCHAR(50) NOT NULL,
    email_verified_at       TIMESTAMP,
    phone_verified_at       TIMESTAMP,
    biometric_registered_at TIMESTAMP,
    status                  VARCHAR(20) DEFAULT 'pending',
    last_login              TIMESTAMP,
    created_at              TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at              TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_vottery_users_email ON vottery_users (sngine_email);
CREATE INDEX IF NOT EXISTS idx_vottery_users_phone ON vottery_users (sngine_phone);

CREATE TABLE IF NOT EXISTS vottery_devices (
    id                 SERIAL PRIMARY KEY,
    user_id            INT NOT NULL REFERENCES vottery_users (id) ON DELETE CASCADE,
    device_fingerprint VARCHAR(255) NOT NULL UNIQUE,
    device_type        VARCHAR(50) NOT NULL,
    browser_name       VARCHAR(100),
    browser_version    VARCHAR(50),
    os_name            VARCHAR(100),
    os_version         VARCHAR(50),
    screen_info        JSON,
    ip_address         INET,
    location           JSON,
    is_active          BOOLEAN DEFAULT true,
    last_used          TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    created_at         TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_vottery_devices_user_device ON vottery_devices (user_id, device_fingerprint);
CREATE INDEX IF NOT EXISTS idx_vottery_devices_fingerprint ON vottery_devices (device_fingerprint);

CREATE TABLE IF NOT EXISTS vottery_biometrics (
    id             SERIAL PRIMARY KEY,
    user_id        INT NOT NULL REFERENCES vottery_users (id) ON DELETE CASCADE,
    device_id      INT NOT NULL REFERENCES vottery_devices (id) ON DELETE CASCADE,
    biometric_type VARCHAR(50) NOT NULL,
    biometric_hash TEXT NOT NULL,
    public_key     TEXT,
    credential_id  TEXT,
    is_active      BOOLEAN DEFAULT true,
    created_at     TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT uk_user_device_type UNIQUE (user_id, device_id, biometric_type)
);

CREATE TABLE IF NOT EXISTS vottery_sessions (
    id                 SERIAL PRIMARY KEY,
    user_id            INT NOT NULL REFERENCES vottery_users (id) ON DELETE CASCADE,
    device_id          INT NOT NULL REFERENCES vottery_devices (id) ON DELETE CASCADE,
    session_token      VARCHAR(255) NOT NULL UNIQUE,
    refresh_token      VARCHAR(255) NOT NULL UNIQUE,
    expires_at         TIMESTAMP NOT NULL,
    refresh_expires_at TIMESTAMP NOT NULL,
    ip_address         INET,
    user_agent         TEXT,
    is_active          BOOLEAN DEFAULT true,
    created_at         TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_vottery_sessions_token ON vottery_sessions (session_token);
CREATE INDEX IF NOT EXISTS idx_vottery_sessions_refresh ON vottery_sessions (refresh_token);
CREATE INDEX IF NOT EXISTS idx_vottery_sessions_user ON vottery_sessions (user_id, is_active);

CREATE TABLE IF NOT EXISTS vottery_otps (
    id           SERIAL PRIMARY KEY,
    identifier   VARCHAR(255) NOT NULL,
    otp_code     VARCHAR(10) NOT NULL,
    otp_type     VARCHAR(10) NOT NULL CHECK (otp_type IN ('email', 'sms')),
    attempts     INT DEFAULT 0,
    max_attempts INT DEFAULT 3,
    expires_at   TIMESTAMP NOT NULL,
    used_at      TIMESTAMP NULL,
    created_at   TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_vottery_otps_identifier_type ON vottery_otps (identifier, otp_type);
CREATE INDEX IF NOT EXISTS idx_vottery_otps_expires ON vottery_otps (expires_at);

CREATE TABLE IF NOT EXISTS vottery_audit_logs (
    id         SERIAL PRIMARY KEY,
    user_id    INT,
    device_id  INT,
    action     VARCHAR(100) NOT NULL,
    details    JSON,
    ip_address INET,
    user_agent TEXT,
    success    BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_vottery_audit_user_actions ON vottery_audit_logs (user_id, action);
CREATE INDEX IF NOT EXISTS idx_vottery_audit_created_at ON vottery_audit_logs (created_at);

CREATE TABLE IF NOT EXISTS vottery_webauthn_challenges (
    user_id    INT NOT NULL REFERENCES vottery_users (id) ON DELETE CASCADE,
    device_id  INT NOT NULL DEFAULT 0,
    challenge  TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (user_id, device_id)
);

-- The profile columns of the customer's ALTER script.
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS user_type VARCHAR(50) DEFAULT 'voter';
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS admin_role VARCHAR(50) DEFAULT NULL;
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS subscription_status VARCHAR(20) DEFAULT 'free';
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS subscription_plan VARCHAR(20) DEFAULT NULL;
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS subscription_expires_at TIMESTAMP DEFAULT NULL;
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS first_name VARCHAR(100) DEFAULT NULL;
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS last_name VARCHAR(100) DEFAULT NULL;
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS date_of_birth DATE DEFAULT NULL;
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS gender VARCHAR(20) DEFAULT NULL;
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS country VARCHAR(2) DEFAULT NULL;
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS city VARCHAR(100) DEFAULT NULL;
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS timezone VARCHAR(50) DEFAULT 'UTC';
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS bio TEXT DEFAULT NULL;
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS avatar_url TEXT DEFAULT NULL;
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS language VARCHAR(10) DEFAULT 'en';
ALTER TABLE vottery_users ADD COLUMN IF NOT EXISTS notifications_enabled BOOLEAN DEFAULT true;
CREATE INDEX IF NOT EXISTS idx_user_type ON vottery_users (user_type);
CREATE INDEX IF NOT EXISTS idx_admin_role ON vottery_users (admin_role);
CREATE INDEX IF NOT EXISTS idx_subscription_status ON vottery_users (subscription_status);
CREATE INDEX IF NOT EXISTS idx_country ON vottery_users (country);
