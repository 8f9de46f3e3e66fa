//! Keys created with `context_keys`: a destroyable data key per context (crypto-shredding).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

const KEY: &str = "vottery-users-pii";

async fn context_app() -> TestApp {
    let app = spawn_unsealed().await;
    app.create_key_with(KEY, json!({ "context_keys": true }))
        .await;
    app
}

async fn encrypt_under(app: &TestApp, context: &str, plaintext: &[u8]) -> Reply {
    app.transit(
        &format!("encrypt/{KEY}"),
        json!({ "plaintext": b64(plaintext), "context": b64(context) }),
    )
    .await
}

async fn ciphertext_under(app: &TestApp, context: &str, plaintext: &[u8]) -> String {
    let reply = encrypt_under(app, context, plaintext).await;
    reply.ok()["ciphertext"].as_str().unwrap().to_owned()
}

async fn decrypt_under(app: &TestApp, context: &str, ciphertext: &str) -> Reply {
    app.try_decrypt(
        KEY,
        json!({ "ciphertext": ciphertext, "context": b64(context) }),
    )
    .await
}

async fn destroy(app: &TestApp, token: Option<&str>, key: &str, body: Value) -> Reply {
    app.transit_as(token, &format!("keys/{key}/contexts/destroy"), body)
        .await
}

async fn destroy_context(app: &TestApp, context: &str) -> Reply {
    destroy(app, ADMIN, KEY, json!({ "context": b64(context) })).await
}

fn plaintext_of(reply: &Reply) -> Vec<u8> {
    unb64(reply.ok()["plaintext"].as_str().unwrap())
}

#[tokio::test]
async fn each_context_has_its_own_key_and_the_key_read_shows_the_setting() {
    let app = context_app().await;
    assert_eq!(app.read_key(KEY).await["context_keys"], json!(true));
    let ciphertext = ciphertext_under(&app, "user-1", b"alice@example.com").await;
    assert_versioned(&ciphertext, 1);
    let reply = decrypt_under(&app, "user-1", &ciphertext).await;
    assert_eq!(plaintext_of(&reply), b"alice@example.com");
    // A context that never had a key, then one that has its own.
    decrypt_under(&app, "user-2", &ciphertext)
        .await
        .assert_error(400, "no data key exists for this context");
    ciphertext_under(&app, "user-2", b"bob").await;
    decrypt_under(&app, "user-2", &ciphertext)
        .await
        .assert_error(400, "message authentication failed");
    // One data key per context, stored wrapped and found by a keyed hash only.
    let mut conn = app.db().await;
    let rows: Vec<(Vec<u8>, Option<Vec<u8>>)> = {
        use diesel_async::RunQueryDsl;
        diesel::sql_query(
            "SELECT context_hash, wrapped_key FROM vottery_security_context_keys ORDER BY 1",
        )
        .load::<ContextRowView>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.context_hash, row.wrapped_key))
        .collect()
    };
    assert_eq!(rows.len(), 2);
    for (hash, wrapped) in rows {
        assert_eq!(hash.len(), 32);
        assert!(
            !hash
                .windows(6)
                .any(|part| part == b"user-1" || part == b"user-2")
        );
        assert!(wrapped.unwrap().len() > 32);
    }
}

#[derive(diesel::QueryableByName)]
struct ContextRowView {
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    context_hash: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bytea>)]
    wrapped_key: Option<Vec<u8>>,
}

#[tokio::test]
async fn a_key_with_context_keys_refuses_requests_without_context_and_bad_settings() {
    let app = context_app().await;
    let missing = "missing 'context'";
    app.transit(&format!("encrypt/{KEY}"), json!({ "plaintext": b64("x") }))
        .await
        .assert_error(400, missing);
    let ciphertext = ciphertext_under(&app, "user-1", b"x").await;
    app.try_decrypt(KEY, json!({ "ciphertext": ciphertext }))
        .await
        .assert_error(400, missing);
    app.assert_refusals([
        (
            format!("rewrap/{KEY}"),
            json!({ "ciphertext": ciphertext }),
            missing,
        ),
        (
            format!("encrypt/{KEY}"),
            json!({ "plaintext": b64("x"), "context": "%%%" }),
            "failed to base64-decode context",
        ),
    ])
    .await;
    for (body, needle) in [
        (
            json!({ "type": "ed25519", "context_keys": true }),
            "context_keys is not supported",
        ),
        (
            json!({ "derived": true, "context_keys": true }),
            "cannot be combined with derived",
        ),
        (json!({ "context_keys": "maybe" }), ""),
    ] {
        app.transit("keys/other", body)
            .await
            .assert_error(400, needle);
    }
    assert_eq!(app.read_key(KEY).await["derived"], json!(false));
}

