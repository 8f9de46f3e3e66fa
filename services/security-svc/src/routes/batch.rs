//! The one shape of the transit data-plane requests: a single value, or `batch_input` items.
//! [`Batch`] normalises the body once (a single value becomes a batch of one) and
//! [`Batch::answer`] writes either the single answer or the per-item results, in input order.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use futures_util::FutureExt;
use futures_util::future::Map;
use serde::Serialize;
use serde::de::DeserializeOwned;
use vottery_common::transit::{
    BatchResults, DecryptItem, DecryptRequest, EncryptItem, EncryptRequest, HmacItem, HmacRequest,
    RewrapItem, RewrapRequest, SignItem, SignRequest, VerifyItem, VerifyRequest,
};
use vottery_server::observe::RequestId;

use super::refusal::Refusal;
use super::{AppState, Authorized, VaultBody, vault_ok, vault_with_status};
use crate::error::VaultError;
use crate::keys::KeyRing;
use crate::keys::ops::OpError;

/// A request body that carries one value in its own fields or several in `batch_input`.
pub trait BatchRequest: DeserializeOwned + Default + 'static {
    /// One value to operate on.
    type Item: BatchItem;

    /// Takes `batch_input` out of the request, if it was sent.
    fn take_batch(&mut self) -> Option<Vec<Self::Item>>;

    /// Takes the single value out of the request's own fields, as an item.
    fn take_single(&mut self) -> Self::Item;
}

/// An item of a batch: its result echoes the item's `reference`.
pub trait BatchItem {
    /// The caller's reference for this item; empty when none was sent.
    fn into_reference(self) -> String;
}

/// What one item's operation produced, written as the single answer or as a batch result.
pub trait ItemOutcome: Sized {
    /// The `data` of a request that sent a single value.
    type Single: Serialize;
    /// One entry of `batch_results`.
    type BatchResult: Serialize;

    /// The answer's `data` when the request sent a single value.
    fn into_single(self) -> Self::Single;

    /// The item's entry in `batch_results`, echoing its `reference`.
    fn into_batch_result(result: Result<Self, OpError>, reference: String) -> Self::BatchResult;
}

/// How a batch answers when some of its items failed.
#[derive(Debug, Clone, Copy)]
pub enum FailedItems {
    /// Encrypt and decrypt, as Vault: 400 (500 when every failure is ours), or the request's
    /// `partial_failure_response_code` when some items succeeded.
    SetStatus(Option<i64>),
    /// Rewrap: a failure of ours fails the whole request with a bare 500; the caller's own
    /// failures are reported in their items with 200.
    InternalFailsRequest,
    /// Sign, verify and HMAC: 200, each failure reported in its item.
    ReportedInItems,
}

/// A transit request normalised once: its items (the single value as a batch of one) and the
/// request's other fields, which apply to every item.
pub struct Batch<R: BatchRequest> {
    /// The request without its values (options shared by every item).
    pub request: R,
    /// `batch_input`, or the single value as the only item.
    pub items: Vec<R::Item>,
    /// Whether `batch_input` was sent: the answer is then per item.
    pub is_batch: bool,
}

impl<R: BatchRequest> Batch<R> {
    fn of(mut request: R) -> Self {
        let (items, is_batch) = match request.take_batch() {
            Some(items) => (items, true),
            None => (vec![request.take_single()], false),
        };
        Self {
            request,
            items,
            is_batch,
        }
    }

    /// Refuses an empty batch, or one over the configured limit; a single value passes.
    pub fn check_size(&self, state: &AppState) -> Result<(), Refusal> {
        if !self.is_batch {
            return Ok(());
        }
        if self.items.is_empty() {
            return Err(Refusal::EmptyBatch);
        }
        let max = state.transit.max_batch_items;
        if self.items.len() > max {
            return Err(Refusal::BatchTooLarge {
                items: self.items.len(),
                max,
            });
        }
        Ok(())
    }

    /// Runs `operation` on every item, in input order, and answers: the single value's `data`,
    /// or `batch_results` with the status `failed` calls for.
    pub fn answer<O: ItemOutcome>(
        self,
        request_id: &RequestId,
        failed: FailedItems,
        operation: impl FnMut(&R::Item) -> Result<O, OpError>,
    ) -> Result<HttpResponse, VaultError> {
        if !self.is_batch {
            let single = self
                .items
                .first()
                .map(operation)
                .ok_or_else(VaultError::internal)??;
            return Ok(vault_ok(request_id, single.into_single(), Vec::new()));
        }
        let results: Vec<Result<O, OpError>> = self.items.iter().map(operation).collect();
        let mut warnings = Vec::new();
        let status = match failed {
            FailedItems::SetStatus(partial_code) => {
                batch_status(&results, partial_code, &mut warnings)
            }
            FailedItems::InternalFailsRequest if results.iter().any(is_internal) => {
                return Err(VaultError::internal());
            }
            FailedItems::InternalFailsRequest | FailedItems::ReportedInItems => StatusCode::OK,
        };
        let batch_results: Vec<O::BatchResult> = results
            .into_iter()
            .zip(self.items)
            .map(|(result, item)| O::into_batch_result(result, item.into_reference()))
            .collect();
        Ok(vault_with_status(
            status,
            request_id,
            BatchResults { batch_results },
            warnings,
        ))
    }
}

