-- security-svc: the seal configuration and the transit key rings.
-- Key material is stored only sealed under the root key (AES-256-GCM, bound to name + version).

CREATE TABLE IF NOT EXISTS vottery_security_seal (
    id                  SMALLINT PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    secret_shares       SMALLINT NOT NULL CHECK (secret_shares BETWEEN 1 AND 255),
    secret_threshold    SMALLINT NOT NULL CHECK (secret_threshold BETWEEN 1 AND secret_shares),
    -- Feldman commitments (compressed P-256 points) that verify each unseal share on its own.
    share_verifiers     BYTEA[] NOT NULL,
    -- A constant sealed under the root key: proves a reconstructed key is the right one.
    root_key_check      BYTEA NOT NULL,
    -- SHA-256 of the root token handed out at init.
    root_token_digest   BYTEA NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS vottery_security_keys (
    name                    TEXT PRIMARY KEY,
    key_type                TEXT NOT NULL,
    derived                 BOOLEAN NOT NULL DEFAULT false,
    convergent_encryption   BOOLEAN NOT NULL DEFAULT false,
    exportable              BOOLEAN NOT NULL DEFAULT false,
    allow_plaintext_backup  BOOLEAN NOT NULL DEFAULT false,
    deletion_allowed        BOOLEAN NOT NULL DEFAULT false,
    key_size                INTEGER,
    latest_version          INTEGER NOT NULL DEFAULT 1 CHECK (latest_version >= 1),
    min_decryption_version  INTEGER NOT NULL DEFAULT 1 CHECK (min_decryption_version >= 1),
    min_encryption_version  INTEGER NOT NULL DEFAULT 0 CHECK (min_encryption_version >= 0),
    min_available_version   INTEGER NOT NULL DEFAULT 0 CHECK (min_available_version >= 0),
    auto_rotate_period_secs BIGINT NOT NULL DEFAULT 0 CHECK (auto_rotate_period_secs >= 0),
    -- Bumped by every change; instances compare it to refresh their caches.
    generation              BIGINT NOT NULL DEFAULT 1,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS vottery_security_key_versions (
    key_name        TEXT NOT NULL REFERENCES vottery_security_keys (name) ON DELETE CASCADE,
    version         INTEGER NOT NULL CHECK (version >= 1),
    sealed_material BYTEA NOT NULL,
    public_key      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (key_name, version)
);
