//! `user-svc rewrap`: after the PII and signing keys rotate, stored records move onto the new
//! versions (rewrapped, signed again, audited) in committed batches, so that the old versions
//! can be retired; a tampered record is left as it is and reported; nothing is done while
//! security-svc is sealed.

use serde_json::{Value, json};
use user_svc::users::batches::{BatchError, BatchOptions, Progress};
use user_svc::users::rewrap::{AUDIT_ACTION, LeftReason, LeftRow, Summary, Targets, rewrap};

use crate::helpers::{PII_COLUMNS, TestApp, spawn_app, spawn_app_with};

async fn run(app: &TestApp, options: BatchOptions) -> (Result<Summary, BatchError>, Vec<Progress>) {
    let mut reports = Vec::new();
    let result = rewrap(&app.state, options, |progress| reports.push(*progress)).await;
    (result, reports)
}

/// The key versions a stored row's PII ciphertexts and signature name.
fn versions(row: &Value) -> Vec<String> {
    PII_COLUMNS
        .iter()
        .chain(["record_signature"].iter())
        .filter_map(|column| row[*column].as_str())
        .map(|value| value.split(':').take(2).collect::<Vec<_>>().join(":"))
        .collect()
}

/// What a read shows of a user, without the parts a rewrap changes.
fn shown(mut read: Value) -> Value {
    for field in ["version", "updated_at", "signature"] {
        read.as_object_mut().unwrap().remove(field);
    }
    read
}

#[tokio::test]
async fn stored_records_move_onto_the_latest_key_versions_and_old_ones_can_be_retired() {
    // Signatures checked by security-svc on every read, so the retirement below applies at once.
    let app = spawn_app_with(|settings| settings.security.signing_key_refresh_ms = 0).await;
    let mut ids = vec![app.manager.id];
    for n in 0..4 {
        let user = app
            .create_user_with(json!({
                "first_name": format!("Runa{n}"),
                "last_name": "Rewrap",
                "date_of_birth": "1991-03-04"
            }))
            .await;
        ids.push(user.id);
    }
    let tampered = app.create_user().await.id;
    app.exec(&format!(
        "UPDATE vottery_users SET city = 'Elsewhere' WHERE id = {tampered}"
    ))
    .await;
    let mut before = Vec::new();
    for id in &ids {
        let row = app.user_row(*id).await;
        before.push((
            shown(app.read_user(*id).await),
            (row["email_bidx"].clone(), row["phone_bidx"].clone()),
        ));
    }
    let tampered_row = app.user_row(tampered).await;
    app.configure_key("vottery-users-pii/rotate", json!({}))
        .await;
    app.configure_key("vottery-users-records/rotate", json!({}))
        .await;
    let audit_before = app.audit_count().await;

    let (summary, reports) = run(
        &app,
        BatchOptions {
            batch_size: 2,
            max_batches: None,
        },
    )
    .await;
    let summary = summary.unwrap();
    assert_eq!(summary.targets, Targets { pii: 2, signing: 2 });
    assert_eq!(
        (summary.total, summary.rewrapped, summary.left.clone()),
        (
            6,
            5,
            vec![LeftRow {
                user_id: tampered,
                reason: LeftReason::Unverified
            }]
        )
    );
    assert_eq!((summary.remaining, summary.batches), (1, 3));
    assert!(!summary.stopped_early);
    assert_eq!(reports.last().map(|progress| progress.done), Some(6));
    assert!(
        reports[0].to_string().starts_with("rewrap: 2/6 rows"),
        "{}",
        reports[0]
    );

    for (id, (shown_before, indexes_before)) in ids.iter().zip(before) {
        let row = app.user_row(*id).await;
        assert_eq!(
            (row["email_bidx"].clone(), row["phone_bidx"].clone()),
            indexes_before,
            "blind indexes stay as they were"
        );
        let found = versions(&row);
        assert!(found.len() >= 3, "{found:?}");
        assert!(
            found.iter().all(|version| version == "vault:v2"),
            "user {id}: {found:?}"
        );
        let read = app.read_user(*id).await;
        assert_eq!(read["signature"]["valid"], json!(true), "user {id}");
        assert_eq!(read["signature"]["key_version"], json!(2), "user {id}");
        assert_eq!(shown(read), shown_before, "user {id} reads as before");
        let audit = app.audit_rows(*id).await;
        let last = audit.last().unwrap();
        assert_eq!(last["action"], json!(AUDIT_ACTION));
        let fields = last["details"]["changed_fields"].to_string();
        assert!(
            fields.contains("record_signature") && fields.contains("sngine_email"),
            "{fields}"
        );
        assert!(!fields.contains("@"), "field names only: {fields}");
    }
    assert_eq!(app.audit_count().await - audit_before, 5);
    // The tampered record is not signed again: it stays as it was, and still reads as invalid.
    assert_eq!(app.user_row(tampered).await, tampered_row);
    assert_eq!(
        app.read_user(tampered).await["signature"]["valid"],
        json!(false)
    );

    // The old versions can now be retired: every rewrapped record still reads in full.
    for key in ["vottery-users-pii", "vottery-users-records"] {
        app.configure_key(
            &format!("{key}/config"),
            json!({"min_decryption_version": 2}),
        )
        .await;
    }
    for id in &ids {
        let read = app.read_user(*id).await;
        assert_eq!(read["signature"]["valid"], json!(true), "user {id}");
        assert!(
            read["integrity_errors"]
                .as_array()
                .is_none_or(Vec::is_empty),
            "{read}"
        );
        assert!(read["sngine_email"].as_str().unwrap().contains('@'));
    }

    // A rerun of the command finds only the tampered record, leaves it, lists it and fails.
    let output = app
        .command(&["rewrap"], &app.security.address)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "rewrap: user {tampered} left as is: its signature does not verify"
        )) && stderr.contains("moved 0 of 1 rows onto PII key v2 and signing key v2"),
        "{stderr}"
    );
    assert_eq!(app.user_row(tampered).await, tampered_row);
    assert_eq!(app.audit_count().await - audit_before, 5);
}

