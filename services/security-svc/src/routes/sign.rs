//! `/v1/transit/{sign,verify,hmac}`: signatures and HMACs, single or batched.

use actix_web::{HttpResponse, web};
use vottery_common::transit::{
    BatchResults, Hmac, HmacRequest, HmacResult, SignRequest, SignResult, Signature, Verification,
    VerifyItem, VerifyRequest, VerifyResult,
};

use super::crypt::{check_batch, current_ring, ring_for_requested};
use super::{AppState, Authorized, VaultBody, decode_field, measured, vault_ok};
use crate::auth::Operation;
use crate::error::VaultError;
use crate::keys::hash::HashAlgorithm;
use crate::keys::ops::{self, Marshaling, OpError, RsaPadding, SignOptions};
use crate::keys::verified::{Question, VerifiedSignatures};
use crate::keys::wire::{
    ValueKind, decode_b64, decode_b64_url, encode_b64, encode_b64_url, format_versioned,
    parse_versioned, versioned_b64,
};
use crate::keys::{Incoming, KeyRing, Purpose};
use crate::openapi::{HmacData, SignData, VerifyData};
use vottery_common::vault::VaultResponse;

type Auth = Result<Authorized, VaultError>;

/// `/:name` with an optional `/:algorithm` segment.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    /// The key ring's name.
    name: String,
    /// The hash algorithm (`sha2-256`, `sha2-384`, `sha2-512`, ...); overrides the body's.
    algorithm: Option<String>,
}
type Body<T> = Result<VaultBody<T>, VaultError>;

/// `sign/:name/:algorithm`, documented apart from [`sign`]'s `sign/:name`.
pub struct SignWithAlgorithm;
/// `verify/:name/:algorithm`, documented apart from [`verify`]'s `verify/:name`.
pub struct VerifyWithAlgorithm;
/// `hmac/:name/:algorithm`, documented apart from [`hmac`]'s `hmac/:name`.
pub struct HmacWithAlgorithm;

/// Signature options shared by sign and verify, before the per-item context.
struct Options {
    hash: HashAlgorithm,
    prehashed: bool,
    padding: RsaPadding,
    marshaling: Marshaling,
}

