//! All the security-svc work of one request is batched, proven with security-svc's own
//! `vottery_security_operations_total` counters: one encrypt, one hmac and one sign call per
//! create; one decrypt call per read, of one user or of a whole page. Record signatures are
//! checked in user-svc with the signing key's public versions, so reads make no verify call;
//! with `security.signing_key_refresh_ms = 0` security-svc checks them, in one verify call.

use serde_json::json;

use crate::helpers::{Operations, spawn_app, spawn_app_with};

/// One call of each operation named, and none of the others.
fn one_call_each(operations: &[&str]) -> Operations {
    let once = |operation: &str| u64::from(operations.contains(&operation));
    Operations {
        encrypt: once("encrypt"),
        decrypt: once("decrypt"),
        hmac: once("hmac"),
        sign: once("sign"),
        verify: once("verify"),
    }
}

#[tokio::test]
async fn a_create_makes_one_encrypt_one_hmac_and_one_sign_call() {
    let app = spawn_app().await;
    let before = app.security.snapshot().await;
    let items_before = app.security.batch_items("encrypt").await;
    app.post_user(json!({
        "sngine_email": "batch@example.com",
        "sngine_phone": "+14155550123",
        "first_name": "Bea",
        "last_name": "Batch",
        "date_of_birth": "1990-01-01"
    }))
    .await
    .expect(201);
    let calls = app.security.snapshot().await - before;
    assert_eq!(calls, one_call_each(&["encrypt", "hmac", "sign"]));
    // The one encrypt call carried all five values.
    assert_eq!(app.security.batch_items("encrypt").await - items_before, 5);
}

#[tokio::test]
async fn a_read_makes_one_decrypt_call() {
    let app = spawn_app().await;
    let user = app
        .create_user_with(
            json!({"first_name": "Rita", "last_name": "Read", "date_of_birth": "1980-02-02"}),
        )
        .await;
    for path in [
        format!("/api/users/{}", user.id),
        "/api/users/me".to_owned(),
    ] {
        let before = app.security.snapshot().await;
        app.get(&path, &user.token).await.expect(200);
        let calls = app.security.snapshot().await - before;
        assert_eq!(calls, one_call_each(&["decrypt"]), "{path}");
    }
    // The signing key's public versions are read once, not per read.
    let key_reads = app.security.operations("read").await;
    for _ in 0..10 {
        app.get("/api/users/me", &user.token).await.expect(200);
    }
    assert!(app.security.operations("read").await - key_reads <= 1);
}

#[tokio::test]
async fn a_page_of_users_makes_one_decrypt_call() {
    let app = spawn_app().await;
    for _ in 0..6 {
        app.create_user_with(json!({"first_name": "Paige", "last_name": "Lister"}))
            .await;
    }
    let decrypt_items = app.security.batch_items("decrypt").await;
    let before = app.security.snapshot().await;
    let page = app.get_as_manager("/api/users?limit=100").await;
    assert_eq!(page.expect(200)["data"].as_array().unwrap().len(), 7);
    let calls = app.security.snapshot().await - before;
    assert_eq!(calls, one_call_each(&["decrypt"]));
    // 6 users x 4 PII values + the manager's 2.
    assert_eq!(
        app.security.batch_items("decrypt").await - decrypt_items,
        26
    );

    // An email lookup adds the one HMAC of the address.
    let before = app.security.snapshot().await;
    app.get_as_manager("/api/users?email=user1%40example.com")
        .await
        .expect(200);
    let calls = app.security.snapshot().await - before;
    assert_eq!(calls, one_call_each(&["decrypt", "hmac"]));
}

#[tokio::test]
async fn a_profile_update_makes_one_call_of_each_kind_it_needs() {
    let app = spawn_app().await;
    let user = app.create_user_with(json!({"first_name": "Uma"})).await;
    let before = app.security.snapshot().await;
    app.put_profile(
        user.id,
        &user.token,
        json!({"last_name": "Update", "date_of_birth": "1970-07-07", "city": "Riga"}),
    )
    .await
    .expect(200);
    let calls = app.security.snapshot().await - before;
    // Encrypt the two new values, decrypt the kept ones (to answer and to check them), sign
    // the new row; the current signature is checked in user-svc.
    assert_eq!(calls, one_call_each(&["encrypt", "decrypt", "sign"]));
}

#[tokio::test]
async fn signatures_left_to_security_svc_are_one_verify_call_per_read() {
    let app = spawn_app_with(|settings| settings.security.signing_key_refresh_ms = 0).await;
    let user = app.create_user().await;
    for _ in 0..2 {
        app.create_user().await;
    }
    let before = app.security.snapshot().await;
    let read = app
        .get(&format!("/api/users/{}", user.id), &user.token)
        .await;
    assert_eq!(read.expect(200)["signature"]["valid"], json!(true));
    assert_eq!(
        app.security.snapshot().await - before,
        one_call_each(&["decrypt", "verify"])
    );
    // A page of four: one verify call with every signature.
    let verify_items = app.security.batch_items("verify").await;
    let before = app.security.snapshot().await;
    let page = app.get_as_manager("/api/users?limit=100").await;
    assert_eq!(page.expect(200)["data"].as_array().unwrap().len(), 4);
    assert_eq!(
        app.security.snapshot().await - before,
        one_call_each(&["decrypt", "verify"])
    );
    assert_eq!(app.security.batch_items("verify").await - verify_items, 4);
}
