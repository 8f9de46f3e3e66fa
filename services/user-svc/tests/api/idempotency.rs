//! `Idempotency-Key` on every mutating route: the first request runs, a retry with the same key
//! and body gets the stored answer again (`Idempotent-Replayed: true`), another body is 422, a
//! retry while the first runs is 409, keys are per caller and pruned, and a crash between the
//! commit and the answer is answered on retry with the user it created. The stored answers hold
//! no plaintext PII.

use std::process::Stdio;
use std::time::Duration;

use actix_web::http::Method as ActixMethod;
use reqwest::Method;
use serde_json::{Value, json};
use user_svc::idempotency::Fingerprint;

use crate::helpers::{Reply, SERVICE_TOKEN, TestApp, closed_port, spawn_app, spawn_app_with_user};
use crate::sessions::Recorded;

const KEY: &str = "Idempotency-Key";

/// A request with an idempotency key.
async fn keyed(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    key: &str,
    body: Option<&Value>,
) -> Reply {
    let mut call = app.call(method, path).token(token).header(KEY, key);
    if let Some(body) = body {
        call = call.json(body);
    }
    call.send().await
}

/// `POST /api/users` with an idempotency key.
async fn keyed_create(app: &TestApp, token: &str, key: &str, body: &Value) -> Reply {
    keyed(app, Method::POST, "/api/users", token, key, Some(body)).await
}

/// A create body with every PII field, for fresh contacts.
fn new_user_body(app: &TestApp) -> Value {
    let (email, phone) = app.next_contacts();
    json!({
        "sngine_email": email,
        "sngine_phone": phone,
        "first_name": "Philippa",
        "last_name": "Idempotenza",
        "user_birthdate": "1987-03-14",
    })
}

async fn stored_keys(app: &TestApp) -> Vec<Value> {
    app.rows("SELECT scope, idempotency_key, status, answer_user, answer_body FROM vottery_idempotency_keys ORDER BY created_at")
        .await
}

/// One column of every stored key, oldest first.
async fn stored_key_column(app: &TestApp, column: &str) -> Vec<Value> {
    stored_keys(app)
        .await
        .into_iter()
        .map(|row| row[column].clone())
        .collect()
}

/// How many successful audit rows of `action` concern `user_id`.
async fn audited(app: &TestApp, user_id: i32, action: &str) -> usize {
    app.audit_rows_of(user_id, action, true).await.len()
}

/// Holds `key` for `scope` with a live claim, as a request still running does.
async fn hold(app: &TestApp, scope: &str, key: &str, fingerprint: Fingerprint) {
    app.exec(&format!(
        "INSERT INTO vottery_idempotency_claims (scope, idempotency_key, fingerprint, token, lease_until) \
         VALUES ('{scope}', '{key}', '\\x{}', gen_random_uuid(), now() + interval '30 seconds')",
        hex::encode(fingerprint.0)
    ))
    .await;
}

/// A problem answer of `status` and type `kind` that names the key's header.
fn assert_key_refused(reply: &Reply, status: u16, kind: &str) {
    reply.problem(status);
    assert!(reply.problem_type().ends_with(kind), "{}", reply.text);
    assert_eq!(reply.error_fields(), vec![KEY.to_owned()]);
}

