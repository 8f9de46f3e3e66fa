//! Optimistic concurrency: `ETag` on reads, `If-Match` on writes (412 when stale), and
//! concurrent writes without `If-Match` that all land.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::spawn_app_with_user;

#[tokio::test]
async fn a_stale_if_match_is_412_and_a_current_one_writes() {
    let (app, user) = spawn_app_with_user().await;
    let path = format!("/api/users/{}/profile", user.id);

    let read = app
        .get(&format!("/api/users/{}", user.id), &user.token)
        .await;
    read.expect(200);
    let etag = read.header("etag").unwrap();
    assert_eq!(etag, "\"2\"");

    // A city change sent with the given `If-Match`.
    let put_city = |if_match: &str, city: &str| {
        app.call(Method::PUT, &path)
            .token(&user.token)
            .header("If-Match", if_match)
            .json(&json!({ "city": city }))
            .send()
    };
    let first = put_city(&etag, "Kyiv").await;
    first.expect(200);
    assert_eq!(first.header("etag"), Some("\"3\"".into()));

    // The same (now stale) version again.
    let stale = put_city(&etag, "Lviv").await;
    let problem = stale.problem(412);
    assert_eq!(problem["current_version"], json!(3));
    assert_eq!(stale.error_fields(), vec!["If-Match"]);
    assert_eq!(app.user_row(user.id).await["city"], json!("Kyiv"));

    // Weak form and `*` are accepted; a malformed one is named.
    put_city("W/\"3\"", "Odesa").await.expect(200);
    put_city("*", "Dnipro").await.expect(200);
    put_city("yesterday", "Kharkiv")
        .await
        .assert_invalid(&["If-Match"]);

    // Status, role and delete honour it too.
    for (method, suffix, body) in [
        (Method::PUT, "/status", Some(json!({"status": "suspended"}))),
        (Method::PUT, "/role", Some(json!({"admin_role": "analyst"}))),
        (Method::DELETE, "", None),
    ] {
        let mut call = app
            .call(method, &format!("/api/users/{}{suffix}", user.id))
            .token(&app.manager.token)
            .if_match(2);
        if let Some(body) = &body {
            call = call.json(body);
        }
        call.send().await.problem(412);
    }
    let current = app.user_row(user.id).await["row_version"].as_i64().unwrap();
    assert_eq!(current, 5);
    app.call(Method::PUT, &format!("/api/users/{}/status", user.id))
        .token(&app.manager.token)
        .if_match(current)
        .json(&json!({"status": "suspended"}))
        .send()
        .await
        .expect(200);
}

#[tokio::test]
async fn concurrent_updates_of_different_fields_all_land() {
    let (app, user) = spawn_app_with_user().await;
    let version = app.user_row(user.id).await["row_version"].as_i64().unwrap();
    let changes = [
        ("first_name", json!("Ana")),
        ("last_name", json!("Silva")),
        ("date_of_birth", json!("1990-05-06")),
        ("gender", json!("female")),
        ("country", json!("PT")),
        ("city", json!("Porto")),
        ("timezone", json!("Europe/Lisbon")),
        ("bio", json!("concurrent")),
        ("avatar_url", json!("https://cdn.example.com/a.png")),
        ("language", json!("pt-PT")),
    ];
    let path = format!("/api/users/{}/profile", user.id);
    let replies = join_all(changes.iter().map(|(field, value)| {
        let body = json!({ *field: value });
        let path = path.clone();
        let token = user.token.clone();
        let app = &app;
        async move { app.put(&path, &token, body).await }
    }))
    .await;
    for reply in &replies {
        reply.expect(200);
    }
    let view = app.read_user(user.id).await;
    for (field, value) in &changes {
        assert_eq!(&view[*field], value, "{field} was lost");
    }
    assert_eq!(view["version"], json!(version + changes.len() as i64));
    assert_eq!(view["signature"]["valid"], json!(true));
    let successes = app
        .audit_rows_of(user.id, "user.update_profile", true)
        .await
        .len();
    assert_eq!(successes, changes.len());

    // Appends raced on one chain and took their places one after another.
    let mut conn = app.db().await;
    let chain = user_svc::audit::verify_chain(&mut conn, user.id)
        .await
        .unwrap();
    assert!(chain.valid, "{chain:?}");
    assert_eq!(
        chain.checked,
        user_svc::audit::chained_rows(&mut conn, user.id)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn concurrent_refusals_about_no_user_share_one_unbroken_chain() {
    let (app, user) = spawn_app_with_user().await;
    let mut conn = app.db().await;
    let before = user_svc::audit::chained_rows(&mut conn, 0).await.unwrap();
    let replies = join_all((0..12).map(|n| {
        let body = json!({
            "sngine_email": format!("refused-{n}@example.com"),
            "sngine_phone": format!("+1555010{n:04}"),
            "user_type": "voter",
            "subscription_status": "free",
        });
        app.post("/api/users", &user.token, body)
    }))
    .await;
    for reply in replies {
        reply.problem(403);
    }
    let chain = user_svc::audit::verify_chain(&mut conn, 0).await.unwrap();
    assert!(chain.valid, "{chain:?}");
    assert_eq!(chain.checked, before + 12);
}

#[tokio::test]
async fn concurrent_writes_with_the_same_if_match_let_exactly_one_through() {
    let (app, user) = spawn_app_with_user().await;
    let path = format!("/api/users/{}/profile", user.id);
    let replies = join_all((0..5).map(|n| {
        let path = path.clone();
        let app = &app;
        let token = user.token.clone();
        async move {
            app.call(Method::PUT, &path)
                .token(&token)
                .if_match(2)
                .json(&json!({"city": format!("City {n}")}))
                .send()
                .await
        }
    }))
    .await;
    let statuses: Vec<u16> = replies.iter().map(|reply| reply.status).collect();
    assert_eq!(
        statuses.iter().filter(|status| **status == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|status| **status == 412).count(),
        4,
        "{statuses:?}"
    );
    let stored = app.user_row(user.id).await;
    assert_eq!(stored["row_version"], json!(3));
    let winner = replies.iter().find(|reply| reply.status == 200).unwrap();
    assert_eq!(stored["city"], winner.json["city"]);
    assert_ne!(stored["city"], Value::Null);
}
