//! The audit trail: a row for every mutation and every refused attempt, written in the same
//! transaction as the change, without PII, hash-chained so that an edited or deleted row is
//! found and located by `GET /api/users/:id/audit`.

use serde_json::{Value, json};

use crate::helpers::{SERVICE_TOKEN, TestApp, TestUser, spawn_app, spawn_app_with_user};

/// A user with a trail of several rows: created, activated, profile edited twice, a refused
/// attempt, a role change.
async fn user_with_trail(app: &TestApp) -> TestUser {
    let user = app.active_user().await;
    let path = format!("/api/users/{}/profile", user.id);
    app.put(&path, &user.token, json!({"city": "Oslo"}))
        .await
        .expect(200);
    app.put(&path, &user.token, json!({"first_name": "Ola"}))
        .await
        .expect(200);
    app.put_status(user.id, &user.token, json!({"status": "suspended"}))
        .await
        .problem(403);
    app.set_role(user.id, Some("analyst")).await;
    user
}

async fn chain(app: &TestApp, id: i32) -> Value {
    let reply = app.get_as_manager(&format!("/api/users/{id}/audit")).await;
    reply.expect(200)["chain"].clone()
}

#[tokio::test]
async fn every_mutation_and_every_refusal_is_audited_without_pii() {
    let app = spawn_app().await;
    let user = app
        .create_user_with(json!({"first_name": "Zebedee", "user_birthdate": "1991-04-05"}))
        .await;
    let auditor = app.user_with_role("auditor").await;
    let steps: Vec<(&str, bool)> = vec![("user.create", true)];
    let mut steps = steps;

    app.set_status(user.id, "active").await;
    steps.push(("user.update_status", true));
    app.put_profile(
        user.id,
        &user.token,
        json!({"last_name": "Quixworth", "city": "Lyon"}),
    )
    .await
    .expect(200);
    steps.push(("user.update_profile", true));
    // Refused: forbidden, invalid, conflicting, not allowed.
    app.put_profile(user.id, &auditor.token, json!({"city": "Nice"}))
        .await
        .problem(403);
    steps.push(("user.update_profile", false));
    app.put_profile(
        user.id,
        &user.token,
        json!({"country": "XX", "first_name": "Secretname"}),
    )
    .await
    .problem(422);
    steps.push(("user.update_profile", false));
    app.put_status(user.id, &app.manager.token, json!({"status": "pending"}))
        .await
        .problem(409);
    steps.push(("user.update_status", false));
    app.put_role(user.id, &auditor.token, json!({"admin_role": "auditor"}))
        .await
        .problem(403);
    steps.push(("user.update_role", false));
    app.delete(&format!("/api/users/{}", user.id), &auditor.token)
        .await
        .problem(403);
    steps.push(("user.delete", false));
    app.set_role(user.id, Some("editor")).await;
    steps.push(("user.update_role", true));

    let rows = app.audit_rows(user.id).await;
    let recorded: Vec<(&str, bool)> = rows
        .iter()
        .map(|row| {
            (
                row["action"].as_str().unwrap(),
                row["success"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(recorded, steps);
    for row in &rows {
        assert_eq!(row["user_id"], json!(user.id));
        assert!(row["request_id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(
            row["row_hash"]
                .as_str()
                .is_some_and(|hash| hash.len() == 64)
        );
        assert!(row["details"]["changed_fields"].is_array(), "{row}");
        assert!(row["details"]["actor"].is_string(), "{row}");
    }
    // Who acted: a service (no actor id), the manager, the user, the auditor.
    assert_eq!(rows[0]["actor_id"], Value::Null);
    assert_eq!(rows[0]["details"]["actor"], json!("service:auth_service"));
    assert_eq!(rows[1]["actor_id"], json!(app.manager.id));
    assert_eq!(rows[2]["actor_id"], json!(user.id));
    assert_eq!(
        rows[2]["details"]["changed_fields"],
        json!(["last_name", "city"])
    );
    assert_eq!(rows[3]["actor_id"], json!(auditor.id));
    assert!(
        rows[3]["details"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("forbidden")
    );
    assert!(
        rows[4]["details"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("validation")
    );
    assert_eq!(
        rows[8]["details"]["admin_role"],
        json!({"from": null, "to": "editor"})
    );

    // No personal value anywhere in the trail.
    let text = serde_json::to_string(&rows).unwrap();
    for secret in [
        "Zebedee",
        "Quixworth",
        "Secretname",
        "1991-04-05",
        user.email.as_str(),
        user.phone.as_str(),
        &user.phone[1..],
    ] {
        assert!(!text.contains(secret), "{secret} is in the audit trail");
    }

    // The trail through the API, newest first, paged.
    let page = app
        .get(
            &format!("/api/users/{}/audit?limit=3&page=1", user.id),
            &auditor.token,
        )
        .await;
    let page = page.expect(200);
    assert_eq!(page["total"], json!(steps.len()));
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    assert_eq!(page["data"][0]["action"], json!("user.update_role"));
    assert_eq!(
        page["chain"],
        json!({"valid": true, "checked": steps.len(), "broken_at": null})
    );
}

#[tokio::test]
async fn client_address_and_agent_are_recorded() {
    let (app, user) = spawn_app_with_user().await;
    app.call(
        reqwest::Method::PUT,
        &format!("/api/users/{}/profile", user.id),
    )
    .token(&user.token)
    .via_gateway_for("198.51.100.23")
    .header("User-Agent", "vottery-test/1.0")
    .json(&json!({"city": "Quito"}))
    .send()
    .await
    .expect(200);
    let last = app.audit_rows(user.id).await.pop().unwrap();
    assert_eq!(last["ip_address"], json!("198.51.100.23"));
    assert_eq!(last["user_agent"], json!("vottery-test/1.0"));
}

#[tokio::test]
async fn a_change_and_its_audit_row_commit_or_fail_together() {
    let (app, user) = spawn_app_with_user().await;
    let before = app.user_row(user.id).await;
    // From now on the audit table refuses profile and create rows.
    app.exec(
        "ALTER TABLE vottery_audit_logs ADD CONSTRAINT test_refuse CHECK (action NOT IN ('user.update_profile', 'user.create')) NOT VALID",
    )
    .await;

    let failed = app
        .put_profile(
            user.id,
            &user.token,
            json!({"city": "Nowhere", "first_name": "Lost"}),
        )
        .await;
    failed.problem(500);
    let after = app.user_row(user.id).await;
    assert_eq!(after["row_version"], before["row_version"]);
    assert_eq!(after["city"], Value::Null);
    assert_eq!(after["first_name"], before["first_name"]);
    assert_eq!(after["record_signature"], before["record_signature"]);

    let users = app.user_count().await;
    app.post_user(json!({"sngine_email": "ghost@example.com", "sngine_phone": "+14155550777"}))
        .await
        .problem(500);
    assert_eq!(app.user_count().await, users);

    // The chain heads did not move either: the trail is still intact.
    assert_eq!(chain(&app, user.id).await["valid"], json!(true));
}

#[tokio::test]
async fn an_edited_audit_row_is_located() {
    let app = spawn_app().await;
    let user = user_with_trail(&app).await;
    assert_eq!(chain(&app, user.id).await["valid"], json!(true));
    let rows = app.audit_rows(user.id).await;
    let target = &rows[2];
    app.exec(&format!(
        "UPDATE vottery_audit_logs SET success = NOT success WHERE id = {}",
        target["id"]
    ))
    .await;
    let check = chain(&app, user.id).await;
    assert_eq!(check["valid"], json!(false));
    assert_eq!(check["broken_at"]["kind"], json!("edited"));
    assert_eq!(check["broken_at"]["audit_id"], target["id"]);
    assert_eq!(check["broken_at"]["chain_seq"], target["chain_seq"]);
    assert_eq!(check["checked"], json!(2));

    // Restored, it checks again; editing only the details is caught too.
    app.exec(&format!(
        "UPDATE vottery_audit_logs SET success = NOT success WHERE id = {}",
        target["id"]
    ))
    .await;
    assert_eq!(chain(&app, user.id).await["valid"], json!(true));
    app.exec(&format!(
        "UPDATE vottery_audit_logs SET details = jsonb_set(details, '{{actor}}', '\"user:1 (manager)\"') WHERE id = {}",
        rows[3]["id"]
    ))
    .await;
    let check = chain(&app, user.id).await;
    assert_eq!(check["broken_at"]["audit_id"], rows[3]["id"]);
    assert_eq!(check["broken_at"]["kind"], json!("edited"));

    // Forging the edited row's hash does not help either.
    app.exec(&format!(
        "UPDATE vottery_audit_logs SET row_hash = repeat('a', 64) WHERE id = {}",
        rows[3]["id"]
    ))
    .await;
    let check = chain(&app, user.id).await;
    assert_eq!(check["valid"], json!(false));
    assert_eq!(check["broken_at"]["audit_id"], rows[3]["id"]);
}

#[tokio::test]
async fn a_deleted_middle_row_is_located() {
    let app = spawn_app().await;
    let user = user_with_trail(&app).await;
    let rows = app.audit_rows(user.id).await;
    assert!(rows.len() >= 6);
    app.exec(&format!(
        "DELETE FROM vottery_audit_logs WHERE id = {}",
        rows[3]["id"]
    ))
    .await;
    let check = chain(&app, user.id).await;
    assert_eq!(check["valid"], json!(false));
    assert_eq!(check["broken_at"]["kind"], json!("missing"));
    assert_eq!(check["broken_at"]["chain_seq"], rows[3]["chain_seq"]);
    assert_eq!(check["checked"], json!(3));
    assert!(
        check["broken_at"]["detail"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "{check}"
    );
}

#[tokio::test]
async fn a_deleted_last_row_is_located() {
    let app = spawn_app().await;
    let user = user_with_trail(&app).await;
    let rows = app.audit_rows(user.id).await;
    let last = rows.last().unwrap();
    app.exec(&format!(
        "DELETE FROM vottery_audit_logs WHERE id = {}",
        last["id"]
    ))
    .await;
    let check = chain(&app, user.id).await;
    assert_eq!(check["valid"], json!(false));
    assert_eq!(check["broken_at"]["kind"], json!("truncated"));
    assert_eq!(check["broken_at"]["chain_seq"], last["chain_seq"]);
    assert_eq!(check["checked"], json!(rows.len() - 1));

    // Deleting the whole trail is noticed as well.
    app.exec(&format!(
        "DELETE FROM vottery_audit_logs WHERE user_id = {}",
        user.id
    ))
    .await;
    let check = chain(&app, user.id).await;
    assert_eq!(check["valid"], json!(false));
    assert_eq!(check["broken_at"]["chain_seq"], json!(1));
}

#[tokio::test]
async fn auditors_and_above_read_audit_trails() {
    let (app, user) = spawn_app_with_user().await;
    let path = format!("/api/users/{}/audit", user.id);
    for role in ["manager", "admin", "moderator", "auditor"] {
        let reader = app.user_with_role(role).await;
        app.get(&path, &reader.token).await.expect(200);
    }
    for role in ["editor", "advertiser", "analyst"] {
        let reader = app.user_with_role(role).await;
        app.get(&path, &reader.token).await.problem(403);
    }
    app.get(&path, &user.token).await.problem(403);
    app.get(&path, SERVICE_TOKEN).await.problem(403);
    app.get_as_manager("/api/users/99999/audit")
        .await
        .problem(404);
    app.get_as_manager(&format!("{path}?limit=0"))
        .await
        .assert_invalid(&["limit"]);
    app.get_as_manager(&format!("{path}?status=active"))
        .await
        .assert_invalid(&["status"]);
}

#[tokio::test]
async fn a_chain_read_while_rows_are_appended_is_whole() {
    let (app, user) = spawn_app_with_user().await;
    let path = format!("/api/users/{}/profile", user.id);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let writer = |writer: usize| {
        let (app, path, done) = (&app, &path, &done);
        async move {
            for round in 0..25 {
                let city = format!("City {writer}-{round}");
                let reply = app
                    .put(path, &app.manager.token, json!({ "city": city }))
                    .await;
                // Four writers on one user: a write may lose every retry to the others (409).
                assert!([200, 409].contains(&reply.status), "{}", reply.text);
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let reads = async {
        let mut conn = app.database.connect().await;
        let mut checks = 0;
        while done.load(std::sync::atomic::Ordering::SeqCst) < 4 && checks < 5_000 {
            let check = user_svc::audit::verify_chain(&mut conn, user.id)
                .await
                .expect("the chain reads");
            assert!(check.valid, "checked while rows were appended: {check:?}");
            checks += 1;
        }
        checks
    };
    let (.., checks) = tokio::join!(writer(0), writer(1), writer(2), writer(3), reads);
    assert!(checks > 10, "only {checks} checks ran during the writes");
    let reply = app
        .get_as_manager(&format!("/api/users/{}/export", user.id))
        .await;
    let export = reply.expect(200);
    assert_eq!(export["audit_chain"]["valid"], json!(true));
}

#[tokio::test]
async fn a_refused_attempt_naming_a_field_with_a_nul_is_still_recorded() {
    let app = spawn_app().await;
    let refusals =
        "SELECT count(*) FROM vottery_audit_logs WHERE action = 'user.create' AND NOT success";
    let before = app.count(refusals).await;
    app.post_user(json!({"sngine_email": "nul@example.com", "sngine_phone": "+15550001234", "city\u{0}": "x"}))
    .await
    .problem(422);
    assert_eq!(app.count(refusals).await, before + 1);
    let stored = app
        .count("SELECT count(*) FROM vottery_audit_logs WHERE details->'changed_fields' ? 'city\u{FFFD}'")
        .await;
    assert_eq!(stored, 1);
}
