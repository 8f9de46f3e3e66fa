//! Record integrity: every write re-signs the row and every read checks it; a row changed in
//! SQL reads as `signature.valid = false`; a ciphertext moved to another row or column does not
//! decrypt and is withheld; a tampered row is not re-signed by a later write.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app, spawn_app_with};

/// A user with every PII column and most profile columns filled.
async fn full_user(app: &TestApp) -> TestUser {
    let user = app
        .create_user_with(json!({
            "first_name": "Ingrid",
            "last_name": "Solberg",
            "date_of_birth": "1984-07-01",
            "gender": "female",
            "country": "NO",
            "city": "Bergen",
            "bio": "hello",
            "avatar_url": "https://cdn.example.com/i.png"
        }))
        .await;
    app.set_status(user.id, "active").await;
    app.put_role(user.id, &app.manager.token, json!({"subscription_status": "subscribed", "subscription_plan": "pro", "subscription_expires_at": "2030-01-01T00:00:00Z"}))
    .await
    .expect(200);
    user
}

async fn signature_valid(app: &TestApp, id: i32) -> Value {
    app.read_user(id).await["signature"]["valid"].clone()
}

#[tokio::test]
async fn every_write_re_signs_and_every_read_verifies() {
    let app = spawn_app().await;
    let user = full_user(&app).await;
    let mut signatures = vec![app.user_row(user.id).await["record_signature"].clone()];
    for body in [json!({"city": "Oslo"}), json!({"first_name": "Inga"})] {
        let reply = app.put_profile(user.id, &user.token, body).await;
        assert_eq!(reply.expect(200)["signature"]["valid"], json!(true));
        let signature = app.user_row(user.id).await["record_signature"].clone();
        assert!(signature.as_str().unwrap().starts_with("vault:v1:"));
        assert!(!signatures.contains(&signature), "the row was re-signed");
        signatures.push(signature);
    }
    let view = app.read_user(user.id).await;
    assert_eq!(view["signature"]["valid"], json!(true));
    assert_eq!(view["signature"]["key_version"], json!(1));
    assert!(
        view["signature"]["algorithm"]
            .as_str()
            .unwrap()
            .contains("ed25519")
    );
    assert!(view.get("integrity_errors").is_none());
}

#[tokio::test]
async fn changing_any_signed_column_in_sql_is_reported_on_read() {
    let app = spawn_app().await;
    let user = full_user(&app).await;
    let other = app.create_user().await;
    assert_eq!(signature_valid(&app, user.id).await, json!(true));
    app.exec(&format!(
        "CREATE TABLE test_snapshot AS SELECT * FROM vottery_users WHERE id = {}",
        user.id
    ))
    .await;
    let id = user.id;
    let tampering = [
        // Another row's ciphertext (the customer's UNIQUE on sngine_email forbids a verbatim copy).
        (
            "sngine_email",
            format!(
                "(SELECT sngine_phone FROM vottery_users WHERE id = {})",
                other.id
            ),
        ),
        (
            "sngine_phone",
            format!(
                "(SELECT sngine_phone FROM vottery_users WHERE id = {})",
                other.id
            ),
        ),
        ("email_bidx", "'vault:v1:AAAA'".into()),
        ("phone_bidx", "NULL".into()),
        ("status", "'suspended'".into()),
        ("user_type", "'organization_creator'".into()),
        ("admin_role", "'manager'".into()),
        ("subscription_status", "'free'".into()),
        ("subscription_plan", "'gold'".into()),
        (
            "subscription_expires_at",
            "subscription_expires_at + interval '1 year'".into(),
        ),
        ("first_name", "last_name".into()),
        ("last_name", "NULL".into()),
        ("date_of_birth", "NULL".into()),
        ("gender", "'other'".into()),
        ("country", "'SE'".into()),
        ("city", "'Malmo'".into()),
        ("timezone", "'Europe/Oslo'".into()),
        ("bio", "'hello!'".into()),
        ("avatar_url", "NULL".into()),
        ("language", "'nb'".into()),
        ("notifications_enabled", "NOT notifications_enabled".into()),
        ("row_version", "row_version + 1".into()),
        ("created_at", "created_at - interval '1 second'".into()),
        ("pii_encrypted", "false".into()),
        (
            "record_signature",
            format!(
                "(SELECT record_signature FROM vottery_users WHERE id = {})",
                other.id
            ),
        ),
    ];
    for (column, expression) in &tampering {
        app.exec(&format!(
            "UPDATE vottery_users SET {column} = {expression} WHERE id = {id}"
        ))
        .await;
        let reply = app.get_as_manager(&format!("/api/users/{id}")).await;
        let view = reply.expect(200);
        assert_eq!(
            view["signature"]["valid"],
            json!(false),
            "after changing {column}"
        );
        assert!(
            !reply.text.contains(&other.phone),
            "another user's phone is shown after changing {column}"
        );
        app.exec(&format!(
            "UPDATE vottery_users u SET {column} = s.{column} FROM test_snapshot s WHERE u.id = s.id"
        ))
        .await;
        assert_eq!(
            signature_valid(&app, id).await,
            json!(true),
            "restoring {column} restores the signature"
        );
    }

    // Columns other services own are not signed: the auth-service may write them.
    app.exec(&format!(
        "UPDATE vottery_users SET last_login = now(), email_verified_at = now() WHERE id = {id}"
    ))
    .await;
    assert_eq!(signature_valid(&app, id).await, json!(true));
}

