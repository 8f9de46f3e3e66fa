//! HMAC (with `hmac` keys and with every other type), hash and random bytes.

use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::*;

async fn hmac_valid(app: &TestApp, path: &str, input: &str, tag: &str) -> bool {
    app.verify(path, json!({"input": b64(input), "hmac": tag}))
        .await
}

#[tokio::test]
async fn hmac_keys_compute_and_verify_hmacs_with_every_algorithm() {
    let app = spawn_unsealed().await;
    let key = app.create_key("mac", "hmac").await;
    assert_eq!(key["type"], json!("hmac"));
    assert_eq!(key["key_size"], json!(32));
    assert!(
        key.get("keys").is_none(),
        "hmac keys list no versions: {key}"
    );
    for capability in [
        "supports_encryption",
        "supports_decryption",
        "supports_signing",
        "supports_derivation",
    ] {
        assert_eq!(key[capability], json!(false), "{capability}");
    }
    let big = app
        .create_key_with("mac-64", json!({"type": "hmac", "key_size": 64}))
        .await;
    assert_eq!(big["key_size"], json!(64));

    let default = app.hmac("mac", json!({"input": b64("voter-123")})).await;
    assert_eq!(
        assert_versioned(&default, 1).len(),
        32,
        "sha2-256 by default"
    );
    assert_eq!(
        default,
        app.hmac("mac", json!({"input": b64("voter-123")})).await,
        "HMACs are deterministic"
    );
    assert_ne!(
        default,
        app.hmac("mac-64", json!({"input": b64("voter-123")})).await
    );
    // Every SHA-2 and SHA-3 size, named in the URL or in the body; a tag is bits / 8 bytes long.
    for family in ["sha2", "sha3"] {
        for bits in [224, 256, 384, 512] {
            let algorithm = format!("{family}-{bits}");
            let in_url_path = format!("mac/{algorithm}");
            let input = json!({"input": b64("voter-123")});
            let in_url = app.hmac(&in_url_path, input).await;
            let input = json!({"input": b64("voter-123"), "algorithm": algorithm});
            let in_body = app.hmac("mac", input).await;
            assert_eq!(in_url, in_body, "{algorithm}");
            assert_eq!(assert_versioned(&in_url, 1).len(), bits / 8, "{algorithm}");
            assert!(hmac_valid(&app, &in_url_path, "voter-123", &in_url).await);
            assert!(!hmac_valid(&app, &in_url_path, "voter-124", &in_url).await);
        }
    }
    // The algorithm is part of the check.
    assert!(!hmac_valid(&app, "mac/sha3-256", "voter-123", &default).await);
    assert!(hmac_valid(&app, "mac", "voter-123", &default).await);

    // Rotation: old HMACs still verify; new ones use version 2.
    app.rotate("mac").await;
    let rotated = app.read_key("mac").await;
    assert_eq!(rotated["key_size"], json!(32));
    let newer = app.hmac("mac", json!({"input": b64("voter-123")})).await;
    assert_versioned(&newer, 2);
    assert_ne!(split_versioned(&newer).1, split_versioned(&default).1);
    assert!(hmac_valid(&app, "mac", "voter-123", &default).await);
    assert!(hmac_valid(&app, "mac", "voter-123", &newer).await);
    let pinned = app
        .hmac("mac", json!({"input": b64("voter-123"), "key_version": 1}))
        .await;
    assert_eq!(pinned, default);

    app.assert_refusals([
        (
            "hmac/mac/md5",
            json!({"input": b64("x")}),
            "unsupported algorithm md5",
        ),
        ("hmac/mac", json!({}), "missing input for HMAC"),
        (
            "hmac/mac",
            json!({"input": "%%%"}),
            "unable to decode input as base64",
        ),
        (
            "hmac/mac",
            json!({"input": b64("x"), "key_version": 3}),
            "key version does not exist; latest key version is 2",
        ),
        (
            "hmac/no-mac",
            json!({"input": b64("x")}),
            "encryption key not found",
        ),
    ])
    .await;
    let malformed = app
        .transit(
            "verify/mac",
            json!({"input": b64("x"), "hmac": "hmac:v1:AAAA"}),
        )
        .await;
    malformed.assert_error(400, "invalid HMAC");
    app.assert_refusals([
        (
            "verify/mac",
            json!({"input": b64("x"), "hmac": "vault:v7:AAAA"}),
            "invalid HMAC: version is too new",
        ),
        (
            "verify/mac",
            json!({"input": b64("x"), "hmac": default, "signature": default}),
            "provide one of 'signature' or 'hmac'",
        ),
    ])
    .await;
}

#[tokio::test]
async fn every_key_type_has_its_own_hmac_key() {
    let app = spawn_unsealed().await;
    let mut tags = Vec::new();
    for key_type in [
        "aes256-gcm96",
        "chacha20-poly1305",
        "ed25519",
        "ecdsa-p256",
        "rsa-2048",
    ] {
        let name = format!("mac-{key_type}");
        app.create_key(&name, key_type).await;
        let tag = app.hmac(&name, json!({"input": b64("same input")})).await;
        assert_eq!(assert_versioned(&tag, 1).len(), 32, "{key_type}");
        assert!(
            hmac_valid(&app, &name, "same input", &tag).await,
            "{key_type}"
        );
        assert!(
            !hmac_valid(&app, &name, "other input", &tag).await,
            "{key_type}"
        );
        tags.push(split_versioned(&tag).1);
    }
    let distinct: std::collections::BTreeSet<_> = tags.iter().collect();
    assert_eq!(distinct.len(), tags.len(), "every key has its own HMAC key");
    // A tag from one key does not verify under another.
    let foreign = format!("vault:v1:{}", tags[0]);
    assert!(!hmac_valid(&app, "mac-ed25519", "same input", &foreign).await);
}

