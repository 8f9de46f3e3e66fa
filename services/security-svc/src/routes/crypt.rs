//! `/v1/transit/{encrypt,decrypt,rewrap,datakey}`: single values or `batch_input`, results in
//! input order with per-item errors.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::value::RawValue;
use vottery_common::transit::{
    BatchResults, Ciphertext, DataKey, DataKeyRequest, DecryptItem, DecryptRequest, DecryptResult,
    EncryptItem, EncryptRequest, EncryptResult, KeyType, Plaintext, RewrapItem, RewrapRequest,
};
use vottery_common::vault::VaultResponse;
use zeroize::Zeroizing;

use super::batch::{Batch, FailedItems, ItemOutcome, item_count, key_ring};
use super::refusal::Refusal;
use super::segments::{DataKeyKind, KeyName};
use super::{AppState, Authorized, VaultBody, decode_field, measured, post_or_put, vault_ok};
use crate::auth::Operation;
use crate::error::VaultError;
use crate::keys::contexts::{ContextDataKey, ContextKeys, ContextUse};
use crate::keys::material::VersionMaterial;
use crate::keys::ops::{self, CipherInputs, OpError, SealingKeys};
use crate::keys::rules::NewKey;
use crate::keys::wire::{ValueKind, decode_b64, encode_b64, parse_versioned, versioned_b64};
use crate::keys::{Incoming, KeyRing, KeyVersion, Purpose, is_valid_key_name};
use crate::routes::openapi::{DecryptData, EncryptData};

type Auth = Result<Authorized, VaultError>;
type Body<T> = Result<VaultBody<T>, VaultError>;
type Items<R> = Result<Batch<R>, VaultError>;

/// Vault refuses a batch that sets `context` on some items only.
fn context_consistency<'a>(contexts: impl Iterator<Item = Option<&'a str>>) -> Result<(), Refusal> {
    let (mut with, mut without) = (0, 0);
    for context in contexts {
        if context.is_some_and(|context| !context.is_empty()) {
            with += 1;
        } else {
            without += 1;
        }
    }
    if with > 0 && without > 0 {
        return Err(Refusal::MixedContext);
    }
    Ok(())
}

/// One encrypt or rewrap batch result as this service writes it: the wire form of
/// [`vottery_common::transit::EncryptResult`]. A ciphertext (`vault:v<N>:` and base64) holds no character that JSON
/// escapes, so it reaches the serialiser as a finished JSON string rather than being scanned
/// byte by byte for one. That scan had been the largest single cost of a batch of 100.
#[derive(Debug, Serialize)]
struct BatchCiphertext {
    #[serde(skip_serializing_if = "Option::is_none")]
    ciphertext: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    reference: String,
}

impl BatchCiphertext {
    fn of(result: Result<Ciphertext, OpError>, reference: String) -> Self {
        match result {
            Ok(done) => Self {
                ciphertext: Some(json_string(done.ciphertext)),
                key_version: Some(done.key_version),
                error: None,
                reference,
            },
            Err(error) => Self {
                ciphertext: None,
                key_version: None,
                error: Some(error.message().to_owned()),
                reference,
            },
        }
    }
}

/// `text` as a JSON string, quoted as it is when it needs no escaping (checked), else escaped.
fn json_string(text: String) -> Box<RawValue> {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    quoted.push_str(&text);
    quoted.push('"');
    RawValue::from_string(quoted)
        .or_else(|_| serde_json::value::to_raw_value(&text))
        .unwrap_or_default()
}

/// An item encrypted (or rewrapped).
struct Sealed(Ciphertext);

impl ItemOutcome for Sealed {
    type Single = Ciphertext;
    type BatchResult = BatchCiphertext;

    fn into_single(self) -> Ciphertext {
        self.0
    }

    fn into_batch_result(result: Result<Self, OpError>, reference: String) -> BatchCiphertext {
        BatchCiphertext::of(result.map(|Sealed(done)| done), reference)
    }
}

/// A decrypted plaintext, wiped when dropped.
struct Opened(Zeroizing<Vec<u8>>);

impl ItemOutcome for Opened {
    type Single = Plaintext;
    type BatchResult = DecryptResult;

    fn into_single(self) -> Plaintext {
        Plaintext {
            plaintext: encode_b64(&self.0),
        }
    }

