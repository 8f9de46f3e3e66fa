//! A user's devices and sessions (`/api/users/:id/devices`, `/api/users/:id/sessions`, and
//! the same under `/api/users/me/`): listed without any token or biometric secret, ended on
//! request, and ended with the status change when the user is suspended or deleted. The
//! devices, sessions and biometrics are written with SQL, as the customer's auth- and
//! biometric-services write them.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{SERVICE_TOKEN, TestApp, ids, spawn_app, spawn_app_with_user};

/// A device the customer's services recorded for a user, with its sessions and every secret
/// they wrote (tokens, fingerprint, biometric hash, public key and credential id).
pub(crate) struct Recorded<'a> {
    app: &'a TestApp,
    user_id: i32,
    pub(crate) device: i32,
    secrets: Vec<String>,
}

impl<'a> Recorded<'a> {
    /// A device with a fingerprint biometric enrolled on it.
    pub(crate) async fn device(app: &'a TestApp, user_id: i32) -> Self {
        let fingerprint = format!("fp-{}", uuid::Uuid::new_v4().simple());
        app.exec(&format!(
            "INSERT INTO vottery_devices (user_id, device_fingerprint, device_type, browser_name, \
             os_name, ip_address, last_used) \
             VALUES ({user_id}, '{fingerprint}', 'mobile', 'Safari', 'iOS', '203.0.113.24', now())"
        ))
        .await;
        let device = app
            .count(&format!(
                "SELECT id FROM vottery_devices WHERE device_fingerprint = '{fingerprint}'"
            ))
            .await as i32;
        let [hash, public_key, credential] = ["bio-hash", "bio-public-key", "bio-credential"]
            .map(|kind| format!("{kind}-{}", uuid::Uuid::new_v4().simple()));
        app.exec(&format!(
            "INSERT INTO vottery_biometrics (user_id, device_id, biometric_type, biometric_hash, \
             public_key, credential_id) \
             VALUES ({user_id}, {device}, 'fingerprint', '{hash}', '{public_key}', '{credential}')"
        ))
        .await;
        Self {
            app,
            user_id,
            device,
            secrets: vec![fingerprint, hash, public_key, credential],
        }
    }

    /// A device with sessions, each active or not and opened some hours ago.
    pub(crate) async fn with_sessions(
        app: &'a TestApp,
        user_id: i32,
        sessions: &[(bool, u32)],
    ) -> Self {
        let mut recorded = Self::device(app, user_id).await;
        for (active, hours_ago) in sessions {
            recorded.session(*active, *hours_ago).await;
        }
        recorded
    }

    /// A session on this device, opened `hours_ago`; returns its id.
    pub(crate) async fn session(&mut self, active: bool, hours_ago: u32) -> i32 {
        let token = format!("session-token-{}", uuid::Uuid::new_v4().simple());
        let refresh = format!("refresh-token-{}", uuid::Uuid::new_v4().simple());
        let (user_id, device) = (self.user_id, self.device);
        self.app
            .exec(&format!(
                "INSERT INTO vottery_sessions (user_id, device_id, session_token, refresh_token, \
                 expires_at, refresh_expires_at, ip_address, user_agent, is_active, created_at) \
                 VALUES ({user_id}, {device}, '{token}', '{refresh}', now() + interval '1 hour', \
                 now() + interval '30 days', '198.51.100.7', 'TestAgent/1.0', {active}, \
                 now() - interval '{hours_ago} hours')"
            ))
            .await;
        let id = self
            .app
            .count(&format!(
                "SELECT id FROM vottery_sessions WHERE session_token = '{token}'"
            ))
            .await as i32;
        self.secrets.extend([token, refresh]);
        id
    }

    /// Asserts that a text (an answer's raw body) contains none of the secrets written.
    pub(crate) fn assert_hidden_in(&self, text: &str) {
        for secret in &self.secrets {
            assert!(!text.contains(secret.as_str()), "{secret} leaked: {text}");
        }
    }
}

/// How many of a user's sessions are active.
async fn active_sessions(app: &TestApp, user_id: i32) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM vottery_sessions WHERE user_id = {user_id} AND is_active"
    ))
    .await
}

