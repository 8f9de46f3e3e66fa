//! `/v1/transit/keys`: create, read, list, delete, config, rotate, trim.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use vottery_common::transit::{CreateKeyRequest, KeyConfigRequest, KeyInfo, KeyList, TrimRequest};
use vottery_common::vault::{VaultErrors, VaultResponse};

use super::refusal::Refusal;
use super::segments::KeyName;
use super::{AppState, Authorized, VaultBody, measured, no_content, post_or_put, vault_ok};
use crate::auth::Operation;
use crate::error::VaultError;
use crate::keys::store::StoreError;
use crate::keys::{is_valid_key_name, rules};

type Auth = Result<Authorized, VaultError>;
type Body<T> = Result<VaultBody<T>, VaultError>;

fn valid_name(name: &str) -> Result<(), Refusal> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(Refusal::InvalidKeyName)
    }
}

/// Maps "no such key" to the refusal a route answers it with.
fn missing_as(refusal: Refusal) -> impl FnOnce(StoreError) -> VaultError {
    move |error| match error {
        StoreError::NotFound => refusal.into(),
        other => other.into(),
    }
}

/// Creates a key ring.
///
/// `aes256-gcm96` unless `type` says otherwise; creating an existing key answers it unchanged.
#[utoipa::path(method(post, put), path = "/v1/transit/keys/{name}", tag = "keys", operation_id = "create_key",
    params(("name" = KeyName, Path)),
    request_body = CreateKeyRequest,
    responses((status = 200, description = "The key ring", body = VaultResponse<KeyInfo>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: Body<CreateKeyRequest>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Create, 1, async {
        let auth = auth?;
        let name = name.into_inner();
        auth.require(Operation::Create, Some(&name))?;
        valid_name(&name)?;
        let spec = rules::new_key(&body?.0).map_err(Refusal::Rule)?;
        let ring = auth.store.create(&name, spec).await?;
        tracing::info!(caller = %auth.caller.name, key = %name, key_type = %ring.key_type(), "key created");
        Ok(vault_ok(&auth.request_id, ring.info(), Vec::new()))
    })
    .await
}

/// A key ring's configuration and versions, with the public keys of asymmetric types.
#[utoipa::path(get, path = "/v1/transit/keys/{name}", tag = "keys", operation_id = "read_key",
    params(("name" = KeyName, Path)),
    responses((status = 200, description = "The key ring", body = VaultResponse<KeyInfo>),
        (status = 404, description = "No such key (`errors` is empty)", body = VaultErrors), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn read(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Read, 1, async {
        let auth = auth?;
        let name = name.into_inner();
        auth.require(Operation::Read, Some(&name))?;
        // Reads go to storage so they show changes made through any instance.
        let ring = auth
            .store
            .load(&name)
            .await?
            .ok_or_else(VaultError::not_found)?;
        Ok(vault_ok(&auth.request_id, ring.info(), Vec::new()))
    })
    .await
}

/// Deletes a key ring and every version; only when its config allows deletion.
#[utoipa::path(delete, path = "/v1/transit/keys/{name}", tag = "keys", operation_id = "delete_key",
    params(("name" = KeyName, Path)),
    responses((status = 204, description = "Deleted"), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn delete(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Delete, 1, async {
        let auth = auth?;
        let name = name.into_inner();
        auth.require(Operation::Delete, Some(&name))?;
        auth.store.delete(&name).await?;
        tracing::info!(caller = %auth.caller.name, key = %name, "key deleted");
        Ok(no_content())
    })
    .await
}

/// Vault's spelling of `LIST` for clients that cannot send custom methods.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Must be `true`: a plain `GET` of the collection answers 405.
    #[param(required = true, pattern = "^(true|1|t|True|TRUE)$")]
    list: Option<String>,
}

