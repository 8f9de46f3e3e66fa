//! `/v1/transit/{sign,verify,hmac}`: signatures and HMACs, single or batched.

use actix_web::{HttpResponse, web};
use vottery_common::transit::{
    Hmac, HmacRequest, HmacResult, SignItem, SignRequest, SignResult, Signature, Verification,
    VerifyItem, VerifyRequest, VerifyResult,
};
use vottery_common::vault::VaultResponse;

use super::batch::{Batch, FailedItems, ItemOutcome, item_count, key_ring};
use super::refusal::Refusal;
use super::segments::{DigestName, KeyName, SignatureHashName};
use super::{AppState, Authorized, decode_field, measured, post_or_put};
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
use crate::routes::openapi::{HmacData, SignData, VerifyData};

type Auth = Result<Authorized, VaultError>;
type Items<R> = Result<Batch<R>, VaultError>;

/// `/:name` with an optional `/:algorithm` segment, which overrides the body's.
#[derive(serde::Deserialize)]
pub struct KeyPath {
    name: String,
    algorithm: Option<String>,
}

/// `sign/:name/:algorithm`, documented apart from [`sign`]'s `sign/:name`.
pub struct SignWithAlgorithm;
/// `verify/:name/:algorithm`, documented apart from [`verify`]'s `verify/:name`.
pub struct VerifyWithAlgorithm;
/// `hmac/:name/:algorithm`, documented apart from [`hmac`]'s `hmac/:name`.
pub struct HmacWithAlgorithm;

/// The signature options a sign or verify request sends, as sent.
struct SentOptions<'a> {
    /// The `/:algorithm` path segment, which overrides the body's.
    url_hash: Option<&'a str>,
    hash_algorithm: Option<&'a str>,
    /// The deprecated spelling of `hash_algorithm`.
    algorithm: Option<&'a str>,
    prehashed: Option<bool>,
    signature_algorithm: Option<&'a str>,
    marshaling_algorithm: Option<&'a str>,
    salt_length: Option<&'a serde_json::Value>,
}

impl<'a> SentOptions<'a> {
    fn of_sign(request: &'a SignRequest, url_hash: Option<&'a str>) -> Self {
        Self {
            url_hash,
            hash_algorithm: request.hash_algorithm.as_deref(),
            algorithm: request.algorithm.as_deref(),
            prehashed: request.prehashed,
            signature_algorithm: request.signature_algorithm.as_deref(),
            marshaling_algorithm: request.marshaling_algorithm.as_deref(),
            salt_length: request.salt_length.as_ref(),
        }
    }

    fn of_verify(request: &'a VerifyRequest, url_hash: Option<&'a str>) -> Self {
        Self {
            url_hash,
            hash_algorithm: request.hash_algorithm.as_deref(),
            algorithm: request.algorithm.as_deref(),
            prehashed: request.prehashed,
            signature_algorithm: request.signature_algorithm.as_deref(),
            marshaling_algorithm: request.marshaling_algorithm.as_deref(),
            salt_length: request.salt_length.as_ref(),
        }
    }

    /// The options, checked in Vault's order against its rules and the key's type.
    fn parse(self, ring: &KeyRing) -> Result<Options, Refusal> {
        let hash_name = self.url_hash.or(self.hash_algorithm).or(self.algorithm);
        let hash = HashAlgorithm::from_request(hash_name)
            .map_err(|unknown| Refusal::InvalidHashAlgorithm(unknown.0))?;
        let padding = match self.signature_algorithm.unwrap_or("pss") {
            "" | "pss" => RsaPadding::Pss,
            "pkcs1v15" => RsaPadding::Pkcs1v15,
            other => return Err(Refusal::RsaSignatureAlgorithm(other.to_owned())),
        };
        let marshaling = match self.marshaling_algorithm.unwrap_or("asn1") {
            "" | "asn1" => Marshaling::Asn1,
            "jws" => Marshaling::Jws,
            other => return Err(Refusal::MarshalingType(other.to_owned())),
        };
        if let Some(salt) = self.salt_length {
            check_salt_length(salt, hash)?;
        }
        if !ring.key_type().supports_signing() {
            return Err(Refusal::CannotSign(ring.key_type()));
        }
        Ok(Options {
            hash,
            prehashed: self.prehashed.unwrap_or(false),
            padding,
            marshaling,
        })
    }
}

/// RSA-PSS signatures here use a salt as long as the hash: `auto`, `hash` or that length.
fn check_salt_length(salt: &serde_json::Value, hash: HashAlgorithm) -> Result<(), Refusal> {
    let digest_len = hash.digest(b"").len() as i64;
    let accepted = match salt {
        serde_json::Value::String(text) => {
            matches!(text.as_str(), "" | "auto" | "hash") || text.parse::<i64>() == Ok(digest_len)
        }
        serde_json::Value::Number(number) => number.as_i64() == Some(digest_len),
        serde_json::Value::Null => true,
        _ => false,
    };
    if accepted {
        Ok(())
    } else {
        Err(Refusal::SaltLength {
            salt: salt.to_string(),
            digest_len,
        })
    }
}

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

