//! `PUT /api/users/:id/profile`: the Sngine aliases, the derived age, and who may edit whom.

use chrono::Datelike;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, spawn_app_with_user};

async fn edit(app: &TestApp, token: &str, id: i32, body: Value) -> Reply {
    app.put_profile(id, token, body).await
}

/// Each `(token, target, city, status)` in turn: the caller with that token sets the target's
/// city, and is answered `status`.
async fn city_edits(app: &TestApp, edits: &[(&String, i32, &str, u16)]) {
    for (token, target, city, status) in edits {
        edit(app, token, *target, json!({ "city": city }))
            .await
            .assert_answer(*status);
    }
}

/// Whole years from `born` (YYYY-MM-DD) to today.
fn age_of(born: &str) -> i64 {
    let born = chrono::NaiveDate::parse_from_str(born, "%Y-%m-%d").unwrap();
    let today = chrono::Utc::now().date_naive();
    let mut years = i64::from(today.year() - born.year());
    if (today.month(), today.day()) < (born.month(), born.day()) {
        years -= 1;
    }
    years
}

#[tokio::test]
async fn the_customers_profile_request_is_refused_for_user_age_alone() {
    let (app, user) = spawn_app_with_user().await;
    let refused = edit(
        &app,
        &user.token,
        user.id,
        json!({"user_age": 25, "user_gender": "male", "user_country": "US"}),
    )
    .await;
    refused.assert_invalid(&["user_age"]);
    let message = refused.error_message("user_age");
    assert!(
        message.contains("derived") && message.contains("date_of_birth"),
        "{message}"
    );
    // Nothing was changed by the refused request.
    let stored = app.user_row(user.id).await;
    assert_eq!(stored["gender"], Value::Null);
    assert_eq!(stored["row_version"], json!(2));

    let accepted = edit(
        &app,
        &user.token,
        user.id,
        json!({"user_gender": "male", "user_country": "US", "user_birthdate": "2000-02-29"}),
    )
    .await;
    let view = accepted.expect(200);
    assert_eq!(view["gender"], json!("male"));
    assert_eq!(view["country"], json!("US"));
    assert_eq!(view["date_of_birth"], json!("2000-02-29"));
    assert_eq!(view["age"], json!(age_of("2000-02-29")));
    assert_eq!(view["signature"]["valid"], json!(true));
    assert_eq!(accepted.header("etag"), Some("\"3\"".into()));

    let read = app.read_user(user.id).await;
    assert_eq!(read["age"], json!(age_of("2000-02-29")));
    assert_eq!(read["gender"], json!("male"));
    // The age is never stored.
    let stored = app.user_row(user.id).await;
    assert!(stored.get("age").is_none() && stored.get("user_age").is_none());
}

#[tokio::test]
async fn every_profile_field_can_be_set_and_cleared() {
    let (app, user) = spawn_app_with_user().await;
    let body = json!({
        "first_name": "Grace",
        "last_name": "Hopper",
        "date_of_birth": "1986-12-09",
        "gender": "female",
        "country": "us",
        "city": "Arlington",
        "timezone": "America/New_York",
        "bio": "Line one\nline two",
        "avatar_url": "https://cdn.example.com/g.png",
        "language": "en-US",
        "notifications_enabled": false
    });
    let set = edit(&app, &user.token, user.id, body).await;
    let view = set.expect(200).clone();
    for (field, expected) in [
        ("first_name", json!("Grace")),
        ("last_name", json!("Hopper")),
        ("date_of_birth", json!("1986-12-09")),
        ("age", json!(age_of("1986-12-09"))),
        ("gender", json!("female")),
        ("country", json!("US")),
        ("city", json!("Arlington")),
        ("timezone", json!("America/New_York")),
        ("bio", json!("Line one\nline two")),
        ("avatar_url", json!("https://cdn.example.com/g.png")),
        ("language", json!("en-US")),
        ("notifications_enabled", json!(false)),
    ] {
        assert_eq!(view[field], expected, "{field}");
    }
    assert_eq!(app.read_user(user.id).await["first_name"], json!("Grace"));

    let cleared = edit(
        &app,
        &user.token,
        user.id,
        json!({"first_name": null, "date_of_birth": null, "city": null, "bio": null}),
    )
    .await;
    let view = cleared.expect(200).clone();
    for field in ["first_name", "date_of_birth", "age", "city", "bio"] {
        assert_eq!(view[field], Value::Null, "{field}");
    }
    assert_eq!(view["last_name"], json!("Hopper"), "untouched fields stay");
    let read = app.read_user(user.id).await;
    assert_eq!(read["first_name"], Value::Null);
    assert_eq!(read["last_name"], json!("Hopper"));
    assert_eq!(read["signature"]["valid"], json!(true));
    let stored = app.user_row(user.id).await;
    assert_eq!(stored["first_name"], Value::Null);
    assert_eq!(stored["date_of_birth"], Value::Null);

    // Columns with a default cannot be cleared.
    edit(
        &app,
        &user.token,
        user.id,
        json!({"timezone": null, "language": null, "notifications_enabled": null}),
    )
    .await
    .assert_invalid(&["timezone", "language", "notifications_enabled"]);
    edit(&app, &user.token, user.id, json!({}))
        .await
        .assert_invalid(&["body"]);
    // An alias and its name together.
    edit(
        &app,
        &user.token,
        user.id,
        json!({"gender": "male", "user_gender": "male"}),
    )
    .await
    .assert_invalid(&["user_gender"]);
}

#[tokio::test]
async fn moderators_and_above_edit_lower_ranks_only() {
    let (app, user) = spawn_app_with_user().await;
    let moderator = app.user_with_role("moderator").await;
    let other_moderator = app.user_with_role("moderator").await;
    let auditor = app.user_with_role("auditor").await;
    let admin = app.user_with_role("admin").await;

    city_edits(
        &app,
        &[
            (&moderator.token, user.id, "Rome", 200),
            (&moderator.token, auditor.id, "Rome", 200),
        ],
    )
    .await;
    for target in [&other_moderator, &admin] {
        edit(&app, &moderator.token, target.id, json!({"city": "Rome"}))
            .await
            .problem(403);
        assert_eq!(app.user_row(target.id).await["city"], Value::Null);
    }
    city_edits(
        &app,
        &[
            (&moderator.token, app.manager.id, "Rome", 403),
            // Below moderator: only oneself.
            (&auditor.token, user.id, "Oslo", 403),
            (&auditor.token, auditor.id, "Oslo", 200),
        ],
    )
    .await;
    let plain = app.active_user().await;
    city_edits(
        &app,
        &[
            (&plain.token, user.id, "Oslo", 403),
            // Admins and managers edit moderators; a manager edits anyone.
            (&admin.token, moderator.id, "Lima", 200),
            (&app.manager.token, admin.id, "Lima", 200),
        ],
    )
    .await;
    assert_eq!(app.user_row(user.id).await["city"], json!("Rome"));
    edit(&app, &app.manager.token, 99_999, json!({"city": "Lima"}))
        .await
        .problem(404);
}