/// Lists the key rings' names.
///
/// Sent as Vault's `LIST /v1/transit/keys`, or as `GET /v1/transit/keys?list=true` by
/// clients that cannot send custom methods.
#[utoipa::path(get, path = "/v1/transit/keys", tag = "keys", operation_id = "list_keys",
    params(ListQuery),
    responses((status = 200, description = "The key names", body = VaultResponse<KeyList>),
        (status = 404, description = "There are no keys (`errors` is empty)", body = VaultErrors),
        (status = 405, description = "`GET` without `list=true`", body = VaultErrors), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::List, 1, async {
        let auth = auth?;
        let listing = req.method().as_str() == "LIST"
            || matches!(
                query.list.as_deref(),
                Some("true" | "1" | "t" | "True" | "TRUE")
            );
        if !listing {
            return Err(VaultError::method_not_allowed());
        }
        auth.require(Operation::List, None)?;
        let keys = auth.store.list().await?;
        if keys.is_empty() {
            return Err(VaultError::not_found());
        }
        Ok(vault_ok(&auth.request_id, KeyList { keys }, Vec::new()))
    })
    .await
}

/// Changes a key ring's configuration; only the fields given change.
#[utoipa::path(method(post, put), path = "/v1/transit/keys/{name}/config", tag = "keys", operation_id = "configure_key",
    params(("name" = KeyName, Path)),
    request_body = KeyConfigRequest,
    responses((status = 200, description = "The key ring; `warnings` names values that were adjusted", body = VaultResponse<KeyInfo>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn config(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: Body<KeyConfigRequest>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Config, 1, async {
        let auth = auth?;
        let name = name.into_inner();
        auth.require(Operation::Config, Some(&name))?;
        let request = body?.0;
        let (ring, warnings) = auth
            .store
            .configure(&name, &request)
            .await
            .map_err(missing_as(Refusal::NoKeyToConfigure(name.clone())))?;
        tracing::info!(caller = %auth.caller.name, key = %name, "key configured");
        Ok(vault_ok(&auth.request_id, ring.info(), warnings))
    })
    .await
}

/// Rotate takes no fields, but a body that is not a JSON object is refused (Vault parses every
/// request body) rather than ignored: a garbled request must not rotate the key.
type NoFields = serde_json::Map<String, serde_json::Value>;

/// Adds a new version and makes it the one that encrypts and signs.
#[utoipa::path(method(post, put), path = "/v1/transit/keys/{name}/rotate", tag = "keys", operation_id = "rotate_key",
    params(("name" = KeyName, Path)),
    request_body(content = Object, description = "No fields; an empty body or `{}`", content_type = "application/json"),
    responses((status = 200, description = "The key ring", body = VaultResponse<KeyInfo>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn rotate(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: Body<NoFields>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Rotate, 1, async {
        let auth = auth?;
        let name = name.into_inner();
        auth.require(Operation::Rotate, Some(&name))?;
        body?;
        let ring = auth.store.rotate(&name).await.map_err(missing_as(Refusal::KeyNotFound))?;
        tracing::info!(caller = %auth.caller.name, key = %name, version = ring.config.latest_version, "key rotated");
        Ok(vault_ok(&auth.request_id, ring.info(), Vec::new()))
    })
    .await
}

/// Deletes the versions below `min_available_version` for good.
#[utoipa::path(method(post, put), path = "/v1/transit/keys/{name}/trim", tag = "keys", operation_id = "trim_key",
    params(("name" = KeyName, Path)),
    request_body = TrimRequest,
    responses((status = 200, description = "The key ring", body = VaultResponse<KeyInfo>), crate::routes::openapi::TransitErrors),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn trim(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: Body<TrimRequest>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::Trim, 1, async {
        let auth = auth?;
        let name = name.into_inner();
        auth.require(Operation::Trim, Some(&name))?;
        let request = body?.0;
        let ring = auth
            .store
            .trim(&name, request.min_available_version)
            .await
            .map_err(missing_as(Refusal::NoKeyToTrim))?;
        tracing::info!(caller = %auth.caller.name, key = %name, min_available = ring.config.min_available_version, "key trimmed");
        Ok(vault_ok(&auth.request_id, ring.info(), Vec::new()))
    })
    .await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    let list_method = Method::from_bytes(b"LIST").unwrap_or(Method::GET);
    cfg.service(
        web::resource(["/v1/transit/keys", "/v1/transit/keys/"])
            .route(web::method(list_method).to(list))
            .route(web::get().to(list)),
    )
    .service(
        post_or_put("/v1/transit/keys/{name}", create)
            .route(web::get().to(read))
            .route(web::delete().to(delete)),
    )
    .service(post_or_put("/v1/transit/keys/{name}/config", config))
    .service(post_or_put("/v1/transit/keys/{name}/rotate", rotate))
    .service(post_or_put("/v1/transit/keys/{name}/trim", trim));
}
