//! Key management: create, read, list, config, delete, export of public keys.

use serde_json::{Value, json};

use crate::helpers::*;

/// Fields every key read carries, whatever the type.
const KEY_FIELDS: [&str; 16] = [
    "name",
    "type",
    "derived",
    "deletion_allowed",
    "exportable",
    "allow_plaintext_backup",
    "min_available_version",
    "min_decryption_version",
    "min_encryption_version",
    "latest_version",
    "supports_encryption",
    "supports_decryption",
    "supports_signing",
    "supports_derivation",
    "auto_rotate_period",
    "imported_key",
];

fn capabilities(key: &Value) -> [bool; 4] {
    [
        "supports_encryption",
        "supports_decryption",
        "supports_signing",
        "supports_derivation",
    ]
    .map(|field| key[field].as_bool().unwrap())
}

#[tokio::test]
async fn created_keys_read_back_with_vaults_fields() {
    let app = spawn_unsealed().await;
    let cases: [(&str, [bool; 4]); 7] = [
        ("aes256-gcm96", [true, true, false, true]),
        ("chacha20-poly1305", [true, true, false, true]),
        ("ed25519", [false, false, true, true]),
        ("ecdsa-p256", [false, false, true, false]),
        ("rsa-2048", [true, true, true, false]),
        ("hmac", [false, false, false, false]),
        ("", [true, true, false, true]),
    ];
    for (key_type, expected) in cases {
        let name = format!(
            "read-{}",
            if key_type.is_empty() {
                "default"
            } else {
                key_type
            }
        );
        let created = app
            .transit(
                &format!("keys/{name}"),
                if key_type.is_empty() {
                    json!({})
                } else {
                    json!({"type": key_type})
                },
            )
            .await;
        let created = created.ok().clone();
        let read = app.read_key(&name).await;
        assert_eq!(created, read, "create answers with the key read");
        for field in KEY_FIELDS {
            assert!(
                read.get(field).is_some(),
                "{key_type}: no {field} in {read}"
            );
        }
        let key_type = if key_type.is_empty() {
            "aes256-gcm96"
        } else {
            key_type
        };
        assert_eq!(read["name"], json!(name));
        assert_eq!(read["type"], json!(key_type));
        assert_eq!(capabilities(&read), expected, "{key_type}");
        assert_eq!(read["latest_version"], json!(1));
        assert_eq!(read["min_decryption_version"], json!(1));
        assert_eq!(read["min_encryption_version"], json!(0));
        assert_eq!(read["min_available_version"], json!(0));
        assert_eq!(read["deletion_allowed"], json!(false));
        assert_eq!(read["exportable"], json!(false));
        assert_eq!(read["derived"], json!(false));
        assert_eq!(read["auto_rotate_period"], json!(0));
        assert_eq!(read["imported_key"], json!(false));
        assert!(read.get("kdf").is_none(), "kdf only for derived keys");
        match key_type {
            "hmac" => {
                assert!(read.get("keys").is_none());
                assert_eq!(read["key_size"], json!(32));
            }
            "aes256-gcm96" | "chacha20-poly1305" => {
                assert!(read.get("key_size").is_none());
                let created_at = read["keys"]["1"].as_i64().expect("creation unix seconds");
                let now = chrono::Utc::now().timestamp();
                assert!((now - 120..=now + 5).contains(&created_at), "{created_at}");
            }
            _ => {
                let entry = read["keys"]["1"].as_object().expect("a public key entry");
                let mut fields: Vec<_> = entry.keys().map(String::as_str).collect();
                fields.sort_unstable();
                assert_eq!(
                    fields,
                    ["certificate_chain", "creation_time", "name", "public_key"]
                );
                assert!(!entry["public_key"].as_str().unwrap().is_empty());
            }
        }
    }

    // Creating an existing key returns it unchanged, whatever the parameters.
    let again = app
        .transit(
            "keys/read-ed25519",
            json!({"type": "aes256-gcm96", "derived": true}),
        )
        .await;
    assert_eq!(again.ok()["type"], json!("ed25519"));
    assert_eq!(again.ok()["derived"], json!(false));

    // Options given at creation show in the read.
    let options = app
        .create_key_with(
            "read-options",
            json!({"type": "chacha20-poly1305", "derived": "true", "exportable": true,
                   "allow_plaintext_backup": true, "auto_rotate_period": "24h"}),
        )
        .await;
    assert_eq!(options["derived"], json!(true));
    assert_eq!(options["kdf"], json!("hkdf_sha256"));
    assert_eq!(options["exportable"], json!(true));
    assert_eq!(options["allow_plaintext_backup"], json!(true));
    assert_eq!(options["auto_rotate_period"], json!(86_400));

    app.assert_no_key("never-made").await;
}

