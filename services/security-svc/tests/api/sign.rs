//! Signatures with ed25519, ECDSA P-256 and RSA keys, checked by the service and independently.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::pkcs8::DecodePublicKey as _; // also rsa::RsaPublicKey::from_public_key_pem
use ring::signature::{self, UnparsedPublicKey};
use rsa::pkcs1::EncodeRsaPublicKey;
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::*;

async fn sign(app: &TestApp, path: &str, body: Value) -> Value {
    app.transit_ok(&format!("sign/{path}"), body).await
}

async fn verify(app: &TestApp, path: &str, body: Value) -> bool {
    let reply = app.transit(&format!("verify/{path}"), body).await;
    let data = reply.ok();
    assert_eq!(
        data.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["valid"]
    );
    data["valid"].as_bool().unwrap()
}

fn signature_bytes(signature: &Value, version: u32) -> Vec<u8> {
    assert_versioned(signature.as_str().unwrap(), version)
}

fn public_key(key: &Value, version: &str) -> String {
    key["keys"][version]["public_key"]
        .as_str()
        .unwrap_or_else(|| panic!("no public key for version {version}: {key}"))
        .to_owned()
}

#[tokio::test]
async fn ed25519_signs_and_verifies_and_rotation_keeps_old_signatures_valid() {
    let app = spawn_unsealed().await;
    let key = app.create_key("ed", "ed25519").await;
    assert_eq!(key["supports_signing"], json!(true));
    assert_eq!(key["supports_encryption"], json!(false));
    assert_eq!(key["supports_derivation"], json!(true));
    let entry = &key["keys"]["1"];
    assert_eq!(entry["name"], json!("ed25519"));
    assert_eq!(entry["certificate_chain"], json!(""));
    assert!(
        chrono::DateTime::parse_from_rfc3339(entry["creation_time"].as_str().unwrap()).is_ok(),
        "{entry}"
    );
    let raw_public = unb64(&public_key(&key, "1"));
    assert_eq!(raw_public.len(), 32);

    let message = b"vote #1 for candidate 7";
    let data = sign(&app, "ed", json!({"input": b64(message)})).await;
    assert_eq!(data["key_version"], json!(1));
    assert!(data.get("public_key").is_none(), "{data}");
    let bytes = signature_bytes(&data["signature"], 1);
    assert_eq!(bytes.len(), 64);
    UnparsedPublicKey::new(&signature::ED25519, &raw_public)
        .verify(message, &bytes)
        .expect("the signature verifies outside the service");

    assert!(
        verify(
            &app,
            "ed",
            json!({"input": b64(message), "signature": data["signature"]})
        )
        .await
    );
    assert!(
        !verify(
            &app,
            "ed",
            json!({"input": b64("vote #1 for candidate 8"), "signature": data["signature"]})
        )
        .await
    );

    let rotated = app.rotate("ed").await;
    assert_eq!(rotated["latest_version"], json!(2));
    assert_ne!(public_key(&rotated, "1"), public_key(&rotated, "2"));
    let newer = sign(&app, "ed", json!({"input": b64(message)})).await;
    assert_eq!(newer["key_version"], json!(2));
    signature_bytes(&newer["signature"], 2);
    for signature in [&data["signature"], &newer["signature"]] {
        assert!(
            verify(
                &app,
                "ed",
                json!({"input": b64(message), "signature": signature})
            )
            .await
        );
    }
    // A version-1 signature relabelled as version 2 does not verify.
    let relabelled = format!("vault:v2:{}", b64(&bytes));
    assert!(
        !verify(
            &app,
            "ed",
            json!({"input": b64(message), "signature": relabelled})
        )
        .await
    );
    // Signing with an older version on request.
    let old = sign(&app, "ed", json!({"input": b64(message), "key_version": 1})).await;
    assert_eq!(old["key_version"], json!(1));

    // Retiring version 1 refuses its signatures, and signing with it.
    app.configure_key("ed", json!({"min_decryption_version": 2}))
        .await
        .ok();
    app.assert_refusals([
        (
            "verify/ed",
            json!({"input": b64(message), "signature": data["signature"]}),
            "ciphertext or signature version is disallowed by policy (too old)",
        ),
        (
            "sign/ed",
            json!({"input": b64(message), "key_version": 1}),
            "key version disallowed by policy (minimum is 2)",
        ),
    ])
    .await;
    let exported = app.get("/v1/transit/export/public-key/ed", ADMIN).await;
    let exported: Vec<_> = exported.ok()["keys"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(exported, ["2"]);
}

#[tokio::test]
async fn derived_ed25519_keys_sign_per_context() {
    let app = spawn_unsealed().await;
    let key = app
        .create_key_with("ed-derived", json!({"type": "ed25519", "derived": true}))
        .await;
    assert_eq!(key["derived"], json!(true));
    assert_eq!(
        public_key(&key, "1"),
        "",
        "no single public key when derived"
    );

    let message = b"ballot";
    let alice = sign(
        &app,
        "ed-derived",
        json!({"input": b64(message), "context": b64("alice")}),
    )
    .await;
    let bob = sign(
        &app,
        "ed-derived",
        json!({"input": b64(message), "context": b64("bob")}),
    )
    .await;
    let alice_public = unb64(alice["public_key"].as_str().unwrap());
    let bob_public = unb64(bob["public_key"].as_str().unwrap());
    assert_ne!(alice_public, bob_public, "each context has its own key");
    UnparsedPublicKey::new(&signature::ED25519, &alice_public)
        .verify(message, &signature_bytes(&alice["signature"], 1))
        .expect("verifies with the derived public key");
    // The same context derives the same key again.
    let again = sign(
        &app,
        "ed-derived",
        json!({"input": b64(message), "context": b64("alice")}),
    )
    .await;
    assert_eq!(again["public_key"], alice["public_key"]);

    assert!(
        verify(
            &app,
            "ed-derived",
            json!({"input": b64(message), "signature": alice["signature"], "context": b64("alice")})
        )
        .await
    );
    assert!(
        !verify(
            &app,
            "ed-derived",
            json!({"input": b64(message), "signature": alice["signature"], "context": b64("bob")})
        )
        .await
    );
    app.assert_refusals([
        (
            "verify/ed-derived",
            json!({"input": b64(message), "signature": alice["signature"]}),
            "missing 'context' for key derivation",
        ),
        (
            "sign/ed-derived",
            json!({"input": b64(message)}),
            "missing 'context' for key derivation",
        ),
    ])
    .await;
}

#[tokio::test]
async fn ecdsa_p256_signs_in_asn1_and_jws_with_several_hashes() {
    let app = spawn_unsealed().await;
    let key = app.create_key("ec", "ecdsa-p256").await;
    assert_eq!(key["keys"]["1"]["name"], json!("P-256"));
    let pem = public_key(&key, "1");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    assert!(pem.ends_with("-----END PUBLIC KEY-----\n"), "{pem}");
    let verifying = p256::ecdsa::VerifyingKey::from_public_key_pem(&pem).unwrap();

    let message = b"tally: 1024 votes";
    let digest = |hash: &str| -> Vec<u8> {
        match hash {
            "sha2-256" => sha2::Sha256::digest(message).to_vec(),
            "sha2-384" => sha2::Sha384::digest(message).to_vec(),
            "sha2-512" => sha2::Sha512::digest(message).to_vec(),
            other => panic!("{other}"),
        }
    };
    for hash in ["sha2-256", "sha2-384", "sha2-512"] {
        for marshaling in ["asn1", "jws"] {
            // The hash in the URL for one half, in the body for the other.
            let (path, mut body) = if marshaling == "asn1" {
                (format!("ec/{hash}"), json!({"input": b64(message)}))
            } else {
                (
                    "ec".to_owned(),
                    json!({"input": b64(message), "hash_algorithm": hash}),
                )
            };
            body["marshaling_algorithm"] = json!(marshaling);
            let data = sign(&app, &path, body.clone()).await;
            let text = data["signature"].as_str().unwrap();
            let (version, payload) = split_versioned(text);
            assert_eq!(version, 1);
            let parsed = if marshaling == "jws" {
                assert!(
                    !payload.contains(['+', '/', '=']),
                    "jws signatures are base64url without padding: {payload}"
                );
                let raw = base64::Engine::decode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    &payload,
                )
                .unwrap();
                assert_eq!(raw.len(), 64, "r || s");
                p256::ecdsa::Signature::from_slice(&raw).unwrap()
            } else {
                p256::ecdsa::Signature::from_der(&unb64(&payload)).unwrap()
            };
            verifying
                .verify_prehash(&digest(hash), &parsed)
                .unwrap_or_else(|error| panic!("{hash}/{marshaling}: {error}"));

            body["signature"] = data["signature"].clone();
            assert!(
                verify(&app, &path, body.clone()).await,
                "{hash}/{marshaling}"
            );
            body["input"] = json!(b64("tally: 1025 votes"));
            assert!(!verify(&app, &path, body).await, "{hash}/{marshaling}");
        }
    }

    // Pre-hashed input: the caller hashes, the service signs the digest as is.
    for hash in ["sha2-256", "sha2-384"] {
        let prehashed = digest(hash);
        let data = sign(
            &app,
            "ec",
            json!({"input": b64(&prehashed), "prehashed": true, "hash_algorithm": hash}),
        )
        .await;
        let parsed =
            p256::ecdsa::Signature::from_der(&signature_bytes(&data["signature"], 1)).unwrap();
        verifying.verify_prehash(&prehashed, &parsed).unwrap();
        // The same signature checks against the message when the service hashes it.
        assert!(
            verify(
                &app,
                &format!("ec/{hash}"),
                json!({"input": b64(message), "signature": data["signature"]})
            )
            .await,
            "{hash}"
        );
        assert!(
            verify(
                &app,
                "ec",
                json!({"input": b64(&prehashed), "prehashed": true, "hash_algorithm": hash,
                       "signature": data["signature"]})
            )
            .await
        );
    }

    // An ASN.1 signature read as JWS (or the other way round) does not verify.
    let asn1 = sign(&app, "ec", json!({"input": b64(message)})).await;
    let reply = app
        .transit(
            "verify/ec",
            json!({"input": b64(message), "signature": asn1["signature"], "marshaling_algorithm": "jws"}),
        )
        .await;
    assert!(
        reply.status() == 400 || reply.ok()["valid"] == json!(false),
        "{}",
        reply.text
    );
    app.assert_refusals([
        (
            "sign/ec",
            json!({"input": b64(message), "marshaling_algorithm": "pem"}),
            "invalid marshaling type \"pem\"",
        ),
        (
            "sign/ec/md5",
            json!({"input": b64(message)}),
            "invalid hash algorithm \"md5\"",
        ),
    ])
    .await;
}

