//! The HTTP client of one guardian's routes, and the connector that hands out clients with
//! their tokens.

use std::future::Future;
use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use vottery_election::{
    ElGamalCiphertext, ElectionPartialKeyBackup, ElectionPartialKeyVerification, ElectionPublicKey,
    ElementModQ,
};

use super::{CallError, DEFAULT_CALL_TIMEOUT, MediatorError};
use crate::client::{ClientSettings, TOKEN_HEADER, http_client};
use crate::guardians::{
    BackupsAnswer, CeremonyRecord, CompensateShares, CompensatedShares, CreateGuardian,
    DecryptShares, DecryptionShares, Finalize, GuardianStatus, ShareBackups, VerificationsAnswer,
    VerifyBackups,
};
use crate::vault::SEALED_MESSAGE;

/// A client of one guardian's routes on its security-svc instance.
#[derive(Debug, Clone)]
pub struct GuardianClient {
    name: String,
    base_url: String,
    http: reqwest::Client,
    token: SecretString,
}

impl GuardianClient {
    /// A client of guardian `name` at `settings.base_url`, with `settings.token`.
    pub fn new(name: &str, settings: &ClientSettings) -> Result<Self, MediatorError> {
        let http = http_client(settings).map_err(|error| {
            MediatorError::Internal(format!("cannot build the HTTP client: {error}"))
        })?;
        Ok(Self {
            name: name.to_owned(),
            base_url: settings.base_url.trim_end_matches('/').to_owned(),
            http,
            token: settings.token.clone(),
        })
    }

    /// The guardian's name (its id in every record).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The instance's base URL.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    fn request(&self, method: reqwest::Method, suffix: &str) -> reqwest::RequestBuilder {
        self.http
            .request(
                method,
                format!("{}/v1/guardians/{}{suffix}", self.base_url, self.name),
            )
            .header(TOKEN_HEADER, self.token.expose_secret())
    }

    async fn send<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<T, MediatorError> {
        self.exchange(builder)
            .await
            .map_err(|source| MediatorError::Call {
                guardian: self.name.clone(),
                source,
            })
    }

    async fn exchange<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<T, CallError> {
        let response = builder.send().await.map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|error| CallError::Unreadable(error.to_string()));
        }
        Err(status_error(status, &body))
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        suffix: &str,
        body: &B,
    ) -> Result<T, MediatorError> {
        self.send(self.request(reqwest::Method::POST, suffix).json(body))
            .await
    }

    /// Creates the guardian (the same body again answers the same guardian).
    pub async fn create(&self, body: &CreateGuardian) -> Result<GuardianStatus, MediatorError> {
        self.post("", body).await
    }

    /// The guardian's stage and public record.
    pub async fn status(&self) -> Result<GuardianStatus, MediatorError> {
        self.send(self.request(reqwest::Method::GET, "")).await
    }

    /// Hands the guardian every public record; answers its backups for the other guardians.
    pub async fn share_backups(
        &self,
        public_records: &[ElectionPublicKey],
    ) -> Result<Vec<ElectionPartialKeyBackup>, MediatorError> {
        let body = ShareBackups {
            public_records: public_records.to_vec(),
        };
        let answer: BackupsAnswer = self.post("/backups", &body).await?;
        Ok(answer.backups)
    }

    /// Delivers backups addressed to this guardian; answers its verdict on each.
    pub async fn verify_backups(
        &self,
        backups: &[ElectionPartialKeyBackup],
    ) -> Result<Vec<ElectionPartialKeyVerification>, MediatorError> {
        let body = VerifyBackups {
            backups: backups.to_vec(),
        };
        let answer: VerificationsAnswer = self.post("/verifications", &body).await?;
        Ok(answer.verifications)
    }

    /// Hands the guardian every verification; answers its signed ceremony record.
    pub async fn finalize(
        &self,
        verifications: &[ElectionPartialKeyVerification],
    ) -> Result<CeremonyRecord, MediatorError> {
        let body = Finalize {
            verifications: verifications.to_vec(),
        };
        self.post("/finalize", &body).await
    }

    /// The guardian's signed ceremony record.
    pub async fn ceremony_record(&self) -> Result<CeremonyRecord, MediatorError> {
        self.send(self.request(reqwest::Method::GET, "/ceremony"))
            .await
    }

    /// The guardian's partial decryptions of up to [`MAX_CIPHERTEXTS`] ciphertexts.
    pub async fn decrypt_shares(
        &self,
        extended_base_hash: &ElementModQ,
        ciphertexts: &[ElGamalCiphertext],
    ) -> Result<DecryptionShares, MediatorError> {
        let body = DecryptShares {
            extended_base_hash: *extended_base_hash,
            ciphertexts: ciphertexts.to_vec(),
        };
        self.post("/decrypt", &body).await
    }

    /// The guardian's compensated partial decryptions on behalf of `missing_guardian_id`.
    pub async fn compensate_shares(
        &self,
        missing_guardian_id: &str,
        extended_base_hash: &ElementModQ,
        ciphertexts: &[ElGamalCiphertext],
    ) -> Result<CompensatedShares, MediatorError> {
        let body = CompensateShares {
            missing_guardian_id: missing_guardian_id.to_owned(),
            extended_base_hash: *extended_base_hash,
            ciphertexts: ciphertexts.to_vec(),
        };
        self.post("/compensate", &body).await
    }
}

