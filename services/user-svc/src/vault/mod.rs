//! Every call user-svc makes to security-svc: PII encryption bound to row and column and kept
//! under each user's own context key ([`subjects`]), blind indexes, record signatures. Each
//! method is one batched call per key, whatever the number of values; record signatures are
//! checked here with the signing key's public halves ([`record_keys`]).

mod ahead;
mod record_keys;
mod subjects;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use vottery_common::client::{ClientError, SecurityClient, SignatureOptions};
use vottery_common::transit::{
    DecryptItem, EncryptItem, HmacItem, RewrapItem, SignItem, VerifyItem,
};

use crate::configuration::SecuritySettings;
use crate::error::ApiError;
use ahead::ContextsAhead;
use record_keys::RecordKeys;
pub use subjects::{PiiScope, erased_user, is_erased};

/// A column that holds encrypted PII.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiiColumn {
    Email,
    Phone,
    FirstName,
    LastName,
    DateOfBirth,
}

impl PiiColumn {
    pub fn column(self) -> &'static str {
        match self {
            PiiColumn::Email => "sngine_email",
            PiiColumn::Phone => "sngine_phone",
            PiiColumn::FirstName => "first_name",
            PiiColumn::LastName => "last_name",
            PiiColumn::DateOfBirth => "date_of_birth",
        }
    }
}

/// The associated data binding a ciphertext to its row and column: a ciphertext copied into
/// another row or column does not decrypt.
pub fn associated_data(user_id: i32, column: PiiColumn) -> String {
    format!("vottery_users:{user_id}:{}", column.column())
}

/// [`associated_data`] as the transit API takes it (base64).
fn bound_to(user_id: i32, column: PiiColumn) -> Option<String> {
    Some(b64(associated_data(user_id, column).as_bytes()))
}

/// A value to encrypt.
#[derive(Debug, Clone, Copy)]
pub struct PlainField<'a> {
    pub user_id: i32,
    pub column: PiiColumn,
    pub value: &'a str,
}

/// A stored ciphertext to decrypt.
#[derive(Debug, Clone, Copy)]
pub struct SealedField<'a> {
    pub user_id: i32,
    pub column: PiiColumn,
    pub ciphertext: &'a str,
}

/// The signing scheme shown in responses.
pub const SIGNATURE_ALGORITHM: &str = "ed25519 over sha-256 of the RFC 8785 canonical record";

/// The blind-index key version every index is computed with (see the README: rotating it
/// means re-indexing).
const INDEX_KEY_VERSION: i64 = 1;

/// user-svc's client of security-svc.
#[derive(Debug, Clone)]
pub struct Vault {
    client: SecurityClient,
    pii_key: String,
    shared_pii_key: String,
    index_key: String,
    signing_key: String,
    record_keys: Arc<RecordKeys>,
    ahead: Arc<ContextsAhead>,
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn failed(error: ClientError) -> ApiError {
    match error {
        ClientError::Sealed | ClientError::Unavailable(_) => ApiError::Unavailable {
            dependency: "security-svc",
            cause: error.to_string(),
        },
        ClientError::Forbidden => ApiError::Internal(anyhow::anyhow!(
            "security-svc denied user-svc's token: its policy must allow read, encrypt, decrypt, rewrap, hmac, sign, verify and destroy-context on the user keys"
        )),
        other => ApiError::Internal(anyhow::anyhow!("security-svc call failed: {other}")),
    }
}

fn item_failed(what: &str, error: Option<String>) -> ApiError {
    ApiError::Internal(anyhow::anyhow!(
        "security-svc could not {what}: {}",
        error.unwrap_or_default()
    ))
}

impl Vault {
    pub fn new(settings: &SecuritySettings) -> Result<Self, ApiError> {
        let client = SecurityClient::new(&settings.client_settings()).map_err(failed)?;
        Ok(Self {
            client,
            pii_key: settings.pii_key.clone(),
            shared_pii_key: if settings.shared_pii_key.is_empty() {
                settings.pii_key.clone()
            } else {
                settings.shared_pii_key.clone()
            },
            index_key: settings.index_key.clone(),
            signing_key: settings.signing_key.clone(),
            record_keys: Arc::new(RecordKeys::new(
                &settings.signing_key,
                Duration::from_millis(settings.signing_key_refresh_ms),
                settings.remembered_signatures,
            )),
            ahead: Arc::new(ContextsAhead::new(settings.contexts_ahead)),
        })
    }

