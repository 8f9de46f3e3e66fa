//! `user-svc encrypt-existing`: legacy plaintext rows are encrypted, indexed, signed and audited
//! in whole batches; an interrupted run leaves every row either untouched or fully upgraded and
//! a rerun resumes; nothing is done while security-svc is sealed or down; rows whose contacts
//! collide are skipped and reported.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use user_svc::startup::AppState;
use user_svc::users::backfill::{AUDIT_ACTION, SkipReason, encrypt_existing};
use user_svc::users::batches::{BatchError, BatchOptions, Progress};

use crate::helpers::{
    MANAGER_EMAIL, TestApp, batch_options, closed_port, failed_output, spawn_app,
};

const LEGACY_ROWS: i64 = 5_000;

/// Inserts `count` rows as the customer's tables hold them before user-svc: plaintext PII, no
/// blind index, no signature. Emails are mixed-case, phones formatted; some optional PII is
/// missing.
async fn seed_legacy_rows(app: &TestApp, count: i64) {
    app.exec(&format!(
        "INSERT INTO vottery_users (sngine_email, sngine_phone, status, user_type, \
             subscription_status, first_name, last_name, date_of_birth, country, created_at, updated_at) \
         SELECT 'Legacy.User' || g || '@Example.com', \
                '+1 (628) ' || lpad(g::text, 7, '0'), \
                CASE WHEN g % 4 = 0 THEN 'pending' ELSE 'active' END, 'voter', 'free', \
                CASE WHEN g % 3 = 0 THEN NULL ELSE 'First' || g END, \
                CASE WHEN g % 5 = 0 THEN NULL ELSE 'Last' || g END, \
                CASE WHEN g % 2 = 0 THEN NULL ELSE '19' || (50 + g % 50) || '-0' || (1 + g % 9) || '-1' || (g % 10) END, \
                'US', '2024-01-01'::timestamp + g * interval '1 minute', '2024-01-01'::timestamp \
         FROM generate_series(1, {count}) AS g"
    ))
    .await;
}

/// The seeded plaintext of every legacy row, by id.
async fn plaintext_snapshot(app: &TestApp) -> HashMap<i64, Value> {
    app.rows(&format!(
        "SELECT id, sngine_email, sngine_phone, first_name, last_name, date_of_birth \
         FROM vottery_users WHERE id <> {}",
        app.manager.id
    ))
    .await
    .into_iter()
    .map(|row| (row["id"].as_i64().unwrap(), row))
    .collect()
}

/// How the legacy rows stand: untouched, fully upgraded, and in all; and the audit rows of
/// upgrades.
#[derive(Debug, PartialEq, Eq)]
struct Tally {
    legacy: i64,
    encrypted: i64,
    total: i64,
    audited: i64,
}

async fn tally(app: &TestApp) -> Tally {
    let row = app
        .rows(&format!(
            "SELECT \
               count(*) FILTER (WHERE NOT pii_encrypted AND email_bidx IS NULL AND phone_bidx IS NULL \
                 AND record_signature IS NULL AND row_version = 1 \
                 AND sngine_email LIKE 'Legacy.User%' AND sngine_phone LIKE '+1 (628) %' \
                 AND coalesce(first_name, 'First') LIKE 'First%' AND coalesce(last_name, 'Last') LIKE 'Last%' \
                 AND coalesce(date_of_birth, '19') LIKE '19%') AS legacy, \
               count(*) FILTER (WHERE pii_encrypted AND email_bidx LIKE 'vault:v1:%' \
                 AND phone_bidx LIKE 'vault:v1:%' AND record_signature LIKE 'vault:v1:%' \
                 AND row_version = 2 AND sngine_email LIKE 'vault:v1:%' AND sngine_phone LIKE 'vault:v1:%' \
                 AND coalesce(first_name, 'vault:v1:') LIKE 'vault:v1:%' \
                 AND coalesce(last_name, 'vault:v1:') LIKE 'vault:v1:%' \
                 AND coalesce(date_of_birth, 'vault:v1:') LIKE 'vault:v1:%') AS encrypted, \
               count(*) AS total, \
               (SELECT count(*) FROM vottery_audit_logs WHERE action = '{AUDIT_ACTION}' AND success) AS audited \
             FROM vottery_users WHERE id <> {}",
            app.manager.id
        ))
        .await
        .pop()
        .unwrap();
    let number = |name: &str| row[name].as_i64().unwrap();
    Tally {
        legacy: number("legacy"),
        encrypted: number("encrypted"),
        total: number("total"),
        audited: number("audited"),
    }
}

