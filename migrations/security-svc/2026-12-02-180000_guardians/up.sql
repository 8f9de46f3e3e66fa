-- security-svc: ElectionGuard guardians hosted by this instance.
-- A guardian's polynomial and the coordinates other guardians sent it are stored only sealed
-- under the root key (AES-256-GCM, bound to the guardian's name and ceremony, and for a
-- coordinate to its sender). Everything else here is public: records, backups (ciphertexts to
-- their recipients), verifications and the signed ceremony record.

CREATE TABLE IF NOT EXISTS vottery_security_guardians (
    name                TEXT PRIMARY KEY,
    ceremony_id         TEXT NOT NULL,
    sequence_order      INTEGER NOT NULL,
    number_of_guardians INTEGER NOT NULL CHECK (number_of_guardians BETWEEN 1 AND 32),
    quorum              INTEGER NOT NULL,
    stage               TEXT NOT NULL
        CHECK (stage IN ('created', 'backups_shared', 'backups_verified', 'finalized')),
    sealed_polynomial   BYTEA NOT NULL,
    -- This guardian's own public record (election public key, commitments, Schnorr proofs).
    public_record       JSONB NOT NULL,
    -- Every guardian's public record, as accepted when the backups were made.
    public_records      JSONB,
    -- The backups this guardian made, one per other guardian, encrypted to that guardian.
    backups             JSONB,
    -- The signed ceremony record, once finalized.
    ceremony_record     JSONB,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (sequence_order BETWEEN 1 AND number_of_guardians),
    CHECK (quorum BETWEEN 1 AND number_of_guardians),
    CHECK ((stage = 'created') = (public_records IS NULL AND backups IS NULL)),
    CHECK ((stage = 'finalized') = (ceremony_record IS NOT NULL))
);

-- A backup another guardian sent this one, kept once it verified: the backup as received and
-- the coordinate it carried, sealed.
CREATE TABLE IF NOT EXISTS vottery_security_guardian_backups (
    guardian_name       TEXT NOT NULL REFERENCES vottery_security_guardians (name) ON DELETE CASCADE,
    owner_id            TEXT NOT NULL,
    backup              JSONB NOT NULL,
    sealed_coordinate   BYTEA NOT NULL,
    -- The verification this guardian answered for it.
    verification        JSONB NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (guardian_name, owner_id)
);
