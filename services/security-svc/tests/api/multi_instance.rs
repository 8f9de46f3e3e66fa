//! Several instances on one database: changes made through one are seen by the others.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

/// A second instance on `first`'s database that never refreshes its key cache on its own
/// during a test.
async fn spawn_stale_instance(first: &TestApp) -> TestApp {
    spawn_second_instance_with(first, |settings| {
        settings.seal.key_refresh_interval_ms = 600_000
    })
    .await
}

/// Two instances on one database and the AES key `{base}`, the ed25519 key `{base}-ed` and the
/// HMAC key `{base}-mac`: each used once through the second instance, so that it caches
/// version 1, then rotated to version 2 through the first.
async fn behind_a_stale_cache(base: &str) -> (TestApp, TestApp) {
    let first = spawn_unsealed().await;
    let second = spawn_stale_instance(&first).await;
    let (ed, mac) = (format!("{base}-ed"), format!("{base}-mac"));
    first.create_key(base, "aes256-gcm96").await;
    first.create_key(&ed, "ed25519").await;
    first.create_key(&mac, "hmac").await;
    assert_versioned(&second.encrypt(base, b"cached").await, 1);
    second.sign(&ed, json!({"input": b64("x")})).await;
    second.hmac(&mac, json!({"input": b64("x")})).await;
    for name in [base, &ed, &mac] {
        first.rotate(name).await;
    }
    (first, second)
}

#[tokio::test]
async fn a_second_instance_encrypts_with_a_new_version_within_five_seconds() {
    let first = spawn_unsealed().await;
    let second = spawn_second_instance(&first).await;
    assert_ne!(first.port, second.port);

    first.create_key("shared", "aes256-gcm96").await;
    // Keys made elsewhere are usable at once (nothing is cached yet).
    let on_second = second.encrypt("shared", b"from the second").await;
    assert_versioned(&on_second, 1);
    assert_eq!(
        first.decrypt("shared", &on_second).await,
        b"from the second"
    );

    let rotated_at = std::time::Instant::now();
    first.rotate("shared").await;
    // Reads go to storage.
    assert_eq!(second.read_key("shared").await["latest_version"], json!(2));
    let ciphertext = eventually(
        Duration::from_secs(5),
        "the second instance to use v2",
        || {
            let second = &second;
            async move {
                let ciphertext = second.encrypt("shared", b"after rotation").await;
                (split_versioned(&ciphertext).0 == 2).then_some(ciphertext)
            }
        },
    )
    .await;
    assert!(rotated_at.elapsed() < Duration::from_secs(5));
    assert_eq!(
        first.decrypt("shared", &ciphertext).await,
        b"after rotation"
    );
    assert_eq!(
        second.decrypt("shared", &on_second).await,
        b"from the second"
    );

    // Sealing is per instance.
    first.seal().await;
    assert_eq!(second.seal_status().await["sealed"], json!(false));
    assert_eq!(
        second.decrypt("shared", &ciphertext).await,
        b"after rotation"
    );
    first
        .transit("decrypt/shared", json!({"ciphertext": ciphertext}))
        .await
        .assert_sealed();
}

#[tokio::test]
async fn a_stale_cache_still_opens_values_of_newer_versions_at_once() {
    let (first, second) = behind_a_stale_cache("stale").await;
    let new_ciphertext = first.encrypt("stale", b"made with v2").await;
    assert_versioned(&new_ciphertext, 2);
    // The second instance's cache is stale: it still encrypts with version 1 ...
    assert_versioned(&second.encrypt("stale", b"stale").await, 1);
    // ... yet opens a version-2 ciphertext immediately.
    assert_eq!(
        second.decrypt("stale", &new_ciphertext).await,
        b"made with v2"
    );
    // Having reloaded, it now encrypts with version 2.
    assert_versioned(&second.encrypt("stale", b"fresh").await, 2);

    let signature = first
        .sign("stale-ed", json!({"input": b64("ballot")}))
        .await["signature"]
        .clone();
    assert_eq!(split_versioned(signature.as_str().unwrap()).0, 2);
    let signed = json!({"input": b64("ballot"), "signature": signature});
    assert!(second.verify("stale-ed", signed).await);

    let tag = first
        .hmac("stale-mac", json!({"input": b64("lookup")}))
        .await;
    let tagged = json!({"input": b64("lookup"), "hmac": tag});
    assert!(second.verify("stale-mac", tagged).await);

    // A minimum decryption version lowered elsewhere is honoured at once too.
    first.create_key("lowered", "aes256-gcm96").await;
    let old = first.encrypt("lowered", b"old").await;
    first.rotate("lowered").await;
    first
        .configure_key("lowered", json!({"min_decryption_version": 2}))
        .await
        .ok();
    assert_versioned(&second.encrypt("lowered", b"cache it").await, 2);
    second
        .try_decrypt("lowered", json!({"ciphertext": old}))
        .await
        .assert_error(400, "too old");
    first
        .configure_key("lowered", json!({"min_decryption_version": 1}))
        .await
        .ok();
    assert_eq!(second.decrypt("lowered", &old).await, b"old");
}

