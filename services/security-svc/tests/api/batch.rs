//! `batch_input`: order kept, `reference` echoed, per-item errors, Vault's status codes.

use serde_json::{Value, json};
use vottery_common::client::SignatureOptions;
use vottery_common::transit::{DecryptItem, EncryptItem, HmacItem, SignItem, VerifyItem};

use crate::helpers::*;

/// Asserts the batch's answer has `status` and returns its `batch_results`.
fn batch_results(reply: &Reply, status: u16) -> Vec<Value> {
    assert_eq!(reply.status(), status, "{}", reply.text);
    results(reply)
}

/// Asserts that a batch item failed with an error mentioning `needle`.
fn assert_item_error(item: &Value, needle: &str) {
    let error = item["error"].as_str().unwrap_or_default();
    assert!(error.contains(needle), "expected {needle:?} in {item}");
}

fn results(reply: &Reply) -> Vec<Value> {
    let data = reply.envelope();
    data["batch_results"]
        .as_array()
        .unwrap_or_else(|| panic!("no batch_results: {}", reply.text))
        .clone()
}

#[tokio::test]
async fn encrypt_and_decrypt_batches_keep_order_and_references() {
    let app = spawn_unsealed().await;
    app.create_key("batch", "aes256-gcm96").await;
    let plaintexts: Vec<String> = (0..20)
        .map(|index| format!("item number {index}"))
        .collect();
    let items: Vec<Value> = plaintexts
        .iter()
        .enumerate()
        .map(|(index, text)| json!({"plaintext": b64(text), "reference": format!("ref-{index}")}))
        .collect();
    let reply = app
        .transit("encrypt/batch", json!({"batch_input": items}))
        .await;
    let encrypted = batch_results(&reply, 200);
    assert_eq!(encrypted.len(), 20);
    for (index, result) in encrypted.iter().enumerate() {
        assert_eq!(result["reference"], json!(format!("ref-{index}")));
        assert_eq!(result["key_version"], json!(1));
        assert!(result.get("error").is_none(), "{result}");
        assert_versioned(result["ciphertext"].as_str().unwrap(), 1);
    }
    // A reference is echoed as "" when absent.
    let reply = app
        .transit(
            "encrypt/batch",
            json!({"batch_input": [{"plaintext": b64("no ref")}]}),
        )
        .await;
    assert_eq!(results(&reply)[0]["reference"], json!(""));

    // Decrypt in reverse order: results follow the input, not the encryption order.
    let decrypt_items: Vec<Value> = encrypted
        .iter()
        .rev()
        .map(|result| json!({"ciphertext": result["ciphertext"], "reference": result["reference"]}))
        .collect();
    let reply = app
        .transit("decrypt/batch", json!({"batch_input": decrypt_items}))
        .await;
    let decrypted = batch_results(&reply, 200);
    for (position, result) in decrypted.iter().enumerate() {
        let index = 19 - position;
        assert_eq!(result["reference"], json!(format!("ref-{index}")));
        assert_eq!(result["plaintext"], json!(b64(&plaintexts[index])));
        assert!(result.get("error").is_none());
    }

    // The typed client sees the same.
    let client = app.client("dev-security-admin-token");
    let call = client.call(Some("batch-test"));
    let out = call
        .encrypt_batch(
            "batch",
            vec![
                EncryptItem {
                    plaintext: Some(b64("typed a")),
                    reference: Some("a".into()),
                    ..Default::default()
                },
                EncryptItem {
                    plaintext: Some(b64("typed b")),
                    reference: Some("b".into()),
                    ..Default::default()
                },
            ],
        )
        .await
        .unwrap();
    let back = call
        .decrypt_batch(
            "batch",
            out.iter()
                .map(|result| DecryptItem {
                    ciphertext: result.ciphertext.clone(),
                    reference: Some(result.reference.clone()),
                    ..Default::default()
                })
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(
        back.iter()
            .map(|result| (result.reference.as_str(), unb64(&result.plaintext)))
            .collect::<Vec<_>>(),
        [("a", b"typed a".to_vec()), ("b", b"typed b".to_vec())]
    );
}

#[tokio::test]
async fn failed_items_do_not_fail_the_others_and_set_vaults_status() {
    let app = spawn_unsealed().await;
    app.create_key_with("batch-derived", json!({"derived": true}))
        .await;
    let key_before = app.read_key("batch-derived").await;
    let items = json!([
        {"plaintext": b64("good 0"), "context": b64("c0"), "reference": "r0"},
        {"plaintext": "***not base64***", "context": b64("c1"), "reference": "r1"},
        {"plaintext": b64("good 2"), "context": b64("c2"), "reference": "r2"},
        {"plaintext": b64("bad version"), "context": b64("c3"), "key_version": 7, "reference": "r3"},
    ]);
    let reply = app
        .transit("encrypt/batch-derived", json!({"batch_input": items}))
        .await;
    // A failed item makes the batch a 400.
    let encrypted = batch_results(&reply, 400);
    assert_eq!(encrypted.len(), 4);
    for index in [0, 2] {
        assert!(
            encrypted[index].get("error").is_none(),
            "{}",
            encrypted[index]
        );
        assert_versioned(encrypted[index]["ciphertext"].as_str().unwrap(), 1);
    }
    assert_item_error(&encrypted[1], "base64");
    assert!(encrypted[1].get("ciphertext").is_none());
    assert_item_error(&encrypted[3], "higher than the latest key version");
    let references: Vec<_> = encrypted
        .iter()
        .map(|item| item["reference"].clone())
        .collect();
    assert_eq!(
        references,
        [json!("r0"), json!("r1"), json!("r2"), json!("r3")]
    );

    // With some items succeeding, partial_failure_response_code picks the status.
    let partial = app
        .transit(
            "encrypt/batch-derived",
            json!({"batch_input": items, "partial_failure_response_code": 207}),
        )
        .await;
    assert_eq!(partial.status(), 207, "{}", partial.text);
    assert_eq!(results(&partial).len(), 4);
    for code in [100, 600] {
        let invalid_code = app
            .transit(
                "encrypt/batch-derived",
                json!({"batch_input": items, "partial_failure_response_code": code}),
            )
            .await;
        assert_eq!(invalid_code.status(), 400, "{code}");
        assert!(
            invalid_code
                .warnings()
                .iter()
                .any(|warning| warning.contains("partial_failure_response_code"))
        );
    }
    // When every item fails, the override does not apply.
    let all_bad = app
        .transit(
            "encrypt/batch-derived",
            json!({"batch_input": [{"plaintext": "%%", "context": b64("c")}],
                   "partial_failure_response_code": 207}),
        )
        .await;
    assert_eq!(all_bad.status(), 400, "{}", all_bad.text);
    assert!(results(&all_bad)[0]["error"].is_string());

    // Decrypt: wrong context, tampered and malformed items fail alone.
    let good = encrypted[0]["ciphertext"].as_str().unwrap();
    let mut tampered = assert_versioned(good, 1);
    tampered[14] ^= 1;
    let decrypt_items = json!([
        {"ciphertext": good, "context": b64("c0"), "reference": "ok"},
        {"ciphertext": good, "context": b64("other"), "reference": "wrong context"},
        {"ciphertext": format!("vault:v1:{}", b64(tampered)), "context": b64("c0"), "reference": "tampered"},
        {"ciphertext": "garbage", "context": b64("c0"), "reference": "malformed"},
        {"ciphertext": encrypted[2]["ciphertext"], "context": b64("c2"), "reference": "ok too"},
    ]);
    let reply = app
        .transit(
            "decrypt/batch-derived",
            json!({"batch_input": decrypt_items}),
        )
        .await;
    let decrypted = batch_results(&reply, 400);
    assert_eq!(decrypted[0]["plaintext"], json!(b64("good 0")));
    assert_eq!(decrypted[4]["plaintext"], json!(b64("good 2")));
    for (index, needle) in [
        (1, "message authentication failed"),
        (2, "message authentication failed"),
        (3, "invalid ciphertext: no prefix"),
    ] {
        assert_eq!(
            decrypted[index]["plaintext"],
            json!(""),
            "{}",
            decrypted[index]
        );
        assert_item_error(&decrypted[index], needle);
    }
    let references: Vec<_> = decrypted
        .iter()
        .map(|item| item["reference"].clone())
        .collect();
    assert_eq!(
        references,
        [
            json!("ok"),
            json!("wrong context"),
            json!("tampered"),
            json!("malformed"),
            json!("ok too")
        ]
    );
    let partial = app
        .transit(
            "decrypt/batch-derived",
            json!({"batch_input": decrypt_items, "partial_failure_response_code": "206"}),
        )
        .await;
    assert_eq!(partial.status(), 206);
    // Context in some items only is refused as a whole.
    app.transit(
        "decrypt/batch-derived",
        json!({"batch_input": [{"ciphertext": good, "context": b64("c0")}, {"ciphertext": good}]}),
    )
    .await
    .assert_error(
        400,
        "context should be set either in all the request blocks or in none",
    );

    assert_eq!(app.read_key("batch-derived").await, key_before);
}

#[tokio::test]
async fn sign_and_verify_batches_report_each_item() {
    let app = spawn_unsealed().await;
    app.create_key("batch-ec", "ecdsa-p256").await;
    app.create_key_with("batch-ed", json!({"type": "ed25519", "derived": true}))
        .await;

    let reply = app
        .transit(
            "sign/batch-ec",
            json!({"marshaling_algorithm": "jws", "batch_input": [
                {"input": b64("first"), "reference": "s1"},
                {"input": "@@@", "reference": "s2"},
                {"reference": "s3"},
                {"input": b64("fourth"), "reference": "s4"},
            ]}),
        )
        .await;
    // Sign batches answer 200.
    let signed = batch_results(&reply, 200);
    assert_eq!(signed.len(), 4);
    assert_eq!(signed[0]["reference"], json!("s1"));
    assert_eq!(signed[0]["key_version"], json!(1));
    assert_item_error(&signed[1], "base64");
    assert_eq!(signed[1]["key_version"], json!(0));
    assert!(signed[1].get("signature").is_none());
    assert_eq!(signed[2]["error"], json!("missing input"));
    assert_eq!(signed[3]["reference"], json!("s4"));

    let reply = app
        .transit("verify/batch-ec", json!({"marshaling_algorithm": "jws", "batch_input": [
                {"input": b64("fourth"), "signature": signed[3]["signature"], "reference": "v4"},
                {"input": b64("first"), "signature": signed[0]["signature"], "reference": "v1"},
                {"input": b64("first"), "signature": signed[3]["signature"], "reference": "swapped"},
                {"input": b64("first"), "signature": "nonsense", "reference": "malformed"},
            ]}),
        )
        .await;
    let verified = batch_results(&reply, 200);
    assert_eq!(
        verified
            .iter()
            .map(|item| (item["reference"].clone(), item["valid"].clone()))
            .collect::<Vec<_>>(),
        [
            (json!("v4"), json!(true)),
            (json!("v1"), json!(true)),
            (json!("swapped"), json!(false)),
            (json!("malformed"), json!(false)),
        ]
    );
    assert!(verified[2].get("error").is_none());
    assert_item_error(&verified[3], "invalid signature: no prefix");

    // Derived ed25519 through the typed client: each item has its context and public key.
    let client = app.client("dev-security-admin-token");
    let call = client.call(None);
    let options = SignatureOptions::default();
    let signed = call
        .sign_batch(
            "batch-ed",
            &options,
            vec![
                SignItem {
                    input: Some(b64("m1")),
                    context: Some(b64("alice")),
                    reference: Some("alice".into()),
                },
                SignItem {
                    input: Some(b64("m2")),
                    context: Some(b64("bob")),
                    reference: Some("bob".into()),
                },
            ],
        )
        .await
        .unwrap();
    assert_ne!(signed[0].publickey, signed[1].publickey);
    assert!(signed.iter().all(|item| item.publickey.is_some()));
    let raw = app
        .transit(
            "sign/batch-ed",
            json!({"batch_input": [{"input": b64("m1"), "context": b64("alice")}]}),
        )
        .await;
    assert!(
        results(&raw)[0]["publickey"].is_string(),
        "Vault spells it publickey in batches: {}",
        raw.text
    );
    let verified = call
        .verify_batch(
            "batch-ed",
            &options,
            vec![
                VerifyItem {
                    input: Some(b64("m1")),
                    signature: signed[0].signature.clone(),
                    context: Some(b64("alice")),
                    reference: Some("right".into()),
                    ..Default::default()
                },
                VerifyItem {
                    input: Some(b64("m1")),
                    signature: signed[0].signature.clone(),
                    context: Some(b64("bob")),
                    reference: Some("wrong context".into()),
                    ..Default::default()
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        verified
            .iter()
            .map(|item| (item.reference.as_str(), item.valid))
            .collect::<Vec<_>>(),
        [("right", true), ("wrong context", false)]
    );

    // Signatures and HMACs do not mix in one verify batch.
    app.transit(
        "verify/batch-ec",
        json!({"batch_input": [{"input": b64("x"), "signature": "vault:v1:AA"},
                               {"input": b64("x"), "hmac": "vault:v1:AA"}]}),
    )
    .await
    .assert_error(400, "batch_input");
}

#[tokio::test]
async fn hmac_batches_report_each_item_and_verify_by_hmac() {
    let app = spawn_unsealed().await;
    app.create_key("batch-mac", "hmac").await;
    let client = app.client("dev-security-admin-token");
    let call = client.call(None);
    let tags = call
        .hmac_batch(
            "batch-mac",
            "sha2-512",
            None,
            vec![
                HmacItem {
                    input: Some(b64("a")),
                    reference: Some("ra".into()),
                },
                HmacItem {
                    input: None,
                    reference: Some("missing".into()),
                },
                HmacItem {
                    input: Some(b64("b")),
                    reference: Some("rb".into()),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(tags[0].reference, "ra");
    assert_eq!(
        assert_versioned(tags[0].hmac.as_deref().unwrap(), 1).len(),
        64
    );
    assert_eq!(tags[1].error.as_deref(), Some("missing input for HMAC"));
    assert!(tags[1].hmac.is_none());
    assert_eq!(tags[2].reference, "rb");
    assert_ne!(tags[0].hmac, tags[2].hmac);

    // Each batch HMAC equals the single one.
    let single = app
        .transit("hmac/batch-mac/sha2-512", json!({"input": b64("b")}))
        .await;
    assert_eq!(single.ok()["hmac"].as_str(), tags[2].hmac.as_deref());

    let reply = app
        .transit(
            "verify/batch-mac/sha2-512",
            json!({"batch_input": [
                {"input": b64("b"), "hmac": tags[2].hmac, "reference": "good"},
                {"input": b64("a"), "hmac": tags[2].hmac, "reference": "mismatch"},
                {"input": b64("a"), "hmac": "vault:v1:$$$", "reference": "malformed"},
            ]}),
        )
        .await;
    let checked = batch_results(&reply, 200);
    assert_eq!(checked[0]["valid"], json!(true));
    assert_eq!(checked[0]["reference"], json!("good"));
    assert_ne!(checked[1]["valid"], json!(true));
    assert!(checked[1].get("error").is_none());
    assert_item_error(&checked[2], "base64");
    assert_eq!(checked[2]["reference"], json!("malformed"));
}

#[tokio::test]
async fn rewrap_batches_keep_order_and_report_each_item() {
    let app = spawn_unsealed().await;
    app.create_key("batch-rewrap", "chacha20-poly1305").await;
    let mut old = Vec::new();
    for index in 0..3 {
        old.push(
            app.encrypt("batch-rewrap", format!("p{index}").as_bytes())
                .await,
        );
    }
    app.rotate("batch-rewrap").await;
    let reply = app
        .transit(
            "rewrap/batch-rewrap",
            json!({"batch_input": [
                {"ciphertext": old[2], "reference": "two"},
                {"ciphertext": "vault:v1:%%%", "reference": "bad"},
                {"ciphertext": old[0], "reference": "zero"},
            ]}),
        )
        .await;
    let rewrapped = batch_results(&reply, 200);
    assert_eq!(rewrapped[0]["reference"], json!("two"));
    assert_eq!(rewrapped[0]["key_version"], json!(2));
    assert_eq!(
        app.decrypt("batch-rewrap", rewrapped[0]["ciphertext"].as_str().unwrap())
            .await,
        b"p2"
    );
    assert_item_error(&rewrapped[1], "base64");
    assert_eq!(
        app.decrypt("batch-rewrap", rewrapped[2]["ciphertext"].as_str().unwrap())
            .await,
        b"p0"
    );
}

#[tokio::test]
async fn empty_and_oversized_batches_are_refused() {
    let app = spawn_unsealed_with(|settings| settings.transit.max_batch_items = 3).await;
    app.create_key("limited", "aes256-gcm96").await;
    app.create_key("limited-ed", "ed25519").await;
    let before = app.read_key("limited").await;
    for (path, item) in [
        ("encrypt/limited", json!({"plaintext": b64("x")})),
        ("decrypt/limited", json!({"ciphertext": "vault:v1:AAAA"})),
        ("rewrap/limited", json!({"ciphertext": "vault:v1:AAAA"})),
        ("hmac/limited", json!({"input": b64("x")})),
        ("sign/limited-ed", json!({"input": b64("x")})),
        (
            "verify/limited-ed",
            json!({"input": b64("x"), "signature": "vault:v1:AAAA"}),
        ),
    ] {
        let url = format!("/v1/transit/{path}");
        app.post(&url, ADMIN, json!({"batch_input": []}))
            .await
            .assert_error(400, "missing batch input to process");
        let four = vec![item.clone(); 4];
        app.post(&url, ADMIN, json!({"batch_input": four}))
            .await
            .assert_error(400, "batch_input has 4 items; at most 3");
        let three = vec![item; 3];
        let reply = app.post(&url, ADMIN, json!({"batch_input": three})).await;
        assert!(
            matches!(reply.status(), 200 | 400),
            "{path}: {}",
            reply.text
        );
        assert_eq!(results(&reply).len(), 3, "{path}");
    }
    assert_eq!(app.read_key("limited").await, before);
}
