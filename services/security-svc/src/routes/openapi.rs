//! The OpenAPI document of security-svc, served at `/openapi.json`, with the interactive
//! documentation (a vendored Swagger UI, no CDN) at `/docs/`.
//!
//! The document is checked in as `services/security-svc/openapi.json`; the `openapi` tests fail
//! when it drifts and `UPDATE_OPENAPI=1 cargo test -p security-svc --test api openapi` rewrites it.

use actix_web::{HttpResponse, web};
use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use vottery_common::transit::{
    BatchResults, Ciphertext, DecryptResult, EncryptResult, Hmac, HmacResult, Plaintext,
    SignResult, Signature, Verification, VerifyResult,
};
use vottery_common::vault::{VaultErrors, VaultResponse};

use vottery_common::problem::Problem;

use crate::guardians::routes as guardians;
use crate::routes::segments::{
    ByteCount, DataKeyKind, DigestName, EntropySource, ExportKind, KeyName, KeyVersion,
    SignatureHashName,
};
use crate::routes::{contexts, crypt, health, keys, misc, sign, sys};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "security-svc",
        description = "Encryption as a service, wire-compatible with the Vault Transit API (paths, JSON fields, batch semantics, status codes, `vault:v<N>:` ciphertexts), behind a root key split into Shamir shares.\n\nErrors on `/v1` answer Vault's `{\"errors\": [...]}`; an encrypt or decrypt batch whose items fail answers 400 with its results instead, `{\"data\": {\"batch_results\": [...]}}`, each failed item carrying `error`. Every write route takes `POST` or `PUT`, as Vault does. Vault's `LIST` method is accepted wherever `GET ?list=true` is documented. Callers present a token as `X-Vault-Token` or `Authorization: Bearer`; a missing or wrong token, or an operation outside the token's policy, answers 403."
    ),
    paths(
        sys::init_status, sys::init, sys::seal_status, sys::unseal, sys::seal, sys::health,
        keys::list, keys::read, keys::create, keys::delete, keys::config, keys::rotate, keys::trim,
        contexts::destroy_context,
        crypt::encrypt, crypt::decrypt, crypt::rewrap, crypt::datakey,
        sign::sign, sign::verify, sign::hmac, misc::hash, misc::random, misc::export,
        guardians::create_guardian, guardians::read_guardian, guardians::share_backups,
        guardians::verify_backups, guardians::finalize_guardian, guardians::read_ceremony,
        guardians::decrypt_shares, guardians::compensate_shares,
        vottery_server::health::routes::live, health::ready, health::metrics, spec
    ),
    tags(
        (name = "sys", description = "Initialisation, unseal and seal, as Vault's `/v1/sys`."),
        (name = "keys", description = "Transit key rings: create, read, list, configure, rotate, trim, delete; and, for keys created with `context_keys`, destroying one context's data key (crypto-shredding)."),
        (name = "transit", description = "Transit operations: encrypt, decrypt, rewrap, data keys, sign, verify, HMAC, hash, random bytes."),
        (name = "guardians", description = "ElectionGuard guardians hosted by this instance: the key ceremony (create, backups, verifications, finalize) and partial decryptions, outside Vault's API. Errors are RFC 9457 problems naming each bad field. A token needs `guardian-ceremony` or `guardian-decrypt` on the guardian's name."),
        (name = "operations", description = "Health, metrics and this document, outside Vault's API."),
    ),
    components(schemas(
        Problem, KeyName, KeyVersion, DigestName, SignatureHashName, EntropySource, ByteCount,
        ExportKind, DataKeyKind
    )),
    modifiers(&TokenSchemes, &OtherForms, &SignatureOrHmac, &UniqueOperationIds)
)]
pub struct ApiDoc;

/// The `data` of an encrypt or rewrap: one ciphertext, or a batch's results in input order.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only
pub enum EncryptData {
    Single(Ciphertext),
    Batch(BatchResults<EncryptResult>),
}

/// The `data` of a decrypt: one base64 plaintext, or a batch's results in input order.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only
pub enum DecryptData {
    Single(Plaintext),
    Batch(BatchResults<DecryptResult>),
}

/// The `data` of a sign: one signature, or a batch's results in input order.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only
pub enum SignData {
    Single(Signature),
    Batch(BatchResults<SignResult>),
}

/// The `data` of a verify: one verdict, or a batch's results in input order.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only
pub enum VerifyData {
    Single(Verification),
    Batch(BatchResults<VerifyResult>),
}

/// The `data` of an HMAC: one `vault:v<N>:` HMAC, or a batch's results in input order.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only
pub enum HmacData {
    Single(Hmac),
    Batch(BatchResults<HmacResult>),
}

/// A refused encrypt: the whole request (`errors`), or a batch whose items failed, answered
/// with every item's result.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only
pub enum EncryptRefused {
    Request(VaultErrors),
    Items(VaultResponse<BatchResults<EncryptResult>>),
}

/// A refused decrypt: the whole request (`errors`), or a batch whose items failed, answered
/// with every item's result.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only
pub enum DecryptRefused {
    Request(VaultErrors),
    Items(VaultResponse<BatchResults<DecryptResult>>),
}