#[tokio::test]
async fn a_destroyed_context_cannot_be_read_or_made_again_and_destroying_is_idempotent() {
    let app = context_app().await;
    let gone = ciphertext_under(&app, "user-1", b"alice").await;
    let kept = ciphertext_under(&app, "user-2", b"bob").await;
    let first = destroy_context(&app, "user-1").await;
    assert_eq!(first.ok(), &json!({ "destroyed": true }));
    decrypt_under(&app, "user-1", &gone)
        .await
        .assert_error(400, "context destroyed");
    encrypt_under(&app, "user-1", b"again")
        .await
        .assert_error(400, "context destroyed");
    app.transit(
        &format!("rewrap/{KEY}"),
        json!({ "ciphertext": gone, "context": b64("user-1") }),
    )
    .await
    .assert_error(400, "context destroyed");
    assert_eq!(destroy_context(&app, "user-1").await.ok(), first.ok());
    let client = app.client(ADMIN.unwrap());
    client
        .call(None)
        .destroy_context(KEY, b"user-1")
        .await
        .unwrap();
    // A context destroyed before it was ever used is never made either.
    destroy_context(&app, "user-3").await.ok();
    encrypt_under(&app, "user-3", b"x")
        .await
        .assert_error(400, "context destroyed");
    let reply = decrypt_under(&app, "user-2", &kept).await;
    assert_eq!(plaintext_of(&reply), b"bob");
}

#[tokio::test]
async fn destroying_refuses_unknown_keys_plain_keys_and_bad_bodies() {
    let app = context_app().await;
    destroy(&app, ADMIN, "nope", json!({ "context": b64("a") }))
        .await
        .assert_empty_error(404);
    app.create_key("plain", "aes256-gcm96").await;
    destroy(&app, ADMIN, "plain", json!({ "context": b64("a") }))
        .await
        .assert_error(400, "not created with context_keys");
    for (body, needle) in [
        (json!({}), "missing 'context' to destroy"),
        (json!({ "context": "" }), "missing 'context' to destroy"),
        (
            json!({ "context": "%%%" }),
            "failed to base64-decode context",
        ),
    ] {
        destroy(&app, ADMIN, KEY, body)
            .await
            .assert_error(400, needle);
    }
}

#[tokio::test]
async fn destroying_needs_the_operation_on_the_key() {
    let app = context_app().await;
    app.create_key_with("orders-contexts", json!({ "context_keys": true }))
        .await;
    // user-svc's token encrypts under contexts of its keys and destroys them (erasure), and
    // may not destroy the contexts of any other key.
    let reply = app
        .transit_as(
            USER,
            &format!("encrypt/{KEY}"),
            json!({ "plaintext": b64("x"), "context": b64("user-1") }),
        )
        .await;
    reply.ok();
    destroy(
        &app,
        USER,
        "orders-contexts",
        json!({ "context": b64("user-1") }),
    )
    .await
    .assert_denied();
    destroy(&app, USER, KEY, json!({ "context": b64("user-1") }))
        .await
        .ok();
    destroy(&app, NO_TOKEN, KEY, json!({ "context": b64("user-2") }))
        .await
        .assert_denied();
}

#[tokio::test]
async fn a_second_instance_refuses_a_destroyed_context_within_five_seconds() {
    let first = context_app().await;
    let second = spawn_second_instance(&first).await;
    let ciphertext = ciphertext_under(&second, "user-1", b"alice").await;
    // The second instance now holds the context's key in its cache.
    let reply = decrypt_under(&second, "user-1", &ciphertext).await;
    assert_eq!(plaintext_of(&reply), b"alice");
    let destroyed_at = Instant::now();
    destroy_context(&first, "user-1").await.ok();
    decrypt_under(&first, "user-1", &ciphertext)
        .await
        .assert_error(400, "context destroyed");
    eventually(
        Duration::from_secs(5),
        "the second instance to refuse",
        || {
            let second = &second;
            let ciphertext = &ciphertext;
            async move {
                let reply = decrypt_under(second, "user-1", ciphertext).await;
                (reply.status() == 400).then_some(reply)
            }
        },
    )
    .await
    .assert_error(400, "context destroyed");
    assert!(destroyed_at.elapsed() < Duration::from_secs(5));
    encrypt_under(&second, "user-1", b"again")
        .await
        .assert_error(400, "context destroyed");
}

