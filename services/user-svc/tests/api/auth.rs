//! Authentication: the auth-service's JWTs (HS256, RS256, EdDSA with a PEM key), issuer and
//! audience, expiry with leeway, service tokens, and accounts that can no longer act.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{JwtKey, Options, Reply, SERVICE_TOKEN, TestApp, now_secs, spawn, spawn_app};

/// Asserts a 401 problem.
fn assert_unauthorized(reply: &Reply) {
    reply.problem(401);
    assert_eq!(reply.problem_type(), "unauthorized", "{}", reply.text);
    assert!(
        !reply.text.contains("dev-jwt-secret"),
        "the answer leaks the secret"
    );
}

async fn me(app: &TestApp, token: &str) -> Reply {
    app.get("/api/users/me", token).await
}

#[tokio::test]
async fn a_missing_or_malformed_authorization_is_401_problem_json() {
    let app = spawn_app().await;
    let none = app.call(Method::GET, "/api/users/me").send().await;
    assert_unauthorized(&none);

    for header in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Token abc",
        &app.manager.token,
    ] {
        let reply = app
            .call(Method::GET, "/api/users/me")
            .header("Authorization", header)
            .send()
            .await;
        assert_unauthorized(&reply);
    }
    // A route that needs no database still needs a token.
    assert_unauthorized(&app.call(Method::GET, "/api/roles").send().await);
    assert_unauthorized(&app.call(Method::GET, "/api/users").send().await);
}

#[tokio::test]
async fn hs256_tokens_are_checked_for_signature_expiry_and_the_user_claim() {
    let app = spawn_app().await;
    let id = app.manager.id;
    let ok = me(&app, &app.jwt_for(id)).await;
    assert_eq!(ok.expect(200)["id"], json!(id));

    // Another secret, garbage, a token whose payload was altered.
    let forged = JwtKey::hs256("another-secret-that-is-long-enough-000").sign(&app.claims_for(id));
    assert_unauthorized(&me(&app, &forged).await);
    assert_unauthorized(&me(&app, "not.a.jwt").await);
    let genuine = app.jwt_for(id);
    let mut parts: Vec<&str> = genuine.split('.').collect();
    let other_payload = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"sub": "2", "exp": now_secs() + 600}).to_string())
    };
    parts[1] = &other_payload;
    assert_unauthorized(&me(&app, &parts.join(".")).await);

    // Expired beyond the 30 s leeway: refused; expired within it: accepted.
    let mut claims = app.claims_for(id);
    claims["exp"] = json!(now_secs() - 120);
    let expired = me(&app, &app.jwt.sign(&claims)).await;
    assert_unauthorized(&expired);
    assert!(expired.json["detail"].as_str().unwrap().contains("expired"));
    claims["exp"] = json!(now_secs() - 5);
    me(&app, &app.jwt.sign(&claims)).await.expect(200);

    // No expiry at all, no user id, a user id that is not one.
    let no_exp = app.jwt.sign(&json!({"sub": id.to_string()}));
    assert_unauthorized(&me(&app, &no_exp).await);
    for sub in [json!(null), json!("abc"), json!(0), json!(-3), json!("1.5")] {
        let mut claims = app.claims_for(id);
        claims["sub"] = sub.clone();
        assert_unauthorized(&me(&app, &app.jwt.sign(&claims)).await);
    }
    // A numeric subject is accepted like a string one.
    let mut claims = app.claims_for(id);
    claims["sub"] = json!(id);
    me(&app, &app.jwt.sign(&claims)).await.expect(200);
}

#[tokio::test]
async fn the_algorithm_is_pinned_by_configuration() {
    let app = spawn_app().await;
    // An unsigned token ("alg": "none").
    use base64::Engine;
    let b64 =
        |value: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(app.claims_for(app.manager.id))
    );
    assert_unauthorized(&me(&app, &unsigned).await);
    // HS512 with the right secret is still not HS256.
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &app.claims_for(app.manager.id),
        &EncodingKey::from_secret(b"dev-jwt-secret-change-me-0123456789abcdef"),
    )
    .unwrap();
    assert_unauthorized(&me(&app, &hs512).await);
}

/// An app verifying `key`'s tokens, with issuer and audience required.
async fn spawn_with_key(key: JwtKey) -> TestApp {
    spawn(Options {
        jwt: key,
        configure: Box::new(|settings| {
            settings.auth.issuer = "https://auth.vottery.test".into();
            settings.auth.audience = "user-svc".into();
        }),
        ..Options::default()
    })
    .await
}