impl Options {
    fn with_context<'a>(&self, context: Option<&'a [u8]>) -> SignOptions<'a> {
        SignOptions {
            hash: self.hash,
            prehashed: self.prehashed,
            padding: self.padding,
            marshaling: self.marshaling,
            context,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn parse_options(
    url_hash: Option<&str>,
    hash_algorithm: Option<&str>,
    algorithm: Option<&str>,
    prehashed: Option<bool>,
    signature_algorithm: Option<&str>,
    marshaling_algorithm: Option<&str>,
    salt_length: Option<&serde_json::Value>,
    ring: &KeyRing,
) -> Result<Options, VaultError> {
    let hash_name = url_hash.or(hash_algorithm).or(algorithm);
    let hash = HashAlgorithm::from_request(hash_name).map_err(|unknown| {
        VaultError::bad_request(format!("invalid hash algorithm \"{}\"", unknown.0))
    })?;
    let padding = match signature_algorithm.unwrap_or("pss") {
        "" | "pss" => RsaPadding::Pss,
        "pkcs1v15" => RsaPadding::Pkcs1v15,
        other => {
            return Err(VaultError::bad_request(format!(
                "unsupported rsa signature algorithm {other}"
            )));
        }
    };
    let marshaling = match marshaling_algorithm.unwrap_or("asn1") {
        "" | "asn1" => Marshaling::Asn1,
        "jws" => Marshaling::Jws,
        other => {
            return Err(VaultError::bad_request(format!(
                "invalid marshaling type \"{other}\""
            )));
        }
    };
    if let Some(salt) = salt_length {
        let digest_len = hash.digest(b"").len() as i64;
        let accepted = match salt {
            serde_json::Value::String(text) => {
                matches!(text.as_str(), "" | "auto" | "hash")
                    || text.parse::<i64>() == Ok(digest_len)
            }
            serde_json::Value::Number(number) => number.as_i64() == Some(digest_len),
            serde_json::Value::Null => true,
            _ => false,
        };
        if !accepted {
            return Err(VaultError::bad_request(format!(
                "salt length {salt} is not supported: RSA-PSS signatures here use a salt as long as the hash ({digest_len} bytes); use 'auto' or 'hash'"
            )));
        }
    }
    if !ring.key_type().supports_signing() {
        return Err(VaultError::bad_request(format!(
            "key type {} does not support signing",
            ring.key_type()
        )));
    }
    Ok(Options {
        hash,
        prehashed: prehashed.unwrap_or(false),
        padding,
        marshaling,
    })
}

fn encode_signature(marshaling: Marshaling, bytes: &[u8]) -> String {
    match marshaling {
        Marshaling::Asn1 => encode_b64(bytes),
        Marshaling::Jws => encode_b64_url(bytes),
    }
}

struct SignedItem {
    signature: String,
    key_version: u32,
    public_key: Option<String>,
}

fn sign_one(
    ring: &KeyRing,
    options: &Options,
    key_version: Option<i64>,
    input: Option<&str>,
    context: Option<&str>,
) -> Result<SignedItem, OpError> {
    let input = decode_b64(input.unwrap_or(""))
        .map_err(|_| OpError::user("unable to decode input as base64"))?;
    let context = decode_field("context", context).map_err(OpError::User)?;
    let version = ring.version_for(Purpose::Signing, key_version)?;
    let signed = ops::sign(
        &version.material,
        ring.flags(),
        &input,
        &options.with_context(context.as_deref()),
    )?;
    Ok(SignedItem {
        signature: format_versioned(
            version.number,
            &encode_signature(options.marshaling, &signed.bytes),
        ),
        key_version: version.number,
        public_key: signed.derived_public_key.map(|key| encode_b64(&key)),
    })
}

fn verify_signature(
    ring: &KeyRing,
    verified: &VerifiedSignatures,
    options: &Options,
    input: Option<&str>,
    signature: &str,
    context: Option<&str>,
) -> Result<bool, OpError> {
    let input = decode_b64(input.unwrap_or(""))
        .map_err(|_| OpError::user("unable to decode input as base64"))?;
    let parsed = parse_versioned(signature, ValueKind::Signature).map_err(OpError::User)?;
    let bytes = match options.marshaling {
        Marshaling::Asn1 => decode_b64(parsed.payload),
        Marshaling::Jws => decode_b64_url(parsed.payload),
    }
    .map_err(|_| OpError::user("invalid base64 signature value"))?;
    let context = decode_field("context", context).map_err(OpError::User)?;
    let version = ring.version_to_open(Incoming::Signature, parsed.version)?;
    let options = options.with_context(context.as_deref());
    let verify = || ops::verify(&version.material, ring.flags(), &input, &bytes, &options);
    match version.material.public_key_bytes() {
        Some(public_key) => verified.check(
            &Question {
                public_key,
                flags: ring.flags(),
                options: &options,
                input: &input,
                signature: &bytes,
            },
            verify,
        ),
        None => verify(),
    }
}

fn hmac_algorithm(url: Option<&str>, body: Option<&str>) -> Result<HashAlgorithm, VaultError> {
    match HashAlgorithm::from_request(url.or(body)) {
        Ok(HashAlgorithm::None) | Err(_) => Err(VaultError::bad_request(format!(
            "unsupported algorithm {}",
            url.or(body).unwrap_or_default()
        ))),
        Ok(algorithm) => Ok(algorithm),
    }
}

fn verify_hmac(
    ring: &KeyRing,
    algorithm: HashAlgorithm,
    input: Option<&str>,
    hmac: &str,
) -> Result<bool, OpError> {
    let input = input.ok_or_else(|| OpError::user("missing input"))?;
    let input = decode_b64(input).map_err(|_| OpError::user("unable to decode input as base64"))?;
    let parsed = parse_versioned(hmac, ValueKind::Hmac).map_err(OpError::User)?;
    let expected = decode_b64(parsed.payload)
        .map_err(|_| OpError::user("unable to decode verification HMAC as base64"))?;
    let version = ring.version_to_open(Incoming::Hmac, parsed.version)?;
    ops::hmac_matches(&version.material, algorithm, &input, &expected)
}

fn batch_len<T>(batch: Option<&Vec<T>>) -> usize {
    batch.map_or(1, Vec::len)
}

/// Signs a value or a batch.
///
/// Signs base64 `input` (or each item of `batch_input`) with an ed25519, ECDSA or RSA key:
/// `vault:v<N>:<signature>`. RSA uses `pss` or `pkcs1v15`; ECDSA marshals `asn1` or `jws`.
#[utoipa::path(method(post, put), path = "/v1/transit/sign/{name}", tag = "transit", operation_id = "sign",
    params(KeyPath),
    request_body = SignRequest,
    responses((status = 200, description = "The signature, or the batch's results", body = VaultResponse<SignData>), crate::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
#[utoipa::path(method(post, put), path = "/v1/transit/sign/{name}/{algorithm}", tag = "transit", operation_id = "sign_with_algorithm", impl_for = SignWithAlgorithm,
    params(KeyPath),
    request_body = SignRequest,
    responses((status = 200, description = "The signature, or the batch's results", body = VaultResponse<SignData>), crate::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn sign(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<KeyPath>,
    body: Body<SignRequest>,
) -> Result<HttpResponse, VaultError> {
    let body = body.map(|body| body.0);
    let items = body
        .as_ref()
        .map_or(1, |request| batch_len(request.batch_input.as_ref()));
    measured(&state, Operation::Sign, items, async {
        let auth = auth?;
        let KeyPath {
            name,
            algorithm: url_hash,
        } = path.into_inner();
        auth.require(Operation::Sign, Some(&name))?;
        let request = body?;
        let ring = auth
            .store
            .get(&name)
            .await?
            .ok_or_else(|| VaultError::bad_request("signing key not found"))?;
        let ring =
            ring_for_requested(&auth.store, ring, std::iter::once(request.key_version)).await?;
        let options = parse_options(
            url_hash.as_deref(),
            request.hash_algorithm.as_deref(),
            request.algorithm.as_deref(),
            request.prehashed,
            request.signature_algorithm.as_deref(),
            request.marshaling_algorithm.as_deref(),
            request.salt_length.as_ref(),
            &ring,
        )?;
        let Some(batch) = request.batch_input else {
            let signed = sign_one(
                &ring,
                &options,
                request.key_version,
                request.input.as_deref(),
                request.context.as_deref(),
            )?;
            let data = Signature {
                signature: signed.signature,
                key_version: signed.key_version,
                public_key: signed.public_key,
            };
            return Ok(vault_ok(&auth.request_id, data, Vec::new()));
        };
        check_batch(&state, &batch)?;
        let batch_results: Vec<SignResult> = batch
            .into_iter()
            .map(|item| {
                let reference = item.reference.unwrap_or_default();
                if item.input.is_none() {
                    return SignResult {
                        error: Some("missing input".into()),
                        reference,
                        ..Default::default()
                    };
                }
                match sign_one(
                    &ring,
                    &options,
                    request.key_version,
                    item.input.as_deref(),
                    item.context.as_deref(),
                ) {
                    Ok(signed) => SignResult {
                        signature: Some(signed.signature),
                        key_version: signed.key_version,
                        publickey: signed.public_key,
                        error: None,
                        reference,
                    },
                    Err(error) => SignResult {
                        error: Some(error.message().to_owned()),
                        reference,
                        ..Default::default()
                    },
                }
            })
            .collect();
        Ok(vault_ok(
            &auth.request_id,
            BatchResults { batch_results },
            Vec::new(),
        ))
    })
    .await
}

/// What a verify request checks: signatures or HMACs, never both.
enum VerifyMode {
    Signature,
    Hmac,
}

fn verify_mode(request: &VerifyRequest) -> Result<VerifyMode, VaultError> {
    match &request.batch_input {
        None => match (&request.signature, &request.hmac) {
            (Some(_), Some(_)) => Err(VaultError::bad_request(
                "provide one of 'signature' or 'hmac'",
            )),
            (Some(_), None) => Ok(VerifyMode::Signature),
            (None, Some(_)) => Ok(VerifyMode::Hmac),
            (None, None) => Err(VaultError::bad_request(
                "neither a 'signature' nor an 'hmac' were given to verify",
            )),
        },
        Some(items) => {
            let signatures = items.iter().filter(|item| item.signature.is_some()).count();
            let hmacs = items.iter().filter(|item| item.hmac.is_some()).count();
            match (signatures, hmacs) {
                (0, 0) => Err(VaultError::bad_request(
                    "no batch_input elements have 'signature' or 'hmac'",
                )),
                (s, 0) if s == items.len() => Ok(VerifyMode::Signature),
                (0, h) if h == items.len() => Ok(VerifyMode::Hmac),
                (s, 0) if s < items.len() => Err(VaultError::bad_request(
                    "some elements of batch_input are missing 'signature'",
                )),
                (0, _) => Err(VaultError::bad_request(
                    "some elements of batch_input are missing 'hmac'",
                )),
                _ => Err(VaultError::bad_request(
                    "elements of batch_input must all provide 'signature' or all provide 'hmac'",
                )),
            }
        }
    }
}

/// Checks one verify item: its signature or its HMAC.
type ItemCheck = Box<dyn Fn(&VerifyItem) -> Result<bool, OpError>>;

fn incoming_version(item: &VerifyItem, mode: &VerifyMode) -> Option<u32> {
    let (value, kind) = match mode {
        VerifyMode::Signature => (item.signature.as_deref()?, ValueKind::Signature),
        VerifyMode::Hmac => (item.hmac.as_deref()?, ValueKind::Hmac),
    };
    parse_versioned(value, kind)
        .ok()
        .map(|parsed| parsed.version)
}

/// Verifies a signature or an HMAC, or a batch of them.
///
/// Checks a `signature` or an `hmac` over base64 `input` (or each item of `batch_input`).
#[utoipa::path(method(post, put), path = "/v1/transit/verify/{name}", tag = "transit", operation_id = "verify",
    params(KeyPath),
    request_body = VerifyRequest,
    responses((status = 200, description = "Whether it is valid, or the batch's results", body = VaultResponse<VerifyData>), crate::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
#[utoipa::path(method(post, put), path = "/v1/transit/verify/{name}/{algorithm}", tag = "transit", operation_id = "verify_with_algorithm", impl_for = VerifyWithAlgorithm,
    params(KeyPath),
    request_body = VerifyRequest,
    responses((status = 200, description = "Whether it is valid, or the batch's results", body = VaultResponse<VerifyData>), crate::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn verify(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<KeyPath>,
    body: Body<VerifyRequest>,
) -> Result<HttpResponse, VaultError> {
    let body = body.map(|body| body.0);
    let items = body
        .as_ref()
        .map_or(1, |request| batch_len(request.batch_input.as_ref()));
    measured(&state, Operation::Verify, items, async {
        let auth = auth?;
        let KeyPath {
            name,
            algorithm: url_algorithm,
        } = path.into_inner();
        auth.require(Operation::Verify, Some(&name))?;
        let mut request = body?;
        // An empty or oversized batch is refused before its items are looked at, as in Vault.
        if let Some(items) = &request.batch_input {
            check_batch(&state, items)?;
        }
        let mode = verify_mode(&request)?;
        let is_batch = request.batch_input.is_some();
        let items = match request.batch_input.take() {
            Some(items) => items,
            None => vec![VerifyItem {
                input: request.input.take(),
                signature: request.signature.take(),
                hmac: request.hmac.take(),
                context: request.context.take(),
                reference: None,
            }],
        };
        let ring = auth
            .store
            .get(&name)
            .await?
            .ok_or_else(|| VaultError::bad_request("signature verification key not found"))?;
        let ring = current_ring(
            &auth.store,
            ring,
            items
                .iter()
                .filter_map(|item| incoming_version(item, &mode)),
        )
        .await?;
        let check: ItemCheck = match mode {
            VerifyMode::Signature => {
                let options = parse_options(
                    url_algorithm.as_deref(),
                    request.hash_algorithm.as_deref(),
                    request.algorithm.as_deref(),
                    request.prehashed,
                    request.signature_algorithm.as_deref(),
                    request.marshaling_algorithm.as_deref(),
                    request.salt_length.as_ref(),
                    &ring,
                )?;
                let ring = ring.clone();
                let store = auth.store.clone();
                Box::new(move |item: &VerifyItem| {
                    verify_signature(
                        &ring,
                        store.verified(),
                        &options,
                        item.input.as_deref(),
                        item.signature.as_deref().unwrap_or(""),
                        item.context.as_deref(),
                    )
                })
            }
            VerifyMode::Hmac => {
                let algorithm =
                    hmac_algorithm(url_algorithm.as_deref(), request.algorithm.as_deref())?;
                let ring = ring.clone();
                Box::new(move |item: &VerifyItem| {
                    verify_hmac(
                        &ring,
                        algorithm,
                        item.input.as_deref(),
                        item.hmac.as_deref().unwrap_or(""),
                    )
                })
            }
        };
        if !is_batch {
            let valid = items
                .first()
                .map(&check)
                .ok_or_else(VaultError::internal)??;
            return Ok(vault_ok(
                &auth.request_id,
                Verification { valid },
                Vec::new(),
            ));
        }
        let batch_results: Vec<VerifyResult> = items
            .iter()
            .map(|item| {
                let reference = item.reference.clone().unwrap_or_default();
                match check(item) {
                    Ok(valid) => VerifyResult {
                        valid,
                        error: None,
                        reference,
                    },
                    Err(error) => VerifyResult {
                        valid: false,
                        error: Some(error.message().to_owned()),
                        reference,
                    },
                }
            })
            .collect();
        Ok(vault_ok(
            &auth.request_id,
            BatchResults { batch_results },
            Vec::new(),
        ))
    })
    .await
}

fn hmac_one(
    ring: &KeyRing,
    algorithm: HashAlgorithm,
    key_version: Option<i64>,
    input: Option<&str>,
) -> Result<String, OpError> {
    let input = input.ok_or_else(|| OpError::user("missing input for HMAC"))?;
    let input = decode_b64(input).map_err(|_| OpError::user("unable to decode input as base64"))?;
    let version = ring.version_for(Purpose::Hmac, key_version)?;
    let tag = ops::hmac(&version.material, algorithm, &input)?;
    Ok(versioned_b64(version.number, &tag))
}

/// Computes the HMAC of a value or a batch.
///
/// The HMAC of base64 `input` (or each item of `batch_input`) under the named key:
/// `vault:v<N>:<base64>`.
#[utoipa::path(method(post, put), path = "/v1/transit/hmac/{name}", tag = "transit", operation_id = "hmac",
    params(KeyPath),
    request_body = HmacRequest,
    responses((status = 200, description = "The HMAC, or the batch's results", body = VaultResponse<HmacData>), crate::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
#[utoipa::path(method(post, put), path = "/v1/transit/hmac/{name}/{algorithm}", tag = "transit", operation_id = "hmac_with_algorithm", impl_for = HmacWithAlgorithm,
    params(KeyPath),
    request_body = HmacRequest,
    responses((status = 200, description = "The HMAC, or the batch's results", body = VaultResponse<HmacData>), crate::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn hmac(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<KeyPath>,
    body: Body<HmacRequest>,
) -> Result<HttpResponse, VaultError> {
    let body = body.map(|body| body.0);
    let items = body
        .as_ref()
        .map_or(1, |request| batch_len(request.batch_input.as_ref()));
    measured(&state, Operation::Hmac, items, async {
        let auth = auth?;
        let KeyPath {
            name,
            algorithm: url_algorithm,
        } = path.into_inner();
        auth.require(Operation::Hmac, Some(&name))?;
        let request = body?;
        let algorithm = hmac_algorithm(url_algorithm.as_deref(), request.algorithm.as_deref())?;
        let ring = auth
            .store
            .get(&name)
            .await?
            .ok_or_else(|| VaultError::bad_request("encryption key not found"))?;
        let ring =
            ring_for_requested(&auth.store, ring, std::iter::once(request.key_version)).await?;
        let Some(batch) = request.batch_input else {
            let hmac = hmac_one(
                &ring,
                algorithm,
                request.key_version,
                request.input.as_deref(),
            )?;
            return Ok(vault_ok(&auth.request_id, Hmac { hmac }, Vec::new()));
        };
        check_batch(&state, &batch)?;
        let batch_results: Vec<HmacResult> = batch
            .into_iter()
            .map(|item| {
                let reference = item.reference.unwrap_or_default();
                match hmac_one(&ring, algorithm, request.key_version, item.input.as_deref()) {
                    Ok(hmac) => HmacResult {
                        hmac: Some(hmac),
                        error: None,
                        reference,
                    },
                    Err(error) => HmacResult {
                        hmac: None,
                        error: Some(error.message().to_owned()),
                        reference,
                    },
                }
            })
            .collect();
        Ok(vault_ok(
            &auth.request_id,
            BatchResults { batch_results },
            Vec::new(),
        ))
    })
    .await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in [
        "/v1/transit/sign/{name}",
        "/v1/transit/sign/{name}/{algorithm}",
    ] {
        cfg.service(
            web::resource(path)
                .route(web::post().to(sign))
                .route(web::put().to(sign)),
        );
    }
    for path in [
        "/v1/transit/verify/{name}",
        "/v1/transit/verify/{name}/{algorithm}",
    ] {
        cfg.service(
            web::resource(path)
                .route(web::post().to(verify))
                .route(web::put().to(verify)),
        );
    }
    for path in [
        "/v1/transit/hmac/{name}",
        "/v1/transit/hmac/{name}/{algorithm}",
    ] {
        cfg.service(
            web::resource(path)
                .route(web::post().to(hmac))
                .route(web::put().to(hmac)),
        );
    }
}
