//! `/v1/transit/{hash,random,export}`.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use vottery_common::transit::{HashRequest, HashSum, RandomBytes, RandomRequest};

use vottery_common::vault::{VaultErrors, VaultResponse};

use super::refusal::Refusal;
use super::segments::{ByteCount, DigestName, EntropySource, ExportKind, KeyName, KeyVersion};
use super::{AppState, Authorized, VaultBody, measured, post_or_put, vault_ok};
use crate::auth::Operation;
use crate::error::VaultError;
use crate::keys::KeyRing;
use crate::keys::hash::HashAlgorithm;
use crate::keys::wire::{decode_b64, encode_b64};

type Auth = Result<Authorized, VaultError>;
type Body<T> = Result<VaultBody<T>, VaultError>;

/// `hash/:algorithm`, documented apart from [`hash`]'s `hash`.
pub struct HashWithAlgorithm;
/// `random/:bytes` (or `random/:source`), documented apart from [`random`]'s `random`.
pub struct RandomWithOne;
/// `random/:source/:bytes`, documented apart from [`random`]'s `random`.
pub struct RandomWithTwo;
/// `export/:kind/:name/:version`, documented apart from [`export`]'s `export/:kind/:name`.
pub struct ExportVersion;

/// The most random bytes one request may ask for (Vault's limit).
pub const MAX_RANDOM_BYTES: i64 = 128 * 1024;

fn encode(format: Option<&str>, bytes: &[u8], default: &str) -> Result<String, Refusal> {
    match format.unwrap_or(default) {
        "hex" => Ok(hex::encode(bytes)),
        "base64" => Ok(encode_b64(bytes)),
        other => Err(Refusal::EncodingFormat(other.to_owned())),
    }
}

/// `hash` with an optional `/:algorithm` segment, which overrides the body's.
#[derive(Deserialize)]
pub struct HashPath {
    algorithm: Option<String>,
}

