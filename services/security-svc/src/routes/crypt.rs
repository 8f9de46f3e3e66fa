//! `/v1/transit/{encrypt,decrypt,rewrap,datakey}`: single values or `batch_input`, results in
//! input order with per-item errors.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::value::RawValue;
use vottery_common::transit::{
    BatchResults, Ciphertext, DataKey, DataKeyRequest, DecryptItem, DecryptRequest, DecryptResult,
    EncryptItem, EncryptRequest, KeyType, Plaintext, RewrapItem, RewrapRequest,
};
use vottery_common::vault::VaultResponse;
use zeroize::Zeroizing;

use super::{AppState, Authorized, VaultBody, decode_field, measured, vault_ok, vault_with_status};
use crate::auth::Operation;
use crate::error::VaultError;
use crate::keys::ops::{self, CipherInputs, OpError};
use crate::keys::rules::NewKey;
use crate::keys::store::KeyStore;
use crate::keys::wire::{ValueKind, decode_b64, encode_b64, parse_versioned, versioned_b64};
use crate::keys::{Incoming, KeyRing, Purpose, is_valid_key_name};
use crate::openapi::{DecryptData, EncryptData};

type Auth = Result<Authorized, VaultError>;
type Body<T> = Result<VaultBody<T>, VaultError>;

/// Checks the size of a batch against the limit.
pub(super) fn check_batch<T>(state: &AppState, items: &[T]) -> Result<(), VaultError> {
    if items.is_empty() {
        return Err(VaultError::bad_request("missing batch input to process"));
    }
    let max = state.transit.max_batch_items;
    if items.len() > max {
        return Err(VaultError::bad_request(format!(
            "batch_input has {} items; at most {max} are accepted in one request",
            items.len()
        )));
    }
    Ok(())
}

/// Vault's status for an encrypt or decrypt batch: 200 when every item succeeded; otherwise 400
/// (500 if only internal failures), or `partial_failure_response_code` when some succeeded.
fn batch_status<T>(
    results: &[Result<T, OpError>],
    partial_code: Option<i64>,
    warnings: &mut Vec<String>,
) -> StatusCode {
    let failed = results.iter().filter(|result| result.is_err()).count();
    if failed == 0 {
        return StatusCode::OK;
    }
    let user_failure = results
        .iter()
        .any(|result| matches!(result, Err(OpError::User(_))));
    let failure = if user_failure {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    match partial_code {
        Some(code) if failed < results.len() => match u16::try_from(code)
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
        {
            Some(status) if (1..=599).contains(&code) => status,
            _ => {
                warnings.push("invalid HTTP response code override from partial_failure_response_code, reverting to 400".into());
                StatusCode::BAD_REQUEST
            }
        },
        _ => failure,
    }
}

fn context_consistency<'a>(
    contexts: impl Iterator<Item = Option<&'a str>>,
) -> Result<(), VaultError> {
    let (mut with, mut without) = (0, 0);
    for context in contexts {
        if context.is_some_and(|context| !context.is_empty()) {
            with += 1;
        } else {
            without += 1;
        }
    }
    if with > 0 && without > 0 {
        return Err(VaultError::bad_request(
            "context should be set either in all the request blocks or in none",
        ));
    }
    Ok(())
}

/// The ring, reloaded from storage when a value carries a version this snapshot cannot judge
/// (rotated or reconfigured through another instance): stale caches never refuse valid data.
pub(super) async fn current_ring(
    store: &KeyStore,
    ring: Arc<KeyRing>,
    versions: impl Iterator<Item = u32>,
) -> Result<Arc<KeyRing>, VaultError> {
    let mut versions = versions;
    if versions.any(|version| ring.may_be_stale_for(version)) {
        return Ok(store.load(ring.name()).await?.unwrap_or(ring));
    }
    Ok(ring)
}

