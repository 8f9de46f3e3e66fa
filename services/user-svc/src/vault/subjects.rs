//! Each user's PII is sealed under a data key of their own: the PII key is created with
//! `context_keys`, and every value names its user's id as the context. Destroying that one
//! context key in security-svc erases the user's PII wherever its ciphertext is kept
//! (replicas, dumps, backups) — crypto-shredding. Rows encrypted before per-user contexts sit
//! under the shared PII key, without a context, until `user-svc rewrap` moves them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{SealedField, Vault, failed};
use crate::error::ApiError;

/// What security-svc answers for a value under a destroyed context key.
const CONTEXT_DESTROYED: &str = "context destroyed";

/// Which key a row's PII is sealed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiiScope {
    /// The user's own context key under the PII key: erasable on its own.
    PerUser,
    /// The shared PII key, without a context, as rows were encrypted before per-user keys.
    Shared,
}

impl PiiScope {
    /// The transit `context` (base64) of a value of user `user_id`.
    pub(super) fn context(self, user_id: i32) -> Option<String> {
        match self {
            PiiScope::PerUser => Some(STANDARD.encode(subject_context(user_id))),
            PiiScope::Shared => None,
        }
    }
}

/// The context naming a user's data key: their id, in decimal.
pub fn subject_context(user_id: i32) -> Vec<u8> {
    user_id.to_string().into_bytes()
}

/// Whether a decrypt failure means the value's user was erased (their key destroyed), as
/// opposed to a value that does not belong to its row and column.
pub fn is_erased(reason: &str) -> bool {
    reason == CONTEXT_DESTROYED
}

/// A user whose PII key is destroyed (an erasure not yet finished) takes no more writes (409).
pub fn erased_user(user_id: i32) -> ApiError {
    ApiError::Conflict {
        detail: format!("user {user_id} was erased; finish with POST /api/users/{user_id}/erase"),
        errors: Vec::new(),
    }
}

impl Vault {
    /// The transit key of a scope.
    pub(super) fn key_of(&self, scope: PiiScope) -> &str {
        match scope {
            PiiScope::PerUser => &self.pii_key,
            PiiScope::Shared => &self.shared_pii_key,
        }
    }

    /// Destroys user `user_id`'s context key: every copy of their PII ciphertext becomes
    /// unreadable for good. Destroying it again succeeds and changes nothing.
    pub async fn destroy_subject(&self, request_id: &str, user_id: i32) -> Result<(), ApiError> {
        self.client
            .call(Some(request_id))
            .destroy_context(&self.pii_key, &subject_context(user_id))
            .await
            .map_err(failed)
    }
}

impl Vault {
    /// Decrypts ciphertexts of rows of either scope, one call per scope, concurrently;
    /// results in input order, as [`Vault::decrypt`] gives them.
    pub async fn decrypt_scoped(
        &self,
        request_id: &str,
        fields: &[(PiiScope, SealedField<'_>)],
    ) -> Result<Vec<Result<String, String>>, ApiError> {
        let of = |scope: PiiScope| -> Vec<SealedField<'_>> {
            fields
                .iter()
                .filter(|(of, _)| *of == scope)
                .map(|(_, field)| *field)
                .collect()
        };
        let (per_user, shared) = (of(PiiScope::PerUser), of(PiiScope::Shared));
        let (per_user, shared) = tokio::try_join!(
            self.decrypt_in(request_id, PiiScope::PerUser, &per_user),
            self.decrypt_in(request_id, PiiScope::Shared, &shared),
        )?;
        let (mut per_user, mut shared) = (per_user.into_iter(), shared.into_iter());
        Ok(fields
            .iter()
            .map(|(scope, _)| {
                let next = match scope {
                    PiiScope::PerUser => per_user.next(),
                    PiiScope::Shared => shared.next(),
                };
                next.unwrap_or_else(|| Err("no result for this value".to_owned()))
            })
            .collect())
    }
}
