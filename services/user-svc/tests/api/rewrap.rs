//! `user-svc rewrap`: after the PII and signing keys rotate, stored records move onto the new
//! versions (rewrapped, signed again, audited) in committed batches, so that the old versions
//! can be retired; a tampered record is left as it is and reported; nothing is done while
//! security-svc is sealed.

use serde_json::{Value, json};
use user_svc::users::batches::{BatchError, BatchOptions, Progress};
use user_svc::users::rewrap::{AUDIT_ACTION, LeftReason, LeftRow, Summary, Targets, rewrap};

use crate::helpers::{
    PII_COLUMNS, TestApp, batch_options, failed_output, spawn_app, spawn_app_with,
};

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

    let (summary, reports) = run(&app, batch_options(2, None)).await;
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
    let rewrap = |batch_size: &str| {
        app.command(
            &["rewrap", "--batch-size", batch_size],
            &app.security.address,
        )
    };
    let stderr = failed_output(rewrap("10")).await;
    assert!(stderr.contains("security-svc is sealed"), "{stderr}");
    app.security.unseal().await;
    let stderr = failed_output(rewrap("many")).await;
    assert!(
        stderr.contains("--batch-size needs a positive number"),
        "{stderr}"
    );
    for batch_size in [0, 5_000] {
        let (result, _) = run(&app, batch_options(batch_size, None)).await;
        assert!(matches!(result, Err(BatchError::BatchSize)), "{result:?}");
    }
    assert_eq!(app.user_row(user.id).await, before);

    // Stopped after one batch of one row, then resumed.
    let (summary, _) = run(&app, batch_options(1, Some(1))).await;
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

/// The key rows were encrypted under, without a context, before each user had a key of their
/// own.
const SHARED_KEY: &str = "vottery-users-pii-shared";

/// Turns user `id`'s stored row into one written before per-user keys: its values encrypted
/// under the shared key without a context, `pii_erasable` false, signed as user-svc signed it.
async fn as_written_before_per_user_keys(app: &TestApp, id: i32) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use user_svc::record::{UserRow, record_digest};
    use user_svc::schema::vottery_users as users;
    use user_svc::users::pii::{sealed_fields, set_column};
    use user_svc::vault::{PiiScope, PlainField};

    let mut conn = app.db().await;
    let row: UserRow = users::table
        .find(id)
        .select(UserRow::as_select())
        .get_result(&mut conn)
        .await
        .unwrap();
    let vault = &app.state.vault;
    let sealed = sealed_fields(&row);
    let plain: Vec<String> = vault
        .decrypt("test", &sealed)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let fields: Vec<PlainField<'_>> = sealed
        .iter()
        .zip(&plain)
        .map(|(field, value)| PlainField {
            user_id: id,
            column: field.column,
            value,
        })
        .collect();
    let shared = vault
        .encrypt_in("test", PiiScope::Shared, &fields)
        .await
        .unwrap();
    let mut owned = row.owned.clone();
    for (field, ciphertext) in fields.iter().zip(shared) {
        set_column(&mut owned, field.column, Some(ciphertext));
    }
    owned.pii_erasable = false;
    let digest = record_digest(id, &row.created_at, &owned);
    owned.record_signature = vault.sign("test", &[digest]).await.unwrap().pop();
    diesel::update(users::table.find(id))
        .set(&owned)
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn rows_under_the_shared_key_move_onto_their_users_own_keys_and_a_stopped_run_resumes() {
    let app = spawn_app_with(|settings| settings.security.shared_pii_key = SHARED_KEY.into()).await;
    app.configure_key(SHARED_KEY, json!({"type": "aes256-gcm96"}))
        .await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let user = app
            .create_user_with(json!({"first_name": format!("Sable{n}"), "last_name": "Shared"}))
            .await;
        as_written_before_per_user_keys(&app, user.id).await;
        ids.push(user.id);
    }
    let mut before = Vec::new();
    for id in &ids {
        assert_eq!(app.user_row(*id).await["pii_erasable"], json!(false));
        let read = app.read_user(*id).await;
        assert_eq!(read["signature"]["valid"], json!(true), "{read}");
        assert_eq!(read["last_name"], json!("Shared"));
        before.push(shown(read));
    }
    // Until moved, such a user cannot be erased: a dump would still hold readable values.
    let row = app.user_row(ids[0]).await;
    app.erase(ids[0]).await.problem(409);
    assert_eq!(app.user_row(ids[0]).await, row);
    // A write keeps a row under the key it is under.
    app.put_profile(ids[1], &app.manager.token, json!({"city": "Lisbon"}))
        .await
        .expect(200);
    assert_eq!(app.user_row(ids[1]).await["pii_erasable"], json!(false));
    before[1]["city"] = json!("Lisbon");

    let options = batch_options(2, Some(1));
    let (first, reports) = run(&app, options).await;
    let first = first.unwrap();
    assert!(first.stopped_early);
    assert_eq!((first.total, first.rewrapped, first.remaining), (3, 2, 1));
    assert_eq!(reports.len(), 1);
    let (second, _) = run(&app, options).await;
    let second = second.unwrap();
    assert_eq!(
        (second.total, second.rewrapped, second.remaining),
        (1, 1, 0)
    );
    assert!(second.left.is_empty());

    for (id, shown_before) in ids.iter().zip(before) {
        assert_eq!(app.user_row(*id).await["pii_erasable"], json!(true));
        let read = app.read_user(*id).await;
        assert_eq!(read["signature"]["valid"], json!(true), "{read}");
        assert_eq!(shown(read), shown_before, "user {id} reads as before");
        let last = app.audit_rows(*id).await.pop().unwrap();
        assert_eq!(last["action"], json!(AUDIT_ACTION));
        assert!(
            last["details"]["changed_fields"]
                .to_string()
                .contains("pii_erasable")
        );
    }
    // Now under their own keys, they can be erased.
    app.erase(ids[0]).await.expect(204);
}
