//! `/v1/transit/keys`: create, read, list, delete, config, rotate, trim.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use vottery_common::transit::{CreateKeyRequest, KeyConfigRequest, KeyList, TrimRequest};

use super::{AppState, Authorized, VaultBody, measured, no_content, vault_ok};
use crate::auth::Operation;
use crate::error::VaultError;
use crate::keys::store::StoreError;
use crate::keys::{is_valid_key_name, rules};

type Auth = Result<Authorized, VaultError>;
type Body<T> = Result<VaultBody<T>, VaultError>;

fn valid_name(name: &str) -> Result<(), VaultError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(VaultError::bad_request(
            "invalid key name: use letters, digits, '_', '-' and '.', starting and ending with a letter or digit",
        ))
    }
}

/// Maps "no such key" to the message a route uses for it.
fn missing_as(message: String) -> impl FnOnce(StoreError) -> VaultError {
    move |error| match error {
        StoreError::NotFound => VaultError::bad_request(message),
        other => other.into(),
    }
}

async fn create(
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
        let spec = rules::new_key(&body?.0).map_err(VaultError::bad_request)?;
        let ring = auth.store.create(&name, spec).await?;
        tracing::info!(caller = %auth.caller.name, key = %name, key_type = %ring.key_type(), "key created");
        Ok(vault_ok(&auth.request_id, ring.info(), Vec::new()))
    })
    .await
}

async fn read(
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

async fn delete(
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

#[derive(Deserialize)]
struct ListQuery {
    list: Option<String>,
}

async fn list(
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

async fn config(
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
            .map_err(missing_as(format!(
                "no existing key named {name} could be found"
            )))?;
        tracing::info!(caller = %auth.caller.name, key = %name, "key configured");
        Ok(vault_ok(&auth.request_id, ring.info(), warnings))
    })
    .await
}

/// Rotate takes no fields, but a body that is not a JSON object is refused (Vault parses every
/// request body) rather than ignored: a garbled request must not rotate the key.
type NoFields = serde_json::Map<String, serde_json::Value>;

async fn rotate(
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
        let ring = auth.store.rotate(&name).await.map_err(missing_as("key not found".into()))?;
        tracing::info!(caller = %auth.caller.name, key = %name, version = ring.config.latest_version, "key rotated");
        Ok(vault_ok(&auth.request_id, ring.info(), Vec::new()))
    })
    .await
}

async fn trim(
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
            .map_err(missing_as("invalid key name".into()))?;
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
        web::resource("/v1/transit/keys/{name}")
            .route(web::get().to(read))
            .route(web::post().to(create))
            .route(web::put().to(create))
            .route(web::delete().to(delete)),
    )
    .service(
        web::resource("/v1/transit/keys/{name}/config")
            .route(web::post().to(config))
            .route(web::put().to(config)),
    )
    .service(
        web::resource("/v1/transit/keys/{name}/rotate")
            .route(web::post().to(rotate))
            .route(web::put().to(rotate)),
    )
    .service(
        web::resource("/v1/transit/keys/{name}/trim")
            .route(web::post().to(trim))
            .route(web::put().to(trim)),
    );
}
