//! `/v1/transit/keys/:name/contexts/destroy`: crypto-shredding one context of a key created
//! with `context_keys`. Beyond Vault, whose derived keys cannot be destroyed one context at a
//! time.

use actix_web::{HttpResponse, web};
use vottery_common::transit::{ContextDestroyed, DestroyContextRequest};
use vottery_common::vault::{VaultErrors, VaultResponse};

use super::refusal::Refusal;
use super::segments::KeyName;
use super::{AppState, Authorized, VaultBody, measured, post_or_put, vault_ok};
use crate::auth::Operation;
use crate::error::VaultError;
use crate::keys::wire::decode_b64;

type Auth = Result<Authorized, VaultError>;
type Body<T> = Result<VaultBody<T>, VaultError>;

/// The context to destroy, decoded: present, non-empty base64.
fn context_of(request: &DestroyContextRequest) -> Result<Vec<u8>, Refusal> {
    let context = request
        .context
        .as_deref()
        .filter(|context| !context.is_empty())
        .ok_or(Refusal::MissingContextToDestroy)?;
    match decode_b64(context) {
        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
        _ => Err(Refusal::ContextNotBase64),
    }
}

/// Destroys one context's data key, for good.
///
/// Every value encrypted under that `context` becomes unreadable, wherever copies of it are
/// (replicas, dumps, backups): encrypt, decrypt and rewrap under it answer 400 `context
/// destroyed`, on this instance at once and on every instance sharing the database within the
/// key refresh interval. The context is never made again. Destroying a destroyed context
/// answers the same. Needs the `destroy-context` operation on the key; the request log names
/// the context only by a keyed hash.
#[utoipa::path(method(post, put), path = "/v1/transit/keys/{name}/contexts/destroy", tag = "keys", operation_id = "destroy_context",
    params(("name" = KeyName, Path)),
    request_body = DestroyContextRequest,
    responses(
        (status = 200, description = "The context's data key is destroyed (or already was)", body = VaultResponse<ContextDestroyed>),
        (status = 400, description = "`context` missing or not base64, or the key was not created with `context_keys`", body = VaultErrors),
        (status = 404, description = "No such key (`errors` is empty)", body = VaultErrors),
        crate::routes::openapi::TransitErrors,
    ),
    security(("vault_token" = []), ("bearer" = [])))]
pub async fn destroy_context(
    state: web::Data<AppState>,
    auth: Auth,
    name: web::Path<String>,
    body: Body<DestroyContextRequest>,
) -> Result<HttpResponse, VaultError> {
    measured(&state, Operation::DestroyContext, 1, async {
        let auth = auth?;
        let name = name.into_inner();
        auth.require(Operation::DestroyContext, Some(&name))?;
        let context = context_of(&body?.0)?;
        let ring = auth.store.load(&name).await?.ok_or_else(VaultError::not_found)?;
        if !ring.config.context_keys {
            return Err(Refusal::WithoutContextKeys(name).into());
        }
        let hash = auth.store.destroy_context(&ring, &context).await?;
        tracing::info!(caller = %auth.caller.name, key = %name, context_hash = %hash.short(), "context key destroyed");
        Ok(vault_ok(&auth.request_id, ContextDestroyed { destroyed: true }, Vec::new()))
    })
    .await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(post_or_put(
        "/v1/transit/keys/{name}/contexts/destroy",
        destroy_context,
    ));
}