fn rsa_public_der(pem: &str) -> Vec<u8> {
    rsa::RsaPublicKey::from_public_key_pem(pem)
        .unwrap()
        .to_pkcs1_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// Signs with PSS and PKCS#1 v1.5 over SHA2-256 and SHA2-512 and checks each signature both
/// through the service and with ring.
async fn check_rsa_signatures(app: &TestApp, name: &str, modulus_bytes: usize) {
    let key = app.read_key(name).await;
    let der = rsa_public_der(&public_key(&key, "1"));
    let message = b"certified results";
    let cases: [(&str, &str, &'static dyn signature::VerificationAlgorithm); 4] = [
        ("pss", "sha2-256", &signature::RSA_PSS_2048_8192_SHA256),
        ("pss", "sha2-512", &signature::RSA_PSS_2048_8192_SHA512),
        (
            "pkcs1v15",
            "sha2-256",
            &signature::RSA_PKCS1_2048_8192_SHA256,
        ),
        (
            "pkcs1v15",
            "sha2-512",
            &signature::RSA_PKCS1_2048_8192_SHA512,
        ),
    ];
    let mut signatures = Vec::new();
    for (padding, hash, algorithm) in cases {
        let body = json!({
            "input": b64(message),
            "signature_algorithm": padding,
            "hash_algorithm": hash,
        });
        let data = sign(app, name, body.clone()).await;
        let bytes = signature_bytes(&data["signature"], 1);
        assert_eq!(bytes.len(), modulus_bytes, "{name} {padding}");
        UnparsedPublicKey::new(algorithm, &der)
            .verify(message, &bytes)
            .unwrap_or_else(|_| panic!("{name} {padding} {hash} fails outside the service"));
        let mut check = body.clone();
        check["signature"] = data["signature"].clone();
        assert!(verify(app, name, check.clone()).await, "{padding} {hash}");
        check["input"] = json!(b64("certified resultz"));
        assert!(!verify(app, name, check).await, "{padding} {hash}");
        signatures.push((padding, hash, data["signature"].clone()));
    }
    // A PSS signature does not pass as PKCS#1 v1.5.
    let (_, hash, pss) = &signatures[0];
    assert!(
        !verify(
            app,
            name,
            json!({"input": b64(message), "signature": pss, "signature_algorithm": "pkcs1v15", "hash_algorithm": hash})
        )
        .await
    );
    // PSS is the default.
    let default = sign(app, name, json!({"input": b64(message)})).await;
    UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, &der)
        .verify(message, &signature_bytes(&default["signature"], 1))
        .expect("PSS over SHA2-256 by default");
}

#[tokio::test]
async fn rsa_2048_signs_with_pss_and_pkcs1v15() {
    let app = spawn_unsealed().await;
    let key = app.create_key("rsa", "rsa-2048").await;
    assert_eq!(key["keys"]["1"]["name"], json!("rsa-2048"));
    let pem = public_key(&key, "1");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n") && pem.ends_with('\n'));
    check_rsa_signatures(&app, "rsa", 256).await;
    app.transit(
        "sign/rsa",
        json!({"input": b64("x"), "signature_algorithm": "pss-ish"}),
    )
    .await
    .assert_error(400, "unsupported rsa signature algorithm pss-ish");
}

#[tokio::test]
async fn rsa_3072_and_4096_keys_sign_and_verify() {
    let app = spawn_unsealed().await;
    for (key_type, bytes) in [("rsa-3072", 384), ("rsa-4096", 512)] {
        let key = app.create_key(key_type, key_type).await;
        assert_eq!(key["type"], json!(key_type));
        assert_eq!(key["keys"]["1"]["name"], json!(key_type));
        check_rsa_signatures(&app, key_type, bytes).await;
    }
}

#[tokio::test]
async fn a_remembered_signature_is_valid_only_for_the_key_and_input_it_was_made_for() {
    let app = spawn_unsealed().await;
    app.create_key("records", "ed25519").await;
    let message = b"user 7, version 3";
    let signed = sign(&app, "records", json!({"input": b64(message)})).await;
    let body = json!({"input": b64(message), "signature": signed["signature"]});
    for _ in 0..3 {
        assert!(verify(&app, "records", body.clone()).await);
    }
    // Tampered records and signatures are checked in full, however often the original passed.
    let tampered_input =
        json!({"input": b64(b"user 7, version 4"), "signature": signed["signature"]});
    assert!(!verify(&app, "records", tampered_input).await);
    let mut bytes = signature_bytes(&signed["signature"], 1);
    bytes[10] ^= 1;
    let tampered_signature =
        json!({"input": b64(message), "signature": format!("vault:v1:{}", b64(&bytes))});
    assert!(!verify(&app, "records", tampered_signature).await);
    // A batch mixing the remembered value with a tampered one answers each on its own.
    let batch = app
        .transit(
            "verify/records",
            json!({"batch_input": [
                {"input": b64(message), "signature": signed["signature"]},
                {"input": b64(b"user 8, version 1"), "signature": signed["signature"]},
            ]}),
        )
        .await;
    let results = batch.ok()["batch_results"].clone();
    assert_eq!(results[0]["valid"], json!(true), "{results}");
    assert_eq!(results[1]["valid"], json!(false), "{results}");

    // Another key under the same name does not inherit what the old one verified.
    app.allow_deletion("records").await;
    assert!(
        app.delete("/v1/transit/keys/records", ADMIN)
            .await
            .status
            .is_success()
    );
    app.create_key("records", "ed25519").await;
    assert!(!verify(&app, "records", body).await);
}