fn encode_signature(marshaling: Marshaling, bytes: &[u8]) -> String {
    match marshaling {
        Marshaling::Asn1 => encode_b64(bytes),
        Marshaling::Jws => encode_b64_url(bytes),
    }
}

/// One signature made: `vault:v<N>:<signature>`, and a derived ed25519 key's public key.
struct SignedItem {
    signature: String,
    key_version: u32,
    public_key: Option<String>,
}

impl ItemOutcome for SignedItem {
    type Single = Signature;
    type BatchResult = SignResult;

    fn into_single(self) -> Signature {
        Signature {
            signature: self.signature,
            key_version: self.key_version,
            public_key: self.public_key,
        }
    }

    fn into_batch_result(result: Result<Self, OpError>, reference: String) -> SignResult {
        match result {
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
    }
}

/// Signs one item. A batch item must carry `input`; a single request without one signs the
/// empty input, as Vault does.
fn sign_one(
    ring: &KeyRing,
    options: &Options,
    key_version: Option<i64>,
    item: &SignItem,
    is_batch: bool,
) -> Result<SignedItem, OpError> {
    if is_batch && item.input.is_none() {
        return Err(Refusal::MissingInput.into());
    }
    let input =
        decode_b64(item.input.as_deref().unwrap_or("")).map_err(|_| Refusal::InputNotBase64)?;
    let context = decode_field("context", item.context.as_deref()).map_err(OpError::User)?;
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

fn hmac_algorithm(url: Option<&str>, body: Option<&str>) -> Result<HashAlgorithm, Refusal> {
    match HashAlgorithm::from_request(url.or(body)) {
        Ok(HashAlgorithm::None) | Err(_) => Err(Refusal::UnsupportedAlgorithm(
            url.or(body).unwrap_or_default().to_owned(),
        )),
        Ok(algorithm) => Ok(algorithm),
    }
}

/// What a verify request checks: signatures or HMACs, never both.
#[derive(Debug, Clone, Copy)]
enum VerifyMode {
    Signature,
    Hmac,
}

impl VerifyMode {
    /// The mode every item agrees on, with Vault's message when they do not.
    fn of(body: &Batch<VerifyRequest>) -> Result<Self, Refusal> {
        if !body.is_batch {
            let single = body.items.first();
            let signature = single.is_some_and(|item| item.signature.is_some());
            let hmac = single.is_some_and(|item| item.hmac.is_some());
            return match (signature, hmac) {
                (true, true) => Err(Refusal::SignatureAndHmac),
                (true, false) => Ok(VerifyMode::Signature),
                (false, true) => Ok(VerifyMode::Hmac),
                (false, false) => Err(Refusal::NothingToVerify),
            };
        }
        let items = &body.items;
        let signatures = items.iter().filter(|item| item.signature.is_some()).count();
        let hmacs = items.iter().filter(|item| item.hmac.is_some()).count();
        match (signatures, hmacs) {
            (0, 0) => Err(Refusal::BatchWithoutValues),
            (s, 0) if s == items.len() => Ok(VerifyMode::Signature),
            (0, h) if h == items.len() => Ok(VerifyMode::Hmac),
            (s, 0) if s < items.len() => Err(Refusal::BatchMissingSignature),
            (0, _) => Err(Refusal::BatchMissingHmac),
            _ => Err(Refusal::BatchMixesValues),
        }
    }

    /// The key version the item's value names, if it names one readably.
    fn version_of(self, item: &VerifyItem) -> Option<u32> {
        let (value, kind) = match self {
            VerifyMode::Signature => (item.signature.as_deref()?, ValueKind::Signature),
            VerifyMode::Hmac => (item.hmac.as_deref()?, ValueKind::Hmac),
        };
        parse_versioned(value, kind)
            .ok()
            .map(|parsed| parsed.version)
    }
}

/// How each verify item is checked: its signature under the request's options, or its HMAC.
enum Check<'a> {
    Signature {
        ring: &'a KeyRing,
        verified: &'a VerifiedSignatures,
        options: Options,
    },
    Hmac {
        ring: &'a KeyRing,
        algorithm: HashAlgorithm,
    },
}

impl<'a> Check<'a> {
    fn new(
        mode: VerifyMode,
        ring: &'a KeyRing,
        verified: &'a VerifiedSignatures,
        url_algorithm: Option<&str>,
        request: &VerifyRequest,
    ) -> Result<Self, Refusal> {
        Ok(match mode {
            VerifyMode::Signature => Check::Signature {
                ring,
                verified,
                options: SentOptions::of_verify(request, url_algorithm).parse(ring)?,
            },
            VerifyMode::Hmac => Check::Hmac {
                ring,
                algorithm: hmac_algorithm(url_algorithm, request.algorithm.as_deref())?,
            },
        })
    }

