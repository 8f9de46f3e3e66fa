//! Rotation, minimum decryption and encryption versions, trimming and rewrapping.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn every_older_version_still_decrypts_after_rotations() {
    let app = spawn_unsealed().await;
    for key_type in ["aes256-gcm96", "chacha20-poly1305", "rsa-2048"] {
        let name = format!("rotating-{key_type}");
        app.create_key(&name, key_type).await;
        let mut ciphertexts = vec![app.encrypt(&name, b"version 1").await];
        for version in 2..=4u32 {
            let rotated = app.rotate(&name).await;
            assert_eq!(rotated["latest_version"], json!(version));
            let data = app
                .transit_ok(
                    &format!("encrypt/{name}"),
                    json!({"plaintext": b64(format!("version {version}"))}),
                )
                .await;
            assert_eq!(data["key_version"], json!(version), "{key_type}");
            let ciphertext = data["ciphertext"].as_str().unwrap().to_owned();
            assert_versioned(&ciphertext, version);
            ciphertexts.push(ciphertext);
        }
        for (index, ciphertext) in ciphertexts.iter().enumerate() {
            assert_eq!(
                app.decrypt(&name, ciphertext).await,
                format!("version {}", index + 1).as_bytes(),
                "{key_type}"
            );
        }
        let key = app.read_key(&name).await;
        let versions: Vec<_> = key["keys"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(versions, ["1", "2", "3", "4"]);
        assert_eq!(app.db_versions(&name).await, (4, 4));
    }
    // `vault:v0:` is read as version 1.
    app.create_key("v0", "aes256-gcm96").await;
    let ciphertext = app.encrypt("v0", b"zero").await;
    let v0 = ciphertext.replacen("vault:v1:", "vault:v0:", 1);
    assert_eq!(app.decrypt("v0", &v0).await, b"zero");
    app.transit("keys/absent/rotate", json!({}))
        .await
        .assert_error(400, "key not found");
}