fn assert_replay_of(first: &Reply, again: &Reply) {
    assert_eq!(again.status, first.status, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_eq!(again.json, first.json);
    for header in ["location", "etag"] {
        assert_eq!(again.header(header), first.header(header), "{header}");
    }
}

#[tokio::test]
async fn a_retried_create_replays_the_first_answer_and_stores_no_plaintext_pii() {
    let app = spawn_app().await;
    let body = new_user_body(&app);
    let before = app.user_count().await;

    let first = keyed_create(&app, SERVICE_TOKEN, "create-1", &body).await;
    first.expect(201);
    // The same JSON with its members in another order and other spacing is the same request.
    let reordered: Value =
        serde_json::from_str(&serde_json::to_string_pretty(&body).unwrap()).unwrap();
    let again = keyed_create(&app, SERVICE_TOKEN, "create-1", &reordered).await;
    assert_replay_of(&first, &again);
    assert_eq!(again.json["first_name"], json!("Philippa"));
    assert_eq!(again.json["signature"]["valid"], json!(true));
    assert_eq!(app.user_count().await, before + 1);
    let id = first.json["id"].as_i64().unwrap() as i32;
    assert_eq!(audited(&app, id, "user.create").await, 1);

    // The stored answer holds the row's ciphertexts, never the values sent or shown.
    let stored = app
        .rows("SELECT t::text AS row FROM vottery_idempotency_keys AS t")
        .await;
    assert_eq!(stored.len(), 1);
    let text = stored[0]["row"].as_str().unwrap();
    let phone_digits = body["sngine_phone"]
        .as_str()
        .unwrap()
        .trim_start_matches('+');
    for plain in [
        body["sngine_email"].as_str().unwrap(),
        phone_digits,
        "Philippa",
        "Idempotenza",
        "1987-03-14",
    ] {
        assert!(
            !text.contains(plain),
            "{plain} is stored in plaintext: {text}"
        );
    }
    assert!(
        text.contains("vault:v"),
        "the answer keeps the ciphertexts: {text}"
    );
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let first = keyed_create(&app, SERVICE_TOKEN, "reused", &new_user_body(&app)).await;
    first.expect(201);
    let before = (app.user_count().await, app.audit_count().await);

    let other = keyed_create(&app, SERVICE_TOKEN, "reused", &new_user_body(&app)).await;
    assert_key_refused(&other, 422, "idempotency-key-reused");
    assert_eq!((app.user_count().await, app.audit_count().await), before);
    assert_eq!(stored_keys(&app).await[0]["status"], json!(201));
}

/// For a service (whose create claims its key in the statement that reserves the id) and for
/// a user (in the one that also reads the user).
#[tokio::test]
async fn a_retry_while_the_first_request_runs_is_409_and_runs_once_its_lease_ends() {
    let app = spawn_app().await;
    let manager = format!("user:{}", app.manager.id);
    for (token, scope) in [
        (SERVICE_TOKEN, "service:auth_service"),
        (app.manager.token.as_str(), manager.as_str()),
    ] {
        let body = new_user_body(&app);
        let fingerprint = Fingerprint::of(&ActixMethod::POST, "/api/users", Some(&body));
        // The first request holds the key, running, as a request in flight does.
        hold(&app, scope, "in-flight", fingerprint).await;
        let before = (app.user_count().await, app.audit_count().await);
        let retry_create = async || keyed_create(&app, token, "in-flight", &body).await;

        let retry = retry_create().await;
        assert_key_refused(&retry, 409, "idempotency-key-in-use");
        let retry_after: u64 = retry.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=30).contains(&retry_after), "{retry_after}");
        assert_eq!((app.user_count().await, app.audit_count().await), before);

        // A first request that died before committing leaves its lease to run out; then the
        // retry runs.
        app.exec("UPDATE vottery_idempotency_claims SET lease_until = now() - interval '1 second'")
            .await;
        let retry = retry_create().await;
        retry.expect(201);
        assert_eq!(retry.header("idempotent-replayed"), None);
        assert_eq!(app.user_count().await, before.0 + 1);
    }
}

/// A user's create claims its key in the statement that reads the user and reserves the id:
/// a retry is replayed, another body refused, and the claim is the one row of its key.
#[tokio::test]
async fn a_users_keyed_create_is_replayed_and_its_key_refused_for_another_body() {
    let app = spawn_app().await;
    let token = app.manager.token.clone();
    let body = new_user_body(&app);
    let before = (app.user_count().await, app.audit_count().await);

    let first = keyed_create(&app, &token, "fresh", &body).await;
    first.expect(201);
    let again = keyed_create(&app, &token, "fresh", &body).await;
    assert_replay_of(&first, &again);
    let other_body = new_user_body(&app);
    let other = keyed_create(&app, &token, "fresh", &other_body).await;
    other.problem(422);
    assert!(
        other.problem_type().ends_with("idempotency-key-reused"),
        "{}",
        other.text
    );
    assert_eq!(
        (app.user_count().await, app.audit_count().await),
        (before.0 + 1, before.1 + 1)
    );
    assert_eq!(stored_keys(&app).await.len(), 1);
    let claims = app
        .count("SELECT count(*) FROM vottery_idempotency_claims WHERE idempotency_key = 'fresh'")
        .await;
    assert_eq!(claims, 1);
}

