//! The logs never carry plaintexts, tokens, unseal shares or key material, even at TRACE.
//!
//! A test binary of its own: it installs the process-wide tracing subscriber, which captures
//! every event and span of every thread (the service's workers included) into a buffer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::sync::OnceLock;

use secrecy::SecretString;
use security_svc::configuration::TokenSettings;
use serde_json::json;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use helpers::*;

/// Installs the global subscriber once: every level, as text (with span events) and as JSON.
fn capture() -> LogBuffer {
    static CAPTURED: OnceLock<LogBuffer> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = LogBuffer::default();
            let text = tracing_subscriber::fmt::layer()
                .with_writer(captured.clone())
                .with_ansi(false)
                .with_span_events(FmtSpan::FULL);
            let json = tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(captured.clone());
            tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::TRACE)
                .with(text)
                .with(json)
                .try_init()
                .expect("the only global subscriber");
            captured
        })
        .clone()
}

const TOKEN: &str = "tok-LOGPROBE-3f9c2e7a1b5d4c8e";
const WRONG_TOKEN: &str = "tok-WRONGPROBE-71c0d9e4a2b6";
const PLAINTEXT: &str = "CANARY-PLAINTEXT-ssn-078-05-1120-quokka";

#[tokio::test]
async fn logs_hold_no_plaintext_token_or_key_material() {
    let captured = capture();
    let app = spawn_unsealed_with(|settings| {
        settings.log.filter = "trace".into();
        settings.auth.tokens.insert(
            "log_probe".into(),
            TokenSettings {
                secret: SecretString::from(TOKEN.to_owned()),
                operations: vec!["*".into()],
                keys: vec!["*".into()],
            },
        );
    })
    .await;
    let token = Some(TOKEN);
    let encoded = b64(PLAINTEXT);

    let created = app
        .transit_as(token, "keys/canary", json!({"type": "aes256-gcm96"}))
        .await;
    created.ok();
    let encrypted = app
        .transit_as(token, "encrypt/canary", json!({"plaintext": encoded}))
        .await;
    let ciphertext = encrypted.ok()["ciphertext"].as_str().unwrap().to_owned();
    let (_, ciphertext_payload) = split_versioned(&ciphertext);
    let decrypted = app
        .transit_as(token, "decrypt/canary", json!({"ciphertext": ciphertext}))
        .await;
    assert_eq!(decrypted.ok()["plaintext"], json!(encoded));

    // Batches, data keys, failures and refusals carrying the same secrets.
    let batch = app
        .transit_as(
            token,
            "encrypt/canary",
            json!({"batch_input": [{"plaintext": encoded, "reference": "r"}, {"plaintext": PLAINTEXT}]}),
        )
        .await;
    assert_eq!(batch.status(), 400, "{}", batch.text);
    let data_key = app
        .transit_as(token, "datakey/plaintext/canary", json!({}))
        .await;
    let data_key_plaintext = data_key.ok()["plaintext"].as_str().unwrap().to_owned();
    app.transit_as(
        token,
        "encrypt/canary",
        json!({"plaintext": encoded, "key_version": PLAINTEXT}),
    )
    .await
    .assert_error(400, "error parsing JSON");
    let tampered = format!("{ciphertext}A");
    let failed = app
        .transit_as(token, "decrypt/canary", json!({"ciphertext": tampered}))
        .await;
    assert_eq!(failed.status(), 400);
    app.post(
        "/v1/transit/encrypt/canary",
        Some(WRONG_TOKEN),
        json!({"plaintext": encoded}),
    )
    .await
    .assert_denied();
    let bearer = app
        .http
        .post(app.url("/v1/transit/decrypt/canary"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .json(&json!({"ciphertext": ciphertext}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status().as_u16(), 200);
    let hmac = app
        .transit_as(token, "hmac/canary", json!({"input": encoded}))
        .await;
    let hmac = hmac.ok()["hmac"].as_str().unwrap().to_owned();

    // Give the workers a moment to write their last lines.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logs = captured.text();
    assert!(!logs.is_empty(), "nothing was captured");
    assert!(
        logs.contains("request completed"),
        "the service's own access log is captured"
    );
    assert!(
        logs.contains("key created"),
        "the service's own events are captured"
    );
    assert!(
        logs.lines().count() > 20,
        "only {} lines",
        logs.lines().count()
    );

    let init = app.init_keys();
    let mut secrets: Vec<(&str, String)> = vec![
        ("the plaintext", PLAINTEXT.to_owned()),
        ("the base64 plaintext", encoded.clone()),
        ("the token", TOKEN.to_owned()),
        ("the wrong token", WRONG_TOKEN.to_owned()),
        ("the ciphertext", ciphertext.clone()),
        ("the ciphertext payload", ciphertext_payload.clone()),
        ("the data key", data_key_plaintext),
        ("the HMAC", split_versioned(&hmac).1),
        ("the root token", init.root_token.clone()),
        ("the admin token", "dev-security-admin-token".to_owned()),
    ];
    for (index, share) in init.keys.iter().enumerate() {
        secrets.push(("an unseal share (hex)", share.clone()));
        secrets.push(("an unseal share (base64)", init.keys_base64[index].clone()));
    }
    // Fragments too: a leak may be cut or re-encoded.
    secrets.push((
        "part of the ciphertext",
        ciphertext_payload[..16].to_owned(),
    ));
    secrets.push(("part of the plaintext", "078-05-1120".to_owned()));
    for (what, secret) in secrets {
        assert!(!secret.is_empty());
        if let Some(position) = logs.find(&secret) {
            let start = position.saturating_sub(200);
            let end = (position + secret.len() + 50).min(logs.len());
            panic!(
                "{what} is in the logs: ...{}...",
                logs.get(start..end).unwrap_or(&secret)
            );
        }
    }
}

/// Fails when any of `secrets` (or its lower-case form) is in the captured logs.
fn assert_not_logged(logs: &str, secrets: &[(&str, String)]) {
    for (what, secret) in secrets {
        for form in [secret.clone(), secret.to_lowercase()] {
            if let Some(position) = logs.find(&form) {
                let start = position.saturating_sub(200);
                panic!(
                    "{what} is in the logs: ...{}...",
                    logs.get(start..position + form.len()).unwrap_or(&form)
                );
            }
        }
    }
}

#[tokio::test]
async fn guardian_secrets_are_never_logged() {
    use security_svc::guardians::secrets::SecretOwner;
    use vottery_election::{
        ElectionPartialKeyBackup, ElectionPolynomial, ElectionPublicKey,
        compute_polynomial_coordinate, elgamal_encrypt, generate_backup, rand_q,
    };

    let captured = capture();
    let app = spawn_unsealed_with(|settings| settings.log.filter = "trace".into()).await;
    let token = ADMIN;
    let peer_polynomial = ElectionPolynomial::generate(2);
    let peer = ElectionPublicKey::new("guardian-2", 2, &peer_polynomial);

    let created = app
        .post(
            "/v1/guardians/guardian-1",
            token,
            json!({"ceremony_id": "log-probe", "sequence_order": 1, "number_of_guardians": 2, "quorum": 2}),
        )
        .await;
    assert_eq!(created.status(), 201, "{}", created.text);
    let own: ElectionPublicKey =
        serde_json::from_value(created.json["public_record"].clone()).unwrap();
    let shared = app
        .post(
            "/v1/guardians/guardian-1/backups",
            token,
            json!({"public_records": [own, peer]}),
        )
        .await;
    assert_eq!(shared.status(), 200, "{}", shared.text);
    // guardian-1's answer to a backup, asserting whether it verified.
    let send_backup = |backup: ElectionPartialKeyBackup, verified: bool| {
        let app = &app;
        async move {
            let body = json!({"backups": [backup]});
            let reply = app
                .post("/v1/guardians/guardian-1/verifications", token, body)
                .await;
            let answer = &reply.json["verifications"][0]["verified"];
            assert_eq!(answer, &json!(verified), "{}", reply.text);
            reply
        }
    };
    let wrong = generate_backup("guardian-2", &ElectionPolynomial::generate(2), &own);
    let refused = send_backup(wrong, false).await;
    let backup = generate_backup("guardian-2", &peer_polynomial, &own);
    let verified = send_backup(backup, true).await;
    let verifications = json!([
        {"owner_id": "guardian-1", "designated_id": "guardian-2", "verifier_id": "guardian-2", "verified": true},
        {"owner_id": "guardian-2", "designated_id": "guardian-1", "verifier_id": "guardian-1", "verified": true},
    ]);
    let finalized = app
        .post(
            "/v1/guardians/guardian-1/finalize",
            token,
            json!({"verifications": verifications}),
        )
        .await;
    assert_eq!(finalized.status(), 200, "{}", finalized.text);
    let joint =
        serde_json::from_value(finalized.json["joint_key"]["joint_public_key"].clone()).unwrap();
    let ciphertext = elgamal_encrypt(1, &rand_q(), &joint).unwrap();
    let batch = json!({"extended_base_hash": rand_q(), "ciphertexts": [ciphertext]});
    let decrypted = app
        .post("/v1/guardians/guardian-1/decrypt", token, batch.clone())
        .await;
    assert_eq!(decrypted.status(), 200, "{}", decrypted.text);
    let mut compensate = batch;
    compensate["missing_guardian_id"] = json!("guardian-2");
    let compensated = app
        .post("/v1/guardians/guardian-1/compensate", token, compensate)
        .await;
    assert_eq!(compensated.status(), 200, "{}", compensated.text);

    // The secrets: guardian-1's key, opened from storage, and the coordinate guardian-2 sent.
    let store = app.state.seal.store().unwrap();
    let sealed: Vec<u8> = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use security_svc::schema::vottery_security_guardians as guardians;
        guardians::table
            .find("guardian-1")
            .select(guardians::sealed_polynomial)
            .first(&mut app.db().await)
            .await
            .unwrap()
    };
    let polynomial = SecretOwner {
        guardian: "guardian-1",
        ceremony_id: "log-probe",
    }
    .open_polynomial(&store.barrier(), &sealed)
    .unwrap();
    let secret_key = hex::encode_upper(polynomial.secret_key().to_be_bytes().as_ref());
    let coordinate = hex::encode_upper(
        compute_polynomial_coordinate(1, &peer_polynomial)
            .to_be_bytes()
            .as_ref(),
    );

    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logs = captured.text();
    assert!(
        logs.contains("guardian ceremony finalized"),
        "the guardian's own events are captured"
    );
    // Fragments too, away from the leading digits that may be zero and dropped.
    let secrets = [
        ("guardian-1's secret key", secret_key[8..56].to_owned()),
        (
            "the coordinate guardian-2 sent",
            coordinate[8..56].to_owned(),
        ),
    ];
    assert_not_logged(&logs, &secrets);
    for reply in [
        &created,
        &shared,
        &refused,
        &verified,
        &finalized,
        &decrypted,
        &compensated,
    ] {
        for (what, secret) in &secrets {
            assert!(
                !reply.text.to_uppercase().contains(secret.as_str()),
                "{what} is in an answer"
            );
        }
    }
}
