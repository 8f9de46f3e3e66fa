-- security-svc: per-context data keys that can be destroyed one context at a time.
-- A key ring with context_keys gives each distinct context its own random data key, wrapped
-- under the version that was current when it was made. The context itself is never stored:
-- rows are found by an HMAC of it under a key derived from the root key.

ALTER TABLE vottery_security_keys
    ADD COLUMN IF NOT EXISTS context_keys BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE IF NOT EXISTS vottery_security_context_keys (
    key_name      TEXT NOT NULL REFERENCES vottery_security_keys (name) ON DELETE CASCADE,
    context_hash  BYTEA NOT NULL,
    -- The key version the data key is wrapped under.
    version       INTEGER NOT NULL CHECK (version >= 1),
    -- NULL once destroyed: the row stays as a tombstone so the context is never made again.
    wrapped_key   BYTEA,
    destroyed_at  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (key_name, context_hash),
    CHECK ((wrapped_key IS NULL) = (destroyed_at IS NOT NULL))
);