#[tokio::test]
async fn a_request_whose_key_was_answered_while_it_ran_is_rolled_back_and_given_that_answer() {
    let app = spawn_app().await;
    let body = new_user_body(&app);
    // Another request with the same key stores its answer (showing the manager's row) just
    // after this one claimed the key, as a retry does once this request's lease ran out.
    app.exec(&format!(
        "CREATE FUNCTION answer_meanwhile() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         INSERT INTO vottery_idempotency_keys (scope, idempotency_key, fingerprint, status, answer_user) \
         SELECT NEW.scope, NEW.idempotency_key, NEW.fingerprint, 201, to_jsonb(u) \
         FROM vottery_users AS u WHERE u.id = {}; RETURN NEW; END $$; \
         CREATE TRIGGER answer_meanwhile AFTER INSERT ON vottery_idempotency_claims \
         FOR EACH ROW EXECUTE FUNCTION answer_meanwhile()",
        app.manager.id
    ))
    .await;
    let before = (app.user_count().await, app.audit_count().await);

    let reply = keyed_create(&app, SERVICE_TOKEN, "raced", &body).await;
    reply.expect(201);
    assert_eq!(reply.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(reply.json["id"], json!(app.manager.id));
    assert_eq!((app.user_count().await, app.audit_count().await), before);
    assert_eq!(stored_keys(&app).await.len(), 1);
}

#[tokio::test]
async fn keys_belong_to_their_caller() {
    let app = spawn_app().await;
    let by_service = keyed_create(&app, SERVICE_TOKEN, "shared", &new_user_body(&app)).await;
    by_service.expect(201);
    let by_manager = keyed_create(&app, &app.manager.token, "shared", &new_user_body(&app)).await;
    by_manager.expect(201);
    assert_eq!(by_manager.header("idempotent-replayed"), None);
    assert_ne!(by_manager.json["id"], by_service.json["id"]);
    let scopes = stored_key_column(&app, "scope").await;
    assert_eq!(
        scopes,
        vec![
            json!("service:auth_service"),
            json!(format!("user:{}", app.manager.id))
        ]
    );
}

#[tokio::test]
async fn keys_past_their_retention_are_pruned() {
    let app = spawn_app().await;
    for key in ["old", "recent"] {
        keyed_create(&app, SERVICE_TOKEN, key, &new_user_body(&app))
            .await
            .expect(201);
    }
    app.exec("UPDATE vottery_idempotency_keys SET created_at = now() - interval '25 hours' WHERE idempotency_key = 'old'")
        .await;

    let pruned = user_svc::idempotency::prune(&app.state.pool, 24)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    let kept = stored_key_column(&app, "idempotency_key").await;
    assert_eq!(kept, vec![json!("recent")]);
}

#[tokio::test]
async fn malformed_keys_are_refused_naming_the_header_and_change_nothing() {
    let app = spawn_app().await;
    let before = (app.user_count().await, app.audit_count().await);
    let too_long = "k".repeat(256);
    for key in ["", "\"\"", "\"unterminated", "two words", too_long.as_str()] {
        let reply = keyed_create(&app, SERVICE_TOKEN, key, &new_user_body(&app)).await;
        reply.assert_invalid(&[KEY]);
    }
    let twice = app
        .call(Method::POST, "/api/users")
        .token(SERVICE_TOKEN)
        .header(KEY, "one")
        .header(KEY, "two")
        .json(&new_user_body(&app))
        .send()
        .await;
    twice.assert_invalid(&[KEY]);
    // Authentication is answered first.
    let unauthenticated = app
        .call(Method::POST, "/api/users")
        .header(KEY, "")
        .json(&new_user_body(&app))
        .send()
        .await;
    unauthenticated.problem(401);
    assert_eq!((app.user_count().await, app.audit_count().await), before);
    assert!(stored_keys(&app).await.is_empty());
}

#[tokio::test]
async fn a_refused_request_frees_its_key_so_a_retry_runs_again() {
    let app = spawn_app().await;
    let body = json!({"sngine_email": "not an email", "sngine_phone": "+14155550100"});
    for _ in 0..2 {
        let reply = keyed_create(&app, SERVICE_TOKEN, "refused", &body).await;
        reply.assert_invalid(&["sngine_email"]);
        assert_eq!(reply.header("idempotent-replayed"), None);
        assert!(
            stored_keys(&app).await.is_empty(),
            "nothing is held or stored"
        );
    }
    let fixed = json!({"sngine_email": "fixed@example.com", "sngine_phone": "+14155550100"});
    keyed_create(&app, SERVICE_TOKEN, "refused", &fixed)
        .await
        .expect(201);
}

/// Sends a keyed request twice; asserts that the second replays the first, and returns it.
async fn twice(app: &TestApp, method: Method, path: &str, key: &str, body: Option<Value>) -> Reply {
    let token = app.manager.token.clone();
    let first = keyed(app, method.clone(), path, &token, key, body.as_ref()).await;
    assert!(first.status < 300, "{path}: {}", first.text);
    let again = keyed(app, method, path, &token, key, body.as_ref()).await;
    assert_replay_of(&first, &again);
    first
}

/// [`twice`] for a `PUT` of `body`.
async fn twice_put(app: &TestApp, path: &str, key: &str, body: Value) -> Reply {
    twice(app, Method::PUT, path, key, Some(body)).await
}

/// [`twice`] for a `DELETE`.
async fn twice_delete(app: &TestApp, path: &str, key: &str) -> Reply {
    twice(app, Method::DELETE, path, key, None).await
}

#[tokio::test]
async fn every_mutating_route_honours_the_key() {
    let (app, user) = spawn_app_with_user().await;
    let id = user.id;

    let at = |suffix: &str| format!("/api/users/{id}{suffix}");
    let named = json!({"first_name": "Once"});
    let profile = twice_put(&app, &at("/profile"), "profile", named).await;
    assert_eq!(profile.json["first_name"], json!("Once"));
    let role = twice_put(&app, &at("/role"), "role", json!({"admin_role": "analyst"})).await;
    assert_eq!(role.json["admin_role"], json!("analyst"));

    let mut device = Recorded::with_sessions(&app, id, &[(true, 1), (true, 2)]).await;
    let single = device.session(true, 3).await;
    twice_delete(&app, &at(&format!("/sessions/{single}")), "end-one").await;
    let ended = twice_delete(&app, &at("/sessions"), "end-all").await;
    assert_eq!(
        ended.json,
        json!({"sessions_ended": 2}),
        "the replay says what the first ended"
    );

    let suspended = json!({"status": "suspended"});
    let status = twice_put(&app, &at("/status"), "status", suspended).await;
    assert_eq!(status.json["status"], json!("suspended"));
    let version = status.json["version"].as_i64().unwrap();
    assert_eq!(
        app.read_user(id).await["version"],
        json!(version),
        "each change landed once"
    );

    twice_delete(&app, &at(""), "delete").await;
    for (action, times) in [
        ("user.update_profile", 1),
        ("user.update_role", 1),
        ("session.end", 1),
        ("sessions.end", 1),
        // Activated once before, suspended once here.
        ("user.update_status", 2),
        ("user.delete", 1),
    ] {
        assert_eq!(audited(&app, id, action).await, times, "{action}");
    }
    let statuses = stored_key_column(&app, "status").await;
    assert_eq!(
        statuses,
        [200, 200, 204, 200, 200, 204].map(|status| json!(status))
    );
}

/// The `user-svc` binary serving on `port`, with `failpoints` configured; ready when returned.
async fn serve(app: &TestApp, port: u16, failpoints: &str) -> tokio::process::Child {
    let mut command = app.command(&["serve"], &app.security.address);
    command
        .env("USER_SVC__APPLICATION__PORT", port.to_string())
        .env("FAILPOINTS", failpoints)
        .stderr(Stdio::null());
    let child = command.spawn().expect("the user-svc binary starts");
    let live = format!("http://127.0.0.1:{port}/health/live");
    for _ in 0..300 {
        if app
            .http
            .get(&live)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("user-svc did not start on port {port}");
}

#[tokio::test]
async fn a_crash_between_commit_and_answer_is_answered_on_retry_with_the_same_user() {
    let app = spawn_app().await;
    let body = new_user_body(&app);
    let before = app.user_count().await;
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/api/users");

    // The process dies once the user and its answer are committed, before answering.
    let mut crashing = serve(&app, port, "idempotency-answer=return").await;
    let create = || {
        app.http
            .post(&url)
            .bearer_auth(SERVICE_TOKEN)
            .header(KEY, "crash-1")
            .json(&body)
            .send()
    };
    let lost = create().await;
    assert!(lost.is_err(), "the answer is lost: {lost:?}");
    let exit = tokio::time::timeout(Duration::from_secs(30), crashing.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!exit.success(), "{exit:?}");
    assert_eq!(app.user_count().await, before + 1, "the user was committed");
    let created = app.count("SELECT (answer_user->>'id')::int FROM vottery_idempotency_keys WHERE idempotency_key = 'crash-1' AND status = 201").await;

    // Restarted, the retry with the same key gets the original 201 and the same user.
    let mut restarted = serve(&app, port, "").await;
    let retry = create().await.unwrap();
    assert_eq!(retry.status().as_u16(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(
        retry.headers()["location"],
        format!("/api/users/{created}").as_str()
    );
    let view: Value = retry.json().await.unwrap();
    assert_eq!(view["id"], json!(created));
    assert_eq!(view["sngine_email"], body["sngine_email"]);
    assert_eq!(
        app.user_count().await,
        before + 1,
        "nothing was created twice"
    );
    assert_eq!(audited(&app, created as i32, "user.create").await, 1);
    restarted.kill().await.unwrap();
}
