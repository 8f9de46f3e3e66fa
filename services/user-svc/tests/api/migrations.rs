//! Migrations: clean on an empty database, idempotent, and safe on the customer's existing
//! tables with plaintext rows (nothing lost, old values readable and reported unsigned, the
//! first write encrypting and signing the row).

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};
use user_svc::startup::Application;

use crate::helpers::{Options, SERVICE_TOKEN, TestDatabase, query_rows, spawn};

/// The customer's seed 000 schema and profile ALTER script, stated in PostgreSQL as the customer
/// would have it: `status` as an ENUM type, `date_of_birth DATE`, `details JSON`, the
/// `ON UPDATE CURRENT_TIMESTAMP` as a trigger; with a few plaintext rows.
const CUSTOMER_SCHEMA: &str = r#"
CREATE TYPE vottery_user_status AS ENUM ('pending', 'verified', 'active', 'suspended');
CREATE TYPE vottery_otp_type AS ENUM ('email', 'sms');

CREATE TABLE vottery_users (
    id SERIAL PRIMARY KEY,
    sngine_email VARCHAR(255) NOT NULL UNIQUE,
    sngine_phone VARCHAR(50) NOT NULL,
    email_verified_at TIMESTAMP,
    phone_verified_at TIMESTAMP,
    biometric_registered_at TIMESTAMP,
    status vottery_user_status DEFAULT 'pending',
    last_login TIMESTAMP,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_email ON vottery_users (sngine_email);
CREATE INDEX idx_phone ON vottery_users (sngine_phone);
CREATE FUNCTION update_updated_at_column() RETURNS trigger AS $$
BEGIN NEW.updated_at = CURRENT_TIMESTAMP; RETURN NEW; END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER update_vottery_users_updated_at BEFORE UPDATE ON vottery_users
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE vottery_devices (
    id SERIAL PRIMARY KEY,
    user_id INT NOT NULL,
    device_fingerprint VARCHAR(255) NOT NULL UNIQUE,
    device_type VARCHAR(50) NOT NULL,
    browser_name VARCHAR(100),
    browser_version VARCHAR(50),
    os_name VARCHAR(100),
    os_version VARCHAR(50),
    screen_info JSON,
    ip_address INET,
    location JSON,
    is_active BOOLEAN DEFAULT true,
    last_used TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (user_id) REFERENCES vottery_users(id) ON DELETE CASCADE
);
CREATE INDEX idx_user_device ON vottery_devices (user_id, device_fingerprint);
CREATE INDEX idx_fingerprint ON vottery_devices (device_fingerprint);

CREATE TABLE vottery_biometrics (
    id SERIAL PRIMARY KEY,
    user_id INT NOT NULL,
    device_id INT NOT NULL,
    biometric_type VARCHAR(50) NOT NULL,
    biometric_hash TEXT NOT NULL,
    public_key TEXT,
    credential_id TEXT,
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (user_id) REFERENCES vottery_users(id) ON DELETE CASCADE,
    FOREIGN KEY (device_id) REFERENCES vottery_devices(id) ON DELETE CASCADE,
    CONSTRAINT uk_user_device_type UNIQUE (user_id, device_id, biometric_type)
);

CREATE TABLE vottery_sessions (
    id SERIAL PRIMARY KEY,
    user_id INT NOT NULL,
    device_id INT NOT NULL,
    session_token VARCHAR(255) NOT NULL UNIQUE,
    refresh_token VARCHAR(255) NOT NULL UNIQUE,
    expires_at TIMESTAMP NOT NULL,
    refresh_expires_at TIMESTAMP NOT NULL,
    ip_address INET,
    user_agent TEXT,
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (user_id) REFERENCES vottery_users(id) ON DELETE CASCADE,
    FOREIGN KEY (device_id) REFERENCES vottery_devices(id) ON DELETE CASCADE
);
CREATE INDEX idx_session_token ON vottery_sessions (session_token);
CREATE INDEX idx_refresh_token ON vottery_sessions (refresh_token);
CREATE INDEX idx_user_sessions ON vottery_sessions (user_id, is_active);

CREATE TABLE vottery_otps (
    id SERIAL PRIMARY KEY,
    identifier VARCHAR(255) NOT NULL,
    otp_code VARCHAR(10) NOT NULL,
    otp_type vottery_otp_type NOT NULL,
    attempts INT DEFAULT 0,
    max_attempts INT DEFAULT 3,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_identifier_type ON vottery_otps (identifier, otp_type);
CREATE INDEX idx_expires ON vottery_otps (expires_at);

CREATE TABLE vottery_audit_logs (
    id SERIAL PRIMARY KEY,
    user_id INT,
    device_id INT,
    action VARCHAR(100) NOT NULL,
    details JSON,
    ip_address INET,
    user_agent TEXT,
    success BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_user_actions ON vottery_audit_logs (user_id, action);
CREATE INDEX idx_created_at ON vottery_audit_logs (created_at);

CREATE TABLE IF NOT EXISTS vottery_webauthn_challenges (
    user_id INT NOT NULL,
    device_id INT NOT NULL DEFAULT 0,
    challenge TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id) REFERENCES vottery_users(id) ON DELETE CASCADE
);

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
CREATE INDEX IF NOT EXISTS idx_user_type ON vottery_users(user_type);
CREATE INDEX IF NOT EXISTS idx_admin_role ON vottery_users(admin_role);
CREATE INDEX IF NOT EXISTS idx_subscription_status ON vottery_users(subscription_status);
CREATE INDEX IF NOT EXISTS idx_country ON vottery_users(country);

INSERT INTO vottery_users (sngine_email, sngine_phone, status, email_verified_at, last_login,
        user_type, subscription_status, first_name, last_name, date_of_birth, gender, country, city)
VALUES
    ('legacy.one@example.com', '+14155550901', 'active', '2025-01-02 03:04:05', '2025-06-01 00:00:00',
        'voter', 'free', 'Lena', 'Legacy', '1985-06-15', 'female', 'US', 'Austin'),
    ('Legacy.Two@Example.com', '+1 (415) 555-0902', 'pending', NULL, NULL,
        'individual_creator', 'subscribed', NULL, NULL, NULL, NULL, 'DE', NULL),
    ('legacy.three@example.com', '0044 20 7946 0903', 'suspended', NULL, NULL,
        'voter', 'free', 'Theo', NULL, '2001-11-30', 'male', NULL, NULL);
INSERT INTO vottery_devices (user_id, device_fingerprint, device_type, screen_info, ip_address)
VALUES (1, 'fp-legacy-1', 'desktop', '{"w": 1920}', '10.1.2.3'), (2, 'fp-legacy-2', 'mobile', NULL, NULL);
INSERT INTO vottery_sessions (user_id, device_id, session_token, refresh_token, expires_at, refresh_expires_at)
VALUES (1, 1, 'legacy-session', 'legacy-refresh', now() + interval '1 day', now() + interval '7 days');
INSERT INTO vottery_otps (identifier, otp_code, otp_type, expires_at)
VALUES ('legacy.two@example.com', '123456', 'email', now() + interval '5 minutes');
INSERT INTO vottery_audit_logs (user_id, device_id, action, details, ip_address, user_agent, success)
VALUES
    (1, 1, 'login', '{"method": "otp"}', '10.1.2.3', 'Mozilla/5.0', true),
    (1, 1, 'otp_failed', '{"attempt": 2}', '10.1.2.3', 'Mozilla/5.0', false),
    (2, NULL, 'register', NULL, NULL, NULL, true);
"#;

fn id_of(view: &Value) -> i32 {
    view["id"].as_i64().unwrap() as i32
}

#[tokio::test]
async fn the_customers_existing_tables_and_rows_are_kept_and_readable() {
    let app = spawn(Options {
        before_start: Some(CUSTOMER_SCHEMA.into()),
        ..Options::default()
    })
    .await;
    // Nothing lost.
    assert_eq!(app.user_count().await, 4);
    assert_eq!(
        app.manager.id, 4,
        "the sequence carried on after the customer's rows"
    );
    assert_eq!(app.count("SELECT count(*) FROM vottery_devices").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM vottery_sessions").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM vottery_otps").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM vottery_audit_logs WHERE chain_key IS NULL")
            .await,
        3
    );
    let legacy = app.user_row(1).await;
    assert_eq!(legacy["sngine_email"], json!("legacy.one@example.com"));
    assert_eq!(legacy["date_of_birth"], json!("1985-06-15"));
    assert_eq!(legacy["status"], json!("active"));
    assert_eq!(legacy["pii_encrypted"], json!(false));

    // Old values read through the API, reported as not signed.
    let view = app.read_user(1).await;
    for (field, expected) in [
        ("sngine_email", json!("legacy.one@example.com")),
        ("sngine_phone", json!("+14155550901")),
        ("first_name", json!("Lena")),
        ("last_name", json!("Legacy")),
        ("date_of_birth", json!("1985-06-15")),
        ("gender", json!("female")),
        ("country", json!("US")),
        ("city", json!("Austin")),
        ("status", json!("active")),
        ("user_type", json!("voter")),
        ("version", json!(1)),
        ("email_verified_at", json!("2025-01-02T03:04:05Z")),
    ] {
        assert_eq!(view[field], expected, "{field}");
    }
    assert!(view["age"].as_i64().unwrap() >= 40);
    assert_eq!(view["signature"]["valid"], json!(false));
    assert_eq!(view["signature"]["key_version"], Value::Null);
    let two = app.read_user(2).await;
    assert_eq!(two["sngine_email"], json!("Legacy.Two@Example.com"));
    assert_eq!(two["user_type"], json!("individual_creator"));

    // Lists, filters and the old audit rows.
    let page = app.get_as_manager("/api/users").await;
    let page = page.expect(200);
    assert_eq!(page["total"], json!(4));
    let valid: Vec<(i32, bool)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| (id_of(user), user["signature"]["valid"].as_bool().unwrap()))
        .collect();
    assert_eq!(valid, vec![(1, false), (2, false), (3, false), (4, true)]);
    let active = app.get_as_manager("/api/users?status=active").await;
    assert_eq!(active.expect(200)["total"], json!(2));
    let trail = app.get_as_manager("/api/users/1/audit").await;
    let trail = trail.expect(200);
    assert_eq!(trail["total"], json!(2));
    assert_eq!(trail["data"][1]["action"], json!("login"));
    assert_eq!(trail["data"][1]["details"], json!({"method": "otp"}));
    assert_eq!(trail["data"][1]["chain_seq"], Value::Null);
    assert_eq!(trail["chain"]["valid"], json!(true));

    // A legacy user's own token works.
    let me = app.get("/api/users/me", &app.jwt_for(1)).await;
    assert_eq!(me.expect(200)["first_name"], json!("Lena"));
    // A suspended legacy user's does not.
    app.get("/api/users/me", &app.jwt_for(3)).await.problem(403);
}

