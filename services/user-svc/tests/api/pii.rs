//! PII at rest: the table holds ciphertext bound to row and column, and blind indexes that are
//! HMACs of the normalised value, never the value itself.

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::{PII_COLUMNS, spawn_app};

#[tokio::test]
async fn pii_columns_hold_only_ciphertext() {
    let app = spawn_app().await;
    let every_pii_field = json!({
        "sngine_email": "Plain.Text@Example.com",
        "sngine_phone": "+1 415 555 0142",
        "first_name": "Wilhelmina",
        "last_name": "Tarrant",
        "date_of_birth": "1979-03-14"
    });
    let created = app.post_user(every_pii_field).await;
    let id = created.expect(201)["id"].as_i64().unwrap();
    // A second user with the same names: ciphertexts differ (fresh nonces).
    let twin = app
        .create_user_with(json!({"first_name": "Wilhelmina", "last_name": "Tarrant"}))
        .await;
    app.put_profile(id, &app.manager.token, json!({"last_name": "Tarrant-Hale"}))
        .await
        .expect(200);

    let row = app.user_row(id as i32).await;
    let plaintexts = [
        "plain.text@example.com",
        "Plain.Text@Example.com",
        "+14155550142",
        "4155550142",
        "Wilhelmina",
        "Tarrant",
        "1979-03-14",
        "1979",
    ];
    for column in PII_COLUMNS {
        let stored = row[column]
            .as_str()
            .unwrap_or_else(|| panic!("{column} is empty"));
        let payload = stored
            .strip_prefix("vault:v1:")
            .unwrap_or_else(|| panic!("{column} is not a ciphertext: {stored}"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .unwrap_or_else(|_| panic!("{column}: not base64"));
        // Nonce (12) + tag (16) + at least one byte.
        assert!(bytes.len() > 28, "{column}");
        let decoded = String::from_utf8_lossy(&bytes);
        for plain in plaintexts {
            assert!(
                !decoded.contains(plain),
                "{column} carries {plain} in the clear"
            );
        }
    }
    // Nowhere in the row, in any column, encoded or not.
    let text = row.to_string();
    for plain in plaintexts {
        assert!(
            !text.contains(plain),
            "the stored row contains {plain}: {text}"
        );
    }
    assert_eq!(row["pii_encrypted"], json!(true));
    let twin_row = app.user_row(twin.id).await;
    assert_ne!(twin_row["first_name"], row["first_name"]);

    // Blind indexes: HMACs of the normalised values, not the values.
    for (column, normalised) in [
        ("email_bidx", "plain.text@example.com"),
        ("phone_bidx", "+14155550142"),
    ] {
        let index = row[column].as_str().unwrap();
        assert!(index.starts_with("vault:v1:"), "{column}: {index}");
        let expected = app
            .state
            .vault
            .blind_indexes("test", &[normalised])
            .await
            .unwrap();
        assert_eq!(
            index, expected[0],
            "{column} is the HMAC of the normalised value"
        );
        for plain in plaintexts {
            assert!(!index.contains(plain));
        }
    }
    // The customer's plaintext indexes index ciphertext only.
    let by_email = "SELECT count(*) FROM vottery_users WHERE sngine_email ILIKE '%example.com%'";
    assert_eq!(app.count(by_email).await, 0);
}

#[tokio::test]
async fn the_api_reads_back_exactly_what_was_written() {
    let app = spawn_app().await;
    let user = app
        .create_user_with(json!({"first_name": "Ünïcødé ✓", "last_name": "O'Brien-Łukasz", "date_of_birth": "1999-12-31"}))
        .await;
    let view = app.read_user(user.id).await;
    assert_eq!(view["first_name"], json!("Ünïcødé ✓"));
    assert_eq!(view["last_name"], json!("O'Brien-Łukasz"));
    assert_eq!(view["date_of_birth"], json!("1999-12-31"));
    assert_eq!(view["sngine_email"], json!(user.email));
    let stored = app.user_row(user.id).await;
    assert!(!stored.to_string().contains("Brien"));
    assert_eq!(
        stored["date_of_birth"]
            .as_str()
            .map(|text| text.starts_with("vault:")),
        Some(true)
    );
    assert_ne!(stored["first_name"], Value::Null);
}
