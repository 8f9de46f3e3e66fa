//! The wire both ways: the requests user-svc's client sends, built from the shared DTOs, are
//! accepted by security-svc as sent; security-svc's raw JSON answers read into the shared DTOs
//! with nothing lost, including Vault's envelope, batch partial failures and error bodies.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use vottery_common::sys::SealStatus;
use vottery_common::transit::{
    BatchResults, DecryptItem, DecryptRequest, DecryptResult, EncryptItem, EncryptRequest,
    EncryptResult, HmacItem, HmacRequest, HmacResult, KeyInfo, SignItem, SignRequest, SignResult,
    VerifyItem, VerifyRequest, VerifyResult,
};
use vottery_common::vault::{PERMISSION_DENIED, SEALED_MESSAGE, VaultErrors, VaultResponse};

use crate::harness::{FOREIGN_KEY, SecuritySvc};

/// The JSON of a request DTO: absent options are left out, never sent as `null`.
fn request_json(request: &impl Serialize) -> Value {
    let json = serde_json::to_value(request).unwrap();
    assert!(!json.to_string().contains("null"), "{json}");
    json
}

/// Reads a raw answer into the envelope of `T`, and checks that every field of every batch
/// item survives the trip through the DTO.
fn read_batch<T: DeserializeOwned + Serialize>(raw: &Value) -> Vec<T> {
    let envelope: VaultResponse<BatchResults<T>> =
        serde_json::from_value(raw.clone()).unwrap_or_else(|error| panic!("{error}: {raw}"));
    let items = raw["data"]["batch_results"].as_array().unwrap();
    assert_eq!(items.len(), envelope.data.batch_results.len());
    for (raw_item, item) in items.iter().zip(&envelope.data.batch_results) {
        let reserialised = serde_json::to_value(item).unwrap();
        for (name, value) in raw_item.as_object().unwrap() {
            if value.is_null() || value == &json!("") {
                continue;
            }
            assert_eq!(
                &reserialised[name], value,
                "field {name} is lost reading {raw_item}"
            );
        }
    }
    envelope.data.batch_results
}

fn b64(text: &str) -> String {
    STANDARD.encode(text)
}

