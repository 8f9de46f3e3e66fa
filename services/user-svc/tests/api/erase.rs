//! Erasure by crypto-shredding (`POST /api/users/:id/erase`): the user's own PII key is
//! destroyed in security-svc, then the row deleted; an erasure stopped half-way reads as erased
//! and completes when asked again; and a backup taken before the erasure does not bring the PII
//! back.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::events::events_of;
use crate::helpers::{
    Options, PII_COLUMNS, PII_KEY, Reply, SECURITY_ADMIN_TOKEN, SERVICE_TOKEN, TestApp,
    TestDatabase, TestUser, closed_port, spawn, spawn_app, spawn_app_with,
};

const FIRST_NAME: &str = "Philippa";
const LAST_NAME: &str = "Quenneville";

async fn erase(app: &TestApp, id: impl std::fmt::Display, token: &str) -> Reply {
    app.call(Method::POST, &format!("/api/users/{id}/erase"))
        .token(token)
        .send()
        .await
}

/// A user with every PII field set.
async fn subject(app: &TestApp) -> TestUser {
    app.create_user_with(json!({
        "first_name": FIRST_NAME,
        "last_name": LAST_NAME,
        "date_of_birth": "1988-07-21"
    }))
    .await
}

/// Destroys user `id`'s context key through security-svc directly, as an erasure stopped after
/// that step leaves it.
async fn destroy_key_directly(app: &TestApp, id: i32) {
    let reply = app
        .call_at(
            &app.security.address,
            Method::POST,
            &format!("/v1/transit/keys/{PII_KEY}/contexts/destroy"),
        )
        .header("X-Vault-Token", SECURITY_ADMIN_TOKEN)
        .json(&json!({ "context": STANDARD.encode(id.to_string()) }))
        .send()
        .await;
    reply.expect(200);
}

/// What security-svc answers when asked to decrypt a stored value of user `id`.
async fn decrypt_stored(app: &TestApp, id: i32, ciphertext: &str) -> Reply {
    let aad = format!("vottery_users:{id}:sngine_email");
    app.call_at(
        &app.security.address,
        Method::POST,
        &format!("/v1/transit/decrypt/{PII_KEY}"),
    )
    .header("X-Vault-Token", SECURITY_ADMIN_TOKEN)
    .json(&json!({
        "ciphertext": ciphertext,
        "associated_data": STANDARD.encode(aad),
        "context": STANDARD.encode(id.to_string()),
    }))
    .send()
    .await
}

/// How many context keys security-svc holds, and how many of them are destroyed.
async fn context_keys(app: &TestApp) -> (i64, i64) {
    let rows = app
        .rows(
            "SELECT count(*) AS total, count(*) FILTER (WHERE wrapped_key IS NULL) AS destroyed \
             FROM vottery_security_context_keys",
        )
        .await;
    (
        rows[0]["total"].as_i64().unwrap(),
        rows[0]["destroyed"].as_i64().unwrap(),
    )
}

/// Asserts a read of an erased user: PII null, `erased`, and no integrity failure.
fn assert_reads_erased(view: &Value) {
    assert_eq!(view["erased"], json!(true), "{view}");
    for field in [
        "sngine_email",
        "sngine_phone",
        "first_name",
        "last_name",
        "date_of_birth",
        "age",
    ] {
        assert_eq!(view[field], Value::Null, "{field} in {view}");
    }
    assert_eq!(view["signature"]["valid"], json!(true), "{view}");
    assert!(view.get("integrity_errors").is_none(), "{view}");
}