/// Every row is either untouched or fully upgraded (and audited once); returns the upgraded.
async fn assert_consistent(app: &TestApp, total: i64) -> i64 {
    let tally = tally(app).await;
    assert_eq!(tally.total, total, "{tally:?}");
    assert_eq!(
        tally.legacy + tally.encrypted,
        total,
        "a row is half upgraded: {tally:?}"
    );
    assert_eq!(tally.audited, tally.encrypted, "{tally:?}");
    tally.encrypted
}

/// A fingerprint of every stored user row and audit row.
async fn fingerprint(app: &TestApp) -> (String, i64) {
    let rows = app
        .rows("SELECT md5(string_agg(t::text, '|' ORDER BY id)) AS sum FROM vottery_users t")
        .await;
    (
        rows[0]["sum"].as_str().unwrap().to_owned(),
        app.audit_count().await,
    )
}

/// Runs the command in-process, collecting its progress reports.
async fn run(
    state: &AppState,
    options: BatchOptions,
) -> (
    Result<user_svc::users::backfill::Summary, BatchError>,
    Vec<Progress>,
) {
    let mut reports = Vec::new();
    let result = encrypt_existing(state, options, |progress| reports.push(*progress)).await;
    (result, reports)
}

/// `user-svc encrypt-existing ARGS` against this app's database and `security_url`.
fn command(app: &TestApp, security_url: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = app.command(&["encrypt-existing"], security_url);
    command.args(args);
    command
}

