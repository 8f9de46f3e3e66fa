//! `PUT /api/users/:id/status`: pending → verified (auth-service) → active, an admin activating a
//! pending user directly, active ⇄ suspended, nothing back to pending.

use serde_json::{Value, json};

use crate::helpers::{Reply, SERVICE_TOKEN, TestApp, spawn_app};

async fn move_to(app: &TestApp, token: &str, id: i32, status: &str) -> Reply {
    app.put_status(id, token, json!({ "status": status })).await
}

async fn stored_status(app: &TestApp, id: i32) -> Value {
    app.user_row(id).await["status"].clone()
}

/// Asserts a 409 invalid transition listing exactly `allowed`.
fn assert_refused_move(reply: &Reply, from: &str, allowed: &[&str]) {
    let problem = reply.problem(409);
    assert_eq!(reply.problem_type(), "invalid-transition", "{problem}");
    assert_eq!(problem["current_status"], json!(from));
    assert_eq!(problem["allowed_transitions"], json!(allowed), "{problem}");
    assert_eq!(reply.error_fields(), vec!["status"]);
}

#[tokio::test]
async fn the_auth_service_verifies_then_activates() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let verified = move_to(&app, SERVICE_TOKEN, user.id, "verified").await;
    assert_eq!(verified.expect(200)["status"], json!("verified"));
    let active = move_to(&app, SERVICE_TOKEN, user.id, "active").await;
    assert_eq!(active.expect(200)["status"], json!("active"));
    assert_eq!(active.json["signature"]["valid"], json!(true));
    // The service does nothing else.
    assert_refused_move(
        &move_to(&app, SERVICE_TOKEN, user.id, "suspended").await,
        "active",
        &[],
    );
    let read = app.read_user(user.id).await;
    assert_eq!(read["status"], json!("active"));
    assert_eq!(read["version"], json!(3));

    let trail = app.audit_rows_of(user.id, "user.update_status", true).await;
    let moves: Vec<(Value, Value)> = trail
        .iter()
        .map(|row| (row["details"]["from"].clone(), row["details"]["to"].clone()))
        .collect();
    assert_eq!(
        moves,
        vec![
            (json!("pending"), json!("verified")),
            (json!("verified"), json!("active"))
        ]
    );
}

#[tokio::test]
async fn an_admin_may_activate_a_pending_user_and_suspend_and_reinstate() {
    let app = spawn_app().await;
    let admin = app.user_with_role("admin").await;
    let user = app.create_user().await;
    assert_eq!(
        move_to(&app, &admin.token, user.id, "active")
            .await
            .expect(200)["status"],
        json!("active")
    );
    assert_eq!(
        move_to(&app, &admin.token, user.id, "suspended")
            .await
            .expect(200)["status"],
        json!("suspended")
    );
    assert_eq!(
        move_to(&app, &admin.token, user.id, "active")
            .await
            .expect(200)["status"],
        json!("active")
    );
    let moderator = app.user_with_role("moderator").await;
    move_to(&app, &moderator.token, user.id, "suspended")
        .await
        .expect(200);
    assert_eq!(stored_status(&app, user.id).await, json!("suspended"));
}

#[tokio::test]
async fn nothing_returns_to_pending_and_refusals_list_the_allowed_moves() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let token = app.manager.token.clone();
    assert_refused_move(
        &move_to(&app, &token, user.id, "pending").await,
        "pending",
        &["active", "suspended"],
    );
    assert_refused_move(
        &move_to(&app, &token, user.id, "verified").await,
        "pending",
        &["active", "suspended"],
    );
    assert_refused_move(
        &move_to(&app, SERVICE_TOKEN, user.id, "active").await,
        "pending",
        &["verified"],
    );

    move_to(&app, &token, user.id, "active").await.expect(200);
    assert_refused_move(
        &move_to(&app, &token, user.id, "pending").await,
        "active",
        &["suspended"],
    );
    assert_refused_move(
        &move_to(&app, &token, user.id, "active").await,
        "active",
        &["suspended"],
    );
    move_to(&app, &token, user.id, "suspended")
        .await
        .expect(200);
    assert_refused_move(
        &move_to(&app, &token, user.id, "pending").await,
        "suspended",
        &["active"],
    );
    assert_refused_move(
        &move_to(&app, SERVICE_TOKEN, user.id, "verified").await,
        "suspended",
        &[],
    );
    assert_eq!(stored_status(&app, user.id).await, json!("suspended"));

    // Each refused move is in the trail.
    let refused = app
        .audit_rows_of(user.id, "user.update_status", false)
        .await;
    assert_eq!(refused.len(), 7);
}

#[tokio::test]
async fn nobody_changes_their_own_status_or_a_higher_ranks() {
    let app = spawn_app().await;
    let moderator = app.user_with_role("moderator").await;
    let admin = app.user_with_role("admin").await;
    let user = app.active_user().await;
    let auditor = app.user_with_role("auditor").await;

    // (who asks, whose status): their own, a rank not below theirs, or a role without the right.
    let refused = [
        (&moderator.token, moderator.id),
        (&user.token, user.id),
        (&app.manager.token, app.manager.id),
        (&moderator.token, admin.id),
        (&auditor.token, user.id),
        (&user.token, auditor.id),
    ];
    for (token, id) in refused {
        move_to(&app, token, id, "suspended").await.problem(403);
    }
    for id in [moderator.id, admin.id, user.id, auditor.id, app.manager.id] {
        assert_eq!(stored_status(&app, id).await, json!("active"));
    }
}

#[tokio::test]
async fn status_bodies_are_validated() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let path = format!("/api/users/{}/status", user.id);
    app.put(&path, &app.manager.token, json!({"status": "deleted"}))
        .await
        .assert_invalid(&["status"]);
    app.put(&path, &app.manager.token, json!({}))
        .await
        .assert_invalid(&["status"]);
    app.put(
        &path,
        &app.manager.token,
        json!({"status": "active", "reason": "x"}),
    )
    .await
    .assert_invalid(&["reason"]);
    app.put(&path, &app.manager.token, json!({"status": 1}))
        .await
        .assert_invalid(&["status"]);
    assert_eq!(stored_status(&app, user.id).await, json!("pending"));
}