#[tokio::test]
async fn min_decryption_version_refuses_old_ciphertexts_until_lowered() {
    let app = spawn_unsealed().await;
    app.create_key("min-dec", "aes256-gcm96").await;
    let v1 = app.encrypt("min-dec", b"one").await;
    app.rotate("min-dec").await;
    let v2 = app.encrypt("min-dec", b"two").await;
    app.rotate("min-dec").await;
    let v3 = app.encrypt("min-dec", b"three").await;

    let key = app
        .configure_key("min-dec", json!({"min_decryption_version": 3}))
        .await
        .ok()
        .clone();
    assert_eq!(key["min_decryption_version"], json!(3));
    for old in [&v1, &v2] {
        app.try_decrypt("min-dec", json!({"ciphertext": old}))
            .await
            .assert_error(
                400,
                "ciphertext or signature version is disallowed by policy (too old)",
            );
        app.transit("rewrap/min-dec", json!({"ciphertext": old}))
            .await
            .assert_error(400, "disallowed by policy (too old)");
    }
    assert_eq!(app.decrypt("min-dec", &v3).await, b"three");
    // Versions below the minimum cannot be used to make new ciphertexts either: nothing could
    // decrypt them.
    for version in [1, 2] {
        for (operation, body) in [
            (
                "encrypt",
                json!({"plaintext": b64("x"), "key_version": version}),
            ),
            ("rewrap", json!({"ciphertext": v3, "key_version": version})),
            ("datakey/plaintext", json!({"key_version": version})),
            ("hmac", json!({"input": b64("x"), "key_version": version})),
        ] {
            app.transit(&format!("{operation}/min-dec"), body)
                .await
                .assert_error(400, "key version disallowed by policy (minimum is 3)");
        }
    }
    // Still archived, not gone: lowering the minimum brings them back.
    assert_eq!(app.db_versions("min-dec").await, (3, 3));
    app.configure_key("min-dec", json!({"min_decryption_version": 1}))
        .await
        .ok();
    assert_eq!(app.decrypt("min-dec", &v1).await, b"one");
    assert_eq!(app.decrypt("min-dec", &v2).await, b"two");
    let key = app.read_key("min-dec").await;
    assert_eq!(key["keys"].as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn min_encryption_version_bounds_the_versions_used_to_encrypt() {
    let app = spawn_unsealed().await;
    app.create_key("min-enc", "aes256-gcm96").await;
    app.rotate("min-enc").await;
    app.rotate("min-enc").await;

    // Without a minimum any version may be asked for.
    let data = app
        .transit_ok(
            "encrypt/min-enc",
            json!({"plaintext": b64("pinned"), "key_version": 1}),
        )
        .await;
    assert_eq!(data["key_version"], json!(1));
    let pinned = data["ciphertext"].as_str().unwrap().to_owned();

    app.configure_key("min-enc", json!({"min_encryption_version": 2}))
        .await
        .ok();
    app.transit(
        "encrypt/min-enc",
        json!({"plaintext": b64("x"), "key_version": 1}),
    )
    .await
    .assert_error(
        400,
        "requested version for encryption is less than the minimum encryption key version",
    );
    let two = app
        .transit(
            "encrypt/min-enc",
            json!({"plaintext": b64("x"), "key_version": 2}),
        )
        .await;
    assert_eq!(two.ok()["key_version"], json!(2));
    app.assert_refusals([
        (
            "encrypt/min-enc",
            json!({"plaintext": b64("x"), "key_version": 4}),
            "requested version for encryption is higher than the latest key version",
        ),
        (
            "encrypt/min-enc",
            json!({"plaintext": b64("x"), "key_version": -1}),
            "requested version for encryption is negative",
        ),
    ])
    .await;
    assert_versioned(&app.encrypt("min-enc", b"latest").await, 3);
    // Decryption of older versions is not affected by the encryption minimum.
    assert_eq!(app.decrypt("min-enc", &pinned).await, b"pinned");
    app.assert_refusals([
        (
            "datakey/wrapped/min-enc",
            json!({"key_version": 1}),
            "less than the minimum encryption key version",
        ),
        (
            "hmac/min-enc",
            json!({"input": b64("x"), "key_version": 1}),
            "cannot generate HMAC: version is too old (disallowed by policy)",
        ),
    ])
    .await;
}

#[tokio::test]
async fn trim_follows_vaults_rules_and_deletes_old_versions_for_good() {
    let app = spawn_unsealed().await;
    app.create_key("trimmed", "aes256-gcm96").await;
    let v1 = app.encrypt("trimmed", b"one").await;
    app.rotate("trimmed").await;
    let v2 = app.encrypt("trimmed", b"two").await;
    app.rotate("trimmed").await;
    app.rotate("trimmed").await;
    let trim = |body: serde_json::Value| {
        let app = &app;
        async move { app.transit("keys/trimmed/trim", body).await }
    };

    trim(json!({}))
        .await
        .assert_error(400, "missing min_available_version");
    trim(json!({"min_available_version": 2}))
        .await
        .assert_error(
            400,
            "minimum available version cannot be set when minimum encryption version is not set",
        );
    app.configure_key(
        "trimmed",
        json!({"min_decryption_version": 2, "min_encryption_version": 3}),
    )
    .await
    .ok();
    trim(json!({"min_available_version": 4}))
        .await
        .assert_error(
            400,
            "minimum available version cannot be greater than minimum encryption version",
        );
    trim(json!({"min_available_version": 3}))
        .await
        .assert_error(
            400,
            "minimum available version cannot be greater than minimum decryption version",
        );
    trim(json!({"min_available_version": 0}))
        .await
        .assert_error(400, "minimum available version should be positive");
    trim(json!({"min_available_version": -2}))
        .await
        .assert_error(400, "minimum available version cannot be negative");
    assert_eq!(
        app.db_versions("trimmed").await,
        (4, 4),
        "refusals delete nothing"
    );

    let reply = trim(json!({"min_available_version": 2})).await;
    let key = reply.ok();
    assert_eq!(key["min_available_version"], json!(2));
    assert_eq!(key["latest_version"], json!(4));
    assert_eq!(
        app.db_versions("trimmed").await,
        (4, 3),
        "version 1 is gone"
    );

    trim(json!({"min_available_version": 1}))
        .await
        .assert_error(400, "minimum available version cannot be decremented");
    app.configure_key("trimmed", json!({"min_decryption_version": 1}))
        .await
        .assert_error(
            400,
            "min decryption version should not be less than min available version",
        );
    app.try_decrypt("trimmed", json!({"ciphertext": v1}))
        .await
        .assert_error(400, "disallowed by policy (too old)");
    assert_eq!(app.decrypt("trimmed", &v2).await, b"two");
    assert_eq!(app.rotate("trimmed").await["latest_version"], json!(5));
    app.transit("keys/missing/trim", json!({"min_available_version": 1}))
        .await
        .assert_error(400, "invalid key name");
}

#[tokio::test]
async fn rewrap_brings_every_version_to_the_latest() {
    let app = spawn_unsealed().await;
    app.create_key("rewrapped", "aes256-gcm96").await;
    let mut ciphertexts = Vec::new();
    for version in 1..=3 {
        ciphertexts.push((
            version,
            app.encrypt("rewrapped", format!("v{version}").as_bytes())
                .await,
        ));
        app.rotate("rewrapped").await;
    }
    for (version, ciphertext) in &ciphertexts {
        let data = app
            .transit_ok("rewrap/rewrapped", json!({"ciphertext": ciphertext}))
            .await;
        assert_eq!(data["key_version"], json!(4));
        let rewrapped = data["ciphertext"].as_str().unwrap();
        assert_versioned(rewrapped, 4);
        assert_ne!(rewrapped, ciphertext);
        assert_eq!(
            app.decrypt("rewrapped", rewrapped).await,
            format!("v{version}").as_bytes()
        );
    }
    // After rewrapping, the old versions can be retired.
    app.configure_key("rewrapped", json!({"min_decryption_version": 4}))
        .await
        .ok();
    app.try_decrypt("rewrapped", json!({"ciphertext": ciphertexts[0].1}))
        .await
        .assert_error(400, "too old");
    app.transit(
        "rewrap/rewrapped",
        json!({"ciphertext": ciphertexts[0].1, "key_version": 9}),
    )
    .await
    .assert_error(400, "too old");
}

#[tokio::test]
async fn keys_rotate_automatically_once_their_period_has_passed() {
    let first = spawn_unsealed_with(|settings| settings.seal.auto_rotate_check_secs = 1).await;
    let second = spawn_second_instance(&first).await;
    let key = first
        .create_key_with(
            "auto",
            json!({"type": "ed25519", "auto_rotate_period": "1h"}),
        )
        .await;
    assert_eq!(key["auto_rotate_period"], json!(3600));
    first.create_key("manual", "aes256-gcm96").await;
    let signature = first.sign("auto", json!({"input": b64("x")})).await["signature"].clone();

    // Age version 1 past the period, for both keys.
    first
        .db_execute(
            "UPDATE vottery_security_key_versions SET created_at = now() - interval '2 hours'",
        )
        .await;
    eventually(
        std::time::Duration::from_secs(10),
        "the automatic rotation",
        || {
            let first = &first;
            async move {
                let key = first.read_key("auto").await;
                (key["latest_version"] == json!(2)).then_some(())
            }
        },
    )
    .await;
    // Both instances check; the key is rotated once, and keys without a period never.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(first.db_versions("auto").await, (2, 2));
    assert_eq!(first.db_versions("manual").await, (1, 1));
    let signed = second
        .transit("sign/auto", json!({"input": b64("x")}))
        .await;
    assert_eq!(signed.ok()["key_version"], json!(2));
    let signed = json!({"input": b64("x"), "signature": signature});
    assert!(second.verify("auto", signed).await);
}