#[tokio::test]
async fn a_ciphertext_copied_into_another_row_or_column_is_withheld() {
    let app = spawn_app().await;
    let victim = full_user(&app).await;
    let target = app.active_user().await;
    // The victim's phone and first name, copied into the target's phone and first name; and
    // the target's own email ciphertext into its last name (right row, wrong column).
    app.exec(&format!(
        "UPDATE vottery_users SET
            sngine_phone = (SELECT sngine_phone FROM vottery_users WHERE id = {victim}),
            first_name = (SELECT first_name FROM vottery_users WHERE id = {victim}),
            last_name = sngine_email
         WHERE id = {target}",
        victim = victim.id,
        target = target.id
    ))
    .await;

    for token in [&app.manager.token, &target.token] {
        let reply = app.get(&format!("/api/users/{}", target.id), token).await;
        let view = reply.expect(200);
        assert_eq!(view["sngine_phone"], Value::Null);
        assert_eq!(view["first_name"], Value::Null);
        assert_eq!(view["last_name"], Value::Null);
        assert_eq!(
            view["sngine_email"],
            json!(target.email),
            "intact fields still read"
        );
        assert_eq!(view["signature"]["valid"], json!(false));
        let mut fields: Vec<&str> = view["integrity_errors"]
            .as_array()
            .expect("integrity errors are listed")
            .iter()
            .map(|error| error["field"].as_str().unwrap())
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, vec!["first_name", "last_name", "sngine_phone"]);
        for secret in [victim.phone.as_str(), "Ingrid"] {
            assert!(
                !reply.text.contains(secret),
                "{secret} leaked: {}",
                reply.text
            );
        }
    }

    // In a list, the tampered row is reported and the others read normally.
    let list = app.get_as_manager("/api/users?limit=100").await;
    let page = list.expect(200);
    for user in page["data"].as_array().unwrap() {
        let tampered = user["id"] == json!(target.id);
        assert_eq!(user["signature"]["valid"], json!(!tampered), "{user}");
        assert_eq!(user.get("integrity_errors").is_some(), tampered);
    }
    let victim_view = app.read_user(victim.id).await;
    assert_eq!(victim_view["sngine_phone"], json!(victim.phone));
    assert_eq!(victim_view["signature"]["valid"], json!(true));
}

#[tokio::test]
async fn a_write_to_a_tampered_row_is_refused_not_re_signed() {
    let app = spawn_app().await;
    let victim = app.create_user().await;
    let target = app.active_user().await;
    app.exec(&format!(
        "UPDATE vottery_users SET sngine_phone = (SELECT sngine_phone FROM vottery_users WHERE id = {}) WHERE id = {}",
        victim.id, target.id
    ))
    .await;
    let before = app.user_row(target.id).await;
    let audit_before = app.audit_rows(target.id).await.len();

    let writes = [
        ("profile", target.token.clone(), json!({"city": "Turin"})),
        (
            "profile",
            app.manager.token.clone(),
            json!({"first_name": "Repaired"}),
        ),
        (
            "status",
            app.manager.token.clone(),
            json!({"status": "suspended"}),
        ),
        (
            "role",
            app.manager.token.clone(),
            json!({"admin_role": "analyst"}),
        ),
    ];
    for (what, token, body) in &writes {
        let reply = app
            .put(
                &format!("/api/users/{}/{what}", target.id),
                token,
                body.clone(),
            )
            .await;
        reply.problem(409);
        assert!(
            reply.json["detail"].as_str().unwrap().contains("integrity"),
            "{}",
            reply.text
        );
    }
    let after = app.user_row(target.id).await;
    assert_eq!(after, before, "the tampered row was not touched");
    // Each refusal is audited.
    assert_eq!(
        app.audit_rows(target.id).await.len(),
        audit_before + writes.len()
    );

    // A plain column changed in SQL blocks writes the same way.
    let plain = app.active_user().await;
    let set_admin_role = async |role: &str| {
        let sql = format!(
            "UPDATE vottery_users SET admin_role = {role} WHERE id = {}",
            plain.id
        );
        app.exec(&sql).await;
    };
    let pisa = json!({"city": "Pisa"});
    set_admin_role("'admin'").await;
    app.put_profile(plain.id, &app.manager.token, pisa.clone())
        .await
        .problem(409);
    assert_eq!(app.user_row(plain.id).await["city"], Value::Null);
    // Restored to its signed state, the row takes writes again.
    set_admin_role("NULL").await;
    app.put_profile(plain.id, &app.manager.token, pisa)
        .await
        .expect(200);
}

