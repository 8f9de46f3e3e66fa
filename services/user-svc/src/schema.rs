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
        pii_erasable -> Bool,
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

// The customer's device, session and biometric tables, written by their auth- and
// biometric-services. Only the columns user-svc may show are declared: the session and refresh
// tokens, the device fingerprint and the biometric hash, public key and credential id are not,
// so no query here can read them.

diesel::table! {
    vottery_devices (id) {
        id -> Int4,
        user_id -> Int4,
        device_type -> Varchar,
        browser_name -> Nullable<Varchar>,
        browser_version -> Nullable<Varchar>,
        os_name -> Nullable<Varchar>,
        os_version -> Nullable<Varchar>,
        ip_address -> Nullable<Inet>,
        is_active -> Nullable<Bool>,
        last_used -> Nullable<Timestamp>,
        created_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    vottery_sessions (id) {
        id -> Int4,
        user_id -> Int4,
        device_id -> Int4,
        expires_at -> Timestamp,
        ip_address -> Nullable<Inet>,
        user_agent -> Nullable<Text>,
        is_active -> Nullable<Bool>,
        created_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    vottery_biometrics (id) {
        id -> Int4,
        user_id -> Int4,
        device_id -> Int4,
        biometric_type -> Varchar,
        is_active -> Nullable<Bool>,
        created_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(vottery_sessions -> vottery_devices (device_id));
diesel::joinable!(vottery_biometrics -> vottery_devices (device_id));
diesel::allow_tables_to_appear_in_same_query!(
    vottery_devices,
    vottery_sessions,
    vottery_biometrics
);
