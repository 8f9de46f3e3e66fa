//! Key changes are transactional: a failure half-way leaves the key exactly as it was.

use serde_json::json;

use crate::helpers::*;

/// A trigger on the test database that makes inserting `version` of any key fail.
fn failing_version_trigger(version: i32) -> String {
    format!(
        "CREATE FUNCTION fail_version() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN \
           IF NEW.version = {version} THEN RAISE EXCEPTION 'injected failure for version %', NEW.version; END IF; \
           RETURN NEW; \
         END $$; \
         CREATE TRIGGER fail_version BEFORE INSERT ON vottery_security_key_versions \
         FOR EACH ROW EXECUTE FUNCTION fail_version();"
    )
}

const DROP_TRIGGER: &str = "DROP TRIGGER fail_version ON vottery_security_key_versions; \
                            DROP FUNCTION fail_version();";

#[tokio::test]
async fn a_failed_rotation_leaves_the_key_as_it_was() {
    let app = spawn_unsealed().await;
    app.create_key("tx", "aes256-gcm96").await;
    let v1 = app.encrypt("tx", b"before the failure").await;
    let before = app.read_key("tx").await;
    app.db_execute(&failing_version_trigger(2)).await;

    for _ in 0..2 {
        let reply = app.transit("keys/tx/rotate", json!({})).await;
        assert!(reply.status.is_server_error(), "{}", reply.text);
        assert_eq!(reply.json, json!({"errors": ["internal error"]}));
        assert!(
            !reply.text.contains("injected"),
            "database errors are not shown to callers"
        );
    }
    assert_eq!(app.db_versions("tx").await, (1, 1), "nothing stored");
    let after = app.read_key("tx").await;
    assert_eq!(after["latest_version"], json!(1));
    assert_eq!(after, before);
    let ciphertext = app.encrypt("tx", b"during the failure").await;
    assert_versioned(&ciphertext, 1);
    assert_eq!(app.decrypt("tx", &ciphertext).await, b"during the failure");
    assert_eq!(app.decrypt("tx", &v1).await, b"before the failure");

    app.db_execute(DROP_TRIGGER).await;
    let rotated = app.rotate("tx").await;
    assert_eq!(rotated["latest_version"], json!(2));
    assert_eq!(app.db_versions("tx").await, (2, 2));
    let v2 = app.encrypt("tx", b"after").await;
    assert_versioned(&v2, 2);
    assert_eq!(app.decrypt("tx", &v2).await, b"after");
    assert_eq!(app.decrypt("tx", &v1).await, b"before the failure");
}

#[tokio::test]
async fn a_failed_create_or_upsert_leaves_no_key() {
    let app = spawn_unsealed().await;
    app.db_execute(&failing_version_trigger(1)).await;
    let reply = app.transit("keys/half", json!({"type": "ed25519"})).await;
    assert!(reply.status.is_server_error(), "{}", reply.text);
    let reply = app
        .transit("encrypt/half-upsert", json!({"plaintext": b64("x")}))
        .await;
    assert!(reply.status.is_server_error(), "{}", reply.text);
    for name in ["half", "half-upsert"] {
        app.get(&format!("/v1/transit/keys/{name}"), ADMIN)
            .await
            .assert_empty_error(404);
    }
    app.assert_no_keys().await;

    app.db_execute(DROP_TRIGGER).await;
    let created = app.create_key("half", "ed25519").await;
    assert_eq!(created["latest_version"], json!(1));
    assert_eq!(app.db_versions("half").await, (1, 1));
}

#[tokio::test]
async fn a_failed_config_change_leaves_the_settings_as_they_were() {
    let app = spawn_unsealed().await;
    app.create_key("guarded", "aes256-gcm96").await;
    app.rotate("guarded").await;
    let before = app.read_key("guarded").await;
    app.db_execute(
        "CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'injected update failure'; END $$; \
         CREATE TRIGGER refuse_update BEFORE UPDATE ON vottery_security_keys \
         FOR EACH ROW EXECUTE FUNCTION refuse_update();",
    )
    .await;
    for body in [
        json!({"deletion_allowed": true}),
        json!({"min_decryption_version": 2}),
    ] {
        let reply = app.configure_key("guarded", body).await;
        assert!(reply.status.is_server_error(), "{}", reply.text);
    }
    let reply = app.transit("keys/guarded/rotate", json!({})).await;
    assert!(reply.status.is_server_error(), "{}", reply.text);
    assert_eq!(app.read_key("guarded").await, before);
    assert_eq!(app.db_versions("guarded").await, (2, 2));
    app.delete("/v1/transit/keys/guarded", ADMIN)
        .await
        .assert_error(400, "deletion is not allowed for this key");
}