#[tokio::test]
async fn keys_are_listed_with_list_or_get_list_true() {
    let app = spawn_unsealed().await;
    app.assert_no_keys().await;
    app.get("/v1/transit/keys?list=true", ADMIN)
        .await
        .assert_empty_error(404);

    for name in ["zeta", "alpha", "mid.key", "b_2"] {
        app.create_key(name, "aes256-gcm96").await;
    }
    let expected = json!({"keys": ["alpha", "b_2", "mid.key", "zeta"]});
    for reply in [
        app.list("/v1/transit/keys", ADMIN).await,
        app.list("/v1/transit/keys/", ADMIN).await,
        app.get("/v1/transit/keys?list=true", ADMIN).await,
    ] {
        assert_eq!(reply.ok(), &expected, "{}", reply.text);
    }
    app.get("/v1/transit/keys", ADMIN)
        .await
        .assert_empty_error(405);
    app.get("/v1/transit/keys?list=maybe", ADMIN)
        .await
        .assert_empty_error(405);
}

#[tokio::test]
async fn config_changes_only_the_fields_given() {
    let app = spawn_unsealed().await;
    app.create_key("configured", "aes256-gcm96").await;
    app.rotate("configured").await;
    app.rotate("configured").await;
    let before = app.read_key("configured").await;

    let reply = app
        .configure_key("configured", json!({"deletion_allowed": true}))
        .await;
    let after = reply.ok().clone();
    assert_eq!(after["deletion_allowed"], json!(true));
    let mut expected = before.clone();
    expected["deletion_allowed"] = json!(true);
    assert_eq!(after, expected, "nothing else changed");
    assert_eq!(app.read_key("configured").await, after);

    let reply = app
        .configure_key(
            "configured",
            json!({"min_decryption_version": 2, "min_encryption_version": "3", "exportable": true,
                   "auto_rotate_period": 7200}),
        )
        .await;
    let after = reply.ok().clone();
    assert_eq!(after["min_decryption_version"], json!(2));
    assert_eq!(after["min_encryption_version"], json!(3));
    assert_eq!(after["exportable"], json!(true));
    assert_eq!(after["auto_rotate_period"], json!(7200));
    assert_eq!(after["deletion_allowed"], json!(true), "kept from before");
    let versions: Vec<_> = after["keys"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(versions, ["2", "3"], "only decryptable versions are listed");

    // Forcing the minimum to 1 warns.
    let reply = app
        .configure_key(
            "configured",
            json!({"min_decryption_version": 0, "min_encryption_version": 0}),
        )
        .await;
    assert_eq!(reply.ok()["min_decryption_version"], json!(1));
    let warnings = reply.warnings();
    assert!(
        warnings
            .iter()
            .any(|warning| warning.contains("forcing minimum to 1")),
        "{warnings:?}"
    );

    let key = app.read_key("configured").await;
    for (body, message) in [
        (
            json!({"min_decryption_version": 4}),
            "cannot set min decryption version of 4, latest key version is 3",
        ),
        (
            json!({"min_encryption_version": 9}),
            "cannot set min encryption version of 9, latest key version is 3",
        ),
        (
            json!({"min_decryption_version": -1}),
            "min decryption version cannot be negative",
        ),
        (
            json!({"min_decryption_version": 3, "min_encryption_version": 2}),
            "min encryption version of 2 must be greater than or equal to min decryption version of 3",
        ),
        (
            json!({"exportable": false}),
            "exportable cannot be disabled",
        ),
        (
            json!({"auto_rotate_period": 60}),
            "auto rotate period must be 0 to disable or at least an hour",
        ),
    ] {
        app.configure_key("configured", body.clone())
            .await
            .assert_error(400, message);
        assert_eq!(app.read_key("configured").await, key, "after {body}");
    }
    app.configure_key("not-there", json!({"deletion_allowed": true}))
        .await
        .assert_error(400, "no existing key named not-there could be found");
}

#[tokio::test]
async fn delete_is_refused_until_deletion_is_allowed() {
    let app = spawn_unsealed().await;
    app.create_key("doomed", "ed25519").await;
    app.create_key("kept", "aes256-gcm96").await;
    let ciphertext = app.encrypt("kept", b"unaffected").await;

    app.delete("/v1/transit/keys/doomed", ADMIN)
        .await
        .assert_error(
            400,
            "error deleting policy doomed: deletion is not allowed for this key",
        );
    assert_eq!(app.read_key("doomed").await["name"], json!("doomed"));

    app.allow_deletion("doomed").await;
    let reply = app.delete("/v1/transit/keys/doomed", ADMIN).await;
    assert_eq!(reply.status(), 204, "{}", reply.text);
    assert!(reply.text.is_empty());
    app.assert_no_key("doomed").await;
    assert_eq!(
        app.list("/v1/transit/keys", ADMIN).await.ok(),
        &json!({"keys": ["kept"]})
    );
    app.transit("sign/doomed", json!({"input": b64("x")}))
        .await
        .assert_error(400, "signing key not found");
    app.delete("/v1/transit/keys/doomed", ADMIN)
        .await
        .assert_error(400, "could not delete key; not found");
    assert_eq!(app.decrypt("kept", &ciphertext).await, b"unaffected");

    // A deleted name can be created again, as a new key.
    let recreated = app.create_key("doomed", "aes256-gcm96").await;
    assert_eq!(recreated["type"], json!("aes256-gcm96"));
    assert_eq!(recreated["deletion_allowed"], json!(false));
}

#[tokio::test]
async fn public_keys_are_exported_private_ones_are_not() {
    let app = spawn_unsealed().await;
    let ed = app.create_key("export-ed", "ed25519").await;
    app.rotate("export-ed").await;
    let ec = app.create_key("export-ec", "ecdsa-p256").await;
    let rsa = app.create_key("export-rsa", "rsa-2048").await;
    app.create_key_with("export-aes", json!({"exportable": true}))
        .await;

    let reply = app
        .get("/v1/transit/export/public-key/export-ed", ADMIN)
        .await;
    let data = reply.ok();
    assert_eq!(data["name"], json!("export-ed"));
    assert_eq!(data["type"], json!("ed25519"));
    let keys = data["keys"].as_object().unwrap();
    assert_eq!(keys.len(), 2, "every live version: {data}");
    assert_eq!(keys["1"], ed["keys"]["1"]["public_key"]);
    assert_eq!(unb64(keys["2"].as_str().unwrap()).len(), 32);

    for (path, expected) in [
        ("export-ed/1", json!({"1": ed["keys"]["1"]["public_key"]})),
        ("export-ed/v1", json!({"1": ed["keys"]["1"]["public_key"]})),
        (
            "export-ec/latest",
            json!({"1": ec["keys"]["1"]["public_key"]}),
        ),
        ("export-rsa", json!({"1": rsa["keys"]["1"]["public_key"]})),
    ] {
        let reply = app
            .get(&format!("/v1/transit/export/public-key/{path}"), ADMIN)
            .await;
        assert_eq!(reply.ok()["keys"], expected, "{path}");
    }
    let pem = ec["keys"]["1"]["public_key"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));

    for (path, message) in [
        ("encryption-key/export-aes", "not exportable"),
        ("signing-key/export-aes", "not exportable"),
        ("hmac-key/export-aes", "not exportable"),
        ("public-key/export-aes", "signing not supported for the key"),
        (
            "secret-sauce/export-ed",
            "invalid export type: secret-sauce",
        ),
        (
            "public-key/export-ed/9",
            "version does not exist or cannot be found",
        ),
    ] {
        app.get(&format!("/v1/transit/export/{path}"), ADMIN)
            .await
            .assert_error(400, message);
    }
    app.get("/v1/transit/export/public-key/missing", ADMIN)
        .await
        .assert_empty_error(404);
    // The user-svc token reads public keys of its keys only.
    app.get("/v1/transit/export/public-key/export-ed", USER)
        .await
        .assert_denied();
}