#[tokio::test]
async fn a_write_to_a_legacy_row_encrypts_and_signs_it() {
    let app = spawn(Options {
        before_start: Some(CUSTOMER_SCHEMA.into()),
        ..Options::default()
    })
    .await;
    let reply = app
        .put(
            "/api/users/1/profile",
            &app.manager.token,
            json!({"city": "Dallas"}),
        )
        .await;
    let view = reply.expect(200);
    assert_eq!(view["signature"]["valid"], json!(true));
    assert_eq!(view["city"], json!("Dallas"));
    assert_eq!(view["first_name"], json!("Lena"));
    assert_eq!(view["version"], json!(2));

    let stored = app.user_row(1).await;
    assert_eq!(stored["pii_encrypted"], json!(true));
    for column in [
        "sngine_email",
        "sngine_phone",
        "first_name",
        "last_name",
        "date_of_birth",
    ] {
        let value = stored[column].as_str().unwrap();
        assert!(value.starts_with("vault:v1:"), "{column}: {value}");
    }
    assert!(!stored.to_string().contains("Lena") && !stored.to_string().contains("legacy.one"));
    let index = app
        .state
        .vault
        .blind_indexes("test", &["legacy.one@example.com", "+14155550901"])
        .await
        .unwrap();
    assert_eq!(stored["email_bidx"], json!(index[0]));
    assert_eq!(stored["phone_bidx"], json!(index[1]));

    let read = app.read_user(1).await;
    assert_eq!(read["signature"]["valid"], json!(true));
    assert_eq!(read["sngine_email"], json!("legacy.one@example.com"));
    assert_eq!(read["date_of_birth"], json!("1985-06-15"));
    assert_eq!(read["last_name"], json!("Legacy"));
    assert_eq!(read["email_verified_at"], json!("2025-01-02T03:04:05Z"));
    // The auth-service's rows still hang off it.
    assert_eq!(
        app.count("SELECT count(*) FROM vottery_devices WHERE user_id = 1")
            .await,
        1
    );

    // A status change encrypts too; the blind index of an unnormalised legacy email is the
    // normalised one, so it now guards uniqueness.
    app.put(
        "/api/users/2/status",
        SERVICE_TOKEN,
        json!({"status": "verified"}),
    )
    .await
    .expect(200);
    assert_eq!(app.user_row(2).await["pii_encrypted"], json!(true));
    let duplicate = app
        .post(
            "/api/users",
            SERVICE_TOKEN,
            json!({"sngine_email": "legacy.two@example.com", "sngine_phone": "+14155550777"}),
        )
        .await;
    duplicate.problem(409);
    assert_eq!(duplicate.error_fields(), vec!["sngine_email"]);
    let trail = app.audit_rows(1).await;
    let last = trail.last().unwrap();
    assert_eq!(last["action"], json!("user.update_profile"));
    assert_eq!(last["chain_seq"], json!(1));
}