    fn into_batch_result(result: Result<Self, OpError>, reference: String) -> DecryptResult {
        match result {
            Ok(Opened(plaintext)) => DecryptResult {
                plaintext: encode_b64(&plaintext),
                error: None,
                reference,
            },
            Err(error) => DecryptResult {
                plaintext: String::new(),
                error: Some(error.message().to_owned()),
                reference,
            },
        }
    }
}

/// An item's `context` and `associated_data`, decoded from base64, and the context's data key
/// when the key ring has context keys.
struct Decoded {
    context: Option<Vec<u8>>,
    associated_data: Option<Vec<u8>>,
    data_key: Option<Arc<ContextDataKey>>,
}

impl Decoded {
    fn of(
        contexts: &ContextKeys,
        context: Option<&str>,
        associated_data: Option<&str>,
    ) -> Result<Self, OpError> {
        let context = decode_field("context", context).map_err(OpError::User)?;
        Ok(Self {
            data_key: contexts.key_for(context.as_deref())?,
            context,
            associated_data: decode_field("associated_data", associated_data)
                .map_err(OpError::User)?,
        })
    }

    /// The inputs besides the key: a context's data key is already in the key it seals with
    /// (see [`Decoded::sealing`]).
    fn inputs(&self) -> CipherInputs<'_> {
        CipherInputs {
            associated_data: self.associated_data.as_deref(),
            context: self.context.as_deref(),
            data_key: None,
        }
    }

    /// The key of the context's values under `version`, derived once per request; `None`
    /// for keys without context keys (the version's own key).
    fn sealing(&self, version: &KeyVersion) -> Result<Option<Arc<VersionMaterial>>, OpError> {
        self.data_key
            .as_ref()
            .map(|data_key| data_key.sealing(version))
            .transpose()
    }
}

/// The request's items as the key ring sees them: its keys, and its contexts' data keys.
struct Keys {
    ring: Arc<KeyRing>,
    contexts: ContextKeys,
}

impl Keys {
    /// The ring with the data keys of the `contexts` a request names (none for keys without
    /// context keys).
    async fn of<'a>(
        auth: &Authorized,
        ring: Arc<KeyRing>,
        contexts: impl IntoIterator<Item = Option<&'a str>>,
        usage: ContextUse,
    ) -> Result<Self, VaultError> {
        let contexts = auth.store.context_keys(&ring, contexts, usage).await?;
        Ok(Self { ring, contexts })
    }
}

/// Encrypts `plaintext` with the version `key_version` asks for (the latest when absent);
/// `keys` keeps the expanded AEAD keys for the request's other items.
fn seal(
    ring: &KeyRing,
    keys: &mut SealingKeys,
    key_version: Option<i64>,
    plaintext: &[u8],
    inputs: &Decoded,
) -> Result<Ciphertext, OpError> {
    let version = ring.version_for(Purpose::Encryption, key_version)?;
    let own = inputs.sealing(version)?;
    let payload = ops::encrypt_under(
        own.as_deref(),
        keys,
        version,
        ring.flags(),
        plaintext,
        inputs.inputs(),
    )?;
    Ok(Ciphertext {
        ciphertext: versioned_b64(version.number, &payload),
        key_version: version.number,
    })
}

/// Encrypts one item.
fn encrypt_one(with: &Keys, keys: &mut SealingKeys, item: &EncryptItem) -> Result<Sealed, OpError> {
    let plaintext = item.plaintext.as_deref().ok_or(Refusal::MissingPlaintext)?;
    let plaintext = Zeroizing::new(decode_b64(plaintext).map_err(|_| Refusal::PlaintextNotBase64)?);
    let inputs = Decoded::of(
        &with.contexts,
        item.context.as_deref(),
        item.associated_data.as_deref(),
    )?;
    seal(&with.ring, keys, item.key_version, &plaintext, &inputs).map(Sealed)
}

