//! The calls user-svc makes, through its own client, against a real security-svc: PII
//! encryption bound to row and column, batch decryption, blind indexes pinned to key version 1,
//! record signatures and their verification, key reads and the seal status.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::json;
use user_svc::vault::{PiiColumn, PlainField, SealedField, associated_data, key_version};

use crate::harness::{ADMIN_TOKEN, SecuritySvc};

fn field(user_id: i32, column: PiiColumn, value: &str) -> PlainField<'_> {
    PlainField {
        user_id,
        column,
        value,
    }
}

fn sealed(user_id: i32, column: PiiColumn, ciphertext: &str) -> SealedField<'_> {
    SealedField {
        user_id,
        column,
        ciphertext,
    }
}

#[tokio::test]
async fn pii_round_trips_and_is_bound_to_its_row_and_column() {
    let security = SecuritySvc::start().await;
    let vault = security.vault();
    let values = [
        field(7, PiiColumn::Email, "ada@example.com"),
        field(7, PiiColumn::Phone, "+442079460001"),
        field(7, PiiColumn::FirstName, "Ada"),
        field(7, PiiColumn::LastName, "Lovelace"),
        field(7, PiiColumn::DateOfBirth, "1815-12-10"),
    ];
    let ciphertexts = vault.encrypt("contract", &values).await.unwrap();
    assert_eq!(ciphertexts.len(), values.len());
    for ciphertext in &ciphertexts {
        assert!(ciphertext.starts_with("vault:v1:"), "{ciphertext}");
        assert_eq!(key_version(ciphertext), Some(1));
        let body = ciphertext.trim_start_matches("vault:v1:");
        // 12-byte nonce, the plaintext, 16-byte tag.
        assert!(STANDARD.decode(body).unwrap().len() >= 28, "{ciphertext}");
    }
    assert_ne!(ciphertexts[0], ciphertexts[1]);
    // Fresh nonces: the same value encrypts differently each time.
    let again = vault.encrypt("contract", &values[..1]).await.unwrap();
    assert_ne!(again[0], ciphertexts[0]);

    // Decrypted in one batch, in order; the email's ciphertext moved to another row or column
    // fails that item alone.
    let batch = vec![
        sealed(7, PiiColumn::Email, &ciphertexts[0]),
        sealed(8, PiiColumn::Email, &ciphertexts[0]),
        sealed(7, PiiColumn::Phone, &ciphertexts[0]),
        sealed(7, PiiColumn::Phone, &ciphertexts[1]),
        sealed(7, PiiColumn::FirstName, &ciphertexts[2]),
        sealed(7, PiiColumn::LastName, &ciphertexts[3]),
        sealed(7, PiiColumn::DateOfBirth, &ciphertexts[4]),
    ];
    let plain = vault.decrypt("contract", &batch).await.unwrap();
    assert_eq!(plain.len(), batch.len());
    assert_eq!(plain[0].as_deref(), Ok("ada@example.com"));
    assert!(plain[1].is_err() && plain[2].is_err(), "{plain:?}");
    assert_eq!(plain[3].as_deref(), Ok("+442079460001"));
    assert_eq!(plain[4].as_deref(), Ok("Ada"));
    assert_eq!(plain[5].as_deref(), Ok("Lovelace"));
    assert_eq!(plain[6].as_deref(), Ok("1815-12-10"));

    // The associated data user-svc sends is the documented binding, readable by any client.
    assert_eq!(
        associated_data(7, PiiColumn::Email),
        "vottery_users:7:sngine_email"
    );
    let raw = security
        .post_as_user_svc(
            "/v1/transit/decrypt/vottery-users-pii",
            json!({
                "ciphertext": ciphertexts[0],
                "associated_data": STANDARD.encode("vottery_users:7:sngine_email"),
            }),
        )
        .await;
    assert_eq!(raw.status, 200, "{raw:?}");
    assert_eq!(
        raw.json["data"]["plaintext"],
        json!(STANDARD.encode("ada@example.com"))
    );

    // Empty batches make no call and return nothing.
    assert!(vault.encrypt("contract", &[]).await.unwrap().is_empty());
    assert!(vault.decrypt("contract", &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn blind_indexes_are_deterministic_and_pinned_to_key_version_one() {
    let security = SecuritySvc::start().await;
    let vault = security.vault();
    let inputs = ["ada@example.com", "+442079460001", "ada@example.com"];
    let indexes = vault.blind_indexes("contract", &inputs).await.unwrap();
    assert_eq!(indexes.len(), 3);
    assert_eq!(indexes[0], indexes[2]);
    assert_ne!(indexes[0], indexes[1]);
    for index in &indexes {
        assert!(index.starts_with("vault:v1:"), "{index}");
        // HMAC-SHA256: 32 bytes.
        let mac = STANDARD
            .decode(index.trim_start_matches("vault:v1:"))
            .unwrap();
        assert_eq!(mac.len(), 32, "{index}");
    }

    // After the index key rotates, user-svc still computes version 1 (the stored indexes keep
    // matching), while an unpinned HMAC moves to version 2.
    let rotated = security
        .raw(
            Method::POST,
            "/v1/transit/keys/vottery-users-index/rotate",
            ADMIN_TOKEN,
            Some(json!({})),
        )
        .await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let after = vault.blind_indexes("contract", &inputs[..1]).await.unwrap();
    assert_eq!(after[0], indexes[0]);
    let unpinned = security
        .post_as_user_svc(
            "/v1/transit/hmac/vottery-users-index/sha2-256",
            json!({"input": STANDARD.encode(inputs[0])}),
        )
        .await;
    assert_eq!(unpinned.status, 200, "{unpinned:?}");
    let unpinned = unpinned.json["data"]["hmac"].as_str().unwrap();
    assert!(unpinned.starts_with("vault:v2:"), "{unpinned}");
    assert_ne!(unpinned, indexes[0]);
}

#[tokio::test]
async fn record_signatures_verify_and_are_plain_ed25519_over_the_digest() {
    let security = SecuritySvc::start().await;
    let vault = security.vault();
    let digests = [[1u8; 32], [2u8; 32], [3u8; 32]];
    let signatures = vault.sign("contract", &digests).await.unwrap();
    assert_eq!(signatures.len(), 3);
    for signature in &signatures {
        assert!(signature.starts_with("vault:v1:"), "{signature}");
        assert_eq!(key_version(signature), Some(1));
    }

    let checks = vault
        .verify(
            "contract",
            &[
                (digests[0], signatures[0].as_str()),
                (digests[1], signatures[1].as_str()),
                // Another record's signature, a malformed one and a foreign version.
                (digests[2], signatures[0].as_str()),
                (digests[2], "vault:v1:not-base64!"),
                (digests[2], "vault:v9:AAAA"),
                (digests[2], signatures[2].as_str()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(checks, vec![true, true, false, false, false, true]);
    assert!(vault.verify("contract", &[]).await.unwrap().is_empty());

    // user-svc sends the 32-byte digest with no hash or marshaling options: the signature is
    // plain Ed25519 over those bytes, checkable with the public key any client reads.
    let key = vault
        .client()
        .call(None)
        .read_key("vottery-users-records")
        .await
        .unwrap();
    assert_eq!(key.name, "vottery-users-records");
    assert!(key.supports_signing);
    assert_eq!(key.latest_version, 1);
    let raw = security
        .raw(
            Method::GET,
            "/v1/transit/keys/vottery-users-records",
            ADMIN_TOKEN,
            None,
        )
        .await;
    assert_eq!(raw.status, 200, "{raw:?}");
    assert_eq!(raw.json["data"]["type"], json!("ed25519"));
    let public_key = STANDARD
        .decode(
            raw.json["data"]["keys"]["1"]["public_key"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let signature = STANDARD
        .decode(signatures[0].trim_start_matches("vault:v1:"))
        .unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public_key)
        .verify(&digests[0], &signature)
        .expect("the signature is Ed25519 over the digest itself");
}

#[tokio::test]
async fn the_seal_status_user_svc_reads_for_readiness() {
    let security = SecuritySvc::start().await;
    let client = security.vault().client().clone();
    let status = client.call(None).seal_status().await.unwrap();
    assert!(status.initialized && !status.sealed);
    assert_eq!((status.t, status.n, status.progress), (1, 1, 0));
    assert_eq!(status.seal_type, "shamir");

    security.seal().await;
    let status = client.call(None).seal_status().await.unwrap();
    assert!(status.initialized && status.sealed);
    security.unseal().await;
    assert!(!client.call(None).seal_status().await.unwrap().sealed);
}
