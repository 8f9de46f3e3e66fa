//! Bad input: the right 4xx, a message naming the problem, and no change to any key.

use serde_json::{Value, json};

use crate::helpers::*;

/// Keys used by the tests here, with a ciphertext of each encrypting one.
struct Fixture {
    aes_v1: String,
    aes_v2: String,
    chacha: String,
    derived: String,
    with_ad: String,
}

const KEYS: [&str; 7] = ["aes", "other-aes", "chacha", "derived", "ed", "ec", "mac"];

async fn fixture(app: &TestApp) -> Fixture {
    app.create_key("aes", "aes256-gcm96").await;
    let aes_v1 = app.encrypt("aes", b"secret one").await;
    app.rotate("aes").await;
    let aes_v2 = app.encrypt("aes", b"secret two").await;
    app.create_key("other-aes", "aes256-gcm96").await;
    app.create_key("chacha", "chacha20-poly1305").await;
    let chacha = app.encrypt("chacha", b"secret three").await;
    app.create_key_with("derived", json!({"derived": true}))
        .await;
    let derived = app
        .encrypt_with(
            "derived",
            json!({"plaintext": b64("secret four"), "context": b64("ctx")}),
        )
        .await;
    let with_ad = app
        .encrypt_with(
            "aes",
            json!({"plaintext": b64("secret five"), "associated_data": b64("ad")}),
        )
        .await;
    app.create_key("ed", "ed25519").await;
    app.create_key("ec", "ecdsa-p256").await;
    app.create_key("mac", "hmac").await;
    Fixture {
        aes_v1,
        aes_v2,
        chacha,
        derived,
        with_ad,
    }
}

async fn snapshot(app: &TestApp) -> Vec<Value> {
    let mut keys = Vec::new();
    for name in KEYS {
        keys.push(app.read_key(name).await);
    }
    keys
}

/// What AES-GCM reports for a wrong key, nonce, body, tag or associated data.
const AUTH_FAILED: &str = "cipher: message authentication failed";

/// Posts `body` to `/v1/transit/{path}` as the admin, asserts a 400 whose errors mention
/// `message`, and returns the errors.
async fn assert_refused(app: &TestApp, path: &str, body: Value, message: &str) -> Vec<String> {
    let reply = app.transit(path, body.clone()).await;
    assert_eq!(reply.status(), 400, "{path} {body}: {}", reply.text);
    let errors = reply.errors();
    assert!(
        errors.iter().any(|error| error.contains(message)),
        "{path} {body}: expected {message:?}, got {errors:?}"
    );
    errors
}

fn tamper(ciphertext: &str, index: usize) -> String {
    let (version, payload) = split_versioned(ciphertext);
    let mut bytes = unb64(&payload);
    bytes[index] ^= 0x01;
    format!("vault:v{version}:{}", b64(bytes))
}