/// Opens one ciphertext, and answers the decoded inputs it was opened with.
fn open_one(
    with: &Keys,
    ciphertext: Option<&str>,
    context: Option<&str>,
    associated_data: Option<&str>,
) -> Result<(Zeroizing<Vec<u8>>, Decoded), OpError> {
    let ciphertext = ciphertext
        .filter(|text| !text.is_empty())
        .ok_or(Refusal::MissingCiphertext)?;
    let parsed = parse_versioned(ciphertext, ValueKind::Ciphertext).map_err(OpError::User)?;
    let payload = decode_b64(parsed.payload).map_err(|_| Refusal::CiphertextNotBase64)?;
    let version = with
        .ring
        .version_to_open(Incoming::Ciphertext, parsed.version)?;
    let inputs = Decoded::of(&with.contexts, context, associated_data)?;
    let sealing = inputs.sealing(version)?;
    let plaintext = ops::decrypt(
        sealing.as_deref().unwrap_or(&version.material),
        with.ring.flags(),
        &payload,
        inputs.inputs(),
    )?;
    Ok((plaintext, inputs))
}

/// Decrypts one item.
fn decrypt_one(with: &Keys, item: &DecryptItem) -> Result<Opened, OpError> {
    let (plaintext, _) = open_one(
        with,
        item.ciphertext.as_deref(),
        item.context.as_deref(),
        item.associated_data.as_deref(),
    )?;
    Ok(Opened(plaintext))
}

/// Re-encrypts one item with the version it asks for, never revealing the plaintext.
fn rewrap_one(with: &Keys, keys: &mut SealingKeys, item: &RewrapItem) -> Result<Sealed, OpError> {
    let (plaintext, inputs) = open_one(
        with,
        item.ciphertext.as_deref(),
        item.context.as_deref(),
        item.associated_data.as_deref(),
    )?;
    seal(&with.ring, keys, item.key_version, &plaintext, &inputs).map(Sealed)
}

/// `/datakey/:kind`: whether the answer carries the key in the clear too.
fn include_plaintext(kind: &str) -> Result<bool, Refusal> {
    match kind {
        "plaintext" => Ok(true),
        "wrapped" => Ok(false),
        _ => Err(Refusal::DataKeyKind),
    }
}

/// The data key's size: 128, 256 (the default) or 512 bits.
fn data_key_bits(bits: Option<i64>) -> Result<usize, Refusal> {
    match bits.unwrap_or(256) {
        bits @ (128 | 256 | 512) => Ok(bits as usize),
        _ => Err(Refusal::DataKeyBits),
    }
}

/// Wraps a data key under the version the request asks for.
fn wrap_data_key(with: &Keys, request: &DataKeyRequest, key: &[u8]) -> Result<Ciphertext, OpError> {
    let inputs = Decoded::of(
        &with.contexts,
        request.context.as_deref(),
        request.associated_data.as_deref(),
    )?;
    let mut keys = SealingKeys::default();
    seal(&with.ring, &mut keys, request.key_version, key, &inputs)
}

/// The version a ciphertext names, if it is readable.
fn ciphertext_version(ciphertext: Option<&str>) -> Option<u32> {
    parse_versioned(ciphertext?, ValueKind::Ciphertext)
        .ok()
        .map(|parsed| parsed.version)
}

/// Creates the key on first use, as Vault's encrypt does, when the caller may create keys.
async fn upsert(
    auth: &Authorized,
    name: &str,
    body: &Batch<EncryptRequest>,
) -> Result<Arc<KeyRing>, VaultError> {
    if !auth.caller.policy.allows(Operation::Create, Some(name)) || !is_valid_key_name(name) {
        return Err(Refusal::EncryptionKeyNotFound.into());
    }
    let key_type = match body.request.key_type.as_deref() {
        None | Some("") => KeyType::Aes256Gcm96,
        Some(text) => text.parse::<KeyType>().map_err(Refusal::UnknownKeyType)?,
    };
    if !key_type.is_aead() {
        return Err(Refusal::KeyTypeNotSupported(key_type).into());
    }
    let derived = body
        .items
        .first()
        .and_then(|item| item.context.as_deref())
        .is_some_and(|context| !context.is_empty());
    let convergent = body.request.convergent_encryption.unwrap_or(false);
    if convergent && !derived {
        return Err(Refusal::ConvergentWithoutContext.into());
    }
    let ring = auth
        .store
        .create(name, NewKey::for_upsert(key_type, derived, convergent))
        .await?;
    tracing::info!(caller = %auth.caller.name, key = %name, "key created on first encrypt");
    Ok(ring)
}

