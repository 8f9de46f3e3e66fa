//! The logs never carry plaintexts, tokens, unseal shares or key material, even at TRACE.
//!
//! A test binary of its own: it installs the process-wide tracing subscriber, which captures
//! every event and span of every thread (the service's workers included) into a buffer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use secrecy::SecretString;
use security_svc::configuration::TokenSettings;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use helpers::*;

/// Every log line written so far.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the global subscriber once: every level, as text (with span events) and as JSON.
fn capture() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
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
        .post(
            "/v1/transit/keys/canary",
            token,
            json!({"type": "aes256-gcm96"}),
        )
        .await;
    created.ok();
    let encrypted = app
        .post(
            "/v1/transit/encrypt/canary",
            token,
            json!({"plaintext": encoded}),
        )
        .await;
    let ciphertext = encrypted.ok()["ciphertext"].as_str().unwrap().to_owned();
    let (_, ciphertext_payload) = split_versioned(&ciphertext);
    let decrypted = app
        .post(
            "/v1/transit/decrypt/canary",
            token,
            json!({"ciphertext": ciphertext}),
        )
        .await;
    assert_eq!(decrypted.ok()["plaintext"], json!(encoded));

    // Batches, data keys, failures and refusals carrying the same secrets.
    let batch = app
        .post(
            "/v1/transit/encrypt/canary",
            token,
            json!({"batch_input": [{"plaintext": encoded, "reference": "r"}, {"plaintext": PLAINTEXT}]}),
        )
        .await;
    assert_eq!(batch.status(), 400, "{}", batch.text);
    let data_key = app
        .post("/v1/transit/datakey/plaintext/canary", token, json!({}))
        .await;
    let data_key_plaintext = data_key.ok()["plaintext"].as_str().unwrap().to_owned();
    app.post(
        "/v1/transit/encrypt/canary",
        token,
        json!({"plaintext": encoded, "key_version": PLAINTEXT}),
    )
    .await
    .assert_error(400, "error parsing JSON");
    let tampered = format!("{ciphertext}A");
    let failed = app
        .post(
            "/v1/transit/decrypt/canary",
            token,
            json!({"ciphertext": tampered}),
        )
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
        .post("/v1/transit/hmac/canary", token, json!({"input": encoded}))
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