#[tokio::test]
async fn rotation_rewrap_and_minimum_versions_work_with_context_keys() {
    let app = context_app().await;
    let v1 = ciphertext_under(&app, "user-1", b"alice").await;
    app.rotate(KEY).await;
    let rewrapped = app
        .transit(
            &format!("rewrap/{KEY}"),
            json!({ "ciphertext": v1, "context": b64("user-1") }),
        )
        .await;
    let v2 = rewrapped.ok()["ciphertext"].as_str().unwrap().to_owned();
    assert_versioned(&v2, 2);
    // A context first used after the rotation, and one from before it.
    let fresh = ciphertext_under(&app, "user-2", b"bob").await;
    assert_versioned(&fresh, 2);
    for (context, ciphertext, plain) in [
        ("user-1", &v1, &b"alice"[..]),
        ("user-1", &v2, b"alice"),
        ("user-2", &fresh, b"bob"),
    ] {
        let reply = decrypt_under(&app, context, ciphertext).await;
        assert_eq!(plaintext_of(&reply), plain);
    }
    app.configure_key(
        KEY,
        json!({ "min_decryption_version": 2, "min_encryption_version": 2 }),
    )
    .await
    .ok();
    decrypt_under(&app, "user-1", &v1)
        .await
        .assert_error(400, "disallowed by policy");
    let reply = decrypt_under(&app, "user-1", &v2).await;
    assert_eq!(plaintext_of(&reply), b"alice");
    // Trimming would lose the data keys still wrapped under version 1.
    app.transit(
        &format!("keys/{KEY}/trim"),
        json!({ "min_available_version": 2 }),
    )
    .await
    .assert_error(400, "context keys are wrapped under older versions");
}

#[tokio::test]
async fn batches_report_a_destroyed_context_in_its_own_item() {
    let app = context_app().await;
    let items = json!([
        { "plaintext": b64("a"), "context": b64("user-1"), "reference": "1" },
        { "plaintext": b64("b"), "context": b64("user-2"), "reference": "2" },
        { "plaintext": b64("c"), "context": b64("user-1"), "reference": "3" },
    ]);
    let reply = app
        .transit(&format!("encrypt/{KEY}"), json!({ "batch_input": items }))
        .await;
    let results = reply.ok()["batch_results"].as_array().unwrap().clone();
    destroy_context(&app, "user-2").await.ok();
    let contexts = ["user-1", "user-2", "user-1"];
    let decrypt_items: Vec<Value> = results
        .iter()
        .zip(contexts)
        .map(|(result, context)| json!({ "ciphertext": result["ciphertext"], "context": b64(context) }))
        .collect();
    let reply = app
        .try_decrypt(KEY, json!({ "batch_input": decrypt_items }))
        .await;
    assert_eq!(reply.status(), 400, "{}", reply.text);
    let results = &reply.json["data"]["batch_results"];
    assert_eq!(unb64(results[0]["plaintext"].as_str().unwrap()), b"a");
    assert_eq!(results[1]["error"], json!("context destroyed"));
    assert_eq!(unb64(results[2]["plaintext"].as_str().unwrap()), b"c");
    let reply = app
        .transit(
            &format!("encrypt/{KEY}"),
            json!({ "batch_input": [
                { "plaintext": b64("d"), "context": b64("user-2") },
                { "plaintext": b64("e"), "context": b64("user-4") },
            ] }),
        )
        .await;
    assert_eq!(reply.status(), 400, "{}", reply.text);
    let results = &reply.json["data"]["batch_results"];
    assert_eq!(results[0]["error"], json!("context destroyed"));
    assert_versioned(results[1]["ciphertext"].as_str().unwrap(), 1);
}

/// Everything security-svc logs at info, for the whole test binary (installed once).
fn captured_logs() -> LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogBuffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("security_svc=info")
            .with_ansi(false)
            .with_writer(logs.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
    .clone()
}

#[tokio::test]
async fn the_log_line_of_a_destruction_names_the_context_only_by_its_hash() {
    let logs = captured_logs();
    let app = context_app().await;
    let context = "subject-6c1f0e7a-erase-me";
    ciphertext_under(&app, context, b"x").await;
    destroy_context(&app, context).await.ok();
    let text = logs.text();
    let line = text
        .lines()
        .find(|line| line.contains("context key destroyed") && line.contains(KEY))
        .unwrap_or_else(|| panic!("no destruction logged in {text}"));
    assert!(line.contains("context_hash="), "{line}");
    assert!(!text.contains(context) && !text.contains(&b64(context)));
}

/// The stored rows of `KEY`'s contexts: how many, and how many are tombstones.
async fn stored_contexts(app: &TestApp) -> (i64, i64) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use security_svc::schema::vottery_security_context_keys as contexts;
    let mut conn = app.db().await;
    let rows: Vec<Option<Vec<u8>>> = contexts::table
        .filter(contexts::key_name.eq(KEY))
        .select(contexts::wrapped_key)
        .load(&mut conn)
        .await
        .expect("the context rows");
    let destroyed = rows.iter().filter(|wrapped| wrapped.is_none()).count();
    (rows.len() as i64, destroyed as i64)
}

