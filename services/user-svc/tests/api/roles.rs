//! Roles: read from the database on every request, and the rules of who may grant what to whom
//! (`PUT /api/users/:id/role`, `GET /api/roles`).

use serde_json::{Value, json};

use crate::helpers::{SERVICE_TOKEN, TestApp, spawn_app, spawn_app_with_user};

async fn stored_role(app: &TestApp, id: i32) -> Value {
    app.user_row(id).await["admin_role"].clone()
}

/// Asks for each role change `(target, token, body)` in turn; every one is refused (403).
async fn all_refused(app: &TestApp, changes: &[(i32, &str, Value)]) {
    for (id, token, body) in changes {
        app.put_role(*id, token, body.clone()).await.problem(403);
    }
}

#[tokio::test]
async fn a_demotion_applies_to_the_very_next_request() {
    let app = spawn_app().await;
    let admin = app.user_with_role("admin").await;
    let target = app.create_user().await;
    let token = admin.token.clone();

    // As an admin: may create users and read others.
    let by_admin =
        json!({"sngine_email": "made-by-admin@example.com", "sngine_phone": "+14155557001"});
    app.post("/api/users", &token, by_admin).await.expect(201);
    let full = app.get(&format!("/api/users/{}", target.id), &token).await;
    assert_eq!(full.expect(200)["sngine_email"], json!(target.email));

    // Demoted to analyst: the same token, the very next request.
    app.set_role(admin.id, Some("analyst")).await;
    let by_analyst =
        json!({"sngine_email": "made-by-analyst@example.com", "sngine_phone": "+14155557002"});
    app.post("/api/users", &token, by_analyst)
        .await
        .problem(403);
    let masked = app.get(&format!("/api/users/{}", target.id), &token).await;
    let masked = masked.expect(200);
    assert_eq!(masked["contacts_masked"], json!(true));
    assert_ne!(masked["sngine_email"], json!(target.email));

    // Role revoked: not even masked reads of others.
    app.set_role(admin.id, None).await;
    app.get(&format!("/api/users/{}", target.id), &token)
        .await
        .problem(403);
    app.get("/api/users", &token).await.problem(403);

    // Promoted to auditor: reads audit trails at once.
    let trail = format!("/api/users/{}/audit", target.id);
    app.get(&trail, &token).await.problem(403);
    app.set_role(admin.id, Some("auditor")).await;
    app.get(&trail, &token).await.expect(200);
}

#[tokio::test]
async fn roles_in_the_token_are_ignored() {
    let (app, user) = spawn_app_with_user().await;
    let mut claims = app.claims_for(user.id);
    claims["admin_role"] = json!("manager");
    claims["role"] = json!("manager");
    claims["roles"] = json!(["manager"]);
    let token = app.jwt.sign(&claims);
    app.get("/api/users", &token).await.problem(403);
    app.delete(&format!("/api/users/{}", app.manager.id), &token)
        .await
        .problem(403);
}

#[tokio::test]
async fn admins_grant_only_roles_below_their_own_to_users_below_them() {
    let app = spawn_app().await;
    let admin = app.user_with_role("admin").await;
    let other_admin = app.user_with_role("admin").await;
    let user = app.active_user().await;

    // Below their own rank: allowed, with type and subscription.
    let granted = app.put_role(user.id, &admin.token, json!({"user_type": "individual_creator", "admin_role": "moderator", "subscription_status": "subscribed"}))
    .await;
    let view = granted.expect(200);
    assert_eq!(view["admin_role"], json!("moderator"));
    assert_eq!(view["user_type"], json!("individual_creator"));
    assert_eq!(view["subscription_status"], json!("subscribed"));
    assert_eq!(view["signature"]["valid"], json!(true));

    // At or above their own rank: refused.
    for role in ["admin", "manager"] {
        let refused = app
            .put_role(user.id, &admin.token, json!({"admin_role": role}))
            .await;
        refused.problem(403);
    }
    assert_eq!(stored_role(&app, user.id).await, json!("moderator"));

    // Acting on an equal or a higher rank: refused, even to grant something small.
    all_refused(
        &app,
        &[
            (
                other_admin.id,
                &admin.token,
                json!({"admin_role": "analyst"}),
            ),
            (other_admin.id, &admin.token, json!({"user_type": "voter"})),
            (app.manager.id, &admin.token, json!({"admin_role": null})),
        ],
    )
    .await;
    assert_eq!(stored_role(&app, other_admin.id).await, json!("admin"));
    assert_eq!(stored_role(&app, app.manager.id).await, json!("manager"));

    // Revoking a lower role.
    let revoked = app
        .put_role(user.id, &admin.token, json!({"admin_role": null}))
        .await;
    assert_eq!(revoked.expect(200)["admin_role"], Value::Null);

    // Below admin, nobody changes roles; neither does a service.
    let moderator = app.user_with_role("moderator").await;
    all_refused(
        &app,
        &[
            (user.id, &moderator.token, json!({"admin_role": "analyst"})),
            (user.id, SERVICE_TOKEN, json!({"admin_role": "analyst"})),
        ],
    )
    .await;
    assert_eq!(stored_role(&app, user.id).await, Value::Null);
}