/// The digest of base64 `input`, as `hex` (default) or `base64`.
#[utoipa::path(method(post, put), path = "/v1/transit/hash", tag = "transit", operation_id = "hash",
    request_body = HashRequest,
    responses((status = 200, description = "The digest", body = VaultResponse<HashSum>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
#[utoipa::path(method(post, put), path = "/v1/transit/hash/{algorithm}", tag = "transit", operation_id = "hash_with_algorithm", impl_for = HashWithAlgorithm,
    params(("algorithm" = DigestName, Path)),
    request_body = HashRequest,
    responses((status = 200, description = "The digest", body = VaultResponse<HashSum>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn hash(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<HashPath>,
    body: Body<HashRequest>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Hash, 1, async {
        let auth = auth?;
        auth.require(Operation::Hash, None)?;
        let request = body?.0;
        let name = path.algorithm.as_deref().or(request.algorithm.as_deref());
        let algorithm = match HashAlgorithm::from_request(name) {
            Ok(HashAlgorithm::None) | Err(_) => {
                let name = name.unwrap_or_default().to_owned();
                return Err(Refusal::UnsupportedAlgorithm(name).into());
            }
            Ok(algorithm) => algorithm,
        };
        let input = request.input.as_deref().ok_or(Refusal::HashInputMissing)?;
        let input = decode_b64(input).map_err(|_| Refusal::InputNotBase64)?;
        let sum = encode(request.format.as_deref(), &algorithm.digest(&input), "hex")?;
        Ok(vault_ok(&auth.request_id, HashSum { sum }, Vec::new()))
    })
    .await
}

/// `random` with up to two optional segments: `/:source/:bytes`, or one that is either a
/// source or the number of bytes (routed as `/:bytes`).
#[derive(Deserialize)]
pub struct RandomPath {
    source: Option<String>,
    bytes: Option<String>,
}

fn is_source(segment: &str) -> bool {
    matches!(segment, "platform" | "seal" | "all")
}

/// `bytes` (default 32, at most 131072) random bytes, as `base64` (default) or `hex`.
#[utoipa::path(method(post, put), path = "/v1/transit/random", tag = "transit", operation_id = "random",
    request_body = RandomRequest,
    responses((status = 200, description = "The random bytes", body = VaultResponse<RandomBytes>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
#[utoipa::path(method(post, put), path = "/v1/transit/random/{bytes}", tag = "transit", operation_id = "random_with_bytes", impl_for = RandomWithOne,
    params(("bytes" = ByteCount, Path)),
    request_body = RandomRequest,
    responses((status = 200, description = "The random bytes", body = VaultResponse<RandomBytes>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
#[utoipa::path(method(post, put), path = "/v1/transit/random/{source}/{bytes}", tag = "transit", operation_id = "random_with_source_and_bytes", impl_for = RandomWithTwo,
    params(("source" = EntropySource, Path), ("bytes" = ByteCount, Path)),
    request_body = RandomRequest,
    responses((status = 200, description = "The random bytes", body = VaultResponse<RandomBytes>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn random(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<RandomPath>,
    body: Body<RandomRequest>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Random, 1, async {
        let auth = auth?;
        auth.require(Operation::Random, None)?;
        let mut request = body?.0;
        let wanted = WantedBytes::of(path.into_inner(), request.source.take(), request.bytes)?;
        let mut buffer = vec![0u8; wanted.count];
        SystemRandom::new()
            .fill(&mut buffer)
            .map_err(|_| VaultError::internal())?;
        let random_bytes = encode(request.format.as_deref(), &buffer, "base64")?;
        let warnings = if wanted.source == "platform" {
            Vec::new()
        } else {
            vec!["no seal/entropy augmentation available, using platform entropy source".to_owned()]
        };
        Ok(vault_ok(
            &auth.request_id,
            RandomBytes { random_bytes },
            warnings,
        ))
    })
    .await
}

/// A random-bytes request, checked: where the entropy comes from and how many bytes.
struct WantedBytes {
    source: String,
    count: usize,
}

impl WantedBytes {
    /// The path's segments override the body's fields, as in Vault.
    fn of(
        path: RandomPath,
        body_source: Option<String>,
        bytes: Option<i64>,
    ) -> Result<Self, Refusal> {
        let (source, url_bytes) = match (path.source, path.bytes) {
            (None, Some(source)) if is_source(&source) => (Some(source), None),
            (Some(source), bytes) if is_source(&source) => (Some(source), bytes),
            (Some(source), _) => return Err(Refusal::EntropySource(source)),
            (None, bytes) => (None, bytes),
        };
        let source = source.or(body_source).unwrap_or_else(|| "platform".into());
        if !is_source(&source) {
            return Err(Refusal::EntropySource(source));
        }
        let count = match url_bytes {
            Some(text) => text.parse::<i64>().map_err(Refusal::ByteCount)?,
            None => bytes.unwrap_or(32),
        };
        if count < 1 {
            return Err(Refusal::TooFewBytes);
        }
        if count > MAX_RANDOM_BYTES {
            return Err(Refusal::TooManyBytes(MAX_RANDOM_BYTES));
        }
        Ok(Self {
            source,
            count: count as usize,
        })
    }
}

/// `export/:kind/:name` with an optional `/:version` segment (all versions when absent).
#[derive(Deserialize)]
pub struct ExportPath {
    kind: String,
    name: String,
    version: Option<String>,
}

/// `GET /v1/transit/export/public-key/:name(/:version)`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Exported {
    name: String,
    #[serde(rename = "type")]
    key_type: String,
    /// Version number (as text) to its public key: base64 for ed25519, PKIX PEM otherwise.
    keys: BTreeMap<String, String>,
}

/// The public keys of an asymmetric key ring, every version or one.
#[utoipa::path(get, path = "/v1/transit/export/{kind}/{name}", tag = "transit", operation_id = "export",
    params(("kind" = ExportKind, Path), ("name" = KeyName, Path)),
    responses((status = 200, description = "The public keys", body = VaultResponse<Exported>),
        (status = 404, description = "No key ring of that name (`errors` is empty)", body = VaultErrors),
        crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
#[utoipa::path(get, path = "/v1/transit/export/{kind}/{name}/{version}", tag = "transit", operation_id = "export_version", impl_for = ExportVersion,
    params(("kind" = ExportKind, Path), ("name" = KeyName, Path), ("version" = KeyVersion, Path)),
    responses((status = 200, description = "The public key of that version", body = VaultResponse<Exported>),
        (status = 404, description = "No key ring of that name (`errors` is empty)", body = VaultErrors),
        crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn export(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<ExportPath>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Export, 1, async {
        let auth = auth?;
        let ExportPath {
            kind,
            name,
            version,
        } = path.into_inner();
        auth.require(Operation::Read, Some(&name))?;
        match kind.as_str() {
            "public-key" => {}
            "encryption-key" | "signing-key" | "hmac-key" => {
                return Err(Refusal::PrivateExport.into());
            }
            other => return Err(Refusal::ExportType(other.to_owned()).into()),
        }
        let ring = auth
            .store
            .load(&name)
            .await?
            .ok_or_else(VaultError::not_found)?;
        if !ring.key_type().is_asymmetric() {
            return Err(Refusal::NotAsymmetric.into());
        }
        let keys = public_keys(&ring, version.as_deref())?;
        let data = Exported {
            name,
            key_type: ring.key_type().as_str().to_owned(),
            keys,
        };
        Ok(vault_ok(&auth.request_id, data, Vec::new()))
    })
    .await
}

/// The public keys of the versions still in use, by version number: every one, or the one
/// `version` names (a number, `v<N>` or `latest`).
fn public_keys(ring: &KeyRing, version: Option<&str>) -> Result<BTreeMap<String, String>, Refusal> {
    let wanted = match version {
        None => None,
        Some("latest") => Some(ring.config.latest_version),
        Some(text) => Some(
            text.trim_start_matches('v')
                .parse::<u32>()
                .map_err(|_| Refusal::InvalidKeyVersion)?,
        ),
    };
    let keys: BTreeMap<String, String> = ring
        .versions
        .values()
        .filter(|version| wanted.is_none_or(|wanted| version.number == wanted))
        .filter(|version| version.number >= ring.config.min_decryption_version)
        .filter_map(|version| Some((version.number.to_string(), version.public_key.clone()?)))
        .collect();
    if keys.is_empty() {
        return Err(Refusal::NoSuchExportVersion);
    }
    Ok(keys)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in ["/v1/transit/hash", "/v1/transit/hash/{algorithm}"] {
        cfg.service(post_or_put(path, hash));
    }
    for path in [
        "/v1/transit/random",
        "/v1/transit/random/{bytes}",
        "/v1/transit/random/{source}/{bytes}",
    ] {
        cfg.service(post_or_put(path, random));
    }
    for path in [
        "/v1/transit/export/{kind}/{name}",
        "/v1/transit/export/{kind}/{name}/{version}",
    ] {
        cfg.service(web::resource(path).route(web::get().to(export)));
    }
}