/// The details of a user's successful audit rows of `action`, oldest first.
async fn audited(app: &TestApp, user_id: i32, action: &str) -> Vec<Value> {
    app.audit_rows_of(user_id, action, true)
        .await
        .into_iter()
        .map(|row| row["details"].clone())
        .collect()
}

#[tokio::test]
async fn sessions_list_active_first_then_newest_in_pages_without_any_token() {
    let (app, user) = spawn_app_with_user().await;
    let mut recorded = Recorded::device(&app, user.id).await;
    let old_active = recorded.session(true, 72).await;
    let recent_ended = recorded.session(false, 1).await;
    let newer_active = recorded.session(true, 24).await;

    let all = app.get("/api/users/me/sessions", &user.token).await;
    assert_eq!(
        ids(&all.expect(200)["data"]),
        [newer_active, old_active, recent_ended].map(i64::from)
    );
    assert_eq!(all.json["total"], json!(3));
    recorded.assert_hidden_in(&all.text);
    let first = &all.json["data"][0];
    assert_eq!(first["device"]["id"], json!(recorded.device));
    assert_eq!(first["device"]["device_type"], json!("mobile"));
    assert_eq!(first["ip_address"], json!("198.51.100.7"));
    assert_eq!(first["user_agent"], json!("TestAgent/1.0"));
    assert_eq!(first["is_active"], json!(true));
    assert!(first["expires_at"].is_string() && first["created_at"].is_string());
    assert_eq!(all.json["data"][2]["is_active"], json!(false));

    let path = format!("/api/users/{}/sessions", user.id);
    let second = app
        .get(&format!("{path}?page=2&limit=2"), &user.token)
        .await;
    assert_eq!(
        ids(&second.expect(200)["data"]),
        vec![i64::from(recent_ended)]
    );
    assert_eq!(
        (
            &second.json["page"],
            &second.json["limit"],
            &second.json["total"]
        ),
        (&json!(2), &json!(2), &json!(3))
    );
    app.get(&format!("{path}?limit=0"), &user.token)
        .await
        .assert_invalid(&["limit"]);
    app.get(&format!("{path}?page=x&token=1"), &user.token)
        .await
        .assert_invalid(&["page", "token"]);
}

#[tokio::test]
async fn devices_show_their_biometrics_by_type_and_date_only() {
    let (app, user) = spawn_app_with_user().await;
    let recorded = Recorded::with_sessions(&app, user.id, &[(true, 1)]).await;

    let devices = app.get("/api/users/me/devices", &user.token).await;
    let device = &devices.expect(200)["data"][0];
    recorded.assert_hidden_in(&devices.text);
    assert_eq!(devices.json["total"], json!(1));
    assert_eq!(device["id"], json!(recorded.device));
    assert_eq!(
        (
            &device["device_type"],
            &device["os_name"],
            &device["ip_address"]
        ),
        (&json!("mobile"), &json!("iOS"), &json!("203.0.113.24"))
    );
    let biometric = device["biometrics"][0].as_object().unwrap();
    let mut fields: Vec<&str> = biometric.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["biometric_type", "created_at", "is_active"]);
    assert_eq!(biometric["biometric_type"], json!("fingerprint"));
    let by_id = app
        .get(&format!("/api/users/{}/devices", user.id), SERVICE_TOKEN)
        .await;
    assert_eq!(by_id.expect(200)["data"], devices.json["data"]);
}

#[tokio::test]
async fn oneself_moderators_above_the_user_and_services_may_see_devices_and_sessions() {
    let (app, user) = spawn_app_with_user().await;
    let other = app.active_user().await;
    let moderator = app.user_with_role("moderator").await;
    let peer = app.user_with_role("moderator").await;
    let admin = app.user_with_role("admin").await;
    let path = |id: i32, what: &str| format!("/api/users/{id}/{what}");

    for what in ["sessions", "devices"] {
        app.get(&path(user.id, what), &user.token).await.expect(200);
        app.get(&path(user.id, what), &moderator.token)
            .await
            .expect(200);
        app.get(&path(user.id, what), SERVICE_TOKEN)
            .await
            .expect(200);
        app.get(&path(peer.id, what), &moderator.token)
            .await
            .problem(403);
        app.get(&path(admin.id, what), &moderator.token)
            .await
            .problem(403);
        app.get(&path(other.id, what), &user.token)
            .await
            .problem(403);
        app.get(&format!("/api/users/me/{what}"), SERVICE_TOKEN)
            .await
            .problem(403);
        app.get(&path(999_999, what), &app.manager.token)
            .await
            .problem(404);
        app.get_as_manager(&format!("/api/users/abc/{what}"))
            .await
            .assert_invalid(&["id"]);
    }
}

