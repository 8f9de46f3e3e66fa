//! Tokens and policies: who may do what to which keys.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// Posts to a transit endpoint with the user-svc token; asserts success and returns `data`.
async fn as_user(app: &TestApp, path: &str, body: Value) -> Value {
    app.transit_as(USER, path, body).await.ok().clone()
}

#[tokio::test]
async fn the_user_svc_token_uses_its_own_keys() {
    let app = spawn_unsealed().await;
    app.create_key("vottery-users-pii", "aes256-gcm96").await;
    app.create_key("vottery-users-sig", "ed25519").await;
    app.create_key("vottery-users-mac", "hmac").await;

    let pii = json!({"plaintext": b64("alice@example.com")});
    let encrypted = as_user(&app, "encrypt/vottery-users-pii", pii).await;
    let ciphertext = encrypted["ciphertext"].as_str().unwrap().to_owned();
    let ciphertext_body = json!({"ciphertext": ciphertext});
    let decrypted = as_user(&app, "decrypt/vottery-users-pii", ciphertext_body.clone()).await;
    assert_eq!(decrypted["plaintext"], json!(b64("alice@example.com")));
    // What the user token encrypts the admin decrypts, and the other way round.
    assert_eq!(
        app.decrypt("vottery-users-pii", &ciphertext).await,
        b"alice@example.com"
    );
    as_user(&app, "rewrap/vottery-users-pii", ciphertext_body).await;
    as_user(&app, "datakey/wrapped/vottery-users-pii", json!({})).await;

    let ballot = json!({"input": b64("ballot")});
    let signature = as_user(&app, "sign/vottery-users-sig", ballot).await["signature"].clone();
    let signed = json!({"input": b64("ballot"), "signature": signature});
    let verified = as_user(&app, "verify/vottery-users-sig", signed).await;
    assert_eq!(verified["valid"], json!(true));

    let lookup = json!({"input": b64("lookup")});
    let tag = as_user(&app, "hmac/vottery-users-mac", lookup).await["hmac"].clone();
    let tagged = json!({"input": b64("lookup"), "hmac": tag});
    let checked = as_user(&app, "verify/vottery-users-mac", tagged).await;
    assert_eq!(checked["valid"], json!(true));
    let read = app.get("/v1/transit/keys/vottery-users-pii", USER).await;
    assert_eq!(read.ok()["name"], json!("vottery-users-pii"));
}

#[tokio::test]
async fn the_user_svc_token_may_not_manage_keys_or_touch_other_keys() {
    let app = spawn_unsealed().await;
    app.create_key("vottery-users-pii", "aes256-gcm96").await;
    app.create_key("billing", "aes256-gcm96").await;
    app.create_key("billing-sig", "ed25519").await;
    let users_before = app.read_key("vottery-users-pii").await;
    let billing_ciphertext = app.encrypt("billing", b"invoice").await;

    let list = Method::from_bytes(b"LIST").unwrap();
    let management = [
        (
            Method::POST,
            "/v1/transit/keys/vottery-users-new",
            json!({"type": "aes256-gcm96"}),
        ),
        (
            Method::POST,
            "/v1/transit/keys/vottery-users-pii/rotate",
            json!({}),
        ),
        (
            Method::POST,
            "/v1/transit/keys/vottery-users-pii/config",
            json!({"deletion_allowed": true}),
        ),
        (
            Method::POST,
            "/v1/transit/keys/vottery-users-pii/trim",
            json!({"min_available_version": 1}),
        ),
        (
            Method::DELETE,
            "/v1/transit/keys/vottery-users-pii",
            json!({}),
        ),
        (list, "/v1/transit/keys", json!({})),
    ];
    for (method, path, body) in management {
        app.request(method.clone(), path, USER, Some(&body))
            .await
            .assert_denied();
    }
    let foreign = [
        (
            "/v1/transit/encrypt/billing",
            json!({"plaintext": b64("x")}),
        ),
        (
            "/v1/transit/decrypt/billing",
            json!({"ciphertext": billing_ciphertext}),
        ),
        (
            "/v1/transit/rewrap/billing",
            json!({"ciphertext": billing_ciphertext}),
        ),
        ("/v1/transit/datakey/plaintext/billing", json!({})),
        ("/v1/transit/hmac/billing", json!({"input": b64("x")})),
        ("/v1/transit/sign/billing-sig", json!({"input": b64("x")})),
        (
            "/v1/transit/verify/billing-sig",
            json!({"input": b64("x"), "signature": "vault:v1:AAAA"}),
        ),
        // A name that only starts like the allowed pattern.
        (
            "/v1/transit/encrypt/vottery-user",
            json!({"plaintext": b64("x")}),
        ),
    ];
    for (path, body) in foreign {
        app.post(path, USER, body).await.assert_denied();
    }
    app.get("/v1/transit/keys/billing", USER)
        .await
        .assert_denied();

    // Nothing changed.
    assert_eq!(app.read_key("vottery-users-pii").await, users_before);
    app.assert_no_key("vottery-users-new").await;
    assert_eq!(
        app.decrypt("billing", &billing_ciphertext).await,
        b"invoice"
    );
}

