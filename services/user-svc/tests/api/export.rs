//! The export of everything held about a user (`GET /api/users/:id/export`): one JSON document
//! served as an attachment, for the user or a manager, audited; its audit trail complete, in
//! order and checked, however long; a failure once it started breaks the transfer.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{SERVICE_TOKEN, TestApp, TestUser, ids, spawn_app, spawn_app_with_user};
use crate::sessions::Recorded;

/// Appends `rows` correctly chained audit rows to a user's chain, as user-svc would have.
async fn append_trail(app: &TestApp, user_id: i32, rows: u32) {
    let sql = include_str!("../../../../scripts/lib/long_audit_trail.sql")
        .replace(":user_id", &user_id.to_string())
        .replace(":rows", &rows.to_string());
    app.exec(&sql).await;
}

/// The export of `id` as `token` sees it.
async fn export(app: &TestApp, id: &str, token: &str) -> crate::helpers::Reply {
    app.get(&format!("/api/users/{id}/export"), token).await
}

/// The ids of every audit row about a user, oldest first, as stored.
async fn stored_trail_ids(app: &TestApp, user_id: i32) -> Vec<i64> {
    app.audit_rows(user_id)
        .await
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn an_export_is_one_attachment_with_profile_devices_sessions_and_trail_but_no_secret() {
    let (app, user) = spawn_app_with_user().await;
    let recorded = Recorded::with_sessions(&app, user.id, &[(true, 2), (false, 30)]).await;

    let reply = export(&app, "me", &user.token).await;
    let document = reply.expect(200);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        reply.header("content-disposition").as_deref(),
        Some(format!("attachment; filename=\"user-{}-export.json\"", user.id).as_str())
    );
    recorded.assert_hidden_in(&reply.text);
    assert_eq!(document["user_id"], json!(user.id));
    assert_eq!(document["profile"], app.read_user(user.id).await);
    assert_eq!(document["profile"]["signature"]["valid"], json!(true));
    assert_eq!(document["profile"]["sngine_email"], json!(user.email));
    assert_eq!(document["devices"][0]["id"], json!(recorded.device));
    assert_eq!(document["sessions"].as_array().unwrap().len(), 2);
    let biometric = document["biometrics"][0].as_object().unwrap();
    let mut fields: Vec<&str> = biometric.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["biometric_type", "created_at", "device_id", "is_active"]
    );

    let trail = stored_trail_ids(&app, user.id).await;
    assert_eq!(ids(&document["audit_trail"]), trail);
    let last = document["audit_trail"].as_array().unwrap().last().unwrap();
    assert_eq!(
        last["action"],
        json!("user.export"),
        "the export records itself first"
    );
    let chain = &document["audit_chain"];
    assert_eq!(chain["valid"], json!(true), "{chain}");
    assert_eq!(chain["rows"], json!(trail.len()));
    assert_eq!(chain["chain"]["checked"], json!(trail.len()));
}

#[tokio::test]
async fn an_export_is_audited_naming_the_actor_and_no_personal_value() {
    let (app, user) = spawn_app_with_user().await;
    export(&app, &user.id.to_string(), &app.manager.token)
        .await
        .expect(200);

    let rows = app.audit_rows(user.id).await;
    let row = rows.last().unwrap();
    assert_eq!(row["action"], json!("user.export"));
    assert_eq!(row["success"], json!(true));
    assert_eq!(row["actor_id"], json!(app.manager.id));
    assert_eq!(
        row["details"]["actor"],
        json!(format!("user:{} (manager)", app.manager.id))
    );
    let text = row.to_string();
    assert!(
        !text.contains(&user.email) && !text.contains(&user.phone),
        "{text}"
    );
}