/// The failures every transit route may answer, in Vault's `{"errors": [...]}` shape.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // a schema only
pub enum TransitErrors {
    /// A malformed request, or an operation that cannot be done (unknown key, a ciphertext that
    /// does not open, an unsupported parameter); `errors` says why.
    #[response(status = 400)]
    BadRequest(VaultErrors),
    /// No token, an unknown token, or an operation outside the token's policy.
    #[response(status = 403)]
    Forbidden(VaultErrors),
    /// The request body is larger than the configured limit.
    #[response(status = 413)]
    TooLarge(VaultErrors),
    /// An unexpected failure; the cause is logged, not returned.
    #[response(status = 500)]
    Internal(VaultErrors),
    /// The instance is sealed (`Vault is sealed`), or storage is unavailable (with `Retry-After`).
    #[response(status = 503)]
    Unavailable(VaultErrors),
}

/// The failure every `sys` route but health may answer when the seal's storage cannot be read.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // a schema only
pub enum StorageErrors {
    /// Storage is unavailable
    #[response(status = 503)]
    Unavailable(VaultErrors),
}

/// The failures every guardian route may answer, as RFC 9457 problems.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // a schema only
pub enum GuardianErrors {
    /// A value that cannot be used: out of range, not in the group, a bad proof, wrong ceremony
    /// parameters, or a body that is not JSON. `errors[]` names each field
    /// (`ciphertexts[3].pad`, `public_records[1]`); nothing was stored.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No token, an unknown token, or the operation is not granted on this guardian's name.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// This instance hosts no guardian of that name.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// A step out of order (the missing step is named), or a repeated step with another body.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// The body is larger than the configured limit.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not JSON.
    #[response(status = 415, content_type = "application/problem+json")]
    NotJson(Problem),
    /// Fields that are not part of the request, named.
    #[response(status = 422, content_type = "application/problem+json")]
    UnknownFields(Problem),
    /// An unexpected failure; the cause is logged, not returned.
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
    /// The instance is sealed, or storage is unavailable (with `Retry-After`).
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The schemes the `/v1` routes accept: `X-Vault-Token`, or the same token as a bearer token.
struct TokenSchemes;

impl Modify for TokenSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "vault_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Vault-Token",
                "A token from configuration, bound to a policy, or the root token handed out by init.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The same token as `Authorization: Bearer <token>`."))
                    .build(),
            ),
        );
    }
}

/// Operations served by a handler that already documents another: the longer forms of routes
/// with optional trailing segments (`sign/:name/:algorithm`), and `HEAD /v1/sys/health`. The
/// `paths(...)` list takes one path per handler, so these are added here.
struct OtherForms;

impl Modify for OtherForms {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        fn add<P: utoipa::Path>(openapi: &mut utoipa::openapi::OpenApi) {
            openapi
                .paths
                .add_path_operation(P::path(), P::methods(), P::operation());
        }
        add::<sign::SignWithAlgorithm>(openapi);
        add::<sign::VerifyWithAlgorithm>(openapi);
        add::<sign::HmacWithAlgorithm>(openapi);
        add::<misc::HashWithAlgorithm>(openapi);
        add::<misc::RandomWithOne>(openapi);
        add::<misc::RandomWithTwo>(openapi);
        add::<misc::ExportVersion>(openapi);
        add::<sys::HealthHead>(openapi);
    }
}

/// A verify says what it checks: a single request carries a `signature`, an `hmac` or
/// `batch_input`, and each item a `signature` or an `hmac`. A derive cannot state "one of these
/// fields", so the rule is added to those schemas here.
struct SignatureOrHmac;

impl Modify for SignatureOrHmac {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let rules: [(&str, &[&str]); 2] = [
            ("VerifyRequest", &["signature", "hmac", "batch_input"]),
            ("VerifyItem", &["signature", "hmac"]),
        ];
        for (name, fields) in rules {
            if let Some(schema) = components.schemas.remove(name) {
                let any_field = fields.iter().fold(AnyOfBuilder::new(), |any, field| {
                    any.item(ObjectBuilder::new().required(*field))
                });
                let constrained = AllOfBuilder::new().item(schema).item(any_field);
                components
                    .schemas
                    .insert(name.to_owned(), constrained.into());
            }
        }
    }
}

/// One handler serves `POST` and `PUT`; OpenAPI wants every `operationId` unique, so the
/// second and later uses of an id get the method appended (`encrypt`, `encrypt_put`).
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut seen = std::collections::HashSet::new();
        for item in openapi.paths.paths.values_mut() {
            for (method, operation) in methods_mut(item) {
                if let Some(id) = operation.operation_id.as_mut()
                    && !seen.insert(id.clone())
                {
                    *id = format!("{id}_{method}");
                    seen.insert(id.clone());
                }
            }
        }
    }
}

fn methods_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (&'static str, &mut utoipa::openapi::path::Operation)> {
    [
        ("post", item.post.as_mut()),
        ("get", item.get.as_mut()),
        ("head", item.head.as_mut()),
        ("put", item.put.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
}

/// The document as checked in: pretty-printed, object keys sorted, ending in a newline.
pub fn to_pretty_json() -> serde_json::Result<String> {
    vottery_server::openapi::pretty_json(ApiDoc::openapi())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn spec() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(spec));
    vottery_server::openapi::docs_page(cfg);
}