#[tokio::test]
async fn batch_requests_and_results_match_the_shared_types() {
    let security = SecuritySvc::start().await;

    // Encrypt, as user-svc sends it: base64 plaintext and associated data.
    let request = request_json(&EncryptRequest {
        batch_input: Some(vec![
            EncryptItem {
                plaintext: Some(b64("ada@example.com")),
                associated_data: Some(b64("vottery_users:3:sngine_email")),
                ..Default::default()
            },
            EncryptItem {
                plaintext: Some(b64("+442079460001")),
                associated_data: Some(b64("vottery_users:3:sngine_phone")),
                ..Default::default()
            },
        ]),
        ..Default::default()
    });
    assert_eq!(
        request["batch_input"][0],
        json!({"plaintext": b64("ada@example.com"), "associated_data": b64("vottery_users:3:sngine_email")})
    );
    let raw = security
        .post_as_user_svc("/v1/transit/encrypt/vottery-users-pii", request)
        .await;
    assert_eq!(raw.status, 200, "{raw:?}");
    assert_eq!(raw.json["mount_type"], json!("transit"));
    let encrypted: Vec<EncryptResult> = read_batch(&raw.json);
    for result in &encrypted {
        assert!(result.error.is_none());
        assert_eq!(result.key_version, Some(1));
        assert!(
            result
                .ciphertext
                .as_deref()
                .unwrap()
                .starts_with("vault:v1:")
        );
    }

    // Decrypt.
    let request = request_json(&DecryptRequest {
        batch_input: Some(vec![DecryptItem {
            ciphertext: encrypted[0].ciphertext.clone(),
            associated_data: Some(b64("vottery_users:3:sngine_email")),
            ..Default::default()
        }]),
        ..Default::default()
    });
    let raw = security
        .post_as_user_svc("/v1/transit/decrypt/vottery-users-pii", request)
        .await;
    assert_eq!(raw.status, 200, "{raw:?}");
    let decrypted: Vec<DecryptResult> = read_batch(&raw.json);
    assert_eq!(decrypted[0].plaintext, b64("ada@example.com"));

    // HMAC, pinned to version 1.
    let request = request_json(&HmacRequest {
        batch_input: Some(vec![HmacItem {
            input: Some(b64("ada@example.com")),
            reference: None,
        }]),
        key_version: Some(1),
        ..Default::default()
    });
    assert_eq!(request["key_version"], json!(1));
    let raw = security
        .post_as_user_svc("/v1/transit/hmac/vottery-users-index/sha2-256", request)
        .await;
    assert_eq!(raw.status, 200, "{raw:?}");
    let hmacs: Vec<HmacResult> = read_batch(&raw.json);
    assert!(hmacs[0].hmac.as_deref().unwrap().starts_with("vault:v1:"));

    // Sign and verify with user-svc's options: none (Ed25519 over the input).
    let digest = STANDARD.encode([9u8; 32]);
    let request = request_json(&SignRequest {
        batch_input: Some(vec![SignItem {
            input: Some(digest.clone()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    assert_eq!(request, json!({"batch_input": [{"input": digest}]}));
    let raw = security
        .post_as_user_svc("/v1/transit/sign/vottery-users-records", request)
        .await;
    assert_eq!(raw.status, 200, "{raw:?}");
    let signed: Vec<SignResult> = read_batch(&raw.json);
    assert_eq!(signed[0].key_version, 1);
    let signature = signed[0].signature.clone().unwrap();
    let request = request_json(&VerifyRequest {
        batch_input: Some(vec![
            VerifyItem {
                input: Some(digest.clone()),
                signature: Some(signature.clone()),
                ..Default::default()
            },
            VerifyItem {
                input: Some(STANDARD.encode([8u8; 32])),
                signature: Some(signature),
                ..Default::default()
            },
        ]),
        ..Default::default()
    });
    let raw = security
        .post_as_user_svc("/v1/transit/verify/vottery-users-records", request)
        .await;
    assert_eq!(raw.status, 200, "{raw:?}");
    let verified: Vec<VerifyResult> = read_batch(&raw.json);
    assert_eq!(
        verified
            .iter()
            .map(|result| result.valid)
            .collect::<Vec<_>>(),
        vec![true, false]
    );
}

#[tokio::test]
async fn a_batch_with_a_failed_item_is_a_400_carrying_every_result() {
    let security = SecuritySvc::start().await;
    let raw = security
        .post_as_user_svc(
            "/v1/transit/decrypt/vottery-users-pii",
            json!({"batch_input": [
                {"ciphertext": "vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
                {"ciphertext": "garbage"},
            ]}),
        )
        .await;
    // Vault answers 400 when an item fails; the client reads the results, not an error.
    assert_eq!(raw.status, 400, "{raw:?}");
    let results: Vec<DecryptResult> = read_batch(&raw.json);
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|result| result.error.is_some()));

    let good = security
        .post_as_user_svc(
            "/v1/transit/encrypt/vottery-users-pii",
            json!({"plaintext": b64("ok")}),
        )
        .await;
    let ciphertext = good.json["data"]["ciphertext"].as_str().unwrap().to_owned();
    let raw = security
        .post_as_user_svc(
            "/v1/transit/decrypt/vottery-users-pii",
            json!({"batch_input": [{"ciphertext": ciphertext}, {"ciphertext": "garbage"}]}),
        )
        .await;
    assert_eq!(raw.status, 400, "{raw:?}");
    let results: Vec<DecryptResult> = read_batch(&raw.json);
    assert!(results[0].error.is_none() && results[1].error.is_some());
    assert_eq!(results[0].plaintext, b64("ok"));
}

#[tokio::test]
async fn key_reads_seal_status_and_error_bodies_match_the_shared_types() {
    let security = SecuritySvc::start().await;
    let token = security.user_svc_settings().token;
    let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();

    let raw = security
        .raw(
            Method::GET,
            "/v1/transit/keys/vottery-users-records",
            &token,
            None,
        )
        .await;
    assert_eq!(raw.status, 200, "{raw:?}");
    let key: VaultResponse<KeyInfo> = serde_json::from_value(raw.json.clone()).unwrap();
    assert_eq!(key.data.name, "vottery-users-records");
    assert_eq!(key.data.latest_version, 1);
    assert!(
        key.data
            .keys
            .as_ref()
            .is_some_and(|keys| keys.contains_key("1"))
    );

    let raw = security
        .raw(Method::GET, "/v1/sys/seal-status", "", None)
        .await;
    assert_eq!(raw.status, 200, "{raw:?}");
    let status: SealStatus = serde_json::from_value(raw.json.clone()).unwrap();
    assert!(!status.sealed);
    assert_eq!(
        serde_json::to_value(&status).unwrap()["sealed"],
        raw.json["sealed"]
    );

    // 403: Vault's error body.
    let raw = security
        .raw(
            Method::POST,
            &format!("/v1/transit/encrypt/{FOREIGN_KEY}"),
            &token,
            Some(json!({"plaintext": b64("x")})),
        )
        .await;
    assert_eq!(raw.status, 403, "{raw:?}");
    let errors: VaultErrors = serde_json::from_value(raw.json).unwrap();
    assert_eq!(errors.errors, vec![PERMISSION_DENIED.to_owned()]);

    // 503 while sealed, with the message the client recognises.
    security.seal().await;
    let raw = security
        .post_as_user_svc(
            "/v1/transit/encrypt/vottery-users-pii",
            json!({"plaintext": b64("x")}),
        )
        .await;
    assert_eq!(raw.status, 503, "{raw:?}");
    let errors: VaultErrors = serde_json::from_value(raw.json).unwrap();
    assert_eq!(errors.errors, vec![SEALED_MESSAGE.to_owned()]);
    let raw = security
        .raw(Method::GET, "/v1/sys/seal-status", "", None)
        .await;
    let status: SealStatus = serde_json::from_value(raw.json).unwrap();
    assert!(status.sealed);
}
