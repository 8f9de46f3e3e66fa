//! Several instances on one database: changes made through one are seen by the others.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

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
        .post(
            "/v1/transit/decrypt/shared",
            ADMIN,
            json!({"ciphertext": ciphertext}),
        )
        .await
        .assert_sealed();
}

#[tokio::test]
async fn a_stale_cache_still_opens_values_of_newer_versions_at_once() {
    let first = spawn_unsealed().await;
    // This instance never refreshes on its own during the test.
    let second = spawn_second_instance_with(&first, |settings| {
        settings.seal.key_refresh_interval_ms = 600_000
    })
    .await;
    first.create_key("stale", "aes256-gcm96").await;
    first.create_key("stale-ed", "ed25519").await;
    first.create_key("stale-mac", "hmac").await;
    // Cache all three on the second instance.
    assert_versioned(&second.encrypt("stale", b"cached").await, 1);
    second
        .post(
            "/v1/transit/sign/stale-ed",
            ADMIN,
            json!({"input": b64("x")}),
        )
        .await
        .ok();
    second
        .post(
            "/v1/transit/hmac/stale-mac",
            ADMIN,
            json!({"input": b64("x")}),
        )
        .await
        .ok();

    for name in ["stale", "stale-ed", "stale-mac"] {
        first.rotate(name).await;
    }
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
        .post(
            "/v1/transit/sign/stale-ed",
            ADMIN,
            json!({"input": b64("ballot")}),
        )
        .await
        .ok()["signature"]
        .clone();
    assert_eq!(split_versioned(signature.as_str().unwrap()).0, 2);
    let verified = second
        .post(
            "/v1/transit/verify/stale-ed",
            ADMIN,
            json!({"input": b64("ballot"), "signature": signature}),
        )
        .await;
    assert_eq!(verified.ok()["valid"], json!(true));

    let tag = first
        .post(
            "/v1/transit/hmac/stale-mac",
            ADMIN,
            json!({"input": b64("lookup")}),
        )
        .await
        .ok()["hmac"]
        .clone();
    let checked = second
        .post(
            "/v1/transit/verify/stale-mac",
            ADMIN,
            json!({"input": b64("lookup"), "hmac": tag}),
        )
        .await;
    assert_eq!(checked.ok()["valid"], json!(true));

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
    first
        .configure_key("gone", json!({"deletion_allowed": true}))
        .await
        .ok();
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
    first
        .configure_key("reborn", json!({"deletion_allowed": true}))
        .await
        .ok();
    second.encrypt("reborn", b"cache the old key").await;

    // Replace the key with a new one carrying the same settings, in a moment.
    let reply = first.delete("/v1/transit/keys/reborn", ADMIN).await;
    assert_eq!(reply.status(), 204);
    first.create_key("reborn", "aes256-gcm96").await;
    first
        .configure_key("reborn", json!({"deletion_allowed": true}))
        .await
        .ok();

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
    let second = spawn_second_instance_with(&first, |settings| {
        settings.seal.key_refresh_interval_ms = 600_000
    })
    .await;
    first.create_key("swapped", "aes256-gcm96").await;
    first
        .configure_key("swapped", json!({"deletion_allowed": true}))
        .await
        .ok();
    second.encrypt("swapped", b"cached as aes").await;
    first.delete("/v1/transit/keys/swapped", ADMIN).await;
    first.create_key("swapped", "ed25519").await;

    // The second instance still caches the AES key of that name when asked to rotate.
    let rotated = second
        .post("/v1/transit/keys/swapped/rotate", ADMIN, json!({}))
        .await;
    let rotated = rotated.ok();
    assert_eq!(rotated["type"], json!("ed25519"));
    assert_eq!(rotated["latest_version"], json!(2));
    let read = first.get("/v1/transit/keys/swapped", ADMIN).await;
    let read = read.ok();
    assert_eq!(read["type"], json!("ed25519"));
    assert_eq!(read["latest_version"], json!(2));
    let signed = first
        .post(
            "/v1/transit/sign/swapped",
            ADMIN,
            json!({"input": b64("x")}),
        )
        .await;
    assert_eq!(signed.ok()["key_version"], json!(2));
}

#[tokio::test]
async fn a_stale_cache_serves_a_newer_version_asked_for_by_number() {
    let first = spawn_unsealed().await;
    let second = spawn_second_instance_with(&first, |settings| {
        settings.seal.key_refresh_interval_ms = 600_000
    })
    .await;
    first.create_key("pinned", "aes256-gcm96").await;
    first.create_key("pinned-ed", "ed25519").await;
    first.create_key("pinned-mac", "hmac").await;
    // Cache version 1 of each on the second instance, then rotate through the first.
    second.encrypt("pinned", b"cache").await;
    second
        .post(
            "/v1/transit/sign/pinned-ed",
            ADMIN,
            json!({"input": b64("x")}),
        )
        .await
        .ok();
    second
        .post(
            "/v1/transit/hmac/pinned-mac",
            ADMIN,
            json!({"input": b64("x")}),
        )
        .await
        .ok();
    for name in ["pinned", "pinned-ed", "pinned-mac"] {
        first.rotate(name).await;
    }
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
        let reply = second
            .post(&format!("/v1/transit/{path}"), ADMIN, body)
            .await;
        assert_eq!(reply.ok()["key_version"], json!(version), "{path}");
    }
    let tag = second
        .post(
            "/v1/transit/hmac/pinned-mac",
            ADMIN,
            json!({"input": b64("x"), "key_version": 2}),
        )
        .await;
    assert_versioned(tag.ok()["hmac"].as_str().unwrap(), 2);
    assert_eq!(second.decrypt("pinned", &old).await, b"old");
}
