//! How security-svc's failures reach user-svc: a sealed or unreachable service is a 503 with
//! `Retry-After`; a token or key outside user-svc's policy, an unknown key or a failed batch
//! item is a bare 500 (a deployment fault, never shown to clients); a value that does not
//! decrypt or verify fails only its own batch item.

use actix_web::ResponseError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use user_svc::error::ApiError;
use user_svc::vault::{PiiColumn, PlainField, SealedField};
use vottery_common::client::{ClientError, SignatureOptions};
use vottery_common::transit::{DecryptItem, EncryptItem, HmacItem, SignItem};

use crate::harness::{FOREIGN_KEY, SIGN_ONLY_TOKEN, SecuritySvc, closed_port};

const EMAIL: PlainField<'static> = PlainField {
    user_id: 1,
    column: PiiColumn::Email,
    value: "ada@example.com",
};

/// user-svc answers 503 with `Retry-After` and names security-svc.
fn assert_unavailable(error: &ApiError) {
    assert!(
        matches!(
            error,
            ApiError::Unavailable {
                dependency: "security-svc",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.status_code().as_u16(), 503);
    assert!(
        error.error_response().headers().contains_key("retry-after"),
        "{error:?}"
    );
}

/// user-svc answers a bare 500 and logs the cause.
fn assert_internal(error: &ApiError, cause: &str) {
    assert!(matches!(error, ApiError::Internal(_)), "{error:?}");
    assert_eq!(error.status_code().as_u16(), 500);
    assert!(error.to_string().contains(cause), "{error}");
}

fn encrypt_item(plaintext: &str) -> EncryptItem {
    EncryptItem {
        plaintext: Some(plaintext.to_owned()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_sealed_security_svc_is_a_503_for_every_call() {
    let security = SecuritySvc::start().await;
    let vault = security.vault();
    let ciphertext = vault.encrypt("contract", &[EMAIL]).await.unwrap().remove(0);
    let signature = vault
        .sign("contract", &[[0u8; 32]])
        .await
        .unwrap()
        .remove(0);
    security.seal().await;

    let sealed_field = SealedField {
        user_id: 1,
        column: PiiColumn::Email,
        ciphertext: &ciphertext,
    };
    let errors = [
        vault.encrypt("contract", &[EMAIL]).await.unwrap_err(),
        vault
            .decrypt("contract", &[sealed_field])
            .await
            .unwrap_err(),
        vault
            .blind_indexes("contract", &["ada@example.com"])
            .await
            .unwrap_err(),
        vault.sign("contract", &[[0u8; 32]]).await.unwrap_err(),
        vault
            .verify("contract", &[([0u8; 32], signature.as_str())])
            .await
            .unwrap_err(),
    ];
    for error in &errors {
        assert_unavailable(error);
    }
    // The client says why: sealed, not merely down.
    let call = vault.client().call(None);
    let error = call
        .encrypt_batch("vottery-users-pii", vec![encrypt_item("YQ==")])
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Sealed), "{error:?}");
    assert!(error.is_unavailable());
    // Sealed is checked before the token, as in Vault.
    let error = security
        .client_with_token("not-a-token")
        .call(None)
        .encrypt_batch("vottery-users-pii", vec![encrypt_item("YQ==")])
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Sealed), "{error:?}");

    security.unseal().await;
    assert_eq!(vault.encrypt("contract", &[EMAIL]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_unreachable_security_svc_is_a_503() {
    let security = SecuritySvc::start().await;
    let vault = security.vault_with(|settings| {
        settings.url = format!("http://127.0.0.1:{}", closed_port());
    });
    assert_unavailable(&vault.encrypt("contract", &[EMAIL]).await.unwrap_err());
    assert_unavailable(&vault.sign("contract", &[[0u8; 32]]).await.unwrap_err());
    let error = vault.client().call(None).seal_status().await.unwrap_err();
    assert!(matches!(error, ClientError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn operations_outside_the_tokens_policy_are_refused() {
    let security = SecuritySvc::start().await;

    // user-svc's token on a key outside `vottery-users-*`.
    let foreign = security.vault_with(|settings| settings.pii_key = FOREIGN_KEY.into());
    let error = foreign.encrypt("contract", &[EMAIL]).await.unwrap_err();
    assert_internal(&error, "policy must allow");
    let error = foreign
        .client()
        .call(None)
        .encrypt_batch(FOREIGN_KEY, vec![encrypt_item("YQ==")])
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Forbidden), "{error:?}");
    assert!(!error.is_unavailable());

    // user-svc's token may not rotate its own keys.
    let error = foreign
        .client()
        .call(None)
        .rotate_key("vottery-users-pii")
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Forbidden), "{error:?}");

    // A token allowed only to sign and verify.
    let restricted = security.vault_with(|settings| {
        settings.token = secrecy::SecretString::from(SIGN_ONLY_TOKEN);
    });
    let signature = restricted
        .sign("contract", &[[5u8; 32]])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        restricted
            .verify("contract", &[([5u8; 32], signature.as_str())])
            .await
            .unwrap(),
        vec![true]
    );
    assert_internal(
        &restricted.encrypt("contract", &[EMAIL]).await.unwrap_err(),
        "policy must allow",
    );
    assert_internal(
        &restricted
            .blind_indexes("contract", &["ada@example.com"])
            .await
            .unwrap_err(),
        "policy must allow",
    );
}

#[tokio::test]
async fn a_wrong_or_empty_token_is_refused() {
    let security = SecuritySvc::start().await;
    for token in ["not-the-user-svc-token", ""] {
        let vault = security.vault_with(|settings| {
            settings.token = secrecy::SecretString::from(token);
        });
        assert_internal(
            &vault.encrypt("contract", &[EMAIL]).await.unwrap_err(),
            "denied user-svc's token",
        );
        let error = vault
            .client()
            .call(None)
            .hmac_batch("vottery-users-index", "sha2-256", Some(1), vec![])
            .await
            .unwrap_err();
        assert!(
            matches!(error, ClientError::Forbidden),
            "{token:?}: {error:?}"
        );
        // The seal status needs no token, as in Vault.
        assert!(
            !vault
                .client()
                .call(None)
                .seal_status()
                .await
                .unwrap()
                .sealed
        );
    }
}

#[tokio::test]
async fn an_unknown_key_is_a_server_fault_not_a_client_error() {
    let security = SecuritySvc::start().await;
    let vault = security.vault_with(|settings| {
        settings.pii_key = "vottery-users-missing".into();
        settings.signing_key = "vottery-users-missing".into();
    });
    // user-svc's token may not create keys, so encrypt does not create it on first use.
    assert_internal(
        &vault.encrypt("contract", &[EMAIL]).await.unwrap_err(),
        "security-svc call failed",
    );
    assert_internal(
        &vault.sign("contract", &[[0u8; 32]]).await.unwrap_err(),
        "security-svc call failed",
    );
    let call = vault.client().call(None);
    let error = call
        .encrypt_batch("vottery-users-missing", vec![encrypt_item("YQ==")])
        .await
        .unwrap_err();
    match error {
        ClientError::Rejected(messages) => {
            assert_eq!(messages, vec!["encryption key not found".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
    let error = call.read_key("vottery-users-missing").await.unwrap_err();
    assert!(matches!(error, ClientError::NotFound), "{error:?}");
}

#[tokio::test]
async fn a_failing_item_fails_only_itself() {
    let security = SecuritySvc::start().await;
    let vault = security.vault();
    let fields = [
        EMAIL,
        PlainField {
            user_id: 1,
            column: PiiColumn::Phone,
            value: "+442079460001",
        },
    ];
    let ciphertexts = vault.encrypt("contract", &fields).await.unwrap();
    // One bit of the email's ciphertext flipped.
    let mut bytes = STANDARD
        .decode(ciphertexts[0].trim_start_matches("vault:v1:"))
        .unwrap();
    bytes[14] ^= 1;
    let tampered = format!("vault:v1:{}", STANDARD.encode(&bytes));
    let batch = [
        SealedField {
            user_id: 1,
            column: PiiColumn::Email,
            ciphertext: &tampered,
        },
        SealedField {
            user_id: 1,
            column: PiiColumn::Phone,
            ciphertext: &ciphertexts[1],
        },
        SealedField {
            user_id: 1,
            column: PiiColumn::Email,
            ciphertext: "not a ciphertext",
        },
    ];
    let plain = vault.decrypt("contract", &batch).await.unwrap();
    assert!(plain[0].is_err(), "{plain:?}");
    assert_eq!(plain[1].as_deref(), Ok("+442079460001"));
    assert!(plain[2].is_err(), "{plain:?}");

    // At the client: the batch's results, with an error on the failed items only.
    let call = vault.client().call(None);
    let results = call
        .decrypt_batch(
            "vottery-users-pii",
            vec![
                DecryptItem {
                    ciphertext: Some(tampered.clone()),
                    associated_data: Some(STANDARD.encode("vottery_users:1:sngine_email")),
                    ..Default::default()
                },
                DecryptItem {
                    ciphertext: Some(ciphertexts[1].clone()),
                    associated_data: Some(STANDARD.encode("vottery_users:1:sngine_phone")),
                    ..Default::default()
                },
            ],
        )
        .await
        .unwrap();
    assert!(results[0].error.is_some(), "{results:?}");
    assert!(results[1].error.is_none(), "{results:?}");
    assert_eq!(results[1].plaintext, STANDARD.encode("+442079460001"));

    let results = call
        .encrypt_batch(
            "vottery-users-pii",
            vec![encrypt_item("YQ=="), encrypt_item("not base64!")],
        )
        .await
        .unwrap();
    assert!(results[0].ciphertext.is_some() && results[0].error.is_none());
    assert!(results[1].ciphertext.is_none() && results[1].error.is_some());
    let results = call
        .hmac_batch(
            "vottery-users-index",
            "sha2-256",
            Some(1),
            vec![
                HmacItem {
                    input: Some("YQ==".into()),
                    reference: None,
                },
                HmacItem {
                    input: Some("not base64!".into()),
                    reference: None,
                },
            ],
        )
        .await
        .unwrap();
    assert!(
        results[0].hmac.is_some() && results[1].error.is_some(),
        "{results:?}"
    );
    let results = call
        .sign_batch(
            "vottery-users-records",
            &SignatureOptions::default(),
            vec![
                SignItem {
                    input: Some("not base64!".into()),
                    ..Default::default()
                },
                SignItem {
                    input: Some("YQ==".into()),
                    ..Default::default()
                },
            ],
        )
        .await
        .unwrap();
    assert!(
        results[0].error.is_some() && results[1].signature.is_some(),
        "{results:?}"
    );
}
