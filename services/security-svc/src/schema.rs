//! Diesel table definitions for security-svc's tables (see `migrations/security-svc`).

diesel::table! {
    vottery_security_seal (id) {
        id -> Int2,
        secret_shares -> Int2,
        secret_threshold -> Int2,
        share_verifiers -> Array<Bytea>,
        root_key_check -> Bytea,
        root_token_digest -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    vottery_security_keys (name) {
        name -> Text,
        key_type -> Text,
        derived -> Bool,
        convergent_encryption -> Bool,
        exportable -> Bool,
        allow_plaintext_backup -> Bool,
        deletion_allowed -> Bool,
        key_size -> Nullable<Int4>,
        latest_version -> Int4,
        min_decryption_version -> Int4,
        min_encryption_version -> Int4,
        min_available_version -> Int4,
        auto_rotate_period_secs -> Int8,
        generation -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        context_keys -> Bool,
    }
}

diesel::table! {
    vottery_security_context_keys (key_name, context_hash) {
        key_name -> Text,
        context_hash -> Bytea,
        version -> Int4,
        wrapped_key -> Nullable<Bytea>,
        destroyed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    vottery_security_key_versions (key_name, version) {
        key_name -> Text,
        version -> Int4,
        sealed_material -> Bytea,
        public_key -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    vottery_security_guardians (name) {
        name -> Text,
        ceremony_id -> Text,
        sequence_order -> Int4,
        number_of_guardians -> Int4,
        quorum -> Int4,
        stage -> Text,
        sealed_polynomial -> Bytea,
        public_record -> Jsonb,
        public_records -> Nullable<Jsonb>,
        backups -> Nullable<Jsonb>,
        ceremony_record -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    vottery_security_guardian_backups (guardian_name, owner_id) {
        guardian_name -> Text,
        owner_id -> Text,
        backup -> Jsonb,
        sealed_coordinate -> Bytea,
        verification -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(vottery_security_key_versions -> vottery_security_keys (key_name));
diesel::joinable!(vottery_security_guardian_backups -> vottery_security_guardians (guardian_name));
diesel::allow_tables_to_appear_in_same_query!(vottery_security_keys, vottery_security_key_versions);
diesel::allow_tables_to_appear_in_same_query!(
    vottery_security_guardians,
    vottery_security_guardian_backups
);
