//! All the security-svc work of one request is batched, proven with security-svc's own
//! `vottery_security_operations_total` counters: one encrypt, one hmac and one sign call per
//! create; one decrypt and one verify call per read, of one user or of a whole page.

use serde_json::json;

use crate::helpers::{Operations, SERVICE_TOKEN, spawn_app};

#[tokio::test]
async fn a_create_makes_one_encrypt_one_hmac_and_one_sign_call() {
    let app = spawn_app().await;
    let before = app.security.snapshot().await;
    let items_before = app.security.batch_items("encrypt").await;
    app.post(
        "/api/users",
        SERVICE_TOKEN,
        json!({
            "sngine_email": "batch@example.com",
            "sngine_phone": "+14155550123",
            "first_name": "Bea",
            "last_name": "Batch",
            "date_of_birth": "1990-01-01"
        }),
    )
    .await
    .expect(201);
    let calls = app.security.snapshot().await - before;
    assert_eq!(
        calls,
        Operations {
            encrypt: 1,
            decrypt: 0,
            hmac: 1,
            sign: 1,
            verify: 0
        }
    );
    // The one encrypt call carried all five values.
    assert_eq!(app.security.batch_items("encrypt").await - items_before, 5);
}

#[tokio::test]
async fn a_read_makes_one_decrypt_and_one_verify_call() {
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
        assert_eq!(
            calls,
            Operations {
                decrypt: 1,
                verify: 1,
                ..Operations::default()
            },
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_page_of_users_makes_one_decrypt_and_one_verify_call() {
    let app = spawn_app().await;
    for _ in 0..6 {
        app.create_user_with(json!({"first_name": "Paige", "last_name": "Lister"}))
            .await;
    }
    let decrypt_items = app.security.batch_items("decrypt").await;
    let verify_items = app.security.batch_items("verify").await;
    let before = app.security.snapshot().await;
    let page = app.get("/api/users?limit=100", &app.manager.token).await;
    assert_eq!(page.expect(200)["data"].as_array().unwrap().len(), 7);
    let calls = app.security.snapshot().await - before;
    assert_eq!(
        calls,
        Operations {
            decrypt: 1,
            verify: 1,
            ..Operations::default()
        }
    );
    // 6 users x 4 PII values + the manager's 2; 7 signatures.
    assert_eq!(
        app.security.batch_items("decrypt").await - decrypt_items,
        26
    );
    assert_eq!(app.security.batch_items("verify").await - verify_items, 7);

    // An email lookup adds the one HMAC of the address.
    let before = app.security.snapshot().await;
    app.get("/api/users?email=user1%40example.com", &app.manager.token)
        .await
        .expect(200);
    let calls = app.security.snapshot().await - before;
    assert_eq!(
        calls,
        Operations {
            decrypt: 1,
            verify: 1,
            hmac: 1,
            ..Operations::default()
        }
    );
}

#[tokio::test]
async fn a_profile_update_makes_one_call_of_each_kind_it_needs() {
    let app = spawn_app().await;
    let user = app.create_user_with(json!({"first_name": "Uma"})).await;
    let before = app.security.snapshot().await;
    app.put(
        &format!("/api/users/{}/profile", user.id),
        &user.token,
        json!({"last_name": "Update", "date_of_birth": "1970-07-07", "city": "Riga"}),
    )
    .await
    .expect(200);
    let calls = app.security.snapshot().await - before;
    // Encrypt the two new values, decrypt the kept ones (to answer and to check them), verify
    // the current signature, sign the new row.
    assert_eq!(
        calls,
        Operations {
            encrypt: 1,
            decrypt: 1,
            hmac: 0,
            sign: 1,
            verify: 1
        }
    );
}