#[tokio::test]
async fn legacy_rows_are_upgraded_in_whole_batches_and_a_stopped_run_resumes() {
    let app = spawn_app().await;
    seed_legacy_rows(&app, LEGACY_ROWS).await;
    let originals = plaintext_snapshot(&app).await;
    assert_eq!(originals.len() as i64, LEGACY_ROWS);
    assert_eq!(assert_consistent(&app, LEGACY_ROWS).await, 0);

    // The binary, killed once its progress shows a few batches done.
    let mut child = command(&app, &app.security.address, &["--batch-size", "100"])
        .spawn()
        .expect("the user-svc binary starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut progress_lines = Vec::new();
    while progress_lines.len() < 3 {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("progress within a minute")
            .unwrap()
            .unwrap_or_else(|| panic!("the command ended early: {progress_lines:?}"));
        if line.contains(" rows (") {
            progress_lines.push(line);
        }
    }
    child.kill().await.unwrap();
    assert!(
        progress_lines[0].starts_with("encrypt-existing: 100/5000 rows (2.0%)")
            && progress_lines[0].contains("rows/s")
            && progress_lines[0].contains("s left"),
        "{progress_lines:?}"
    );
    // Give PostgreSQL a moment to roll back the batch the kill interrupted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_kill = assert_consistent(&app, LEGACY_ROWS).await;
    assert!(
        (300..LEGACY_ROWS).contains(&after_kill) && after_kill % 100 == 0,
        "{after_kill} rows upgraded before the kill"
    );

    // In-process, stopped after two batches.
    let (summary, reports) = run(&app.state, batch_options(500, Some(2))).await;
    let summary = summary.unwrap();
    assert_eq!(summary.total, (LEGACY_ROWS - after_kill) as u64);
    assert_eq!(summary.encrypted, 1_000);
    assert_eq!(summary.batches, 2);
    assert!(summary.stopped_early && summary.skipped.is_empty());
    assert_eq!(summary.remaining, summary.total - 1_000);
    assert_eq!(
        reports.iter().map(|report| report.done).collect::<Vec<_>>(),
        vec![500, 1_000]
    );
    assert_eq!(
        assert_consistent(&app, LEGACY_ROWS).await,
        after_kill + 1_000
    );

    // Resumed to the end.
    let (summary, reports) = run(&app.state, BatchOptions::default()).await;
    let summary = summary.unwrap();
    let rest = (LEGACY_ROWS - after_kill - 1_000) as u64;
    assert_eq!((summary.total, summary.encrypted), (rest, rest));
    assert_eq!(summary.remaining, 0);
    assert!(!summary.stopped_early && summary.skipped.is_empty());
    let last = reports.last().unwrap();
    assert_eq!((last.done, last.total), (rest, rest));
    assert!(
        summary
            .to_string()
            .contains(&format!("encrypted {rest} of {rest} plaintext rows"))
    );
    let tally = tally(&app).await;
    assert_eq!(
        tally,
        Tally {
            legacy: 0,
            encrypted: LEGACY_ROWS,
            total: LEGACY_ROWS,
            audited: LEGACY_ROWS,
        }
    );

    // Every row reads back through the API as it was, signed.
    let mut seen = 0;
    for page in 1.. {
        let reply = app.list_users(&format!("limit=100&page={page}")).await;
        let page = reply.expect(200);
        let users = page["data"].as_array().unwrap();
        if users.is_empty() {
            break;
        }
        for user in users {
            let id = user["id"].as_i64().unwrap();
            if id == i64::from(app.manager.id) {
                continue;
            }
            let original = &originals[&id];
            for field in ["sngine_email", "sngine_phone", "first_name", "last_name"] {
                assert_eq!(user[field], original[field], "user {id}: {field}");
            }
            assert_eq!(
                user["date_of_birth"], original["date_of_birth"],
                "user {id}"
            );
            assert_eq!(user["signature"]["valid"], json!(true), "user {id}");
            assert_eq!(user["signature"]["key_version"], json!(1), "user {id}");
            assert_eq!(user["version"], json!(2), "user {id}");
            assert!(
                user.get("integrity_errors")
                    .is_none_or(|errors| errors.as_array().is_none_or(Vec::is_empty))
            );
            seen += 1;
        }
    }
    assert_eq!(seen, LEGACY_ROWS);

    // Blind-index lookups find them by their normalised email.
    for n in [1, 777, 2_500, 5_000] {
        let id = originals
            .iter()
            .find(|(_, row)| row["sngine_email"] == json!(format!("Legacy.User{n}@Example.com")))
            .map(|(id, _)| *id)
            .unwrap();
        let reply = app
            .list_users(&format!("email=legacy.user{n}@EXAMPLE.com"))
            .await;
        let found = reply.expect(200);
        assert_eq!(found["total"], json!(1), "{n}");
        assert_eq!(found["data"][0]["id"], json!(id), "{n}");
    }
    // The audit trail names the command and stays a valid chain.
    let id = *originals.keys().next().unwrap();
    let trail = app.get_as_manager(&format!("/api/users/{id}/audit")).await;
    let trail = trail.expect(200);
    assert_eq!(trail["chain"]["valid"], json!(true));
    assert_eq!(trail["data"][0]["action"], json!(AUDIT_ACTION));
    assert_eq!(
        trail["data"][0]["details"]["actor"],
        json!("service:encrypt-existing")
    );
    // A user's own write afterwards works on the upgraded row.
    app.put_profile(id, &app.manager.token, json!({"city": "Fresno"}))
        .await
        .expect(200);

    // A third run finds nothing to do and changes nothing.
    let before = fingerprint(&app).await;
    let (summary, reports) = run(&app.state, BatchOptions::default()).await;
    let summary = summary.unwrap();
    assert_eq!(
        (
            summary.total,
            summary.encrypted,
            summary.remaining,
            summary.batches
        ),
        (0, 0, 0, 0)
    );
    assert!(reports.is_empty());
    assert_eq!(fingerprint(&app).await, before);
}

#[tokio::test]
async fn nothing_is_touched_while_security_svc_is_sealed_or_down() {
    let app = spawn_app().await;
    seed_legacy_rows(&app, 50).await;
    let before = fingerprint(&app).await;

    app.security.seal().await;
    let (result, reports) = run(&app.state, BatchOptions::default()).await;
    assert!(matches!(result, Err(BatchError::Sealed)), "{result:?}");
    assert!(reports.is_empty());
    let stderr = failed_output(command(&app, &app.security.address, &[])).await;
    assert!(stderr.contains("security-svc is sealed"), "{stderr}");
    assert_eq!(fingerprint(&app).await, before);

    // Down: nothing answers at security-svc's address.
    app.security.unseal().await;
    let down = format!("http://127.0.0.1:{}", closed_port());
    let stderr = failed_output(command(&app, &down, &[])).await;
    assert!(stderr.contains("security-svc is unreachable"), "{stderr}");
    assert_eq!(fingerprint(&app).await, before);

    // A batch size security-svc could not take in one call is refused up front.
    let (result, _) = run(&app.state, batch_options(5_000, None)).await;
    assert!(matches!(result, Err(BatchError::BatchSize)), "{result:?}");
    assert_eq!(fingerprint(&app).await, before);

    // Unsealed again, the run goes through.
    let (result, _) = run(&app.state, BatchOptions::default()).await;
    assert_eq!(result.unwrap().encrypted, 50);
    assert_eq!(assert_consistent(&app, 50).await, 50);
}

#[tokio::test]
async fn rows_whose_contacts_collide_are_skipped_and_reported() {
    let app = spawn_app().await;
    app.exec(&format!(
        "INSERT INTO vottery_users (id, sngine_email, sngine_phone) VALUES \
           (101, 'Dup@Example.com', '+14155550101'), \
           (102, 'other@example.com', '+14155550102'), \
           (103, ' dup@example.COM ', '+14155550103'), \
           (104, 'third@example.com', '+1 415 555 0102'), \
           (105, '{}', '+14155550105'), \
           (106, 'fine@example.com', '+14155550106')",
        MANAGER_EMAIL.to_uppercase()
    ))
    .await;
    let (summary, _) = run(&app.state, batch_options(4, None)).await;
    let summary = summary.unwrap();
    assert_eq!(summary.total, 6);
    assert_eq!(summary.encrypted, 3);
    assert_eq!(summary.remaining, 3);
    let mut skipped: Vec<(i32, SkipReason)> = summary
        .skipped
        .iter()
        .map(|row| (row.user_id, row.reason))
        .collect();
    skipped.sort_by_key(|(id, _)| *id);
    assert_eq!(
        skipped,
        vec![
            (103, SkipReason::DuplicateEmail { other: 101 }),
            (104, SkipReason::DuplicatePhone { other: 102 }),
            (
                105,
                SkipReason::DuplicateEmail {
                    other: app.manager.id
                }
            ),
        ]
    );
    let report = summary.skipped[0].to_string();
    assert!(
        report.contains("left plaintext") && !report.contains('@'),
        "{report}"
    );
    // The skipped rows keep their plaintext and read as before; the others are upgraded.
    let stored = app
        .rows(
            "SELECT id, pii_encrypted, sngine_email FROM vottery_users WHERE id > 100 ORDER BY id",
        )
        .await;
    let flags: Vec<bool> = stored
        .iter()
        .map(|row| row["pii_encrypted"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, vec![true, true, false, false, false, true]);
    assert_eq!(stored[2]["sngine_email"], json!(" dup@example.COM "));
    assert_eq!(
        app.read_user(103).await["sngine_email"],
        json!(" dup@example.COM ")
    );

    // The binary lists them and exits non-zero; a rerun changes nothing else.
    let before = fingerprint(&app).await;
    let stderr = failed_output(command(&app, &app.security.address, &[])).await;
    assert!(
        stderr.contains("user 103 left plaintext") && stderr.contains("3 rows were left plaintext"),
        "{stderr}"
    );
    assert!(
        stderr.contains("encrypted 0 of 3 plaintext rows"),
        "{stderr}"
    );
    assert_eq!(fingerprint(&app).await, before);
}

#[tokio::test]
async fn the_largest_batches_go_through_and_every_row_is_audited_once() {
    let app = spawn_app().await;
    seed_legacy_rows(&app, 2_500).await;
    let ids: Vec<i64> = app
        .rows(&format!(
            "SELECT id FROM vottery_users WHERE id <> {} ORDER BY id",
            app.manager.id
        ))
        .await
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect();
    // One legacy user already has an audit chain (a refused attempt about them): the upgrade
    // extends it rather than starting one.
    let with_chain = ids[1_500] as i32;
    let request = user_svc::audit::RequestMeta {
        request_id: "refused-before-upgrade".into(),
        ip: None,
        user_agent: None,
    };
    let mut conn = app.state.pool.get().await.unwrap();
    user_svc::audit::append(
        &mut conn,
        &user_svc::audit::AuditEvent {
            user_id: Some(with_chain),
            actor_id: Some(app.manager.id),
            actor_label: "user",
            action: "user.update_profile",
            changed_fields: vec!["city".into()],
            success: false,
            reason: Some("forbidden".into()),
            facts: None,
            request: &request,
            events: Vec::new(),
        },
    )
    .await
    .unwrap();
    drop(conn);

    let (summary, reports) = run(
        &app.state,
        batch_options(user_svc::users::batches::MAX_BATCH_SIZE, None),
    )
    .await;
    let summary = summary.unwrap();
    assert_eq!((summary.encrypted, summary.batches), (2_500, 3));
    assert!(summary.skipped.is_empty() && summary.remaining == 0);
    assert_eq!(
        reports.iter().map(|report| report.done).collect::<Vec<_>>(),
        vec![1_000, 2_000, 2_500]
    );
    assert_eq!(assert_consistent(&app, 2_500).await, 2_500);
    let audited = app
        .rows(&format!(
            "SELECT count(*) AS rows, count(DISTINCT user_id) AS users, \
               count(*) FILTER (WHERE chain_seq = 1) AS first, \
               max(chain_seq) FILTER (WHERE user_id = {with_chain}) AS extended \
             FROM vottery_audit_logs WHERE action = '{AUDIT_ACTION}'"
        ))
        .await;
    assert_eq!(audited[0]["rows"], json!(2_500));
    assert_eq!(audited[0]["users"], json!(2_500));
    assert_eq!(audited[0]["first"], json!(2_499));
    assert_eq!(audited[0]["extended"], json!(2));
    for id in [ids[0], ids[999], ids[1_000], with_chain.into(), ids[2_499]] {
        let trail = app.get_as_manager(&format!("/api/users/{id}/audit")).await;
        let trail = trail.expect(200);
        assert_eq!(trail["chain"]["valid"], json!(true), "user {id}");
        assert_eq!(trail["data"][0]["action"], json!(AUDIT_ACTION), "user {id}");
    }
}

#[tokio::test]
async fn a_row_changed_while_its_batch_is_sealed_is_left_as_it_now_is_and_taken_next_run() {
    let app = spawn_app().await;
    seed_legacy_rows(&app, 10).await;
    let changed = app
        .count(&format!(
            "SELECT min(id) + 3 FROM vottery_users WHERE id <> {}",
            app.manager.id
        ))
        .await;
    // The customer's application changes one row while security-svc seals the batch: security-svc
    // makes the rows' context keys in the same database, and this trigger fires then, once.
    app.exec(&format!(
        "CREATE FUNCTION change_meanwhile() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         UPDATE vottery_users SET city = 'Changed meanwhile' \
         WHERE id = {changed} AND city IS NULL; RETURN NULL; END $$; \
         CREATE TRIGGER change_meanwhile AFTER INSERT ON vottery_security_context_keys \
         FOR EACH STATEMENT EXECUTE FUNCTION change_meanwhile()"
    ))
    .await;

    let (summary, _) = run(&app.state, BatchOptions::default()).await;
    let summary = summary.unwrap();
    assert_eq!(
        (summary.total, summary.encrypted, summary.remaining),
        (10, 9, 1)
    );
    let row = app
        .rows(&format!(
            "SELECT pii_encrypted, city, sngine_email, row_version FROM vottery_users WHERE id = {changed}"
        ))
        .await
        .pop()
        .unwrap();
    assert_eq!(
        row,
        json!({"pii_encrypted": false, "city": "Changed meanwhile",
               "sngine_email": "Legacy.User4@Example.com", "row_version": 1})
    );
    let audited = app
        .count(&format!(
            "SELECT count(*) FROM vottery_audit_logs WHERE user_id = {changed} AND action = '{AUDIT_ACTION}'"
        ))
        .await;
    assert_eq!(audited, 0);

    // The next run takes it, with the change it holds now.
    app.exec("DROP TRIGGER change_meanwhile ON vottery_security_context_keys")
        .await;
    let (summary, _) = run(&app.state, BatchOptions::default()).await;
    assert_eq!(summary.unwrap().encrypted, 1);
    let user = app.read_user(changed as i32).await;
    assert_eq!(user["city"], json!("Changed meanwhile"));
    assert_eq!(user["sngine_email"], json!("Legacy.User4@Example.com"));
    assert_eq!(user["signature"]["valid"], json!(true));
}