fn transport_error(error: reqwest::Error) -> CallError {
    if error.is_timeout() {
        CallError::Unavailable("timed out".into())
    } else if error.is_connect() {
        CallError::Unavailable("connection failed".into())
    } else {
        CallError::Unavailable(error.to_string())
    }
}

/// The error of a non-success answer: the problem's detail and each item of its `errors`
/// (problem+json field errors, or Vault's plain strings).
fn status_error(status: StatusCode, body: &[u8]) -> CallError {
    let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let detail = body.get("detail").and_then(serde_json::Value::as_str);
    if detail == Some(SEALED_MESSAGE) {
        return CallError::Sealed;
    }
    let mut parts: Vec<String> = detail.map(str::to_owned).into_iter().collect();
    let items = body.get("errors").and_then(serde_json::Value::as_array);
    for item in items.into_iter().flatten() {
        match item {
            serde_json::Value::String(text) if text == SEALED_MESSAGE => return CallError::Sealed,
            serde_json::Value::String(text) => parts.push(text.clone()),
            item => {
                let text = |key: &str| item.get(key).and_then(serde_json::Value::as_str);
                parts.push(format!(
                    "{}: {}",
                    text("field").unwrap_or("?"),
                    text("message").unwrap_or("?")
                ));
            }
        }
    }
    if parts.is_empty() {
        parts.push(status.canonical_reason().unwrap_or("no detail").to_owned());
    }
    let detail = parts.join("; ");
    match status {
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => CallError::Forbidden,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
            CallError::Unavailable(detail)
        }
        status if status.is_client_error() => CallError::Refused {
            status: status.as_u16(),
            detail,
        },
        status => CallError::Failed {
            status: status.as_u16(),
            detail,
        },
    }
}

/// How the mediator reaches guardians: their tokens by guardian name, and the call timeouts.
#[derive(Debug, Clone)]
pub struct Connector {
    tokens: Vec<(String, SecretString)>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl Default for Connector {
    fn default() -> Self {
        Self::new(DEFAULT_CALL_TIMEOUT)
    }
}

impl Connector {
    /// No tokens yet; every call may take up to `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            tokens: Vec::new(),
            timeout,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// Adds (or replaces) the token of guardian `guardian`.
    pub fn with_token(mut self, guardian: &str, token: SecretString) -> Self {
        self.tokens.retain(|(name, _)| name != guardian);
        self.tokens.push((guardian.to_owned(), token));
        self
    }

    /// A client of guardian `name` at `url`, with its token.
    pub fn client(&self, name: &str, url: &str) -> Result<GuardianClient, MediatorError> {
        let token = self
            .tokens
            .iter()
            .find(|(guardian, _)| guardian == name)
            .map(|(_, token)| token.clone())
            .ok_or_else(|| MediatorError::MissingToken {
                guardian: name.to_owned(),
            })?;
        GuardianClient::new(
            name,
            &ClientSettings {
                base_url: url.to_owned(),
                token,
                timeout: self.timeout,
                connect_timeout: self.connect_timeout,
                pool_max_idle_per_host: 2,
            },
        )
    }
}

/// Runs the futures at once (as tasks); their results in the order given, or the error of the
/// first (in that order) that failed.
pub(super) async fn all<T, F>(futures: Vec<F>) -> Result<Vec<T>, MediatorError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, MediatorError>> + Send + 'static,
{
    let count = futures.len();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, future) in futures.into_iter().enumerate() {
        tasks.spawn(async move { (index, future.await) });
    }
    let mut results: Vec<Option<Result<T, MediatorError>>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (index, result) = joined.map_err(|error| MediatorError::Internal(error.to_string()))?;
        if let Some(slot) = results.get_mut(index) {
            *slot = Some(result);
        }
    }
    results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| Err(MediatorError::Internal("a task was lost".into())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_problems_or_vault_errors() {
        let sealed =
            br#"{"type":"x/sealed","title":"Sealed","status":503,"detail":"Vault is sealed"}"#;
        assert_eq!(
            status_error(StatusCode::SERVICE_UNAVAILABLE, sealed),
            CallError::Sealed
        );
        let vault_sealed = br#"{"errors":["Vault is sealed"]}"#;
        assert_eq!(
            status_error(StatusCode::SERVICE_UNAVAILABLE, vault_sealed),
            CallError::Sealed
        );
        let denied = br#"{"errors":["permission denied"]}"#;
        assert_eq!(
            status_error(StatusCode::FORBIDDEN, denied),
            CallError::Forbidden
        );
        let invalid = br#"{"type":"x/validation","title":"Invalid","status":400,"detail":"bad record","errors":[{"field":"public_records[1]","message":"invalid proof"}]}"#;
        assert_eq!(
            status_error(StatusCode::BAD_REQUEST, invalid),
            CallError::Refused {
                status: 400,
                detail: "bad record; public_records[1]: invalid proof".into()
            }
        );
        assert_eq!(
            status_error(StatusCode::INTERNAL_SERVER_ERROR, b"oops"),
            CallError::Failed {
                status: 500,
                detail: "Internal Server Error".into()
            }
        );
    }

    #[test]
    fn a_guardian_without_a_token_is_named() {
        let error = Connector::default()
            .client("alice", "http://127.0.0.1:1")
            .unwrap_err();
        assert_eq!(error.to_string(), "guardian alice: no token given");
        assert_eq!(error.guardian(), Some("alice"));
    }
}