#[tokio::test]
async fn ending_a_session_is_idempotent_audited_and_limited_to_the_users_own() {
    let (app, user) = spawn_app_with_user().await;
    let other = app.active_user().await;
    let mut recorded = Recorded::device(&app, user.id).await;
    let ended = recorded.session(true, 2).await;
    let kept = recorded.session(true, 1).await;
    let others = Recorded::device(&app, other.id)
        .await
        .session(true, 1)
        .await;
    let path = format!("/api/users/{}/sessions/{ended}", user.id);

    app.delete(&path, &user.token).await.expect(204);
    app.delete(&format!("/api/users/me/sessions/{ended}"), &user.token)
        .await
        .expect(204);
    let stored = app
        .rows(&format!(
            "SELECT id, is_active FROM vottery_sessions WHERE user_id = {} ORDER BY id",
            user.id
        ))
        .await;
    assert_eq!(
        stored,
        vec![
            json!({"id": ended, "is_active": false}),
            json!({"id": kept, "is_active": true})
        ]
    );
    assert_eq!(
        audited(&app, user.id, "session.end").await,
        vec![
            json!({"actor": format!("user:{}", user.id), "changed_fields": [], "session_id": ended, "sessions_ended": 1}),
            json!({"actor": format!("user:{}", user.id), "changed_fields": [], "session_id": ended, "sessions_ended": 0}),
        ]
    );
    let trail = app.rows("SELECT * FROM vottery_audit_logs").await;
    recorded.assert_hidden_in(&json!(trail).to_string());

    let missing = [
        format!("/api/users/{}/sessions/{others}", user.id),
        format!("/api/users/{}/sessions/999999", user.id),
        format!("/api/users/999999/sessions/{kept}"),
    ];
    for path in missing {
        let reply = app.delete(&path, &app.manager.token).await;
        assert_eq!(
            reply.problem(404)["type"],
            json!("https://vottery.dev/problems/not-found")
        );
    }
    assert_eq!(active_sessions(&app, other.id).await, 1);
}

#[tokio::test]
async fn malformed_session_and_user_ids_are_refused_naming_the_field() {
    let (app, user) = spawn_app_with_user().await;
    for session in ["abc", "0", "-3", "1.5", "99999999999"] {
        app.delete(&format!("/api/users/me/sessions/{session}"), &user.token)
            .await
            .assert_invalid(&["session_id"]);
    }
    app.delete("/api/users/abc/sessions/1", &user.token)
        .await
        .assert_invalid(&["id"]);
    app.delete("/api/users/abc/sessions", &user.token)
        .await
        .assert_invalid(&["id"]);
}

#[tokio::test]
async fn ending_all_sessions_counts_them_and_only_oneself_or_a_higher_moderator_may() {
    let (app, user) = spawn_app_with_user().await;
    let other = app.active_user().await;
    let moderator = app.user_with_role("moderator").await;
    let peer = app.user_with_role("moderator").await;
    Recorded::with_sessions(&app, user.id, &[(true, 3), (true, 2), (false, 1)]).await;
    Recorded::with_sessions(&app, peer.id, &[(true, 1)]).await;
    let path = format!("/api/users/{}/sessions", user.id);

    app.delete(&path, &other.token).await.problem(403);
    app.delete(&path, SERVICE_TOKEN).await.problem(403);
    app.delete(
        &format!("/api/users/{}/sessions", peer.id),
        &moderator.token,
    )
    .await
    .problem(403);
    assert_eq!(active_sessions(&app, user.id).await, 2);
    assert_eq!(active_sessions(&app, peer.id).await, 1);

    let ended = app.delete(&path, &moderator.token).await;
    assert_eq!(ended.expect(200), &json!({"sessions_ended": 2}));
    let again = app.delete("/api/users/me/sessions", &user.token).await;
    assert_eq!(again.expect(200), &json!({"sessions_ended": 0}));
    assert_eq!(active_sessions(&app, user.id).await, 0);
    let counts: Vec<Value> = audited(&app, user.id, "sessions.end")
        .await
        .iter()
        .map(|details| details["sessions_ended"].clone())
        .collect();
    assert_eq!(counts, vec![json!(2), json!(0)]);
    let refused = app
        .audit_rows_of(user.id, "sessions.end", false)
        .await
        .len();
    assert_eq!(refused, 2);
    app.delete("/api/users/999999/sessions", &app.manager.token)
        .await
        .problem(404);
}

