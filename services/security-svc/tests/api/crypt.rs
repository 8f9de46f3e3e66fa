//! Encrypt, decrypt, rewrap and data keys for every key type that encrypts.

use rsa::pkcs8::DecodePublicKey;
use serde_json::{Value, json};

use crate::helpers::*;

const AEAD_TYPES: [&str; 2] = ["aes256-gcm96", "chacha20-poly1305"];

fn auth_failure(key_type: &str) -> &'static str {
    if key_type == "chacha20-poly1305" {
        "chacha20poly1305: message authentication failed"
    } else {
        "cipher: message authentication failed"
    }
}

async fn encrypt_data(app: &TestApp, name: &str, body: Value) -> Value {
    app.transit_ok(&format!("encrypt/{name}"), body).await
}

#[tokio::test]
async fn aead_keys_round_trip_with_vaults_ciphertext_format() {
    let app = spawn_unsealed().await;
    for key_type in AEAD_TYPES {
        let name = format!("plain-{key_type}");
        let created = app.create_key(&name, key_type).await;
        assert_eq!(created["type"], json!(key_type));
        for plaintext in [
            b"".to_vec(),
            b"hello vault".to_vec(),
            (0..=255u8).collect::<Vec<_>>(),
            vec![7u8; 70_000],
        ] {
            let data = encrypt_data(&app, &name, json!({"plaintext": b64(&plaintext)})).await;
            assert_eq!(data["key_version"], json!(1), "{data}");
            let ciphertext = data["ciphertext"].as_str().unwrap();
            let payload = assert_versioned(ciphertext, 1);
            assert_eq!(
                payload.len(),
                12 + plaintext.len() + 16,
                "nonce || ciphertext || tag for {key_type}"
            );
            if plaintext.len() > 8 {
                assert!(
                    !payload
                        .windows(plaintext.len().min(16))
                        .any(|window| window == &plaintext[..plaintext.len().min(16)]),
                    "plaintext visible in the ciphertext"
                );
            }
            assert_eq!(
                app.decrypt(&name, ciphertext).await,
                plaintext,
                "{key_type}"
            );
        }
        // Nonces are random: the same plaintext twice gives two ciphertexts.
        let one = app.encrypt(&name, b"same").await;
        let two = app.encrypt(&name, b"same").await;
        assert_ne!(one, two);
        assert_eq!(app.decrypt(&name, &two).await, b"same");
    }
}

#[tokio::test]
async fn associated_data_must_match_to_decrypt() {
    let app = spawn_unsealed().await;
    for key_type in AEAD_TYPES {
        let name = format!("aad-{key_type}");
        app.create_key(&name, key_type).await;
        let data = encrypt_data(
            &app,
            &name,
            json!({"plaintext": b64("bound"), "associated_data": b64("user:42")}),
        )
        .await;
        let ciphertext = data["ciphertext"].as_str().unwrap();
        let good = app
            .try_decrypt(
                &name,
                json!({"ciphertext": ciphertext, "associated_data": b64("user:42")}),
            )
            .await;
        assert_eq!(good.ok()["plaintext"], json!(b64("bound")));
        for wrong in [json!(b64("user:43")), Value::Null] {
            let mut body = json!({"ciphertext": ciphertext});
            if !wrong.is_null() {
                body["associated_data"] = wrong;
            }
            app.try_decrypt(&name, body)
                .await
                .assert_error(400, auth_failure(key_type));
        }
    }
}

#[tokio::test]
async fn derived_keys_need_the_same_context() {
    let app = spawn_unsealed().await;
    for key_type in AEAD_TYPES {
        let name = format!("derived-{key_type}");
        let created = app
            .create_key_with(&name, json!({"type": key_type, "derived": true}))
            .await;
        assert_eq!(created["derived"], json!(true));
        assert_eq!(created["kdf"], json!("hkdf_sha256"));
        let context = b64("tenant-a");
        let data = encrypt_data(
            &app,
            &name,
            json!({"plaintext": b64("per tenant"), "context": context}),
        )
        .await;
        let ciphertext = data["ciphertext"].as_str().unwrap();
        let good = app
            .try_decrypt(&name, json!({"ciphertext": ciphertext, "context": context}))
            .await;
        assert_eq!(good.ok()["plaintext"], json!(b64("per tenant")));
        app.try_decrypt(
            &name,
            json!({"ciphertext": ciphertext, "context": b64("tenant-b")}),
        )
        .await
        .assert_error(400, auth_failure(key_type));
        app.try_decrypt(&name, json!({"ciphertext": ciphertext}))
            .await
            .assert_error(400, "missing 'context' for key derivation");
        app.transit(&format!("encrypt/{name}"), json!({"plaintext": b64("x")}))
            .await
            .assert_error(400, "missing 'context' for key derivation");
        // Random nonces even with derivation.
        let again = encrypt_data(
            &app,
            &name,
            json!({"plaintext": b64("per tenant"), "context": context}),
        )
        .await;
        assert_ne!(again["ciphertext"], data["ciphertext"]);
    }
}