#[tokio::test]
async fn erasing_destroys_the_users_key_deletes_them_and_keeps_a_trail_without_pii() {
    let app = spawn_app().await;
    let user = subject(&app).await;
    let bystander = subject(&app).await;
    let stored = app.user_row(user.id).await;
    let email_ciphertext = stored["sngine_email"].as_str().unwrap().to_owned();
    assert_eq!(stored["pii_erasable"], json!(true));
    decrypt_stored(&app, user.id, &email_ciphertext)
        .await
        .expect(200);

    erase(&app, user.id, &app.manager.token).await.expect(204);

    app.get_as_manager(&format!("/api/users/{}", user.id))
        .await
        .problem(404);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM vottery_users WHERE id = {}",
            user.id
        ))
        .await,
        0
    );
    // The copy of the ciphertext taken before is unreadable for good.
    let refused = decrypt_stored(&app, user.id, &email_ciphertext).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.text.contains("context destroyed"),
        "{}",
        refused.text
    );
    assert_eq!(
        context_keys(&app).await.1,
        1,
        "only this user's key is destroyed"
    );
    assert_eq!(app.read_user(bystander.id).await["first_name"], FIRST_NAME);

    // The trail stays, says the subject was erased, and holds no PII value.
    let trail = app.audit_rows(user.id).await;
    let record = trail
        .iter()
        .find(|row| row["action"] == "user.erase")
        .expect("an erasure record");
    assert_eq!(record["success"], json!(true));
    assert_eq!(record["details"]["subject_erased"], json!(true), "{record}");
    assert_eq!(record["actor_id"], json!(app.manager.id), "{record}");
    let text = serde_json::to_string(&trail).unwrap();
    for value in [
        user.email.as_str(),
        user.phone.as_str(),
        FIRST_NAME,
        LAST_NAME,
    ] {
        assert!(!text.contains(value), "{value} in the trail");
    }
    let events = events_of(&app, user.id, 2).await;
    let erased = events
        .iter()
        .find(|event| event["type"] == "dev.vottery.user.erased")
        .expect("an erased event");
    assert_eq!(erased["data"]["user_id"], json!(user.id));
    assert!(!erased.to_string().contains(FIRST_NAME));

    // Erased is gone: asking again finds nobody and destroys nothing more.
    erase(&app, user.id, &app.manager.token).await.problem(404);
    assert_eq!(context_keys(&app).await.1, 1);
}

#[tokio::test]
async fn a_service_may_erase_on_the_users_request_and_lower_ranks_may_not() {
    let app = spawn_app().await;
    let user = subject(&app).await;
    let admin = app.user_with_role("admin").await;
    let before = app.user_row(user.id).await;

    erase(&app, user.id, &admin.token).await.problem(403);
    erase(&app, user.id, &user.token).await.problem(403);
    erase(&app, app.manager.id, &app.manager.token)
        .await
        .problem(403);
    assert_eq!(app.user_row(user.id).await, before, "nothing changed");
    assert_eq!(context_keys(&app).await.1, 0, "no key destroyed");
    let refusals = app
        .count(&format!(
            "SELECT count(*) FROM vottery_audit_logs WHERE user_id = {} \
             AND action = 'user.erase' AND NOT success",
            user.id
        ))
        .await;
    assert_eq!(refusals, 2);

    erase(&app, user.id, SERVICE_TOKEN).await.expect(204);
    app.get_as_manager(&format!("/api/users/{}", user.id))
        .await
        .problem(404);
}