#[tokio::test]
async fn nothing_is_rewrapped_while_security_svc_is_sealed_or_with_a_bad_batch_size() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    app.configure_key("vottery-users-pii/rotate", json!({}))
        .await;
    let before = app.user_row(user.id).await;

    app.security.seal().await;
    let (result, reports) = run(&app, BatchOptions::default()).await;
    assert!(matches!(result, Err(BatchError::Sealed)), "{result:?}");
    assert!(reports.is_empty());
    let output = app
        .command(&["rewrap", "--batch-size", "10"], &app.security.address)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("security-svc is sealed"), "{stderr}");
    app.security.unseal().await;
    let output = app
        .command(&["rewrap", "--batch-size", "many"], &app.security.address)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("--batch-size needs a positive number"),
        "{stderr}"
    );
    for batch_size in [0, 5_000] {
        let (result, _) = run(
            &app,
            BatchOptions {
                batch_size,
                max_batches: None,
            },
        )
        .await;
        assert!(matches!(result, Err(BatchError::BatchSize)), "{result:?}");
    }
    assert_eq!(app.user_row(user.id).await, before);

    // Stopped after one batch of one row, then resumed.
    let (summary, _) = run(
        &app,
        BatchOptions {
            batch_size: 1,
            max_batches: Some(1),
        },
    )
    .await;
    let summary = summary.unwrap();
    assert_eq!((summary.total, summary.rewrapped), (2, 1));
    assert!(summary.stopped_early);
    let (summary, _) = run(&app, BatchOptions::default()).await;
    assert_eq!(summary.unwrap().rewrapped, 1);
    // Only the PII key rotated: its ciphertexts move to v2, the signature is made again with v1.
    let row = app.user_row(user.id).await;
    assert_eq!(
        versions(&row),
        ["vault:v2", "vault:v2", "vault:v1"],
        "email, phone, signature"
    );
    assert_eq!(
        row["row_version"].as_i64(),
        before["row_version"].as_i64().map(|v| v + 1)
    );
}

#[tokio::test]
async fn a_record_that_cannot_be_rewrapped_is_left_and_the_rest_goes_on() {
    let app = spawn_app().await;
    let on_v1 = app.create_user().await.id;
    app.configure_key("vottery-users-pii/rotate", json!({}))
        .await;
    let on_v2 = app.create_user().await.id;
    app.configure_key("vottery-users-pii/rotate", json!({}))
        .await;
    // Version 1 retired too early: user on_v1's values can no longer be rewrapped.
    app.configure_key(
        "vottery-users-pii/config",
        json!({"min_decryption_version": 2}),
    )
    .await;
    let stuck = app.user_row(on_v1).await;

    let (summary, _) = run(&app, BatchOptions::default()).await;
    let summary = summary.unwrap();
    assert_eq!(summary.targets, Targets { pii: 3, signing: 1 });
    // The manager was written on version 1 as well; the user on version 2 moved on.
    let left_behind = |user_id| LeftRow {
        user_id,
        reason: LeftReason::NotRewrapped,
    };
    assert_eq!(
        summary.left,
        vec![left_behind(app.manager.id), left_behind(on_v1)]
    );
    assert_eq!((summary.total, summary.rewrapped), (3, 1));
    assert_eq!(app.user_row(on_v1).await, stuck);
    let moved = app.user_row(on_v2).await;
    assert_eq!(
        versions(&moved),
        ["vault:v3", "vault:v3", "vault:v1"],
        "email, phone, signature"
    );
    let read = app.read_user(on_v2).await;
    assert_eq!(read["signature"]["valid"], json!(true));

    // Only the signing key rotated: records are signed again, ciphertexts stay as they are.
    app.configure_key("vottery-users-records/rotate", json!({}))
        .await;
    let (summary, _) = run(&app, BatchOptions::default()).await;
    assert_eq!(summary.unwrap().targets, Targets { pii: 3, signing: 2 });
    let signed_again = app.user_row(on_v2).await;
    for column in PII_COLUMNS {
        assert_eq!(signed_again[column], moved[column], "{column}");
    }
    assert!(
        signed_again["record_signature"]
            .as_str()
            .unwrap()
            .starts_with("vault:v2:")
    );
    assert_eq!(
        app.read_user(on_v2).await["signature"],
        json!({"valid": true, "key_version": 2, "algorithm": read["signature"]["algorithm"]})
    );
}