#[tokio::test]
async fn nobody_changes_their_own_role() {
    let app = spawn_app().await;
    let admin = app.user_with_role("admin").await;
    let manager = &app.manager;
    all_refused(
        &app,
        &[
            (admin.id, &admin.token, json!({"admin_role": "moderator"})),
            (
                admin.id,
                &admin.token,
                json!({"subscription_status": "subscribed"}),
            ),
            (
                manager.id,
                &manager.token,
                json!({"user_type": "organization_creator"}),
            ),
        ],
    )
    .await;
    assert_eq!(stored_role(&app, admin.id).await, json!("admin"));
}

#[tokio::test]
async fn a_manager_may_grant_manager_and_the_last_manager_stays() {
    let app = spawn_app().await;
    // The only manager cannot be demoted (by themselves, the only one who could).
    let to_admin = json!({"admin_role": "admin"});
    let alone = app
        .put_role(app.manager.id, &app.manager.token, to_admin.clone())
        .await;
    alone.problem(403);
    assert_eq!(stored_role(&app, app.manager.id).await, json!("manager"));

    let second = app.user_with_role("manager").await;
    assert_eq!(stored_role(&app, second.id).await, json!("manager"));
    // A manager may act on another manager.
    let demoted = app.put_role(app.manager.id, &second.token, to_admin).await;
    assert_eq!(demoted.expect(200)["admin_role"], json!("admin"));
    // Now `second` is the last manager: the demoted one cannot act on them any more.
    all_refused(
        &app,
        &[
            (second.id, &app.manager.token, json!({"admin_role": null})),
            (second.id, &second.token, json!({"admin_role": null})),
        ],
    )
    .await;
    assert_eq!(stored_role(&app, second.id).await, json!("manager"));
}

#[tokio::test]
async fn two_managers_demoting_each_other_at_once_leave_one_manager() {
    let app = spawn_app().await;
    let second = app.user_with_role("manager").await;
    for _ in 0..3 {
        let demote = json!({"admin_role": "admin"});
        let first_demotes = app.put_role(second.id, &app.manager.token, demote.clone());
        let second_demotes = app.put_role(app.manager.id, &second.token, demote);
        let (one, two) = tokio::join!(first_demotes, second_demotes);
        let managers = app
            .count("SELECT count(*) FROM vottery_users WHERE admin_role = 'manager'")
            .await;
        assert_eq!(
            managers, 1,
            "exactly one demotion may land: {} / {}",
            one.text, two.text
        );
        let statuses = [one.status, two.status];
        assert!(statuses.contains(&200), "{statuses:?}");
        // Restore two managers for the next round.
        let (manager, demoted) = if one.status == 200 {
            (&app.manager.token, second.id)
        } else {
            (&second.token, app.manager.id)
        };
        app.put_role(demoted, manager, json!({"admin_role": "manager"}))
            .await
            .expect(200);
    }
}

#[tokio::test]
async fn role_changes_are_validated() {
    let (app, user) = spawn_app_with_user().await;
    let reply = app.put_role(user.id, &app.manager.token, json!({"admin_role": "root", "user_type": "alien", "subscription_status": null, "subscription_plan": "has spaces", "subscription_expires_at": "tomorrow", "colour": "red"}))
    .await;
    reply.assert_invalid(&[
        "admin_role",
        "user_type",
        "subscription_status",
        "subscription_plan",
        "subscription_expires_at",
        "colour",
    ]);
    app.put_role(user.id, &app.manager.token, json!({}))
        .await
        .assert_invalid(&["body"]);

    let plan = app.put_role(user.id, &app.manager.token, json!({"subscription_status": "subscribed", "subscription_plan": "pro-annual", "subscription_expires_at": "2030-01-31T00:00:00Z"}))
    .await;
    let view = plan.expect(200);
    assert_eq!(view["subscription_plan"], json!("pro-annual"));
    assert_eq!(
        view["subscription_expires_at"],
        json!("2030-01-31T00:00:00Z")
    );
    let read = app.read_user(user.id).await;
    assert_eq!(read["subscription_plan"], json!("pro-annual"));
    assert_eq!(read["signature"]["valid"], json!(true));
}

#[tokio::test]
async fn the_roles_reference_lists_the_hierarchy_highest_first() {
    let (app, user) = spawn_app_with_user().await;
    let roles = app.get("/api/roles", &user.token).await;
    let body = roles.expect(200);
    let hierarchy: Vec<(String, u64)> = body["hierarchy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|role| {
            (
                role["role"].as_str().unwrap().to_owned(),
                role["rank"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        hierarchy,
        vec![
            ("manager".into(), 7),
            ("admin".into(), 6),
            ("moderator".into(), 5),
            ("auditor".into(), 4),
            ("editor".into(), 3),
            ("advertiser".into(), 2),
            ("analyst".into(), 1),
        ]
    );
    assert_eq!(
        body["user_types"],
        json!(["voter", "individual_creator", "organization_creator"])
    );
    assert_eq!(
        body["statuses"],
        json!(["pending", "verified", "active", "suspended"])
    );
}
