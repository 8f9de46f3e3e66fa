//! Diesel table definitions for the tables user-svc reads and writes.

diesel::table! {
    vottery_users (id) {
        id -> Int4,
        sngine_email -> Text,
        sngine_phone -> Text,
        email_verified_at -> Nullable<Timestamp>,
        phone_verified_at -> Nullable<Timestamp>,
        biometric_registered_at -> Nullable<Timestamp>,
        status -> Nullable<Varchar>,
        last_login -> Nullable<Timestamp>,
        created_at -> Nullable<Timestamp>,
        updated_at -> Nullable<Timestamp>,
        user_type -> Nullable<Varchar>,
        admin_role -> Nullable<Varchar>,
        subscription_status -> Nullable<Varchar>,
        subscription_plan -> Nullable<Varchar>,
        subscription_expires_at -> Nullable<Timestamp>,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        date_of_birth -> Nullable<Text>,
        gender -> Nullable<Varchar>,
        country -> Nullable<Varchar>,
        city -> Nullable<Varchar>,
        timezone -> Nullable<Varchar>,
        bio -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        language -> Nullable<Varchar>,
        notifications_enabled -> Nullable<Bool>,
        email_bidx -> Nullable<Text>,
        phone_bidx -> Nullable<Text>,
        pii_encrypted -> Bool,
        row_version -> Int8,
        record_signature -> Nullable<Text>,
    }
}

diesel::table! {
    vottery_audit_logs (id) {
        id -> Int4,
        user_id -> Nullable<Int4>,
        device_id -> Nullable<Int4>,
        action -> Varchar,
        details -> Nullable<Jsonb>,
        ip_address -> Nullable<Inet>,
        user_agent -> Nullable<Text>,
        success -> Nullable<Bool>,
        created_at -> Nullable<Timestamp>,
        actor_id -> Nullable<Int4>,
        request_id -> Nullable<Text>,
        chain_key -> Nullable<Int8>,
        chain_seq -> Nullable<Int8>,
        prev_hash -> Nullable<Text>,
        row_hash -> Nullable<Text>,
    }
}

diesel::table! {
    vottery_audit_chain_heads (chain_key) {
        chain_key -> Int8,
        last_seq -> Int8,
        last_hash -> Text,
        updated_at -> Timestamp,
        prev_hash -> Nullable<Text>,
    }
}