#[tokio::test]
async fn missing_wrong_and_bearer_tokens() {
    let app = spawn_unsealed().await;
    app.create_key("tokens", "aes256-gcm96").await;
    let body = json!({"plaintext": b64("x")});
    app.transit_as(NO_TOKEN, "encrypt/tokens", body.clone())
        .await
        .assert_denied();
    app.post(
        "/v1/transit/encrypt/tokens",
        Some("dev-security-admin-token-x"),
        body.clone(),
    )
    .await
    .assert_denied();
    app.post("/v1/transit/encrypt/tokens", Some(""), body.clone())
        .await
        .assert_denied();

    let send = |header: &'static str, value: String| {
        let app = &app;
        let body = body.clone();
        async move {
            let reply = app
                .http
                .post(app.url("/v1/transit/encrypt/tokens"))
                .header(header, value)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = reply.status().as_u16();
            (status, reply.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, reply) = send("Authorization", "Bearer dev-security-admin-token".into()).await;
    assert_eq!(status, 200, "{reply}");
    assert_versioned(reply["data"]["ciphertext"].as_str().unwrap(), 1);
    let (status, _) = send("Authorization", "Bearer dev-user-svc-token".into()).await;
    assert_eq!(status, 403, "the user token is not allowed this key");
    for wrong in [
        "Basic ZGV2LXNlY3VyaXR5LWFkbWluLXRva2Vu",
        "bearer dev-security-admin-token",
        "dev-security-admin-token",
        "Bearer nope",
    ] {
        let (status, reply) = send("Authorization", wrong.into()).await;
        assert_eq!(status, 403, "{wrong}: {reply}");
        assert_eq!(reply, json!({"errors": ["permission denied"]}));
    }
    // The root token from init is an admin token too.
    let root = app.init_keys().root_token.clone();
    let (status, _) = send("X-Vault-Token", root.clone()).await;
    assert_eq!(status, 200);
    let (status, _) = send("Authorization", format!("Bearer {root}")).await;
    assert_eq!(status, 200);
    // X-Vault-Token wins over Authorization.
    let reply = app
        .http
        .post(app.url("/v1/transit/encrypt/tokens"))
        .header("X-Vault-Token", "nope")
        .header("Authorization", "Bearer dev-security-admin-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 403);
}

#[tokio::test]
async fn encrypt_upserts_for_the_admin_but_not_for_the_user_svc_token() {
    let app = spawn_unsealed().await;
    let path = "encrypt/vottery-users-fresh";
    let plaintext = json!({"plaintext": b64("x")});
    let reply = app.transit_as(USER, path, plaintext.clone()).await;
    reply.assert_error(400, "encryption key not found");
    app.assert_no_key("vottery-users-fresh").await;
    app.assert_no_keys().await;

    let reply = app.transit(path, plaintext.clone()).await;
    assert_versioned(reply.ok()["ciphertext"].as_str().unwrap(), 1);
    assert_eq!(
        app.read_key("vottery-users-fresh").await["type"],
        json!("aes256-gcm96")
    );
    // Now that it exists, the user token uses it.
    let reply = app.transit_as(USER, path, plaintext).await;
    reply.ok();
}

#[tokio::test]
async fn sealing_is_checked_before_the_token() {
    let app = spawn_unsealed().await;
    app.seal().await;
    for token in [NO_TOKEN, Some("wrong"), USER] {
        app.transit_as(token, "encrypt/billing", json!({"plaintext": b64("x")}))
            .await
            .assert_sealed();
    }
}