#[tokio::test]
async fn convergent_encryption_is_deterministic_per_context() {
    let app = spawn_unsealed().await;
    for key_type in AEAD_TYPES {
        let name = format!("convergent-{key_type}");
        let created = app
            .create_key_with(
                &name,
                json!({"type": key_type, "derived": true, "convergent_encryption": true}),
            )
            .await;
        assert_eq!(created["convergent_encryption"], json!(true));
        let encrypt = |plaintext: &'static str, context: &'static str| {
            let app = &app;
            let name = name.clone();
            async move {
                encrypt_data(
                    app,
                    &name,
                    json!({"plaintext": b64(plaintext), "context": b64(context)}),
                )
                .await["ciphertext"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
        };
        let first = encrypt("alice@example.com", "email").await;
        let second = encrypt("alice@example.com", "email").await;
        assert_eq!(first, second, "same plaintext and context, same ciphertext");
        assert_ne!(first, encrypt("bob@example.com", "email").await);
        assert_ne!(first, encrypt("alice@example.com", "phone").await);
        let decrypted = app
            .try_decrypt(&name, json!({"ciphertext": first, "context": b64("email")}))
            .await;
        assert_eq!(decrypted.ok()["plaintext"], json!(b64("alice@example.com")));
    }
    // Convergence requires derivation.
    app.transit("keys/not-derived", json!({"convergent_encryption": true}))
        .await
        .assert_error(400, "convergent encryption requires derivation");
}

#[tokio::test]
async fn rsa_keys_encrypt_with_oaep_sha256() {
    let app = spawn_unsealed().await;
    let created = app.create_key("rsa-enc", "rsa-2048").await;
    assert_eq!(created["supports_encryption"], json!(true));
    assert_eq!(created["supports_decryption"], json!(true));
    assert_eq!(created["supports_signing"], json!(true));

    let ciphertext = app.encrypt("rsa-enc", b"wrapped secret").await;
    assert_eq!(assert_versioned(&ciphertext, 1).len(), 256);
    assert_eq!(app.decrypt("rsa-enc", &ciphertext).await, b"wrapped secret");
    assert_ne!(ciphertext, app.encrypt("rsa-enc", b"wrapped secret").await);

    // A ciphertext made by any RSA-OAEP(SHA-256) implementation with the public key decrypts.
    let pem = created["keys"]["1"]["public_key"].as_str().unwrap();
    let public = rsa::RsaPublicKey::from_public_key_pem(pem).unwrap();
    let external = public
        .encrypt(
            &mut rand::rngs::OsRng,
            rsa::Oaep::new::<sha2::Sha256>(),
            b"made elsewhere",
        )
        .unwrap();
    let external = format!("vault:v1:{}", b64(external));
    assert_eq!(app.decrypt("rsa-enc", &external).await, b"made elsewhere");

    // OAEP-SHA256 with a 2048-bit key holds at most 190 bytes.
    app.assert_refusals([
        (
            "encrypt/rsa-enc",
            json!({"plaintext": b64([1u8; 191])}),
            "failed to RSA encrypt",
        ),
        (
            "encrypt/rsa-enc",
            json!({"plaintext": b64("x"), "associated_data": b64("ad")}),
            "'associated_data' provided for non-AEAD cipher suite rsa-2048",
        ),
    ])
    .await;
    let mut tampered = assert_versioned(&ciphertext, 1);
    tampered[100] ^= 0x40;
    app.try_decrypt(
        "rsa-enc",
        json!({"ciphertext": format!("vault:v1:{}", b64(tampered))}),
    )
    .await
    .assert_error(400, "failed to RSA decrypt");
}

#[tokio::test]
async fn data_keys_come_plaintext_and_wrapped() {
    let app = spawn_unsealed().await;
    for key_type in ["aes256-gcm96", "chacha20-poly1305", "rsa-2048"] {
        let name = format!("datakey-{key_type}");
        app.create_key(&name, key_type).await;
        for bits in [128usize, 256, 512] {
            let data = app
                .transit_ok(&format!("datakey/plaintext/{name}"), json!({"bits": bits}))
                .await;
            let plaintext = unb64(data["plaintext"].as_str().unwrap());
            assert_eq!(plaintext.len(), bits / 8, "{key_type} {bits}");
            assert_eq!(data["key_version"], json!(1));
            let ciphertext = data["ciphertext"].as_str().unwrap();
            assert_versioned(ciphertext, 1);
            assert_eq!(app.decrypt(&name, ciphertext).await, plaintext);
        }
        let wrapped = app
            .transit_ok(&format!("datakey/wrapped/{name}"), json!({}))
            .await;
        assert!(wrapped.get("plaintext").is_none(), "{wrapped}");
        let unwrapped = app
            .decrypt(&name, wrapped["ciphertext"].as_str().unwrap())
            .await;
        assert_eq!(unwrapped.len(), 32, "256 bits by default");
    }

    // Derived keys take the context for data keys too.
    app.create_key_with("datakey-derived", json!({"derived": true}))
        .await;
    let data = app
        .transit_ok(
            "datakey/plaintext/datakey-derived",
            json!({"context": b64("ctx")}),
        )
        .await;
    let decrypted = app
        .try_decrypt(
            "datakey-derived",
            json!({"ciphertext": data["ciphertext"], "context": b64("ctx")}),
        )
        .await;
    assert_eq!(decrypted.ok()["plaintext"], data["plaintext"]);

    app.assert_refusals([
        (
            "datakey/plaintext/datakey-aes256-gcm96",
            json!({"bits": 100}),
            "invalid bit length",
        ),
        (
            "datakey/raw/datakey-aes256-gcm96",
            json!({}),
            "Invalid path, must be 'plaintext' or 'wrapped'",
        ),
        (
            "datakey/wrapped/no-such-key",
            json!({}),
            "encryption key not found",
        ),
    ])
    .await;
}

#[tokio::test]
async fn rewrap_moves_ciphertexts_to_the_latest_or_a_chosen_version() {
    let app = spawn_unsealed().await;
    for key_type in ["aes256-gcm96", "chacha20-poly1305", "rsa-2048"] {
        let name = format!("rewrap-{key_type}");
        app.create_key(&name, key_type).await;
        let old = app.encrypt(&name, b"long lived").await;
        app.rotate(&name).await;
        app.rotate(&name).await;

        let rewrapped = app
            .transit_ok(&format!("rewrap/{name}"), json!({"ciphertext": old}))
            .await;
        assert_eq!(rewrapped["key_version"], json!(3), "{key_type}");
        let latest = rewrapped["ciphertext"].as_str().unwrap();
        assert_versioned(latest, 3);
        assert_eq!(app.decrypt(&name, latest).await, b"long lived");

        let to_two = app
            .transit_ok(
                &format!("rewrap/{name}"),
                json!({"ciphertext": old, "key_version": 2}),
            )
            .await;
        assert_eq!(to_two["key_version"], json!(2));
        assert_eq!(
            app.decrypt(&name, to_two["ciphertext"].as_str().unwrap())
                .await,
            b"long lived"
        );
    }

    // Derived keys rewrap with the context.
    app.create_key_with("rewrap-derived", json!({"derived": true}))
        .await;
    let bound = json!({"plaintext": b64("ctx bound"), "context": b64("c1")});
    let old = app.encrypt_with("rewrap-derived", bound).await;
    app.rotate("rewrap-derived").await;
    let rewrapped = app
        .transit_ok(
            "rewrap/rewrap-derived",
            json!({"ciphertext": old, "context": b64("c1")}),
        )
        .await;
    assert_eq!(rewrapped["key_version"], json!(2));
    let decrypted = app
        .try_decrypt(
            "rewrap-derived",
            json!({"ciphertext": rewrapped["ciphertext"], "context": b64("c1")}),
        )
        .await;
    assert_eq!(decrypted.ok()["plaintext"], json!(b64("ctx bound")));
    app.transit("rewrap/rewrap-derived", json!({"ciphertext": old}))
        .await
        .assert_error(400, "missing 'context'");
}

#[tokio::test]
async fn encrypt_creates_a_missing_key_for_the_admin() {
    let app = spawn_unsealed().await;
    let ciphertext = app.encrypt("upserted", b"first use").await;
    assert_versioned(&ciphertext, 1);
    let key = app.read_key("upserted").await;
    assert_eq!(key["type"], json!("aes256-gcm96"));
    assert_eq!(key["derived"], json!(false));
    assert_eq!(app.decrypt("upserted", &ciphertext).await, b"first use");

    // The type asked for, derived when a context came, convergent when asked.
    let data = app
        .transit_ok(
            "encrypt/upserted-chacha",
            json!({
                "plaintext": b64("x"),
                "type": "chacha20-poly1305",
                "context": b64("ctx"),
                "convergent_encryption": true
            }),
        )
        .await;
    assert_versioned(data["ciphertext"].as_str().unwrap(), 1);
    let key = app.read_key("upserted-chacha").await;
    assert_eq!(key["type"], json!("chacha20-poly1305"));
    assert_eq!(key["derived"], json!(true));
    assert_eq!(key["convergent_encryption"], json!(true));

    app.transit(
        "encrypt/upserted-ecdsa",
        json!({"plaintext": b64("x"), "type": "ecdsa-p256"}),
    )
    .await
    .assert_error(400, "key type ecdsa-p256 not supported for this operation");
    app.assert_no_key("upserted-ecdsa").await;

    // Decrypt never creates.
    app.try_decrypt("never-created", json!({"ciphertext": ciphertext}))
        .await
        .assert_error(400, "encryption key not found");
    app.assert_no_key("never-created").await;
}
