//! User events: each change writes exactly its CloudEvent to the outbox in the same statement
//! or transaction, refused and failed writes write none, no event holds a personal value, and
//! the pull feed (`GET /api/events`) pages through them in commit order without skipping one.

use std::time::{Duration, Instant};

use diesel_async::SimpleAsyncConnection;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    SERVICE_TOKEN, TestApp, TestUser, spawn_app, spawn_app_with, spawn_app_with_user,
};
use crate::sessions::Recorded;

/// One page of the feed, read with `token`.
async fn feed_page(app: &TestApp, token: &str, query: &str) -> Value {
    app.get(&format!("/api/events{query}"), token)
        .await
        .expect(200)
        .clone()
}

/// Every event the feed serves now, paging with the service token.
pub(crate) async fn all_events(app: &TestApp) -> Vec<Value> {
    let mut events = Vec::new();
    let mut query = "?limit=1000".to_owned();
    loop {
        let page = feed_page(app, SERVICE_TOKEN, &query).await;
        let batch = page["events"].as_array().unwrap().clone();
        if batch.is_empty() {
            return events;
        }
        events.extend(batch);
        query = format!("?limit=1000&after={}", page["next"].as_str().unwrap());
    }
}

/// The events about `user_id`, once the feed serves at least `expected` of them (it serves an
/// event when every transaction running before it has ended, anywhere on the server).
pub(crate) async fn events_of(app: &TestApp, user_id: i32, expected: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events: Vec<Value> = all_events(app)
            .await
            .into_iter()
            .filter(|event| event["subject"] == json!(user_id.to_string()))
            .collect();
        if events.len() >= expected || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["type"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts the CloudEvents envelope of one event about `user_id`.
fn assert_envelope(event: &Value, user_id: i32) {
    assert_eq!(event["specversion"], "1.0", "{event}");
    assert_eq!(event["source"], "/vottery/user-svc");
    assert_eq!(event["datacontenttype"], "application/json");
    assert_eq!(event["subject"], user_id.to_string());
    assert_eq!(event["data"]["user_id"], user_id);
    let id = uuid::Uuid::parse_str(event["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7, "{event}");
    chrono::DateTime::parse_from_rfc3339(event["time"].as_str().unwrap()).unwrap();
}

/// A user created, then with a city set by themself, activated and made an editor: one event
/// of each of those kinds.
pub(crate) async fn created_edited_activated_and_promoted(app: &TestApp) -> TestUser {
    let user = app.created_edited_and_activated().await;
    app.set_role(user.id, Some("editor")).await;
    user
}

#[tokio::test]
async fn each_change_publishes_exactly_its_event_with_ids_field_names_and_transitions() {
    let app = spawn_app().await;
    let user = created_edited_activated_and_promoted(&app).await;
    let path = format!("/api/users/{}", user.id);
    Recorded::with_sessions(&app, user.id, &[(true, 1), (true, 2)]).await;
    app.call(Method::DELETE, &format!("{path}/sessions"))
        .token(&user.token)
        .send()
        .await
        .expect(200);
    Recorded::with_sessions(&app, user.id, &[(true, 1)]).await;
    app.set_status(user.id, "suspended").await;
    app.delete(&path, &app.manager.token).await;

    // The deletion ends no session (the suspension ended them): no `sessions_revoked` with it.
    let events = events_of(&app, user.id, 8).await;
    let expected: Vec<String> = [
        "created",
        "profile_changed",
        "status_changed",
        "role_changed",
        "sessions_revoked",
        "status_changed",
        "sessions_revoked",
        "deleted",
    ]
    .iter()
    .map(|suffix| format!("dev.vottery.user.{suffix}"))
    .collect();
    assert_eq!(types(&events), expected);
    for event in &events {
        assert_envelope(event, user.id);
    }
    let data: Vec<&Value> = events.iter().map(|event| &event["data"]).collect();
    assert_eq!(data[0]["actor"], json!({"label": "service:auth_service"}));
    assert_eq!(data[0]["version"], 1);
    assert_eq!(data[1]["changed_fields"], json!(["city"]));
    assert_eq!(
        data[1]["actor"],
        json!({"id": user.id, "label": format!("user:{}", user.id)})
    );
    assert_eq!(data[1]["version"], 2);
    assert_eq!(
        data[2]["transition"],
        json!({"from": "pending", "to": "active"})
    );
    assert_eq!(data[3]["transition"], json!({"from": null, "to": "editor"}));
    assert_eq!(data[4]["sessions_ended"], 2);
    assert_eq!(
        data[5]["transition"],
        json!({"from": "active", "to": "suspended"})
    );
    assert_eq!(data[6]["sessions_ended"], 1);
    assert!(data[7].get("version").is_none());
    let audit_requests: Vec<Value> = app
        .audit_rows(user.id)
        .await
        .iter()
        .map(|row| row["request_id"].clone())
        .collect();
    for event in &data {
        assert!(audit_requests.contains(&event["request_id"]), "{event}");
    }
}

#[tokio::test]
async fn a_deployment_that_records_no_events_changes_users_and_writes_none() {
    let app = spawn_app_with(|settings| settings.events.recorded = false).await;
    let outbox = || app.count("SELECT count(*) FROM vottery_user_events");
    let before = outbox().await;
    let user = created_edited_activated_and_promoted(&app).await;
    Recorded::with_sessions(&app, user.id, &[(true, 1)]).await;
    app.set_status(user.id, "suspended").await;
    app.delete(&format!("/api/users/{}", user.id), &app.manager.token)
        .await;

    assert_eq!(outbox().await, before);
    assert_eq!(app.audit_rows(user.id).await.len(), 6);
    // The feed still answers, with what was written before.
    assert_eq!(all_events(&app).await.len() as i64, before);
}

#[tokio::test]
async fn refused_and_failed_writes_publish_nothing() {
    let (app, user) = spawn_app_with_user().await;
    let other = app.active_user().await;
    let before = events_of(&app, user.id, 2).await.len();

    // Refused: a plain user edits someone else.
    app.put_profile(user.id, &other.token, json!({"city": "York"}))
        .await
        .problem(403);
    // Failed: a stale If-Match, and another user's email.
    app.call(Method::PUT, &format!("/api/users/{}/profile", user.id))
        .token(&app.manager.token)
        .if_match(1)
        .json(&json!({"city": "York"}))
        .send()
        .await
        .problem(412);
    app.post_user(json!({"sngine_email": user.email, "sngine_phone": "+14155550999"}))
        .await
        .problem(409);
    app.delete(&format!("/api/users/{}", user.id), &other.token)
        .await
        .problem(403);

    // A change after them: once its event is served, so would theirs be.
    app.set_role(user.id, Some("analyst")).await;
    let events = events_of(&app, user.id, before + 1).await;
    assert_eq!(events.len(), before + 1, "{events:#?}");
    assert_eq!(events[before]["type"], "dev.vottery.user.role_changed");
    let total = app.count("SELECT count(*) FROM vottery_user_events").await;
    // The manager, `user` (created, activated, role) and `other` (created, activated).
    assert_eq!(total, 1 + 3 + 2);
}

#[tokio::test]
async fn no_event_holds_a_personal_value_of_the_requests() {
    let app = spawn_app().await;
    let personal = json!({
        "first_name": "Zebulon", "last_name": "Quixotic", "date_of_birth": "1987-03-14",
        "bio": "Enjoys rare orchids", "city": "Kirkcudbright", "gender": "female"
    });
    let user = app.create_user_with(personal.clone()).await;
    app.put_profile(
        user.id,
        &user.token,
        json!({"first_name": "Ermintrude", "last_name": "Vandersloot", "bio": "Now tulips"}),
    )
    .await
    .expect(200);
    events_of(&app, user.id, 2).await;
    let raw = app
        .get("/api/events?limit=1000", SERVICE_TOKEN)
        .await
        .text
        .clone();
    let mut values: Vec<String> = personal
        .as_object()
        .unwrap()
        .values()
        .map(|value| value.as_str().unwrap().to_owned())
        .collect();
    values.extend(["Ermintrude", "Vandersloot", "Now tulips"].map(str::to_owned));
    values.extend([user.email.clone(), user.phone.clone()]);
    for value in values {
        assert!(!raw.contains(&value), "{value} is in an event: {raw}");
    }
    assert!(raw.contains("\"first_name\""), "field names are: {raw}");
}

#[tokio::test]
async fn the_feed_pages_in_commit_order_with_a_stable_cursor() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.create_user().await.id);
    }
    events_of(&app, *ids.last().unwrap(), 1).await;
    let everything = all_events(&app).await;

    let mut paged = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = feed_page(&app, SERVICE_TOKEN, &query).await;
        let again = feed_page(&app, SERVICE_TOKEN, &query).await;
        assert_eq!(page, again, "a cursor reads the same page twice");
        let batch = page["events"].as_array().unwrap();
        assert!(batch.len() <= 2);
        let next = page["next"].as_str().unwrap().to_owned();
        if batch.is_empty() {
            let after_end = feed_page(&app, SERVICE_TOKEN, &format!("?after={next}")).await;
            assert_eq!(after_end["next"], next.as_str(), "the end keeps its cursor");
            break;
        }
        paged.extend(batch.iter().cloned());
        query = format!("?limit=2&after={next}");
    }
    assert_eq!(paged, everything);
    let created: Vec<i32> = everything
        .iter()
        .skip(1)
        .map(|event| event["data"]["user_id"].as_i64().unwrap() as i32)
        .collect();
    assert_eq!(created, ids, "in the order the changes committed");
}