#[tokio::test]
async fn keys_deleted_elsewhere_disappear_from_the_cache() {
    let first = spawn_unsealed().await;
    let second = spawn_second_instance(&first).await;
    first.create_key("gone", "aes256-gcm96").await;
    let ciphertext = second.encrypt("gone", b"soon unreadable").await;
    first.allow_deletion("gone").await;
    let reply = first.delete("/v1/transit/keys/gone", ADMIN).await;
    assert_eq!(reply.status(), 204, "{}", reply.text);
    eventually(
        Duration::from_secs(5),
        "the deletion to reach the second instance",
        || {
            let second = &second;
            let ciphertext = ciphertext.clone();
            async move {
                let reply = second
                    .try_decrypt("gone", json!({"ciphertext": ciphertext}))
                    .await;
                (reply.status() == 400).then_some(reply)
            }
        },
    )
    .await
    .assert_error(400, "encryption key not found");
}

#[tokio::test]
async fn a_key_deleted_and_recreated_elsewhere_is_not_served_from_the_old_cache() {
    let first = spawn_unsealed().await;
    let second = spawn_second_instance_with(&first, |settings| {
        settings.seal.key_refresh_interval_ms = 300
    })
    .await;
    first.create_key("reborn", "aes256-gcm96").await;
    first.allow_deletion("reborn").await;
    second.encrypt("reborn", b"cache the old key").await;

    // Replace the key with a new one carrying the same settings, in a moment.
    let reply = first.delete("/v1/transit/keys/reborn", ADMIN).await;
    assert_eq!(reply.status(), 204);
    first.create_key("reborn", "aes256-gcm96").await;
    first.allow_deletion("reborn").await;

    // After a few refresh periods the second instance must encrypt with the new key.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let ciphertext = second.encrypt("reborn", b"made on the second").await;
    let reply = first
        .try_decrypt("reborn", json!({"ciphertext": ciphertext}))
        .await;
    assert_eq!(
        reply.status(),
        200,
        "the second instance encrypted with the deleted key: {}",
        reply.text
    );
}

#[tokio::test]
async fn rotating_through_a_stale_instance_rotates_the_key_as_stored() {
    let first = spawn_unsealed().await;
    let second = spawn_stale_instance(&first).await;
    first.create_key("swapped", "aes256-gcm96").await;
    first.allow_deletion("swapped").await;
    second.encrypt("swapped", b"cached as aes").await;
    first.delete("/v1/transit/keys/swapped", ADMIN).await;
    first.create_key("swapped", "ed25519").await;

    // The second instance still caches the AES key of that name when asked to rotate.
    let rotated = second.transit("keys/swapped/rotate", json!({})).await;
    let rotated = rotated.ok();
    assert_eq!(rotated["type"], json!("ed25519"));
    assert_eq!(rotated["latest_version"], json!(2));
    let read = first.get("/v1/transit/keys/swapped", ADMIN).await;
    let read = read.ok();
    assert_eq!(read["type"], json!("ed25519"));
    assert_eq!(read["latest_version"], json!(2));
    let signed = first
        .transit("sign/swapped", json!({"input": b64("x")}))
        .await;
    assert_eq!(signed.ok()["key_version"], json!(2));
}

#[tokio::test]
async fn a_stale_cache_serves_a_newer_version_asked_for_by_number() {
    let (first, second) = behind_a_stale_cache("pinned").await;
    let old = first.encrypt("pinned", b"old").await;
    first.rotate("pinned").await; // pinned is at version 3

    for (path, body, version) in [
        (
            "encrypt/pinned",
            json!({"plaintext": b64("x"), "key_version": 2}),
            2,
        ),
        ("datakey/wrapped/pinned", json!({"key_version": 3}), 3),
        (
            "rewrap/pinned",
            json!({"ciphertext": second.encrypt("pinned", b"v1").await, "key_version": 3}),
            3,
        ),
        (
            "sign/pinned-ed",
            json!({"input": b64("x"), "key_version": 2}),
            2,
        ),
    ] {
        let reply = second.transit(path, body).await;
        assert_eq!(reply.ok()["key_version"], json!(version), "{path}");
    }
    let tag = second
        .transit(
            "hmac/pinned-mac",
            json!({"input": b64("x"), "key_version": 2}),
        )
        .await;
    assert_versioned(tag.ok()["hmac"].as_str().unwrap(), 2);
    assert_eq!(second.decrypt("pinned", &old).await, b"old");
}