    pub fn client(&self) -> &SecurityClient {
        &self.client
    }

    /// After a new user's id was reserved: has the context keys of the ids after it made in
    /// the background, so that the creates that follow find theirs made (see [`ahead`]).
    pub fn make_contexts_after(&self, reserved: i32) {
        self.ahead
            .after_reserved(&self.client, &self.pii_key, reserved);
    }

    /// Encrypts values bound to their row and column, each under its user's own context key;
    /// ciphertexts in input order.
    pub async fn encrypt(
        &self,
        request_id: &str,
        fields: &[PlainField<'_>],
    ) -> Result<Vec<String>, ApiError> {
        self.encrypt_in(request_id, PiiScope::PerUser, fields).await
    }

    /// Encrypts values bound to their row and column under `scope`'s key; ciphertexts in
    /// input order.
    pub async fn encrypt_in(
        &self,
        request_id: &str,
        scope: PiiScope,
        fields: &[PlainField<'_>],
    ) -> Result<Vec<String>, ApiError> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let items = fields
            .iter()
            .map(|field| EncryptItem {
                plaintext: Some(b64(field.value.as_bytes())),
                associated_data: bound_to(field.user_id, field.column),
                context: scope.context(field.user_id),
                ..Default::default()
            })
            .collect();
        let results = self
            .client
            .call(Some(request_id))
            .encrypt_batch(self.key_of(scope), items)
            .await
            .map_err(failed)?;
        results
            .into_iter()
            .zip(fields)
            .map(|(result, field)| {
                result.ciphertext.ok_or_else(|| match result.error {
                    Some(reason) if is_erased(&reason) => erased_user(field.user_id),
                    reason => item_failed("encrypt", reason),
                })
            })
            .collect()
    }

    /// Decrypts stored ciphertexts made under each user's own context key; each result is the
    /// value, or why it could not be read (a ciphertext from another row or column, a tampered
    /// value, an erased user: see [`is_erased`]).
    pub async fn decrypt(
        &self,
        request_id: &str,
        fields: &[SealedField<'_>],
    ) -> Result<Vec<Result<String, String>>, ApiError> {
        self.decrypt_in(request_id, PiiScope::PerUser, fields).await
    }

    /// [`Vault::decrypt`] for ciphertexts made under `scope`'s key.
    pub async fn decrypt_in(
        &self,
        request_id: &str,
        scope: PiiScope,
        fields: &[SealedField<'_>],
    ) -> Result<Vec<Result<String, String>>, ApiError> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let items = fields
            .iter()
            .map(|field| DecryptItem {
                ciphertext: Some(field.ciphertext.to_owned()),
                associated_data: bound_to(field.user_id, field.column),
                context: scope.context(field.user_id),
                ..Default::default()
            })
            .collect();
        let results = self
            .client
            .call(Some(request_id))
            .decrypt_batch(self.key_of(scope), items)
            .await
            .map_err(failed)?;
        if results.len() != fields.len() {
            return Err(item_failed("decrypt", Some("result count mismatch".into())));
        }
        Ok(results
            .into_iter()
            .map(|result| match result.error {
                Some(error) => Err(error),
                None => STANDARD
                    .decode(&result.plaintext)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| "decrypted value is not text".to_owned()),
            })
            .collect())
    }

    /// Moves stored ciphertexts onto the PII key's latest version under the same user's
    /// context key, inside security-svc (the plaintext never leaves it); each result is the new ciphertext, or why it could not be
    /// made (a ciphertext from another row or column, or of a retired version).
    pub async fn rewrap(
        &self,
        request_id: &str,
        fields: &[SealedField<'_>],
    ) -> Result<Vec<Result<String, String>>, ApiError> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let items = fields
            .iter()
            .map(|field| RewrapItem {
                ciphertext: Some(field.ciphertext.to_owned()),
                associated_data: bound_to(field.user_id, field.column),
                context: PiiScope::PerUser.context(field.user_id),
                ..Default::default()
            })
            .collect();
        let results = self
            .client
            .call(Some(request_id))
            .rewrap_batch(&self.pii_key, items)
            .await
            .map_err(failed)?;
        if results.len() != fields.len() {
            return Err(item_failed("rewrap", Some("result count mismatch".into())));
        }
        Ok(results
            .into_iter()
            .map(|result| {
                result
                    .ciphertext
                    .ok_or_else(|| result.error.unwrap_or_default())
            })
            .collect())
    }

    /// The latest versions of the PII key and of the signing key.
    pub async fn latest_versions(&self, request_id: &str) -> Result<(u32, u32), ApiError> {
        let call = self.client.call(Some(request_id));
        let (pii, signing) = tokio::try_join!(
            call.read_key(&self.pii_key),
            call.read_key(&self.signing_key)
        )
        .map_err(failed)?;
        Ok((pii.latest_version, signing.latest_version))
    }

    /// Blind indexes of normalised values (HMAC-SHA256 under the index key).
    pub async fn blind_indexes(
        &self,
        request_id: &str,
        values: &[&str],
    ) -> Result<Vec<String>, ApiError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let items = values
            .iter()
            .map(|value| HmacItem {
                input: Some(b64(value.as_bytes())),
                reference: None,
            })
            .collect();
        let results = self
            .client
            .call(Some(request_id))
            .hmac_batch(&self.index_key, "sha2-256", Some(INDEX_KEY_VERSION), items)
            .await
            .map_err(failed)?;
        results
            .into_iter()
            .map(|result| {
                result
                    .hmac
                    .ok_or_else(|| item_failed("compute a blind index", result.error))
            })
            .collect()
    }