/// The ring, reloaded from storage when a request asks by number for a version newer than this
/// snapshot's latest (rotated through another instance): stale caches never refuse a version
/// that exists.
pub(super) async fn ring_for_requested(
    store: &KeyStore,
    ring: Arc<KeyRing>,
    requested: impl Iterator<Item = Option<i64>>,
) -> Result<Arc<KeyRing>, VaultError> {
    let latest = i64::from(ring.config.latest_version);
    let mut requested = requested;
    if requested.any(|version| version.is_some_and(|version| version > latest)) {
        return Ok(store.load(ring.name()).await?.unwrap_or(ring));
    }
    Ok(ring)
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

/// Encrypts one item; `keys` keeps the expanded AEAD keys for the request's other items.
fn encrypt_one(
    ring: &KeyRing,
    keys: &mut ops::SealingKeys,
    item: &EncryptItem,
) -> Result<Ciphertext, OpError> {
    let plaintext = item
        .plaintext
        .as_deref()
        .ok_or_else(|| OpError::user("missing plaintext to encrypt"))?;
    let plaintext = Zeroizing::new(
        decode_b64(plaintext).map_err(|_| OpError::user("failed to base64-decode plaintext"))?,
    );
    let context = decode_field("context", item.context.as_deref()).map_err(OpError::User)?;
    let associated_data =
        decode_field("associated_data", item.associated_data.as_deref()).map_err(OpError::User)?;
    let version = ring.version_for(Purpose::Encryption, item.key_version)?;
    let inputs = CipherInputs {
        associated_data: associated_data.as_deref(),
        context: context.as_deref(),
    };
    let payload = ops::encrypt_reusing(
        keys,
        version.number,
        &version.material,
        ring.flags(),
        &plaintext,
        inputs,
    )?;
    Ok(Ciphertext {
        ciphertext: versioned_b64(version.number, &payload),
        key_version: version.number,
    })
}

fn open_one(
    ring: &KeyRing,
    ciphertext: Option<&str>,
    context: Option<&str>,
    associated_data: Option<&str>,
) -> Result<Zeroizing<Vec<u8>>, OpError> {
    let ciphertext = ciphertext
        .filter(|text| !text.is_empty())
        .ok_or_else(|| OpError::user("missing ciphertext to decrypt"))?;
    let parsed = parse_versioned(ciphertext, ValueKind::Ciphertext).map_err(OpError::User)?;
    let payload = decode_b64(parsed.payload)
        .map_err(|_| OpError::user("invalid ciphertext: could not decode base64"))?;
    let context = decode_field("context", context).map_err(OpError::User)?;
    let associated_data =
        decode_field("associated_data", associated_data).map_err(OpError::User)?;
    let version = ring.version_to_open(Incoming::Ciphertext, parsed.version)?;
    let inputs = CipherInputs {
        associated_data: associated_data.as_deref(),
        context: context.as_deref(),
    };
    ops::decrypt(&version.material, ring.flags(), &payload, inputs)
}

fn ciphertext_version(ciphertext: Option<&str>) -> Option<u32> {
    parse_versioned(ciphertext?, ValueKind::Ciphertext)
        .ok()
        .map(|parsed| parsed.version)
}

/// Creates the key on first use, as Vault's encrypt does, when the caller may create keys.
async fn upsert(
    auth: &Authorized,
    name: &str,
    request: &EncryptRequest,
    items: &[EncryptItem],
) -> Result<Arc<KeyRing>, VaultError> {
    if !auth.caller.policy.allows(Operation::Create, Some(name)) || !is_valid_key_name(name) {
        return Err(VaultError::bad_request("encryption key not found"));
    }
    let key_type = match request.key_type.as_deref() {
        None | Some("") => KeyType::Aes256Gcm96,
        Some(text) => text
            .parse::<KeyType>()
            .map_err(|error| VaultError::bad_request(error.to_string()))?,
    };
    if !key_type.is_aead() {
        return Err(VaultError::bad_request(format!(
            "key type {key_type} not supported for this operation"
        )));
    }
    let derived = items
        .first()
        .and_then(|item| item.context.as_deref())
        .is_some_and(|context| !context.is_empty());
    let convergent = request.convergent_encryption.unwrap_or(false);
    if convergent && !derived {
        return Err(VaultError::bad_request(
            "convergent encryption requires derivation to be enabled, so context is required",
        ));
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
    params(("name" = String, Path, description = "The key ring's name")),
    request_body = EncryptRequest,
    responses((status = 200, description = "The ciphertext, or the batch's results", body = VaultResponse<EncryptData>), crate::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn encrypt(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: Body<EncryptRequest>,
) -> Result<HttpResponse, VaultError> {
    let body = body.map(|body| body.0);
    let items = body.as_ref().map_or(1, |request| {
        request.batch_input.as_ref().map_or(1, Vec::len)
    });
    measured(&state, Operation::Encrypt, items, async {
        let auth = auth?;
        let name = name.into_inner();
        auth.require(Operation::Encrypt, Some(&name))?;
        let mut request = body?;
        let is_batch = request.batch_input.is_some();
        let items = match request.batch_input.take() {
            Some(items) => {
                check_batch(&state, &items)?;
                context_consistency(items.iter().map(|item| item.context.as_deref()))?;
                items
            }
            None => {
                if request.plaintext.is_none() {
                    return Err(VaultError::bad_request("missing plaintext to encrypt"));
                }
                vec![EncryptItem {
                    plaintext: request.plaintext.take(),
                    associated_data: request.associated_data.take(),
                    context: request.context.take(),
                    key_version: request.key_version,
                    reference: None,
                }]
            }
        };
        let ring = match auth.store.get(&name).await? {
            Some(ring) => ring,
            None => upsert(&auth, &name, &request, &items).await?,
        };
        let ring = ring_for_requested(&auth.store, ring, items.iter().map(|item| item.key_version))
            .await?;
        let mut keys = ops::SealingKeys::default();
        let results: Vec<Result<Ciphertext, OpError>> = items
            .iter()
            .map(|item| encrypt_one(&ring, &mut keys, item))
            .collect();
        if !is_batch {
            let single = results
                .into_iter()
                .next()
                .ok_or_else(VaultError::internal)??;
            return Ok(vault_ok(&auth.request_id, single, Vec::new()));
        }
        let mut warnings = Vec::new();
        let status = batch_status(
            &results,
            request.partial_failure_response_code,
            &mut warnings,
        );
        let batch_results = results
            .into_iter()
            .zip(items)
            .map(|(result, item)| BatchCiphertext::of(result, item.reference.unwrap_or_default()))
            .collect();
        Ok(vault_with_status(
            status,
            &auth.request_id,
            BatchResults { batch_results },
            warnings,
        ))
    })
    .await
}

/// Decrypts a value or a batch.
///
/// Decrypts a `vault:v<N>:` ciphertext (or each item of `batch_input`) to base64 plaintext;
/// `associated_data` and `context` must match the encryption's.
#[utoipa::path(method(post, put), path = "/v1/transit/decrypt/{name}", tag = "transit", operation_id = "decrypt",
    params(("name" = String, Path, description = "The key ring's name")),
    request_body = DecryptRequest,
    responses((status = 200, description = "The plaintext, or the batch's results", body = VaultResponse<DecryptData>), crate::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn decrypt(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: Body<DecryptRequest>,
) -> Result<HttpResponse, VaultError> {
    let body = body.map(|body| body.0);
    let items = body.as_ref().map_or(1, |request| {
        request.batch_input.as_ref().map_or(1, Vec::len)
    });
    measured(&state, Operation::Decrypt, items, async {
        let auth = auth?;
        let name = name.into_inner();
        auth.require(Operation::Decrypt, Some(&name))?;
        let mut request = body?;
        let is_batch = request.batch_input.is_some();
        let items = match request.batch_input.take() {
            Some(items) => {
                check_batch(&state, &items)?;
                context_consistency(items.iter().map(|item| item.context.as_deref()))?;
                items
            }
            None => vec![DecryptItem {
                ciphertext: request.ciphertext.take(),
                associated_data: request.associated_data.take(),
                context: request.context.take(),
                reference: None,
            }],
        };
        let ring = auth
            .store
            .get(&name)
            .await?
            .ok_or_else(|| VaultError::bad_request("encryption key not found"))?;
        let ring = current_ring(
            &auth.store,
            ring,
            items
                .iter()
                .filter_map(|item| ciphertext_version(item.ciphertext.as_deref())),
        )
        .await?;
        let results: Vec<Result<Zeroizing<Vec<u8>>, OpError>> = items
            .iter()
            .map(|item| {
                open_one(
                    &ring,
                    item.ciphertext.as_deref(),
                    item.context.as_deref(),
                    item.associated_data.as_deref(),
                )
            })
            .collect();
        if !is_batch {
            let plaintext = results
                .into_iter()
                .next()
                .ok_or_else(VaultError::internal)??;
            return Ok(vault_ok(
                &auth.request_id,
                Plaintext {
                    plaintext: encode_b64(&plaintext),
                },
                Vec::new(),
            ));
        }
        let mut warnings = Vec::new();
        let status = batch_status(
            &results,
            request.partial_failure_response_code,
            &mut warnings,
        );
        let batch_results = results
            .into_iter()
            .zip(items)
            .map(|(result, item)| {
                let reference = item.reference.unwrap_or_default();
                match result {
                    Ok(plaintext) => DecryptResult {
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
            })
            .collect();
        Ok(vault_with_status(
            status,
            &auth.request_id,
            BatchResults { batch_results },
            warnings,
        ))
    })
    .await
}

fn rewrap_one(ring: &KeyRing, item: &RewrapItem) -> Result<Ciphertext, OpError> {
    let plaintext = open_one(
        ring,
        item.ciphertext.as_deref(),
        item.context.as_deref(),
        item.associated_data.as_deref(),
    )?;
    encrypt_one(
        ring,
        &mut ops::SealingKeys::default(),
        &EncryptItem {
            plaintext: Some(encode_b64(&plaintext)),
            associated_data: item.associated_data.clone(),
            context: item.context.clone(),
            key_version: item.key_version,
            reference: None,
        },
    )
}

/// Re-encrypts a value or a batch with a newer key version.
///
/// Uses the latest version, or `key_version`; the plaintext is never revealed.
#[utoipa::path(method(post, put), path = "/v1/transit/rewrap/{name}", tag = "transit", operation_id = "rewrap",
    params(("name" = String, Path, description = "The key ring's name")),
    request_body = RewrapRequest,
    responses((status = 200, description = "The new ciphertext, or the batch's results", body = VaultResponse<EncryptData>), crate::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn rewrap(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: Body<RewrapRequest>,
) -> Result<HttpResponse, VaultError> {
    let body = body.map(|body| body.0);
    let items = body.as_ref().map_or(1, |request| {
        request.batch_input.as_ref().map_or(1, Vec::len)
    });
    measured(&state, Operation::Rewrap, items, async {
        let auth = auth?;
        let name = name.into_inner();
        auth.require(Operation::Rewrap, Some(&name))?;
        let mut request = body?;
        let is_batch = request.batch_input.is_some();
        let items = match request.batch_input.take() {
            Some(items) => {
                check_batch(&state, &items)?;
                items
                    .into_iter()
                    .map(|item| RewrapItem {
                        key_version: item.key_version.or(request.key_version),
                        ..item
                    })
                    .collect::<Vec<_>>()
            }
            None => vec![RewrapItem {
                ciphertext: request.ciphertext.take(),
                associated_data: request.associated_data.take(),
                context: request.context.take(),
                key_version: request.key_version,
                reference: None,
            }],
        };
        let ring = auth
            .store
            .get(&name)
            .await?
            .ok_or_else(|| VaultError::bad_request("encryption key not found"))?;
        let ring = current_ring(
            &auth.store,
            ring,
            items
                .iter()
                .filter_map(|item| ciphertext_version(item.ciphertext.as_deref())),
        )
        .await?;
        let ring = ring_for_requested(&auth.store, ring, items.iter().map(|item| item.key_version))
            .await?;
        let results: Vec<Result<Ciphertext, OpError>> =
            items.iter().map(|item| rewrap_one(&ring, item)).collect();
        if !is_batch {
            let single = results
                .into_iter()
                .next()
                .ok_or_else(VaultError::internal)??;
            return Ok(vault_ok(&auth.request_id, single, Vec::new()));
        }
        if let Some(Err(OpError::Internal(_))) = results
            .iter()
            .find(|result| matches!(result, Err(OpError::Internal(_))))
        {
            return Err(VaultError::internal());
        }
        let batch_results = results
            .into_iter()
            .zip(items)
            .map(|(result, item)| BatchCiphertext::of(result, item.reference.unwrap_or_default()))
            .collect();
        Ok(vault_ok(
            &auth.request_id,
            BatchResults::<BatchCiphertext> { batch_results },
            Vec::new(),
        ))
    })
    .await
}

/// Makes a data key wrapped by the named key.
///
/// A random key of `bits` (128, 256 or 512); `plaintext` also returns it in the clear,
/// `wrapped` only wrapped.
#[utoipa::path(method(post, put), path = "/v1/transit/datakey/{kind}/{name}", tag = "transit", operation_id = "datakey",
    params(("kind" = String, Path, description = "`plaintext` or `wrapped`"), ("name" = String, Path, description = "The key ring's name")),
    request_body = DataKeyRequest,
    responses((status = 200, description = "The wrapped data key, and its plaintext when asked for", body = VaultResponse<DataKey>), crate::openapi::TransitErrors),
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
        let include_plaintext = match kind.as_str() {
            "plaintext" => true,
            "wrapped" => false,
            _ => {
                return Err(VaultError::bad_request(
                    "Invalid path, must be 'plaintext' or 'wrapped'",
                ));
            }
        };
        let request = body?.0;
        let bits = match request.bits.unwrap_or(256) {
            bits @ (128 | 256 | 512) => bits as usize,
            _ => return Err(VaultError::bad_request("invalid bit length")),
        };
        let ring = auth
            .store
            .get(&name)
            .await?
            .ok_or_else(|| VaultError::bad_request("encryption key not found"))?;
        let ring =
            ring_for_requested(&auth.store, ring, std::iter::once(request.key_version)).await?;
        let key = ops::data_key(bits)?;
        let wrapped = encrypt_one(
            &ring,
            &mut ops::SealingKeys::default(),
            &EncryptItem {
                plaintext: Some(encode_b64(&key)),
                associated_data: request.associated_data,
                context: request.context,
                key_version: request.key_version,
                reference: None,
            },
        )?;
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
    cfg.service(
        web::resource("/v1/transit/encrypt/{name}")
            .route(web::post().to(encrypt))
            .route(web::put().to(encrypt)),
    )
    .service(
        web::resource("/v1/transit/decrypt/{name}")
            .route(web::post().to(decrypt))
            .route(web::put().to(decrypt)),
    )
    .service(
        web::resource("/v1/transit/rewrap/{name}")
            .route(web::post().to(rewrap))
            .route(web::put().to(rewrap)),
    )
    .service(
        web::resource("/v1/transit/datakey/{kind}/{name}")
            .route(web::post().to(datakey))
            .route(web::put().to(datakey)),
    );
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