#[tokio::test]
async fn an_event_that_commits_late_is_served_before_later_ones_and_never_skipped() {
    let app = spawn_app().await;
    let first = app.create_user().await;
    let seen = events_of(&app, first.id, 1).await;
    let cursor = {
        let page = feed_page(&app, SERVICE_TOKEN, "?limit=1000").await;
        page["next"].as_str().unwrap().to_owned()
    };
    assert_eq!(seen.len(), 1);

    // A transaction that writes an event and stays open while another change commits.
    let mut slow = app.db().await;
    slow.batch_execute(
        "BEGIN; INSERT INTO vottery_user_events (id, type, subject, payload) VALUES \
         ('01890000-0000-7000-8000-000000000001', 'dev.vottery.user.profile_changed', 0, \
         '{\"specversion\":\"1.0\",\"id\":\"01890000-0000-7000-8000-000000000001\",\
         \"source\":\"/vottery/user-svc\",\"type\":\"dev.vottery.user.profile_changed\",\
         \"subject\":\"0\",\"time\":\"2026-12-06T00:00:00Z\",\"datacontenttype\":\"application/json\",\
         \"data\":{\"user_id\":0,\"actor\":{\"label\":\"service:test\"},\"request_id\":\"slow\",\
         \"changed_fields\":[]}}')",
    )
    .await
    .unwrap();
    let later = app.create_user().await;
    let while_open = feed_page(&app, SERVICE_TOKEN, &format!("?after={cursor}")).await;
    assert_eq!(
        while_open["events"],
        json!([]),
        "nothing after a transaction still running is served"
    );
    slow.batch_execute("COMMIT").await.unwrap();
    drop(slow);

    events_of(&app, later.id, 1).await;
    let after = feed_page(&app, SERVICE_TOKEN, &format!("?after={cursor}")).await;
    let subjects: Vec<&str> = after["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, vec!["0".to_owned(), later.id.to_string()]);
}

#[tokio::test]
async fn bad_cursors_and_limits_are_refused_naming_the_field() {
    let app = spawn_app().await;
    for (query, field) in [
        ("?after=not-a-cursor", "after"),
        ("?after=", "after"),
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=ten", "limit"),
        ("?page=2", "page"),
    ] {
        let reply = app.get(&format!("/api/events{query}"), SERVICE_TOKEN).await;
        reply.problem(422);
        assert_eq!(reply.error_fields(), vec![field], "{query}");
    }
    feed_page(&app, SERVICE_TOKEN, "?limit=1000").await;
    feed_page(&app, SERVICE_TOKEN, "?limit=1").await;
}

#[tokio::test]
async fn services_and_auditors_and_above_read_the_feed_and_nobody_else() {
    let app = spawn_app().await;
    for role in ["auditor", "moderator", "admin"] {
        let reader = app.user_with_role(role).await;
        feed_page(&app, &reader.token, "").await;
    }
    feed_page(&app, &app.manager.token, "").await;
    for role in [Some("editor"), Some("analyst"), None] {
        let user = match role {
            Some(role) => app.user_with_role(role).await,
            None => app.active_user().await,
        };
        app.get("/api/events", &user.token).await.problem(403);
    }
    app.get("/api/events", "not-a-token").await.problem(401);
}