#[tokio::test]
async fn bad_or_unknown_ids_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let user = subject(&app).await;
    let audited = app.audit_count().await;
    let keys = context_keys(&app).await;

    erase(&app, "abc", &app.manager.token)
        .await
        .assert_invalid(&["id"]);
    erase(&app, "0", &app.manager.token)
        .await
        .assert_invalid(&["id"]);
    erase(&app, 999_999, &app.manager.token).await.problem(404);
    let stale = app
        .call(Method::POST, &format!("/api/users/{}/erase", user.id))
        .token(&app.manager.token)
        .if_match(7)
        .send()
        .await;
    stale.problem(412);

    assert_eq!(
        context_keys(&app).await,
        keys,
        "no context key made or destroyed"
    );
    assert_eq!(app.read_user(user.id).await["first_name"], FIRST_NAME);
    // Only the refused attempts on a user are audited; nothing else was written.
    assert!(app.audit_count().await <= audited + 4);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM vottery_audit_logs WHERE action = 'user.erase' AND success"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn security_svc_sealed_or_down_answers_503_and_leaves_the_user_as_they_were() {
    let app = spawn_app().await;
    let user = subject(&app).await;
    let before = app.user_row(user.id).await;
    let audited = app.audit_count().await;

    let unreachable = app
        .start_instance(|settings| {
            settings.security.url = format!("http://127.0.0.1:{}", closed_port());
        })
        .await;
    let reply = app
        .call_at(
            &unreachable,
            Method::POST,
            &format!("/api/users/{}/erase", user.id),
        )
        .token(&app.manager.token)
        .send()
        .await;
    reply.problem(503);
    assert!(reply.header("retry-after").is_some(), "{}", reply.text);

    app.security.seal().await;
    let reply = erase(&app, user.id, &app.manager.token).await;
    reply.problem(503);
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    app.security.unseal().await;

    assert_eq!(app.user_row(user.id).await, before, "the row is unchanged");
    assert_eq!(app.audit_count().await, audited, "nothing was written");
    assert_eq!(context_keys(&app).await.1, 0, "no key destroyed");
    let view = app.read_user(user.id).await;
    assert_eq!(view["first_name"], FIRST_NAME);
    assert_eq!(view["signature"]["valid"], json!(true));
}

#[tokio::test]
async fn an_erasure_stopped_after_the_key_was_destroyed_reads_as_erased_and_completes_when_retried()
{
    let app = spawn_app().await;
    let user = subject(&app).await;
    let bystander = subject(&app).await;
    destroy_key_directly(&app, user.id).await;

    let view = app.read_user(user.id).await;
    assert_reads_erased(&view);
    assert_eq!(view["id"], json!(user.id));
    // In a page too, next to a user who reads in full.
    let page = app
        .get_as_manager("/api/users?limit=100")
        .await
        .expect(200)
        .clone();
    let listed = |id: i32| {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|view| view["id"] == json!(id))
            .cloned()
            .unwrap()
    };
    assert_reads_erased(&listed(user.id));
    assert_eq!(listed(bystander.id)["first_name"], FIRST_NAME);
    assert!(listed(bystander.id).get("erased").is_none());

    // A write cannot bring values back under a destroyed key.
    let refused = app
        .put_profile(user.id, &app.manager.token, json!({"first_name": "Again"}))
        .await;
    refused.problem(409);
    assert!(refused.text.contains("was erased"), "{}", refused.text);

    erase(&app, user.id, &app.manager.token).await.expect(204);
    app.get_as_manager(&format!("/api/users/{}", user.id))
        .await
        .problem(404);
    let records = app
        .count(&format!(
            "SELECT count(*) FROM vottery_audit_logs WHERE user_id = {} AND action = 'user.erase' AND success",
            user.id
        ))
        .await;
    assert_eq!(records, 1);
}

#[tokio::test]
async fn an_export_of_an_erased_user_not_yet_deleted_reports_the_fields_erased() {
    let app = spawn_app().await;
    let user = subject(&app).await;
    destroy_key_directly(&app, user.id).await;

    let reply = app
        .get_as_manager(&format!("/api/users/{}/export", user.id))
        .await;
    let document = reply.expect(200);
    assert_reads_erased(&document["profile"]);
    assert_eq!(document["user_id"], json!(user.id));
}