async fn encrypt_batch(app: &TestApp, contexts: &[&str]) -> Reply {
    let items: Vec<Value> = contexts
        .iter()
        .map(|context| json!({ "plaintext": b64(context.as_bytes()), "context": b64(context) }))
        .collect();
    app.transit(&format!("encrypt/{KEY}"), json!({ "batch_input": items }))
        .await
}

#[tokio::test]
async fn requests_making_the_same_contexts_at_once_end_with_one_key_each_that_all_of_them_use() {
    let first = context_app().await;
    let second = spawn_second_instance(&first).await;
    let apps = [&first, &second];
    // Single values under one new context, on two instances at once.
    let made = futures_util::future::join_all((0..16).map(|request| {
        let app = apps[request % 2];
        async move { ciphertext_under(app, "new-user", format!("v{request}").as_bytes()).await }
    }))
    .await;
    for (request, ciphertext) in made.iter().enumerate() {
        for app in apps {
            let reply = decrypt_under(app, "new-user", ciphertext).await;
            assert_eq!(plaintext_of(&reply), format!("v{request}").as_bytes());
        }
    }
    assert_eq!(stored_contexts(&first).await, (1, 0));
    // Batches making overlapping sets of new contexts, named in opposite orders.
    let forward = ["a", "b", "c", "d"];
    let backward = ["d", "c", "b", "a"];
    let replies = futures_util::future::join_all((0..8).map(|request| {
        let app = apps[request % 2];
        let contexts = if request % 2 == 0 {
            &forward
        } else {
            &backward
        };
        encrypt_batch(app, contexts)
    }))
    .await;
    for (request, reply) in replies.iter().enumerate() {
        let contexts = if request % 2 == 0 {
            &forward
        } else {
            &backward
        };
        let results = reply.ok()["batch_results"].as_array().unwrap();
        for (context, result) in contexts.iter().zip(results) {
            let ciphertext = result["ciphertext"].as_str().unwrap();
            let reply = decrypt_under(apps[(request + 1) % 2], context, ciphertext).await;
            assert_eq!(plaintext_of(&reply), context.as_bytes());
        }
    }
    assert_eq!(stored_contexts(&first).await, (5, 0));
}

#[tokio::test]
async fn many_requests_making_new_contexts_at_once_each_get_a_key_of_their_own() {
    let app = context_app().await;
    let users: Vec<String> = (0..64).map(|user| format!("user-{user}")).collect();
    let made = futures_util::future::join_all(
        users
            .iter()
            .map(|user| ciphertext_under(&app, user, user.as_bytes())),
    )
    .await;
    assert_eq!(stored_contexts(&app).await, (64, 0));
    for (index, (user, ciphertext)) in users.iter().zip(&made).enumerate() {
        let reply = decrypt_under(&app, user, ciphertext).await;
        assert_eq!(plaintext_of(&reply), user.as_bytes());
        // Under another user's context (its own key) the value does not open.
        let other = decrypt_under(&app, &users[(index + 1) % users.len()], ciphertext).await;
        assert_eq!(other.status.as_u16(), 400, "{}", other.text);
    }
}

#[tokio::test]
async fn a_destroyed_context_is_not_made_again_by_a_later_encrypt_on_any_instance() {
    let first = context_app().await;
    let second = spawn_second_instance(&first).await;
    destroy_context(&first, "gone").await.ok();
    assert_eq!(stored_contexts(&first).await, (1, 1));
    for app in [&first, &second] {
        encrypt_under(app, "gone", b"x")
            .await
            .assert_error(400, "context destroyed");
        let reply = encrypt_batch(app, &["fresh", "gone"]).await;
        let results = reply.json["data"]["batch_results"].as_array().unwrap();
        assert!(results[0]["ciphertext"].is_string());
        assert_eq!(results[1]["error"], json!("context destroyed"));
    }
    assert_eq!(stored_contexts(&first).await, (2, 1));
}

#[tokio::test]
async fn destroying_a_context_evicts_only_that_context_from_the_other_instances_cache() {
    let first = context_app().await;
    let second = spawn_second_instance(&first).await;
    let gone = ciphertext_under(&second, "user-1", b"alice").await;
    let kept = ciphertext_under(&second, "user-2", b"bob").await;
    let store = second.state.seal.store().expect("unsealed");
    let cache = &store.context_state().cache;
    assert_eq!(cache.len(), 2);
    destroy_context(&first, "user-1").await.ok();
    eventually(
        Duration::from_secs(5),
        "the second instance to evict the destroyed context",
        || async { (cache.len() == 1).then_some(()) },
    )
    .await;
    decrypt_under(&second, "user-1", &gone)
        .await
        .assert_error(400, "context destroyed");
    let reply = decrypt_under(&second, "user-2", &kept).await;
    assert_eq!(plaintext_of(&reply), b"bob");
    assert_eq!(cache.len(), 1);
}