#[tokio::test]
async fn malformed_wrong_and_tampered_ciphertexts_are_refused_without_side_effects() {
    let app = spawn_unsealed().await;
    let fx = fixture(&app).await;
    let before = snapshot(&app).await;
    let (_, aes_payload) = split_versioned(&fx.aes_v2);

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "encrypt/aes",
            json!({"plaintext": "this is not base64!"}),
            "failed to base64-decode plaintext",
        ),
        ("encrypt/aes", json!({}), "missing plaintext to encrypt"),
        (
            "encrypt/aes",
            json!({"plaintext": b64("x"), "context": "%%%"}),
            "failed to base64-decode context",
        ),
        (
            "encrypt/aes",
            json!({"plaintext": b64("x"), "associated_data": "%%%"}),
            "failed to base64-decode associated_data",
        ),
        ("decrypt/aes", json!({}), "missing ciphertext to decrypt"),
        (
            "decrypt/aes",
            json!({"ciphertext": format!("vault:v2:{aes_payload}!")}),
            "invalid ciphertext: could not decode base64",
        ),
        (
            "decrypt/aes",
            json!({"ciphertext": "vault:v2:#not-base64#"}),
            "invalid ciphertext: could not decode base64",
        ),
        (
            "decrypt/aes",
            json!({"ciphertext": aes_payload}),
            "invalid ciphertext: no prefix",
        ),
        (
            "decrypt/aes",
            json!({"ciphertext": "vault:v2"}),
            "invalid ciphertext: wrong number of fields",
        ),
        (
            "decrypt/aes",
            json!({"ciphertext": format!("vault:vtwo:{aes_payload}")}),
            "invalid ciphertext: version number could not be decoded",
        ),
        (
            "decrypt/aes",
            json!({"ciphertext": "vault:v2:AAAA"}),
            "invalid ciphertext length",
        ),
        // Another key's ciphertext.
        (
            "decrypt/other-aes",
            json!({"ciphertext": fx.aes_v1}),
            AUTH_FAILED,
        ),
        (
            "decrypt/aes",
            json!({"ciphertext": fx.chacha.replacen("vault:v1:", "vault:v2:", 1)}),
            AUTH_FAILED,
        ),
        // A version this key never had.
        (
            "decrypt/aes",
            json!({"ciphertext": fx.aes_v2.replacen("vault:v2:", "vault:v3:", 1)}),
            "invalid ciphertext: version is too new",
        ),
        (
            "decrypt/aes",
            json!({"ciphertext": fx.aes_v2.replacen("vault:v2:", "vault:v99999999999:", 1)}),
            "invalid ciphertext",
        ),
        // The right payload under the wrong version.
        (
            "decrypt/aes",
            json!({"ciphertext": fx.aes_v2.replacen("vault:v2:", "vault:v1:", 1)}),
            AUTH_FAILED,
        ),
        // Tampered nonce, body and tag.
        (
            "decrypt/aes",
            json!({"ciphertext": tamper(&fx.aes_v2, 0)}),
            AUTH_FAILED,
        ),
        (
            "decrypt/aes",
            json!({"ciphertext": tamper(&fx.aes_v2, 13)}),
            AUTH_FAILED,
        ),
        (
            "decrypt/aes",
            json!({"ciphertext": tamper(&fx.aes_v2, 12 + 10 + 15)}),
            AUTH_FAILED,
        ),
        (
            "decrypt/chacha",
            json!({"ciphertext": tamper(&fx.chacha, 20)}),
            "chacha20poly1305: message authentication failed",
        ),
        // Wrong or missing associated data.
        (
            "decrypt/aes",
            json!({"ciphertext": fx.with_ad, "associated_data": b64("other")}),
            AUTH_FAILED,
        ),
        (
            "decrypt/aes",
            json!({"ciphertext": fx.with_ad}),
            AUTH_FAILED,
        ),
        (
            "decrypt/aes",
            json!({"ciphertext": fx.aes_v1, "associated_data": b64("unexpected")}),
            AUTH_FAILED,
        ),
        // Derived keys need their context.
        (
            "decrypt/derived",
            json!({"ciphertext": fx.derived}),
            "missing 'context' for key derivation",
        ),
        (
            "decrypt/derived",
            json!({"ciphertext": fx.derived, "context": b64("other")}),
            AUTH_FAILED,
        ),
        (
            "decrypt/derived",
            json!({"ciphertext": fx.derived, "context": "***"}),
            "failed to base64-decode context",
        ),
    ];
    for (path, body, message) in cases {
        let errors = assert_refused(&app, path, body, message).await;
        assert!(
            !errors.iter().any(|error| error.contains("secret")),
            "no plaintext in errors: {errors:?}"
        );
    }
    assert_eq!(snapshot(&app).await, before, "no key changed");
    // And everything still works.
    assert_eq!(app.decrypt("aes", &fx.aes_v1).await, b"secret one");
    assert_eq!(app.decrypt("aes", &fx.aes_v2).await, b"secret two");
    assert_eq!(app.decrypt("chacha", &fx.chacha).await, b"secret three");
}

#[tokio::test]
async fn versions_below_the_minimum_are_refused_without_side_effects() {
    let app = spawn_unsealed().await;
    let fx = fixture(&app).await;
    app.configure_key("aes", json!({"min_decryption_version": 2}))
        .await
        .ok();
    let before = snapshot(&app).await;
    app.try_decrypt("aes", json!({"ciphertext": fx.aes_v1}))
        .await
        .assert_error(
            400,
            "ciphertext or signature version is disallowed by policy (too old)",
        );
    app.assert_refusals([
        (
            "encrypt/aes",
            json!({"plaintext": b64("x"), "key_version": 1}),
            "key version disallowed by policy",
        ),
        (
            "encrypt/aes",
            json!({"plaintext": b64("x"), "key_version": 3}),
            "higher than the latest key version",
        ),
    ])
    .await;
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(app.decrypt("aes", &fx.aes_v2).await, b"secret two");
}

