//! security-svc sealed or down: writes answer 503 with `Retry-After` and leave nothing behind
//! (no row, no audit row, no partial change); reads answer 503 rather than undecrypted data.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Reply, SERVICE_TOKEN, TestApp, TestUser, closed_port, spawn_app, spawn_app_with_user,
};

/// Everything a failed write could have touched.
async fn state_of(app: &TestApp) -> (Vec<Value>, i64, Vec<Value>) {
    let users = app
        .rows("SELECT id, sngine_email, sngine_phone, email_bidx, phone_bidx, status, admin_role, user_type, subscription_status, first_name, city, row_version, record_signature FROM vottery_users ORDER BY id")
        .await;
    let audit = app.audit_count().await;
    let heads = app
        .rows("SELECT chain_key, last_seq, last_hash FROM vottery_audit_chain_heads ORDER BY chain_key")
        .await;
    (users, audit, heads)
}

fn assert_unavailable(reply: &Reply, secrets: &[&str]) {
    reply.problem(503);
    assert_eq!(
        reply.problem_type(),
        "dependency-unavailable",
        "{}",
        reply.text
    );
    let retry_after: u64 = reply
        .header("retry-after")
        .expect("503 carries Retry-After")
        .parse()
        .expect("Retry-After is a number of seconds");
    assert!(retry_after >= 1);
    for secret in secrets {
        assert!(!reply.text.contains(secret), "{secret} in {}", reply.text);
    }
    assert!(
        !reply.text.contains("vault:v"),
        "ciphertext in {}",
        reply.text
    );
}

/// Every write and read of the API, against `base`, must answer 503 and change nothing.
async fn check_everything_is_unavailable(app: &TestApp, base: &str, user: &TestUser) {
    let before = state_of(app).await;
    let id = user.id;
    let writes: Vec<(Method, String, &str, Value)> = vec![
        (
            Method::POST,
            "/api/users".into(),
            SERVICE_TOKEN,
            json!({"sngine_email": "during-outage@example.com", "sngine_phone": "+14155550666"}),
        ),
        (
            Method::POST,
            "/api/users".into(),
            &app.manager.token,
            json!({"sngine_email": "during-outage@example.com", "sngine_phone": "+14155550666", "first_name": "Nobody"}),
        ),
        (
            Method::PUT,
            format!("/api/users/{id}/profile"),
            &user.token,
            json!({"city": "Nowhere", "first_name": "Changed"}),
        ),
        (
            Method::PUT,
            format!("/api/users/{id}/profile"),
            &user.token,
            json!({"city": "Nowhere"}),
        ),
        (
            Method::PUT,
            format!("/api/users/{id}/status"),
            &app.manager.token,
            json!({"status": "suspended"}),
        ),
        (
            Method::PUT,
            format!("/api/users/{id}/role"),
            &app.manager.token,
            json!({"admin_role": "analyst"}),
        ),
    ];
    for (method, path, token, body) in writes {
        let reply = app
            .call_at(base, method, &path)
            .token(token)
            .json(&body)
            .send()
            .await;
        assert_unavailable(&reply, &[]);
    }
    for path in [
        format!("/api/users/{id}"),
        "/api/users/me".to_owned(),
        "/api/users".to_owned(),
        format!("/api/users?email={}", user.email.replace('@', "%40")),
    ] {
        let reply = app
            .call_at(base, Method::GET, &path)
            .token(&user.token)
            .send()
            .await;
        if path == "/api/users" || path.starts_with("/api/users?") {
            // A plain user may not list: refused before any decryption is needed.
            reply.problem(403);
            continue;
        }
        assert_unavailable(&reply, &[&user.email, &user.phone]);
        let as_manager = app
            .call_at(base, Method::GET, &path.replace("/me", &format!("/{id}")))
            .token(&app.manager.token)
            .send()
            .await;
        assert_unavailable(&as_manager, &[&user.email, &user.phone]);
    }
    for path in [
        "/api/users",
        "/api/users?status=active",
        "/api/users?email=a%40example.com",
    ] {
        let reply = app
            .call_at(base, Method::GET, path)
            .token(&app.manager.token)
            .send()
            .await;
        assert_unavailable(&reply, &[&user.email, MANAGER_EMAIL_LOCAL]);
    }
    let ready = app.call_at(base, Method::GET, "/health/ready").send().await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(
        state_of(app).await,
        before,
        "a failed request changed something"
    );
}

const MANAGER_EMAIL_LOCAL: &str = "manager@";

#[tokio::test]
async fn a_sealed_security_svc_means_503_and_nothing_written() {
    let app = spawn_app().await;
    let user = app
        .create_user_with(json!({"first_name": "Sealed", "city": "Bern"}))
        .await;
    app.set_status(user.id, "active").await;
    app.security.seal().await;
    check_everything_is_unavailable(&app, &app.address, &user).await;

    // Unsealed again, the same requests work and the user reads as before.
    app.security.unseal().await;
    let view = app.read_user(user.id).await;
    assert_eq!(view["first_name"], json!("Sealed"));
    assert_eq!(view["signature"]["valid"], json!(true));
    app.put_profile(user.id, &user.token, json!({"city": "Basel"}))
        .await
        .expect(200);
    app.post_user(
        json!({"sngine_email": "during-outage@example.com", "sngine_phone": "+14155550666"}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn an_unreachable_security_svc_means_503_and_nothing_written() {
    let (app, user) = spawn_app_with_user().await;
    let port = closed_port();
    let cut_off = app
        .start_instance(|settings| {
            settings.security.url = format!("http://127.0.0.1:{port}");
        })
        .await;
    check_everything_is_unavailable(&app, &cut_off, &user).await;
    // The healthy instance on the same database still works.
    assert_eq!(
        app.read_user(user.id).await["signature"]["valid"],
        json!(true)
    );
}

#[tokio::test]
async fn refusals_and_deletes_need_no_security_svc() {
    // Refusals that need no key still work while security-svc is sealed, and are audited.
    let (app, user) = spawn_app_with_user().await;
    app.security.seal().await;
    let audit_before = app.audit_rows(user.id).await.len();
    let forbidden = app
        .put_status(user.id, &user.token, json!({"status": "suspended"}))
        .await;
    forbidden.problem(403);
    let invalid = app
        .put_profile(user.id, &user.token, json!({"country": "ZZ"}))
        .await;
    invalid.assert_invalid(&["country"]);
    assert_eq!(app.audit_rows(user.id).await.len(), audit_before + 2);
    // Deleting needs no key and is allowed; the trail records it.
    app.delete(&format!("/api/users/{}", user.id), &app.manager.token)
        .await
        .expect(204);
}