/// Encrypts a value or a batch.
///
/// Encrypts base64 `plaintext` (or each item of `batch_input`) with the key's latest version,
/// or `key_version`, and answers `vault:v<N>:<base64>`. Creates an `aes256-gcm96` key (or
/// `type`) on first use when the caller may create keys. RSA keys encrypt with OAEP-SHA256.
#[utoipa::path(method(post, put), path = "/v1/transit/encrypt/{name}", tag = "transit", operation_id = "encrypt",
    params(("name" = KeyName, Path)),
    request_body = EncryptRequest,
    responses(
        crate::routes::openapi::TransitErrors,
        (status = 200, description = "The ciphertext, or the batch's results", body = VaultResponse<EncryptData>),
        (status = 400, description = "The request was refused (`errors` says why), or items of a batch failed: every item's result, each failed one carrying `error`", body = crate::routes::openapi::EncryptRefused),
        (status = "default", description = "The status `partial_failure_response_code` names, when some items of a batch failed and others succeeded", body = VaultResponse<BatchResults<EncryptResult>>),
    ),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn encrypt(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: Items<EncryptRequest>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Encrypt, item_count(&body), async {
        let auth = auth?;
        let name = name.into_inner();
        auth.require(Operation::Encrypt, Some(&name))?;
        let body = body?;
        body.check_size(&state)?;
        context_consistency(body.items.iter().map(|item| item.context.as_deref()))?;
        if !body.is_batch && body.items.iter().any(|item| item.plaintext.is_none()) {
            return Err(Refusal::MissingPlaintext.into());
        }
        let ring = match auth.store.get(&name).await? {
            Some(ring) => ring,
            None => upsert(&auth, &name, &body).await?,
        };
        let requested = body.items.iter().map(|item| item.key_version);
        let ring = auth.store.fresh_for_requested(ring, requested).await?;
        let contexts = body.items.iter().map(|item| item.context.as_deref());
        let with = Keys::of(&auth, ring, contexts, ContextUse::Create).await?;
        let failed = FailedItems::SetStatus(body.request.partial_failure_response_code);
        let mut keys = SealingKeys::default();
        body.answer(&auth.request_id, failed, |item| {
            encrypt_one(&with, &mut keys, item)
        })
    })
    .await
}

/// Decrypts a value or a batch.
///
/// Decrypts a `vault:v<N>:` ciphertext (or each item of `batch_input`) to base64 plaintext;
/// `associated_data` and `context` must match the encryption's.
#[utoipa::path(method(post, put), path = "/v1/transit/decrypt/{name}", tag = "transit", operation_id = "decrypt",
    params(("name" = KeyName, Path)),
    request_body = DecryptRequest,
    responses(
        crate::routes::openapi::TransitErrors,
        (status = 200, description = "The plaintext, or the batch's results", body = VaultResponse<DecryptData>),
        (status = 400, description = "The request was refused (`errors` says why), or items of a batch failed: every item's result, each failed one carrying `error`", body = crate::routes::openapi::DecryptRefused),
        (status = "default", description = "The status `partial_failure_response_code` names, when some items of a batch failed and others succeeded", body = VaultResponse<BatchResults<DecryptResult>>),
    ),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn decrypt(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: Items<DecryptRequest>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Decrypt, item_count(&body), async {
        let auth = auth?;
        let name = name.into_inner();
        auth.require(Operation::Decrypt, Some(&name))?;
        let body = body?;
        body.check_size(&state)?;
        context_consistency(body.items.iter().map(|item| item.context.as_deref()))?;
        let ring = key_ring(&auth, &name, Refusal::EncryptionKeyNotFound).await?;
        let ciphertexts = body.items.iter().map(|item| item.ciphertext.as_deref());
        let versions = ciphertexts.filter_map(ciphertext_version);
        let ring = auth.store.fresh_for_values(ring, versions).await?;
        let contexts = body.items.iter().map(|item| item.context.as_deref());
        let with = Keys::of(&auth, ring, contexts, ContextUse::Read).await?;
        let failed = FailedItems::SetStatus(body.request.partial_failure_response_code);
        body.answer(&auth.request_id, failed, |item| decrypt_one(&with, item))
    })
    .await
}