#[tokio::test]
async fn unknown_keys_and_wrong_key_types_are_refused() {
    let app = spawn_unsealed().await;
    let fx = fixture(&app).await;
    let before = snapshot(&app).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "decrypt/nope",
            json!({"ciphertext": fx.aes_v1}),
            "encryption key not found",
        ),
        (
            "rewrap/nope",
            json!({"ciphertext": fx.aes_v1}),
            "encryption key not found",
        ),
        (
            "datakey/plaintext/nope",
            json!({}),
            "encryption key not found",
        ),
        (
            "sign/nope",
            json!({"input": b64("x")}),
            "signing key not found",
        ),
        (
            "verify/nope",
            json!({"input": b64("x"), "signature": "vault:v1:AAAA"}),
            "signature verification key not found",
        ),
        (
            "hmac/nope",
            json!({"input": b64("x")}),
            "encryption key not found",
        ),
        // Encryption with signing-only and HMAC keys.
        (
            "encrypt/ed",
            json!({"plaintext": b64("x")}),
            "message encryption not supported for key type ed25519",
        ),
        (
            "encrypt/ec",
            json!({"plaintext": b64("x")}),
            "message encryption not supported for key type ecdsa-p256",
        ),
        (
            "encrypt/mac",
            json!({"plaintext": b64("x")}),
            "message encryption not supported for key type hmac",
        ),
        (
            "decrypt/ed",
            json!({"ciphertext": fx.aes_v1}),
            "message decryption not supported for key type ed25519",
        ),
        (
            "datakey/wrapped/ec",
            json!({}),
            "message encryption not supported for key type ecdsa-p256",
        ),
        // Signing with encryption and HMAC keys.
        (
            "sign/aes",
            json!({"input": b64("x")}),
            "key type aes256-gcm96 does not support signing",
        ),
        (
            "sign/chacha",
            json!({"input": b64("x")}),
            "key type chacha20-poly1305 does not support signing",
        ),
        (
            "sign/mac",
            json!({"input": b64("x")}),
            "key type hmac does not support signing",
        ),
        (
            "verify/aes",
            json!({"input": b64("x"), "signature": "vault:v1:AAAA"}),
            "does not support",
        ),
        (
            "sign/ed",
            json!({"input": "%%%"}),
            "unable to decode input as base64",
        ),
        (
            "verify/ed",
            json!({"input": b64("x"), "signature": "vault:v1:%%%"}),
            "invalid base64 signature value",
        ),
        (
            "verify/ed",
            json!({"input": b64("x"), "signature": "vault:v9:AAAA"}),
            "invalid signature: version is too new",
        ),
        (
            "verify/ed",
            json!({"input": b64("x")}),
            "neither a 'signature' nor an 'hmac' were given to verify",
        ),
        (
            "sign/ed",
            json!({"input": b64("x"), "key_version": 2}),
            "requested version for signing is higher than the latest key version",
        ),
    ];
    for (path, body, message) in cases {
        assert_refused(&app, path, body, message).await;
    }
    // Reads of unknown keys are 404s with an empty error list; none was created.
    app.assert_no_key("nope").await;
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn bad_json_is_refused() {
    let app = spawn_unsealed().await;
    let fx = fixture(&app).await;
    let before = snapshot(&app).await;
    for (path, body) in [
        ("/v1/transit/encrypt/aes", b"{\"plaintext\": ".to_vec()),
        ("/v1/transit/encrypt/aes", b"[1, 2, 3]".to_vec()),
        ("/v1/transit/encrypt/aes", b"{\"plaintext\": 42}".to_vec()),
        ("/v1/transit/decrypt/aes", b"plaintext=aGk=".to_vec()),
        (
            "/v1/transit/keys/aes/config",
            b"{\"min_decryption_version\": \"two\"}".to_vec(),
        ),
        ("/v1/transit/keys/aes/rotate", b"{oops}".to_vec()),
        ("/v1/transit/keys/brand-new", b"{\"type\": }".to_vec()),
        ("/v1/sys/unseal", b"{\"key\": ".to_vec()),
        ("/v1/transit/encrypt/aes", vec![0xff, 0xfe, 0x00]),
    ] {
        let reply = app.post_raw(path, ADMIN, body).await;
        reply.assert_error(400, "error parsing JSON");
    }
    assert_eq!(snapshot(&app).await, before);
    app.assert_no_key("brand-new").await;
    assert_eq!(app.decrypt("aes", &fx.aes_v2).await, b"secret two");
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = spawn_unsealed_with(|settings| settings.application.max_body_bytes = 1024).await;
    app.create_key("small", "aes256-gcm96").await;
    let before = app.read_key("small").await;
    let plaintext = b64(vec![b'a'; 8 * 1024]);
    let reply = app
        .transit("encrypt/small", json!({"plaintext": plaintext}))
        .await;
    reply.assert_error(413, "request body too large");
    // Creating a key with an oversized body creates nothing.
    let padding = "x".repeat(4096);
    let reply = app
        .transit(
            "keys/too-big",
            json!({"type": "aes256-gcm96", "padding": padding}),
        )
        .await;
    reply.assert_error(413, "request body too large");
    app.assert_no_key("too-big").await;
    // Chunked bodies without a length are limited too.
    let port = app.port;
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut request = String::from(
            "POST /v1/transit/encrypt/small HTTP/1.1\r\nHost: localhost\r\n\
             X-Vault-Token: dev-security-admin-token\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        );
        let body = format!(r#"{{"plaintext": "{}"}}"#, "A".repeat(2048));
        for chunk in body.as_bytes().chunks(512) {
            request.push_str(&format!(
                "{:x}\r\n{}\r\n",
                chunk.len(),
                String::from_utf8_lossy(chunk)
            ));
        }
        request.push_str("0\r\n\r\n");
        // The server may answer (and close) before reading everything.
        let _ = stream.write_all(request.as_bytes());
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains(r#"{"errors":["http: request body too large"]}"#),
        "{answer}"
    );
    // A body under the limit is fine.
    assert_versioned(&app.encrypt("small", &[b'a'; 100]).await, 1);
    assert_eq!(app.read_key("small").await, before);
}

#[tokio::test]
async fn invalid_key_types_and_names_are_refused_on_create() {
    let app = spawn_unsealed().await;
    for (body, message) in [
        (json!({"type": "rsa-1024"}), "unknown key type rsa-1024"),
        (
            json!({"type": "aes128-gcm96"}),
            "unknown key type aes128-gcm96",
        ),
        (json!({"type": "hmac", "key_size": 8}), "invalid key_size 8"),
        (
            json!({"type": "aes256-gcm96", "key_size": 64}),
            "key_size is not valid for algorithm aes256-gcm96",
        ),
        (
            json!({"type": "ecdsa-p256", "derived": true}),
            "key derivation and convergent encryption not supported for keys of type ecdsa-p256",
        ),
        (
            json!({"type": "ed25519", "derived": true, "convergent_encryption": true}),
            "convergent encryption not supported for keys of type ed25519",
        ),
        (
            json!({"auto_rotate_period": "10m"}),
            "auto rotate period must be 0 to disable or at least an hour",
        ),
    ] {
        app.transit("keys/typed", body.clone())
            .await
            .assert_error(400, message);
        app.assert_no_key("typed").await;
    }
    for name in ["-leading", "trailing-", "has%20space", "caf%C3%A9", "dot."] {
        app.transit(&format!("keys/{name}"), json!({"type": "aes256-gcm96"}))
            .await
            .assert_error(400, "invalid key name");
    }
    let long = "k".repeat(129);
    app.transit(&format!("keys/{long}"), json!({}))
        .await
        .assert_error(400, "invalid key name");
    app.assert_no_keys().await;
    // Upsert refuses an invalid name too, and creates nothing.
    app.assert_refusals([
        (
            "encrypt/-leading",
            json!({"plaintext": b64("x")}),
            "encryption key not found",
        ),
        (
            "encrypt/typed",
            json!({"plaintext": b64("x"), "type": "rsa-1024"}),
            "unknown key type rsa-1024",
        ),
    ])
    .await;
    app.assert_no_keys().await;
}