    fn item(&self, item: &VerifyItem) -> Result<Valid, OpError> {
        let input = item.input.as_deref();
        match self {
            Check::Signature {
                ring,
                verified,
                options,
            } => {
                let signature = item.signature.as_deref().unwrap_or("");
                verify_signature(
                    ring,
                    verified,
                    options,
                    input,
                    signature,
                    item.context.as_deref(),
                )
            }
            Check::Hmac { ring, algorithm } => {
                verify_hmac(ring, *algorithm, input, item.hmac.as_deref().unwrap_or(""))
            }
        }
        .map(Valid)
    }
}

/// Whether a signature or an HMAC is valid.
struct Valid(bool);

impl ItemOutcome for Valid {
    type Single = Verification;
    type BatchResult = VerifyResult;

    fn into_single(self) -> Verification {
        Verification { valid: self.0 }
    }

    fn into_batch_result(result: Result<Self, OpError>, reference: String) -> VerifyResult {
        match result {
            Ok(Valid(valid)) => VerifyResult {
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
    }
}

fn verify_signature(
    ring: &KeyRing,
    verified: &VerifiedSignatures,
    options: &Options,
    input: Option<&str>,
    signature: &str,
    context: Option<&str>,
) -> Result<bool, OpError> {
    let input = decode_b64(input.unwrap_or("")).map_err(|_| Refusal::InputNotBase64)?;
    let parsed = parse_versioned(signature, ValueKind::Signature).map_err(OpError::User)?;
    let bytes = match options.marshaling {
        Marshaling::Asn1 => decode_b64(parsed.payload),
        Marshaling::Jws => decode_b64_url(parsed.payload),
    }
    .map_err(|_| Refusal::SignatureNotBase64)?;
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

fn verify_hmac(
    ring: &KeyRing,
    algorithm: HashAlgorithm,
    input: Option<&str>,
    hmac: &str,
) -> Result<bool, OpError> {
    let input = input.ok_or(Refusal::MissingInput)?;
    let input = decode_b64(input).map_err(|_| Refusal::InputNotBase64)?;
    let parsed = parse_versioned(hmac, ValueKind::Hmac).map_err(OpError::User)?;
    let expected = decode_b64(parsed.payload).map_err(|_| Refusal::HmacNotBase64)?;
    let version = ring.version_to_open(Incoming::Hmac, parsed.version)?;
    ops::hmac_matches(&version.material, algorithm, &input, &expected)
}

/// An HMAC made: `vault:v<N>:<base64>`.
struct Tag(String);

impl ItemOutcome for Tag {
    type Single = Hmac;
    type BatchResult = HmacResult;

    fn into_single(self) -> Hmac {
        Hmac { hmac: self.0 }
    }

    fn into_batch_result(result: Result<Self, OpError>, reference: String) -> HmacResult {
        match result {
            Ok(Tag(hmac)) => HmacResult {
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
    }
}

fn hmac_one(
    ring: &KeyRing,
    algorithm: HashAlgorithm,
    key_version: Option<i64>,
    input: Option<&str>,
) -> Result<Tag, OpError> {
    let input = input.ok_or(Refusal::MissingHmacInput)?;
    let input = decode_b64(input).map_err(|_| Refusal::InputNotBase64)?;
    let version = ring.version_for(Purpose::Hmac, key_version)?;
    let tag = ops::hmac(&version.material, algorithm, &input)?;
    Ok(Tag(versioned_b64(version.number, &tag)))
}

/// Signs a value or a batch.
///
/// Signs base64 `input` (or each item of `batch_input`) with an ed25519, ECDSA or RSA key:
/// `vault:v<N>:<signature>`. RSA uses `pss` or `pkcs1v15`; ECDSA marshals `asn1` or `jws`.
#[utoipa::path(method(post, put), path = "/v1/transit/sign/{name}", tag = "transit", operation_id = "sign",
    params(("name" = KeyName, Path)),
    request_body = SignRequest,
    responses((status = 200, description = "The signature, or the batch's results", body = VaultResponse<SignData>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
#[utoipa::path(method(post, put), path = "/v1/transit/sign/{name}/{algorithm}", tag = "transit", operation_id = "sign_with_algorithm", impl_for = SignWithAlgorithm,
    params(("name" = KeyName, Path), ("algorithm" = SignatureHashName, Path)),
    request_body = SignRequest,
    responses((status = 200, description = "The signature, or the batch's results", body = VaultResponse<SignData>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn sign(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<KeyPath>,
    body: Items<SignRequest>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Sign, item_count(&body), async {
        let auth = auth?;
        let KeyPath { name, algorithm } = path.into_inner();
        auth.require(Operation::Sign, Some(&name))?;
        let body = body?;
        let ring = key_ring(&auth, &name, Refusal::SigningKeyNotFound).await?;
        let key_version = body.request.key_version;
        let ring = auth.store.fresh_for_requested(ring, [key_version]).await?;
        let options = SentOptions::of_sign(&body.request, algorithm.as_deref()).parse(&ring)?;
        body.check_size(&state)?;
        let is_batch = body.is_batch;
        body.answer(&auth.request_id, FailedItems::ReportedInItems, |item| {
            sign_one(&ring, &options, key_version, item, is_batch)
        })
    })
    .await
}

/// Verifies a signature or an HMAC, or a batch of them.
///
/// Checks a `signature` or an `hmac` over base64 `input` (or each item of `batch_input`).
#[utoipa::path(method(post, put), path = "/v1/transit/verify/{name}", tag = "transit", operation_id = "verify",
    params(("name" = KeyName, Path)),
    request_body = VerifyRequest,
    responses((status = 200, description = "Whether it is valid, or the batch's results", body = VaultResponse<VerifyData>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
#[utoipa::path(method(post, put), path = "/v1/transit/verify/{name}/{algorithm}", tag = "transit", operation_id = "verify_with_algorithm", impl_for = VerifyWithAlgorithm,
    params(("name" = KeyName, Path), ("algorithm" = SignatureHashName, Path)),
    request_body = VerifyRequest,
    responses((status = 200, description = "Whether it is valid, or the batch's results", body = VaultResponse<VerifyData>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn verify(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<KeyPath>,
    body: Items<VerifyRequest>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Verify, item_count(&body), async {
        let auth = auth?;
        let KeyPath { name, algorithm } = path.into_inner();
        auth.require(Operation::Verify, Some(&name))?;
        let body = body?;
        // An empty or oversized batch is refused before its items are looked at, as in Vault.
        body.check_size(&state)?;
        let mode = VerifyMode::of(&body)?;
        let ring = key_ring(&auth, &name, Refusal::VerificationKeyNotFound).await?;
        let versions = body.items.iter().filter_map(|item| mode.version_of(item));
        let ring = auth.store.fresh_for_values(ring, versions).await?;
        let verified = auth.store.verified();
        let check = Check::new(mode, &ring, verified, algorithm.as_deref(), &body.request)?;
        body.answer(&auth.request_id, FailedItems::ReportedInItems, |item| {
            check.item(item)
        })
    })
    .await
}

/// Computes the HMAC of a value or a batch.
///
/// The HMAC of base64 `input` (or each item of `batch_input`) under the named key:
/// `vault:v<N>:<base64>`.
#[utoipa::path(method(post, put), path = "/v1/transit/hmac/{name}", tag = "transit", operation_id = "hmac",
    params(("name" = KeyName, Path)),
    request_body = HmacRequest,
    responses((status = 200, description = "The HMAC, or the batch's results", body = VaultResponse<HmacData>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
#[utoipa::path(method(post, put), path = "/v1/transit/hmac/{name}/{algorithm}", tag = "transit", operation_id = "hmac_with_algorithm", impl_for = HmacWithAlgorithm,
    params(("name" = KeyName, Path), ("algorithm" = DigestName, Path)),
    request_body = HmacRequest,
    responses((status = 200, description = "The HMAC, or the batch's results", body = VaultResponse<HmacData>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn hmac(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<KeyPath>,
    body: Items<HmacRequest>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Hmac, item_count(&body), async {
        let auth = auth?;
        let KeyPath { name, algorithm } = path.into_inner();
        auth.require(Operation::Hmac, Some(&name))?;
        let body = body?;
        let algorithm = hmac_algorithm(algorithm.as_deref(), body.request.algorithm.as_deref())?;
        let ring = key_ring(&auth, &name, Refusal::EncryptionKeyNotFound).await?;
        let key_version = body.request.key_version;
        let ring = auth.store.fresh_for_requested(ring, [key_version]).await?;
        body.check_size(&state)?;
        body.answer(&auth.request_id, FailedItems::ReportedInItems, |item| {
            hmac_one(&ring, algorithm, key_version, item.input.as_deref())
        })
    })
    .await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in [
        "/v1/transit/sign/{name}",
        "/v1/transit/sign/{name}/{algorithm}",
    ] {
        cfg.service(post_or_put(path, sign));
    }
    for path in [
        "/v1/transit/verify/{name}",
        "/v1/transit/verify/{name}/{algorithm}",
    ] {
        cfg.service(post_or_put(path, verify));
    }
    for path in [
        "/v1/transit/hmac/{name}",
        "/v1/transit/hmac/{name}/{algorithm}",
    ] {
        cfg.service(post_or_put(path, hmac));
    }
}