#[tokio::test]
async fn suspending_a_user_ends_their_sessions_with_the_status_change() {
    let (app, user) = spawn_app_with_user().await;
    Recorded::with_sessions(&app, user.id, &[(true, 3), (true, 2), (false, 1)]).await;

    app.set_status(user.id, "suspended").await;
    assert_eq!(active_sessions(&app, user.id).await, 0);
    let moves = audited(&app, user.id, "user.update_status").await;
    let suspension = moves.last().unwrap();
    assert_eq!(suspension["to"], json!("suspended"));
    assert_eq!(suspension["sessions_ended"], json!(2));
    app.get("/api/users/me/sessions", &user.token)
        .await
        .problem(403);

    app.set_status(user.id, "active").await;
    assert_eq!(active_sessions(&app, user.id).await, 0);
    let reinstated = audited(&app, user.id, "user.update_status").await;
    assert_eq!(reinstated.last().unwrap()["sessions_ended"], Value::Null);
}

#[tokio::test]
async fn a_refused_or_failed_suspension_leaves_the_sessions_active() {
    let app = spawn_app().await;
    let admin = app.user_with_role("admin").await;
    let moderator = app.user_with_role("moderator").await;
    let user = app.active_user().await;
    for id in [admin.id, user.id] {
        Recorded::with_sessions(&app, id, &[(true, 1)]).await;
    }
    let suspend = json!({"status": "suspended"});

    app.put_status(admin.id, &moderator.token, suspend.clone())
        .await
        .problem(403);
    let stale = app
        .call(Method::PUT, &format!("/api/users/{}/status", user.id))
        .token(&app.manager.token)
        .json(&suspend)
        .if_match(1)
        .send()
        .await;
    stale.problem(412);
    assert_eq!(active_sessions(&app, admin.id).await, 1);
    assert_eq!(active_sessions(&app, user.id).await, 1);

    app.exec(&refuse_audit("user.update_status")).await;
    let failed = app.put_status(user.id, &app.manager.token, suspend).await;
    failed.problem(500);
    assert_eq!(app.user_row(user.id).await["status"], json!("active"));
    assert_eq!(active_sessions(&app, user.id).await, 1);
}

#[tokio::test]
async fn deleting_a_user_ends_their_sessions_in_the_same_transaction() {
    let (app, user) = spawn_app_with_user().await;
    Recorded::with_sessions(&app, user.id, &[(true, 2), (true, 1)]).await;
    let path = format!("/api/users/{}", user.id);

    app.exec(&refuse_audit("user.delete")).await;
    app.delete(&path, &app.manager.token).await.problem(500);
    assert_eq!(active_sessions(&app, user.id).await, 2);
    app.exec("DROP TRIGGER refuse_audit ON vottery_audit_logs")
        .await;

    app.delete(&path, &app.manager.token).await.expect(204);
    assert_eq!(active_sessions(&app, user.id).await, 0);
    let deletion = audited(&app, user.id, "user.delete").await;
    assert_eq!(deletion.last().unwrap()["sessions_ended"], json!(2));
}

/// SQL that makes the audit record of `action` fail to be written, and with it its statement.
fn refuse_audit(action: &str) -> String {
    format!(
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$; \
         CREATE TRIGGER refuse_audit BEFORE INSERT ON vottery_audit_logs FOR EACH ROW \
         WHEN (NEW.action = '{action}') EXECUTE FUNCTION refuse_audit();"
    )
}