/// What every asymmetric configuration must accept and refuse.
async fn check_asymmetric(app: &TestApp, other_key: &JwtKey) {
    let id = app.manager.id;
    me(app, &app.jwt_for(id)).await.expect(200);

    // Signed by another key of the same kind.
    assert_unauthorized(&me(app, &other_key.sign(&app.claims_for(id))).await);
    // HS256 keyed with the public key (the algorithm-confusion attack).
    let confused = JwtKey::hs256(&app.jwt.public_pem).sign(&app.claims_for(id));
    assert_unauthorized(&me(app, &confused).await);
    // The shared dev secret means nothing to an asymmetric configuration.
    assert_unauthorized(&me(app, &JwtKey::dev_hs256().sign(&app.claims_for(id))).await);

    // Issuer and audience: missing or wrong are refused.
    for (claim, value) in [
        ("iss", Value::Null),
        ("iss", json!("https://evil.example")),
        ("aud", Value::Null),
        ("aud", json!("another-service")),
    ] {
        let mut claims = app.claims_for(id);
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(claim);
        } else {
            claims[claim] = value.clone();
        }
        let reply = me(app, &app.jwt.sign(&claims)).await;
        assert_unauthorized(&reply);
        let detail = reply.json["detail"].as_str().unwrap_or_default().to_owned();
        let named = if claim == "iss" { "iss" } else { "aud" };
        assert!(
            detail.contains(named)
                || detail.contains(if claim == "iss" { "issuer" } else { "audience" }),
            "{claim}={value}: {detail}"
        );
    }
    // An audience list that includes ours is accepted.
    let mut claims = app.claims_for(id);
    claims["aud"] = json!(["another-service", "user-svc"]);
    me(app, &app.jwt.sign(&claims)).await.expect(200);
}

#[tokio::test]
async fn rs256_tokens_are_verified_with_the_configured_pem_key() {
    let app = spawn_with_key(JwtKey::rs256()).await;
    check_asymmetric(&app, &JwtKey::rs256()).await;
}

#[tokio::test]
async fn eddsa_tokens_are_verified_with_the_configured_pem_key() {
    let app = spawn_with_key(JwtKey::ed25519()).await;
    check_asymmetric(&app, &JwtKey::ed25519()).await;
}

#[tokio::test]
async fn the_user_id_claim_is_configurable() {
    let app = spawn(Options {
        configure: Box::new(|settings| settings.auth.user_id_claim = "uid".into()),
        ..Options::default()
    })
    .await;
    let id = app.manager.id;
    let with_uid = app
        .jwt
        .sign(&json!({"uid": id, "sub": "someone-else", "exp": now_secs() + 600}));
    assert_eq!(me(&app, &with_uid).await.expect(200)["id"], json!(id));
    let sub_only = app
        .jwt
        .sign(&json!({"sub": id.to_string(), "exp": now_secs() + 600}));
    assert_unauthorized(&me(&app, &sub_only).await);
}

#[tokio::test]
async fn service_tokens_act_as_the_service_and_have_no_account() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    app.get(&format!("/api/users/{}", user.id), SERVICE_TOKEN)
        .await
        .expect(200);
    let me = app.get("/api/users/me", SERVICE_TOKEN).await;
    me.problem(403);
    // A service token that is not configured is just an invalid token.
    assert_unauthorized(&app.get("/api/users/me", "dev-auth-service-token-x").await);
}

#[tokio::test]
async fn a_suspended_or_deleted_users_valid_token_is_refused() {
    let app = spawn_app().await;
    let admin = app.user_with_role("admin").await;
    app.get("/api/users/me", &admin.token).await.expect(200);
    app.get("/api/users", &admin.token).await.expect(200);

    app.set_status(admin.id, "suspended").await;
    let suspended = app.get("/api/users/me", &admin.token).await;
    suspended.problem(403);
    assert!(
        suspended.json["detail"]
            .as_str()
            .unwrap()
            .contains("suspended")
    );
    app.get("/api/users", &admin.token).await.problem(403);
    let created = app
        .post(
            "/api/users",
            &admin.token,
            json!({"sngine_email": "x@example.com", "sngine_phone": "+14155550999"}),
        )
        .await;
    created.problem(403);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM vottery_users WHERE pii_encrypted AND email_bidx IS NOT NULL"
        )
        .await,
        2,
        "the suspended admin created nobody"
    );

    // Reinstated, the same token works again.
    app.set_status(admin.id, "active").await;
    app.get("/api/users/me", &admin.token).await.expect(200);

    app.delete(&format!("/api/users/{}", admin.id), &app.manager.token)
        .await
        .expect(204);
    let deleted = app.get("/api/users/me", &admin.token).await;
    assert_unauthorized(&deleted);
    assert_unauthorized(&app.get("/api/users", &admin.token).await);
}
