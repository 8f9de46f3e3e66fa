//! Bad input: every bad field named in one `application/problem+json` answer; unknown fields,
//! wrong types, bad values, the refused `user_age`, page bounds, oversized and non-JSON bodies.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{SERVICE_TOKEN, spawn_app, spawn_app_with_user};

#[tokio::test]
async fn unknown_fields_and_wrong_types_are_each_named() {
    let app = spawn_app().await;
    let reply = app
        .post_user(json!({
            "sngine_email": 42,
            "sngine_phone": ["+14155550100"],
            "user_type": "alien",
            "subscription_status": true,
            "notifications_enabled": "yes",
            "nickname": "x",
            "admin_role": "manager"
        }))
        .await;
    reply.assert_invalid(&[
        "sngine_email",
        "sngine_phone",
        "user_type",
        "subscription_status",
        "notifications_enabled",
        "nickname",
        "admin_role",
    ]);
    assert_eq!(reply.problem_type(), "validation");
    assert!(reply.error_message("sngine_email").contains("string"));
    assert!(reply.error_message("nickname").contains("unknown"));
    assert!(reply.json["request_id"].is_string() || reply.header("x-request-id").is_some());

    let missing = app.post_user(json!({})).await;
    missing.assert_invalid(&["sngine_email", "sngine_phone"]);
    let not_object = app.post_user(json!(["a"])).await;
    not_object.assert_invalid(&["body"]);
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn bad_contacts_and_profile_values_are_each_named() {
    let app = spawn_app().await;
    let reply = app
        .post_user(json!({"sngine_email": "not-an-email", "sngine_phone": "4155550100"}))
        .await;
    reply.assert_invalid(&["sngine_email", "sngine_phone"]);
    for (email, phone) in [
        ("a@b", "+1"),
        ("a b@example.com", "+1-415-CALL-NOW"),
        ("@example.com", "+0123456789"),
        ("x@example.c0m", "+1234567890123456"),
    ] {
        app.post_user(json!({"sngine_email": email, "sngine_phone": phone}))
            .await
            .assert_invalid(&["sngine_email", "sngine_phone"]);
    }

    let user = app.active_user().await;
    let reply = app
        .put_profile(
            user.id,
            &user.token,
            json!({
                "country": "XX",
                "timezone": "Mars/Olympus_Mons",
                "date_of_birth": "1990-02-30",
                "gender": "robot",
                "language": "english!",
                "avatar_url": "javascript:alert(1)",
                "first_name": "   ",
                "city": 12
            }),
        )
        .await;
    reply.assert_invalid(&[
        "country",
        "timezone",
        "date_of_birth",
        "gender",
        "language",
        "avatar_url",
        "first_name",
        "city",
    ]);
    for (field, value) in [
        ("date_of_birth", "31/01/1990"),
        ("date_of_birth", "2999-01-01"),
        ("user_birthdate", "1850-01-01"),
        ("country", "USA"),
        ("user_country", "U1"),
        ("timezone", "europe/berlin"),
    ] {
        app.put_profile(user.id, &user.token, json!({ field: value }))
            .await
            .assert_invalid(&[field]);
    }
    assert_eq!(app.user_row(user.id).await["row_version"], json!(2));
}

#[tokio::test]
async fn user_age_is_refused_because_age_is_derived() {
    let (app, user) = spawn_app_with_user().await;
    for body in [json!({"user_age": 25}), json!({"age": 30, "city": "Oslo"})] {
        let reply = app.put_profile(user.id, &user.token, body.clone()).await;
        let field = if body.get("user_age").is_some() {
            "user_age"
        } else {
            "age"
        };
        reply.assert_invalid(&[field]);
        assert!(reply.error_message(field).contains("derived"));
    }
    let create = app
        .post_user(json!({"sngine_email": "aged@example.com", "sngine_phone": "+14155550200", "user_age": 40}))
        .await;
    create.assert_invalid(&["user_age"]);
}

#[tokio::test]
async fn page_and_limit_out_of_range_are_named() {
    let app = spawn_app().await;
    let token = app.manager.token.clone();
    for (query, fields) in [
        ("page=0", vec!["page"]),
        ("page=-1", vec!["page"]),
        ("page=abc", vec!["page"]),
        ("limit=0", vec!["limit"]),
        ("limit=101", vec!["limit"]),
        ("limit=1.5", vec!["limit"]),
        ("page=0&limit=500", vec!["page", "limit"]),
        (
            "status=gone&user_type=x&admin_role=root&subscription_status=vip&country=XX&email=nope",
            vec![
                "status",
                "user_type",
                "admin_role",
                "subscription_status",
                "country",
                "email",
            ],
        ),
        ("colour=red", vec!["colour"]),
        ("page=1&page=2", vec!["page"]),
    ] {
        let reply = app.get(&format!("/api/users?{query}"), &token).await;
        reply.assert_invalid(&fields);
    }
    let max = app.get("/api/users?limit=100&page=1", &token).await;
    assert_eq!(max.expect(200)["limit"], json!(100));
}

/// `PUT path` with a chunked JSON body (no Content-Length) of up to 80 KiB of spaces, written
/// on a raw connection to user-svc at `address`; returns the raw HTTP answer.
async fn put_chunked(address: &str, path: &str, token: &str) -> String {
    let address = address.trim_start_matches("http://").to_owned();
    let request_path = path.to_owned();
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        let head = format!(
            "PUT {request_path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        let chunk = vec![b' '; 1024];
        for _ in 0..80 {
            if stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).is_err()
                || stream.write_all(&chunk).is_err()
                || stream.write_all(b"\r\n").is_err()
            {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .expect("the upload ends")
}

#[tokio::test]
async fn oversized_non_json_and_malformed_bodies_are_refused() {
    let (app, user) = spawn_app_with_user().await;
    let path = format!("/api/users/{}/profile", user.id);

    let huge = json!({"bio": "x".repeat(70 * 1024)});
    let too_large = app.put(&path, &user.token, huge).await;
    too_large.problem(413);
    assert_eq!(too_large.error_fields(), vec!["body"]);

    // Without a Content-Length (chunked), the limit still holds.
    let answer = put_chunked(&app.address, &path, &user.token).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer
            .to_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );

    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let reply = app
            .call(Method::PUT, &path)
            .token(&user.token)
            .body(content_type, r#"{"city": "Oslo"}"#)
            .send()
            .await;
        reply.problem(415);
        assert_eq!(reply.error_fields(), vec!["Content-Type"]);
    }
    let no_type = app
        .call(Method::POST, "/api/users")
        .token(SERVICE_TOKEN)
        .header("Content-Length", "0")
        .send()
        .await;
    no_type.problem(415);

    let malformed = app
        .call(Method::PUT, &path)
        .token(&user.token)
        .body("application/json", r#"{"city": "Oslo""#)
        .send()
        .await;
    malformed.problem(400);
    assert_eq!(malformed.error_fields(), vec!["body"]);
    let empty = app
        .call(Method::PUT, &path)
        .token(&user.token)
        .body("application/json", "")
        .send()
        .await;
    empty.problem(400);

    // A JSON media type with parameters, or +json, is JSON.
    for (content_type, body) in [
        ("application/json; charset=utf-8", r#"{"city": "Oslo"}"#),
        ("application/merge-patch+json", r#"{"city": "Bergen"}"#),
    ] {
        app.call(Method::PUT, &path)
            .token(&user.token)
            .body(content_type, body)
            .send()
            .await
            .expect(200);
    }
    assert_eq!(app.user_row(user.id).await["city"], json!("Bergen"));
}

#[tokio::test]
async fn every_error_carries_the_request_id() {
    let app = spawn_app().await;
    let reply = app
        .call(Method::GET, "/api/users?page=0")
        .token(&app.manager.token)
        .header("X-Request-Id", "test-request-42")
        .send()
        .await;
    reply.problem(422);
    assert_eq!(reply.header("x-request-id"), Some("test-request-42".into()));
    let ok = app.get_as_manager("/api/users/me").await;
    assert!(ok.header("x-request-id").is_some_and(|id| !id.is_empty()));
}