    /// Signs record digests; signatures in input order.
    pub async fn sign(
        &self,
        request_id: &str,
        digests: &[[u8; 32]],
    ) -> Result<Vec<String>, ApiError> {
        let items = digests
            .iter()
            .map(|digest| SignItem {
                input: Some(b64(digest)),
                ..Default::default()
            })
            .collect();
        let results = self
            .client
            .call(Some(request_id))
            .sign_batch(&self.signing_key, &SignatureOptions::default(), items)
            .await
            .map_err(failed)?;
        results
            .into_iter()
            .map(|result| {
                result
                    .signature
                    .ok_or_else(|| item_failed("sign", result.error))
            })
            .collect()
    }

    /// Checks record signatures; a malformed or foreign signature is simply not valid.
    pub async fn verify(
        &self,
        request_id: &str,
        items: &[([u8; 32], &str)],
    ) -> Result<Vec<bool>, ApiError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let call = self.client.call(Some(request_id));
        match self.record_keys.verify(call, items).await.map_err(failed)? {
            Some(valid) => Ok(valid),
            None => self.verify_remotely(request_id, items).await,
        }
    }

    /// Checks record signatures with security-svc's `verify`.
    async fn verify_remotely(
        &self,
        request_id: &str,
        items: &[([u8; 32], &str)],
    ) -> Result<Vec<bool>, ApiError> {
        let batch = items
            .iter()
            .map(|(digest, signature)| VerifyItem {
                input: Some(b64(digest)),
                signature: Some((*signature).to_owned()),
                ..Default::default()
            })
            .collect();
        let results = self
            .client
            .call(Some(request_id))
            .verify_batch(&self.signing_key, &SignatureOptions::default(), batch)
            .await
            .map_err(failed)?;
        Ok(results
            .into_iter()
            .map(|result| result.valid && result.error.is_none())
            .collect())
    }
}

/// The key version of a `vault:v<N>:...` value.
pub fn key_version(value: &str) -> Option<u32> {
    value
        .strip_prefix("vault:v")?
        .split_once(':')?
        .0
        .parse()
        .ok()
}