#[tokio::test]
async fn signatures_and_ciphertexts_survive_key_rotation() {
    let app = spawn_app().await;
    let user = full_user(&app).await;
    for key in ["vottery-users-pii", "vottery-users-records"] {
        app.configure_key(&format!("{key}/rotate"), json!({})).await;
    }
    let old = app.read_user(user.id).await;
    assert_eq!(
        old["signature"],
        json!({"valid": true, "key_version": 1, "algorithm": old["signature"]["algorithm"]})
    );
    assert_eq!(old["first_name"], json!("Ingrid"));

    let updated = app
        .put_profile(user.id, &user.token, json!({"last_name": "Berg"}))
        .await;
    assert_eq!(updated.expect(200)["signature"]["key_version"], json!(2));
    let stored = app.user_row(user.id).await;
    assert!(
        stored["last_name"]
            .as_str()
            .unwrap()
            .starts_with("vault:v2:")
    );
    assert!(
        stored["first_name"]
            .as_str()
            .unwrap()
            .starts_with("vault:v1:")
    );
    let read = app.read_user(user.id).await;
    assert_eq!(read["signature"]["valid"], json!(true));
    assert_eq!(
        (read["first_name"].clone(), read["last_name"].clone()),
        (json!("Ingrid"), json!("Berg"))
    );
}

#[tokio::test]
async fn signatures_are_checked_with_the_public_key_and_follow_its_versions() {
    // Versions read at most once a minute on their own: a rotation must be picked up by the
    // first record that names the new version.
    let app = spawn_app_with(|settings| settings.security.signing_key_refresh_ms = 60_000).await;
    let old = full_user(&app).await;
    let verified = app.security.operations("verify").await;
    assert_eq!(signature_valid(&app, old.id).await, json!(true));
    app.configure_key("vottery-users-records/rotate", json!({}))
        .await;
    let renewed = app.create_user_with(json!({"first_name": "Nils"})).await;
    let read = app.read_user(renewed.id).await;
    assert_eq!(
        (
            read["signature"]["valid"].clone(),
            read["signature"]["key_version"].clone()
        ),
        (json!(true), json!(2))
    );
    assert_eq!(signature_valid(&app, old.id).await, json!(true));
    // A forged version number is not valid, and reading it again and again reads the key's
    // versions at most about once a second.
    app.exec(&format!(
        "UPDATE vottery_users SET record_signature = replace(record_signature, 'vault:v1:', 'vault:v9:') WHERE id = {}",
        old.id
    ))
    .await;
    let key_reads = app.security.operations("read").await;
    for _ in 0..20 {
        assert_eq!(signature_valid(&app, old.id).await, json!(false));
    }
    let extra_reads = app.security.operations("read").await - key_reads;
    assert!(
        extra_reads <= 3,
        "{extra_reads} key reads for 20 reads of a forged version"
    );
    // None of it asked security-svc to verify.
    assert_eq!(app.security.operations("verify").await, verified);

    // A retired version stops verifying once the versions are read again.
    let app = spawn_app_with(|settings| settings.security.signing_key_refresh_ms = 300).await;
    let old = full_user(&app).await;
    app.configure_key("vottery-users-records/rotate", json!({}))
        .await;
    let renewed = app.create_user_with(json!({"first_name": "Nils"})).await;
    assert_eq!(signature_valid(&app, old.id).await, json!(true));
    app.configure_key(
        "vottery-users-records/config",
        json!({"min_decryption_version": 2}),
    )
    .await;
    let retired_at = std::time::Instant::now();
    while signature_valid(&app, old.id).await == json!(true) {
        assert!(
            retired_at.elapsed() < std::time::Duration::from_secs(3),
            "a version-1 signature still verifies 3 s after its retirement"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(signature_valid(&app, renewed.id).await, json!(true));
}