/// Runs a PostgreSQL client tool, which must succeed.
async fn run(tool: &str, args: &[&str]) {
    let output = tokio::process::Command::new(tool)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|error| panic!("{tool}: {error}"));
    assert!(
        output.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_backup_taken_before_an_erasure_does_not_bring_the_users_pii_back() {
    // security-svc keeps its key store in a database of its own: restoring user-svc's
    // database restores the ciphertexts, not the destroyed key.
    let app = spawn(Options {
        separate_security_database: true,
        ..Options::default()
    })
    .await;
    let erased = subject(&app).await;
    let others = [subject(&app).await, subject(&app).await];
    let dump = std::env::temp_dir().join(format!("{}.dump", app.database.name));
    let dump_path = dump.to_str().unwrap();
    run(
        "pg_dump",
        &[
            "--format=custom",
            "--no-owner",
            "--file",
            dump_path,
            &app.database.url,
        ],
    )
    .await;

    erase(&app, erased.id, &app.manager.token).await.expect(204);

    let restored = TestDatabase::empty("usr_restored").await;
    run(
        "pg_restore",
        &[
            "--no-owner",
            "--exit-on-error",
            "--dbname",
            &restored.url,
            dump_path,
        ],
    )
    .await;
    let _ = std::fs::remove_file(&dump);
    let restored_url = restored.url.clone();
    let from_backup = app
        .start_instance(move |settings| {
            settings.database.url = SecretString::from(restored_url);
            settings.database.migrate_on_start = false;
        })
        .await;
    let read = |id: i32| {
        let call = app
            .call_at(&from_backup, Method::GET, &format!("/api/users/{id}"))
            .token(&app.manager.token);
        async move { call.send().await.expect(200).clone() }
    };

    // The backup still holds the erased user's ciphertexts...
    let row = crate::helpers::query_rows(
        &mut restored.connect().await,
        &format!("SELECT * FROM vottery_users WHERE id = {}", erased.id),
    )
    .await;
    for column in ["sngine_email", "first_name"] {
        assert!(row[0][column].as_str().unwrap().starts_with("vault:v1:"));
    }
    assert!(PII_COLUMNS.len() == 5);
    // ...which no longer decrypt: the user reads as erased, not as tampered with.
    assert_reads_erased(&read(erased.id).await);
    // Everyone else reads back whole and valid.
    for other in &others {
        let view = read(other.id).await;
        assert_eq!(view["sngine_email"], json!(other.email), "{view}");
        assert_eq!(view["first_name"], FIRST_NAME);
        assert_eq!(view["signature"]["valid"], json!(true));
        assert!(view.get("erased").is_none());
        assert!(view.get("integrity_errors").is_none());
    }
    let manager = read(app.manager.id).await;
    assert_eq!(manager["signature"]["valid"], json!(true));
}

#[tokio::test]
async fn new_users_find_their_key_made_ahead_and_erasing_one_destroys_only_theirs() {
    let app = spawn_app_with(|settings| settings.security.contexts_ahead = 8).await;
    let first = subject(&app).await;
    let id = app.manager.id;
    assert_eq!(first.id, id + 1);
    // The manager was created through the test's own state (as the CLI does: another
    // instance), which made the keys of ids id+1..=id+8 ahead; the service's first create made
    // those of id+2..=id+9, of which only id+9 was new. With the manager's own: 10.
    let mut made = (0, 0);
    for _ in 0..100 {
        made = context_keys(&app).await;
        if made.0 == 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        made,
        (10, 0),
        "the manager's key and ids up to {} made ahead",
        id + 9
    );

    let user = subject(&app).await;
    let bystander = subject(&app).await;
    assert_eq!((user.id, bystander.id), (id + 2, id + 3));
    assert_eq!(
        context_keys(&app).await,
        (10, 0),
        "both users' keys were made ahead; their creates made none"
    );
    assert_eq!(app.read_user(user.id).await["first_name"], FIRST_NAME);

    erase(&app, user.id, &app.manager.token).await.expect(204);
    assert_eq!(context_keys(&app).await, (10, 1));
    let stored = app.user_row(bystander.id).await;
    let email = stored["sngine_email"].as_str().unwrap().to_owned();
    decrypt_stored(&app, bystander.id, &email).await.expect(200);
    assert_eq!(app.read_user(bystander.id).await["first_name"], FIRST_NAME);
}