#[tokio::test]
async fn hash_computes_sha2_and_sha3_in_hex_or_base64() {
    let app = spawn_unsealed().await;
    let input = b"abc";
    let sum = |body: Value, path: &'static str| {
        let app = &app;
        async move {
            app.transit_ok(&format!("hash{path}"), body).await["sum"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(
        sum(json!({"input": b64(input)}), "").await,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "sha2-256 in hex by default"
    );
    let expected: [(&str, Vec<u8>); 8] = [
        ("sha2-224", sha2::Sha224::digest(input).to_vec()),
        ("sha2-256", sha2::Sha256::digest(input).to_vec()),
        ("sha2-384", sha2::Sha384::digest(input).to_vec()),
        ("sha2-512", sha2::Sha512::digest(input).to_vec()),
        ("sha3-224", sha3::Sha3_224::digest(input).to_vec()),
        ("sha3-256", sha3::Sha3_256::digest(input).to_vec()),
        ("sha3-384", sha3::Sha3_384::digest(input).to_vec()),
        ("sha3-512", sha3::Sha3_512::digest(input).to_vec()),
    ];
    for (algorithm, digest) in expected {
        let url = format!("/{algorithm}");
        let hex_sum = app
            .transit_ok(&format!("hash{url}"), json!({"input": b64(input)}))
            .await["sum"]
            .clone();
        assert_eq!(hex_sum, json!(hex::encode(&digest)), "{algorithm}");
        let base64_sum = sum(
            json!({"input": b64(input), "algorithm": algorithm, "format": "base64"}),
            "",
        )
        .await;
        assert_eq!(base64_sum, b64(&digest), "{algorithm}");
    }
    // The URL wins over the body.
    assert_eq!(
        sum(
            json!({"input": b64(input), "algorithm": "sha2-512"}),
            "/sha2-224"
        )
        .await,
        hex::encode(sha2::Sha224::digest(input))
    );
    // Anyone with the hash operation may hash, on no key.
    let user = app
        .transit_as(USER, "hash", json!({"input": b64(input)}))
        .await;
    assert_eq!(
        user.ok()["sum"],
        json!(hex::encode(sha2::Sha256::digest(input)))
    );

    app.assert_refusals([
        (
            "hash/md5",
            json!({"input": b64(input)}),
            "unsupported algorithm md5",
        ),
        (
            "hash",
            json!({"input": b64(input), "format": "bin"}),
            "unsupported encoding format bin",
        ),
        ("hash", json!({}), "input missing"),
        (
            "hash",
            json!({"input": "not base64!"}),
            "unable to decode input as base64",
        ),
    ])
    .await;
}

#[tokio::test]
async fn random_bytes_by_url_or_body_in_base64_or_hex() {
    let app = spawn_unsealed().await;
    let random = |path: &'static str, body: Value| {
        let app = &app;
        async move {
            let reply = app.transit(&format!("random{path}"), body).await;
            let data = reply.ok().clone();
            (
                data["random_bytes"].as_str().unwrap().to_owned(),
                reply.warnings(),
            )
        }
    };
    let (default, warnings) = random("", json!({})).await;
    assert_eq!(unb64(&default).len(), 32, "32 bytes in base64 by default");
    assert!(warnings.is_empty());
    assert_ne!(default, random("", json!({})).await.0, "random is random");

    assert_eq!(unb64(&random("/48", json!({})).await.0).len(), 48);
    assert_eq!(unb64(&random("", json!({"bytes": 20})).await.0).len(), 20);
    assert_eq!(
        unb64(&random("", json!({"bytes": "12"})).await.0).len(),
        12,
        "numbers may come as strings"
    );
    let (hex_bytes, _) = random("/16", json!({"format": "hex"})).await;
    assert_eq!(hex_bytes.len(), 32);
    assert_eq!(hex::decode(&hex_bytes).unwrap().len(), 16);
    assert_eq!(unb64(&random("/platform/24", json!({})).await.0).len(), 24);
    let (seal_bytes, warnings) = random("/all/24", json!({})).await;
    assert_eq!(unb64(&seal_bytes).len(), 24);
    assert_eq!(warnings.len(), 1, "no seal entropy here: {warnings:?}");
    // The URL wins over the body.
    assert_eq!(unb64(&random("/8", json!({"bytes": 64})).await.0).len(), 8);

    let user = app.transit_as(USER, "random/4", json!({})).await;
    assert_eq!(unb64(user.ok()["random_bytes"].as_str().unwrap()).len(), 4);

    app.assert_refusals([
        (
            "random",
            json!({"bytes": 0}),
            "'bytes' cannot be less than 1",
        ),
        (
            "random/131073",
            json!({}),
            "'bytes' should be less than 131072",
        ),
        ("random/many", json!({}), "error parsing url-set byte count"),
        (
            "random",
            json!({"format": "bin"}),
            "unsupported encoding format",
        ),
        (
            "random",
            json!({"source": "moon"}),
            "unsupported entropy source \"moon\"",
        ),
    ])
    .await;
}