/// Re-encrypts a value or a batch with a newer key version.
///
/// Uses the latest version, or `key_version`; the plaintext is never revealed.
#[utoipa::path(method(post, put), path = "/v1/transit/rewrap/{name}", tag = "transit", operation_id = "rewrap",
    params(("name" = KeyName, Path)),
    request_body = RewrapRequest,
    responses((status = 200, description = "The new ciphertext, or the batch's results", body = VaultResponse<EncryptData>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn rewrap(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: Items<RewrapRequest>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Rewrap, item_count(&body), async {
        let auth = auth?;
        let name = name.into_inner();
        auth.require(Operation::Rewrap, Some(&name))?;
        let body = body?;
        body.check_size(&state)?;
        let ring = key_ring(&auth, &name, Refusal::EncryptionKeyNotFound).await?;
        let ciphertexts = body.items.iter().map(|item| item.ciphertext.as_deref());
        let versions = ciphertexts.filter_map(ciphertext_version);
        let ring = auth.store.fresh_for_values(ring, versions).await?;
        let requested = body.items.iter().map(|item| item.key_version);
        let ring = auth.store.fresh_for_requested(ring, requested).await?;
        let contexts = body.items.iter().map(|item| item.context.as_deref());
        let with = Keys::of(&auth, ring, contexts, ContextUse::Read).await?;
        let mut keys = SealingKeys::default();
        body.answer(
            &auth.request_id,
            FailedItems::InternalFailsRequest,
            |item| rewrap_one(&with, &mut keys, item),
        )
    })
    .await
}

/// Makes a data key wrapped by the named key.
///
/// A random key of `bits` (128, 256 or 512); `plaintext` also returns it in the clear,
/// `wrapped` only wrapped.
#[utoipa::path(method(post, put), path = "/v1/transit/datakey/{kind}/{name}", tag = "transit", operation_id = "datakey",
    params(("kind" = DataKeyKind, Path), ("name" = KeyName, Path)),
    request_body = DataKeyRequest,
    responses((status = 200, description = "The wrapped data key, and its plaintext when asked for", body = VaultResponse<DataKey>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn datakey(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(String, String)>,
    body: Body<DataKeyRequest>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::DataKey, 1, async {
        let auth = auth?;
        let (kind, name) = path.into_inner();
        auth.require(Operation::DataKey, Some(&name))?;
        let include_plaintext = include_plaintext(&kind)?;
        let request = body?.0;
        let bits = data_key_bits(request.bits)?;
        let ring = key_ring(&auth, &name, Refusal::EncryptionKeyNotFound).await?;
        let ring = auth
            .store
            .fresh_for_requested(ring, [request.key_version])
            .await?;
        let contexts = [request.context.as_deref()];
        let with = Keys::of(&auth, ring, contexts, ContextUse::Create).await?;
        let key = ops::data_key(bits)?;
        let wrapped = wrap_data_key(&with, &request, &key)?;
        let data = DataKey {
            plaintext: include_plaintext.then(|| encode_b64(&key)),
            ciphertext: wrapped.ciphertext,
            key_version: wrapped.key_version,
        };
        Ok(vault_ok(&auth.request_id, data, Vec::new()))
    })
    .await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(post_or_put("/v1/transit/encrypt/{name}", encrypt))
        .service(post_or_put("/v1/transit/decrypt/{name}", decrypt))
        .service(post_or_put("/v1/transit/rewrap/{name}", rewrap))
        .service(post_or_put("/v1/transit/datakey/{kind}/{name}", datakey));
}

#[cfg(test)]
mod tests {
    use vottery_common::transit::EncryptResult;

    use super::*;

    #[test]
    fn batch_ciphertexts_are_written_exactly_as_encrypt_results() {
        let written = |result: Result<Ciphertext, OpError>| {
            serde_json::to_string(&BatchCiphertext::of(result, "a \"ref\"\n".into())).unwrap()
        };
        let ciphertext = "vault:v3:AAEC/+8=".to_owned();
        let ok = written(Ok(Ciphertext {
            ciphertext: ciphertext.clone(),
            key_version: 3,
        }));
        let expected = serde_json::to_string(&EncryptResult {
            ciphertext: Some(ciphertext),
            key_version: Some(3),
            error: None,
            reference: "a \"ref\"\n".into(),
        })
        .unwrap();
        assert_eq!(ok, expected);
        let failed = written(Err(OpError::user("failed to base64-decode plaintext")));
        let expected = serde_json::to_string(&EncryptResult {
            error: Some("failed to base64-decode plaintext".into()),
            reference: "a \"ref\"\n".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(failed, expected);
        // A text that does need escaping is escaped, not written raw.
        assert_eq!(json_string("a\"b".into()).get(), r#""a\"b""#);
    }
}