#[tokio::test]
async fn only_the_user_and_managers_may_export() {
    let (app, user) = spawn_app_with_user().await;
    let path = user.id.to_string();
    let others: [(TestUser, &str); 3] = [
        (app.user_with_role("moderator").await, "moderator"),
        (app.user_with_role("admin").await, "admin"),
        (app.active_user().await, "another user"),
    ];
    for (other, who) in &others {
        let reply = export(&app, &path, &other.token).await;
        assert_eq!(reply.status, 403, "{who}: {}", reply.text);
        reply.problem(403);
    }
    export(&app, &path, SERVICE_TOKEN).await.problem(403);
    export(&app, "me", SERVICE_TOKEN).await.problem(403);
    export(&app, &path, &app.manager.token).await.expect(200);
    export(&app, &path, &user.token).await.expect(200);

    let refused = app.audit_rows_of(user.id, "user.export", false).await.len();
    assert_eq!(refused, 4, "each refusal about this user is audited");
}

#[tokio::test]
async fn an_unknown_user_is_404_and_a_bad_id_422_naming_it() {
    let app = spawn_app().await;
    export(&app, "999999", &app.manager.token)
        .await
        .problem(404);
    for bad in ["0", "-3", "abc", "1.5"] {
        export(&app, bad, &app.manager.token)
            .await
            .assert_invalid(&["id"]);
    }
}

#[tokio::test]
async fn a_long_trail_is_exported_whole_in_order_with_its_chain_intact() {
    let (app, user) = spawn_app_with_user().await;
    append_trail(&app, user.id, 5_000).await;

    let reply = export(&app, "me", &user.token).await;
    let document = reply.expect(200);
    let stored = stored_trail_ids(&app, user.id).await;
    assert!(stored.len() > 5_000);
    assert_eq!(ids(&document["audit_trail"]), stored);
    let chain = &document["audit_chain"];
    assert_eq!(
        (&chain["valid"], &chain["rows"], &chain["chain"]["checked"]),
        (&json!(true), &json!(stored.len()), &json!(stored.len())),
        "{chain}"
    );
    assert_eq!(document["audit_trail"][2_000]["action"], json!("trail.row"));
}

#[tokio::test]
async fn an_edited_row_in_a_long_trail_is_located_by_the_export() {
    let (app, user) = spawn_app_with_user().await;
    append_trail(&app, user.id, 5_000).await;
    let edited = app
        .count(&format!(
            "SELECT id FROM vottery_audit_logs WHERE user_id = {} AND request_id = 'trail-3456'",
            user.id
        ))
        .await;
    app.exec(&format!(
        "UPDATE vottery_audit_logs SET details = '{{\"n\": 0}}' WHERE id = {edited}"
    ))
    .await;
    app.exec(&format!(
        "INSERT INTO vottery_audit_logs (user_id, action) VALUES ({}, 'legacy.login')",
        user.id
    ))
    .await;

    let reply = export(&app, "me", &user.token).await;
    let document = reply.expect(200);
    assert_eq!(
        ids(&document["audit_trail"]),
        stored_trail_ids(&app, user.id).await
    );
    let chain = &document["audit_chain"];
    assert_eq!(chain["valid"], json!(false));
    assert_eq!(
        chain["unchained"],
        json!(1),
        "a row without chain columns is counted apart"
    );
    let broken = &chain["chain"]["broken_at"];
    assert_eq!(
        (&broken["audit_id"], &broken["kind"]),
        (&json!(edited), &json!("edited")),
        "{chain}"
    );
}

#[tokio::test]
async fn a_failure_after_the_export_started_breaks_the_transfer() {
    let (app, user) = spawn_app_with_user().await;
    append_trail(&app, user.id, 2_500).await;
    // A time PostgreSQL stores but the service cannot read: the third page fails.
    app.exec(&format!(
        "INSERT INTO vottery_audit_logs (user_id, action, created_at) \
         VALUES ({}, 'legacy.login', 'infinity')",
        user.id
    ))
    .await;
    append_trail(&app, user.id, 10).await;

    let response = app
        .http
        .request(Method::GET, format!("{}/api/users/me/export", app.address))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().await.is_err(),
        "the body must end as a broken transfer, not as a short document"
    );
    app.get("/api/users/me", &user.token).await.expect(200);
}