/// The named key ring, or `missing` (the route's own message) when there is none.
pub async fn key_ring(
    auth: &Authorized,
    name: &str,
    missing: Refusal,
) -> Result<Arc<KeyRing>, VaultError> {
    auth.store.get(name).await?.ok_or(missing.into())
}

/// The number of items a request carries, for the metrics (1 when the body is unreadable).
pub fn item_count<R: BatchRequest>(body: &Result<Batch<R>, VaultError>) -> usize {
    body.as_ref().map_or(1, |batch| batch.items.len())
}

type Normalise<R> = fn(Result<VaultBody<R>, VaultError>) -> Result<Batch<R>, VaultError>;

impl<R: BatchRequest> FromRequest for Batch<R> {
    type Error = VaultError;
    type Future = Map<<VaultBody<R> as FromRequest>::Future, Normalise<R>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let normalise: Normalise<R> = |body| body.map(|VaultBody(request)| Batch::of(request));
        VaultBody::<R>::from_request(req, payload).map(normalise)
    }
}

fn is_internal<T>(result: &Result<T, OpError>) -> bool {
    matches!(result, Err(OpError::Internal(_)))
}

/// Vault's status for an encrypt or decrypt batch: 200 when every item succeeded; otherwise 400
/// (500 if only internal failures), or `partial_failure_response_code` (a final status, 200 to
/// 599) when some succeeded.
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
            Some(status) if (200..=599).contains(&code) => status,
            _ => {
                warnings.push("invalid HTTP response code override from partial_failure_response_code, reverting to 400".into());
                StatusCode::BAD_REQUEST
            }
        },
        _ => failure,
    }
}

macro_rules! batch_items {
    ($($item:ty),+) => {
        $(impl BatchItem for $item {
            fn into_reference(self) -> String {
                self.reference.unwrap_or_default()
            }
        })+
    };
}

batch_items!(
    EncryptItem,
    DecryptItem,
    RewrapItem,
    SignItem,
    VerifyItem,
    HmacItem
);

impl BatchRequest for EncryptRequest {
    type Item = EncryptItem;

    fn take_batch(&mut self) -> Option<Vec<EncryptItem>> {
        self.batch_input.take()
    }

    fn take_single(&mut self) -> EncryptItem {
        EncryptItem {
            plaintext: self.plaintext.take(),
            associated_data: self.associated_data.take(),
            context: self.context.take(),
            key_version: self.key_version,
            reference: None,
        }
    }
}

impl BatchRequest for DecryptRequest {
    type Item = DecryptItem;

    fn take_batch(&mut self) -> Option<Vec<DecryptItem>> {
        self.batch_input.take()
    }

    fn take_single(&mut self) -> DecryptItem {
        DecryptItem {
            ciphertext: self.ciphertext.take(),
            associated_data: self.associated_data.take(),
            context: self.context.take(),
            reference: None,
        }
    }
}

impl BatchRequest for RewrapRequest {
    type Item = RewrapItem;

    /// Items without a `key_version` use the request's.
    fn take_batch(&mut self) -> Option<Vec<RewrapItem>> {
        let mut items = self.batch_input.take()?;
        for item in &mut items {
            item.key_version = item.key_version.or(self.key_version);
        }
        Some(items)
    }

    fn take_single(&mut self) -> RewrapItem {
        RewrapItem {
            ciphertext: self.ciphertext.take(),
            associated_data: self.associated_data.take(),
            context: self.context.take(),
            key_version: self.key_version,
            reference: None,
        }
    }
}

impl BatchRequest for SignRequest {
    type Item = SignItem;

    fn take_batch(&mut self) -> Option<Vec<SignItem>> {
        self.batch_input.take()
    }

    fn take_single(&mut self) -> SignItem {
        SignItem {
            input: self.input.take(),
            context: self.context.take(),
            reference: None,
        }
    }
}

impl BatchRequest for VerifyRequest {
    type Item = VerifyItem;

    fn take_batch(&mut self) -> Option<Vec<VerifyItem>> {
        self.batch_input.take()
    }

    fn take_single(&mut self) -> VerifyItem {
        VerifyItem {
            input: self.input.take(),
            signature: self.signature.take(),
            hmac: self.hmac.take(),
            context: self.context.take(),
            reference: None,
        }
    }
}

impl BatchRequest for HmacRequest {
    type Item = HmacItem;

    fn take_batch(&mut self) -> Option<Vec<HmacItem>> {
        self.batch_input.take()
    }

    fn take_single(&mut self) -> HmacItem {
        HmacItem {
            input: self.input.take(),
            reference: None,
        }
    }
}