#[tokio::test]
async fn contacts_of_rows_not_yet_encrypted_are_still_unique() {
    let app = spawn(Options {
        before_start: Some(CUSTOMER_SCHEMA.into()),
        ..Options::default()
    })
    .await;
    for (email, phone, field) in [
        ("LEGACY.ONE@example.com", "+14155550999", "sngine_email"),
        ("someone@example.com", "+1 415 555 0902", "sngine_phone"),
        ("someone@example.com", "+442079460903", "sngine_phone"),
    ] {
        let reply = app
            .post(
                "/api/users",
                SERVICE_TOKEN,
                json!({"sngine_email": email, "sngine_phone": phone}),
            )
            .await;
        reply.problem(409);
        assert_eq!(reply.error_fields(), vec![field], "{email} {phone}");
    }
    assert_eq!(app.user_count().await, 4);
}

#[tokio::test]
async fn migrations_run_cleanly_on_an_empty_database_and_again() {
    let app = spawn(Options {
        separate_security_database: true,
        empty_database: true,
        ..Options::default()
    })
    .await;
    let tables: Vec<String> = app
        .rows("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name LIKE 'vottery%' ORDER BY table_name")
        .await
        .into_iter()
        .map(|row| row["table_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        tables,
        vec![
            "vottery_audit_chain_heads",
            "vottery_audit_logs",
            "vottery_biometrics",
            "vottery_devices",
            "vottery_idempotency_claims",
            "vottery_idempotency_keys",
            "vottery_otps",
            "vottery_sessions",
            "vottery_user_events",
            "vottery_users",
            "vottery_webauthn_challenges",
        ]
    );
    let user = app.create_user_with(json!({"first_name": "Before"})).await;

    // Applying them again through the harness is a no-op.
    let applied =
        vottery_server::db::run_migrations(&app.settings.database.url, user_svc::MIGRATIONS)
            .await
            .unwrap();
    assert!(applied.is_empty(), "{applied:?}");
    // Running the SQL itself again changes nothing either (IF NOT EXISTS everywhere).
    let mut conn = app.db().await;
    for sql in [
        include_str!("../../../../migrations/user-svc/2026-11-22-200000_customer_tables/up.sql"),
        include_str!("../../../../migrations/user-svc/2026-11-22-200001_user_svc_additions/up.sql"),
        include_str!("../../../../migrations/user-svc/2026-11-29-180000_legacy_rows_index/up.sql"),
        include_str!(
            "../../../../migrations/user-svc/2026-11-29-210000_audit_head_prev_hash/up.sql"
        ),
        include_str!("../../../../migrations/user-svc/2026-12-06-020000_user_events/up.sql"),
        include_str!("../../../../migrations/user-svc/2026-12-06-070000_list_indexes/up.sql"),
        include_str!("../../../../migrations/user-svc/2026-12-06-060000_idempotency_keys/up.sql"),
    ] {
        conn.batch_execute(sql)
            .await
            .expect("the migration runs again");
    }
    let view = app.read_user(user.id).await;
    assert_eq!(view["first_name"], json!("Before"));
    assert_eq!(view["signature"]["valid"], json!(true));

    // Two instances starting at once on a fresh database migrate it once, without error.
    let fresh = TestDatabase::empty("usr").await;
    let mut settings = app.settings.clone();
    settings.database.url = secrecy::SecretString::from(fresh.url.clone());
    let (one, two) = tokio::join!(
        Application::build(settings.clone()),
        Application::build(settings)
    );
    assert!(one.is_ok() && two.is_ok());
    let migrations = query_rows(
        &mut fresh.connect().await,
        "SELECT version FROM __diesel_schema_migrations ORDER BY version",
    )
    .await;
    let shipped = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../migrations/user-svc"
    ))
    .unwrap()
    .count();
    assert_eq!(migrations.len(), shipped, "{migrations:?}");
    drop((one, two));
}
