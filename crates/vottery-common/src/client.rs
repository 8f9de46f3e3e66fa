//! A typed async client for security-svc (or any Vault Transit server): a keep-alive connection
//! pool, explicit timeouts, the caller's request id forwarded, and errors that say whether the
//! service is unavailable (sealed, down, timing out) or refused the request.

use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::SERVER_KEEP_ALIVE;
use crate::sys::SealStatus;
use crate::transit::{
    BatchResults, ContextDestroyed, CreateKeyRequest, DecryptItem, DecryptRequest, DecryptResult,
    DestroyContextRequest, EncryptItem, EncryptRequest, EncryptResult, HmacItem, HmacRequest,
    HmacResult, KeyConfigRequest, KeyInfo, RewrapItem, RewrapRequest, SignItem, SignRequest,
    SignResult, VerifyItem, VerifyRequest, VerifyResult,
};
use crate::vault::{SEALED_MESSAGE, VaultErrors, VaultResponse};

/// How long this client keeps an idle pooled connection. It is well under the server's
/// keep-alive, so that the server never closes a connection just as the client sends a request
/// on it: a request lost to that race fails, and its caller answers 503.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

const _: () = assert!(POOL_IDLE_TIMEOUT.as_secs() < SERVER_KEEP_ALIVE.as_secs());

/// Where security-svc is and how to reach it.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub base_url: String,
    pub token: SecretString,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Idle keep-alive connections kept per host.
    pub pool_max_idle_per_host: usize,
}

/// What went wrong talking to security-svc.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The service answers but holds no keys until unsealed.
    #[error("security-svc is sealed")]
    Sealed,
    /// Connection refused, timed out, or the service reported that it is unavailable.
    #[error("security-svc is unavailable: {0}")]
    Unavailable(String),
    /// The token is missing, unknown, or not allowed this operation.
    #[error("security-svc denied the operation (permission denied)")]
    Forbidden,
    #[error("not found")]
    NotFound,
    /// The request was refused; Vault's messages.
    #[error("security-svc rejected the request: {}", .0.join("; "))]
    Rejected(Vec<String>),
    /// The service failed (500) or answered something this client does not understand.
    #[error("security-svc failed: {0}")]
    Server(String),
}

impl ClientError {
    /// Whether the caller should answer 503 and retry later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ClientError::Sealed | ClientError::Unavailable(_))
    }
}

/// Signature options for [`Call::sign_batch`] and [`Call::verify_batch`].
#[derive(Debug, Clone, Default)]
pub struct SignatureOptions {
    pub hash_algorithm: Option<String>,
    pub prehashed: Option<bool>,
    pub signature_algorithm: Option<String>,
    pub marshaling_algorithm: Option<String>,
}

/// The client; cheap to clone (one shared connection pool).
#[derive(Debug, Clone)]
pub struct SecurityClient {
    http: reqwest::Client,
    base_url: String,
    token: SecretString,
}

impl SecurityClient {
    pub fn new(settings: &ClientSettings) -> Result<Self, ClientError> {
        let http = http_client(settings).map_err(|error| {
            ClientError::Server(format!("cannot build the HTTP client: {error}"))
        })?;
        Ok(Self {
            http,
            base_url: settings.base_url.trim_end_matches('/').to_owned(),
            token: settings.token.clone(),
        })
    }

    /// Calls made on behalf of a request carry its id as `X-Request-Id`.
    pub fn call<'a>(&'a self, request_id: Option<&'a str>) -> Call<'a> {
        Call {
            client: self,
            request_id,
        }
    }
}

/// The HTTP client of every typed client here: the settings' timeouts and pool, idle
/// connections dropped before the server would close them.
pub(crate) fn http_client(settings: &ClientSettings) -> Result<reqwest::Client, reqwest::Error> {
    // reqwest is built without a default TLS provider; ring is the one this project uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.connect_timeout)
        .pool_max_idle_per_host(settings.pool_max_idle_per_host)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true)
        .build()
}

/// The header that carries the caller's token, as Vault names it.
pub(crate) const TOKEN_HEADER: &str = "X-Vault-Token";

/// One caller's view of the client: the request id its calls carry.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    client: &'a SecurityClient,
    request_id: Option<&'a str>,
}

fn transport_error(error: reqwest::Error) -> ClientError {
    if error.is_timeout() {
        ClientError::Unavailable("timed out".into())
    } else if error.is_connect() {
        ClientError::Unavailable("connection failed".into())
    } else {
        ClientError::Unavailable(error.to_string())
    }
}

impl Call<'_> {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut builder = self
            .client
            .http
            .request(method, format!("{}{path}", self.client.base_url))
            .header(TOKEN_HEADER, self.client.token.expose_secret());
        if let Some(id) = self.request_id {
            builder = builder.header("X-Request-Id", id);
        }
        builder
    }

    /// Sends a request and reads Vault's envelope. Batches whose items failed come back with a
    /// 400 and their results; those are results, not errors.
    async fn send<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = builder.send().await.map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        if (status.is_success() || status == StatusCode::BAD_REQUEST)
            && let Ok(envelope) = serde_json::from_slice::<VaultResponse<T>>(&body)
        {
            return Ok(envelope.data);
        }
        let errors = serde_json::from_slice::<VaultErrors>(&body)
            .map(|errors| errors.errors)
            .unwrap_or_default();
        Err(match status {
            StatusCode::FORBIDDEN => ClientError::Forbidden,
            StatusCode::NOT_FOUND => ClientError::NotFound,
            StatusCode::SERVICE_UNAVAILABLE
                if errors.iter().any(|error| error == SEALED_MESSAGE) =>
            {
                ClientError::Sealed
            }
            StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::BAD_GATEWAY
            | StatusCode::GATEWAY_TIMEOUT => ClientError::Unavailable(errors.join("; ")),
            status if status.is_client_error() => ClientError::Rejected(errors),
            status if status.is_success() => ClientError::Server("unreadable response body".into()),
            status => ClientError::Server(format!("{status}: {}", errors.join("; "))),
        })
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(self.request(reqwest::Method::POST, path).json(body))
            .await
    }

    pub async fn encrypt_batch(
        &self,
        key: &str,
        items: Vec<EncryptItem>,
    ) -> Result<Vec<EncryptResult>, ClientError> {
        let request = EncryptRequest {
            batch_input: Some(items),
            ..Default::default()
        };
        let results: BatchResults<EncryptResult> = self
            .post(&format!("/v1/transit/encrypt/{key}"), &request)
            .await?;
        Ok(results.batch_results)
    }

    pub async fn decrypt_batch(
        &self,
        key: &str,
        items: Vec<DecryptItem>,
    ) -> Result<Vec<DecryptResult>, ClientError> {
        let request = DecryptRequest {
            batch_input: Some(items),
            ..Default::default()
        };
        let results: BatchResults<DecryptResult> = self
            .post(&format!("/v1/transit/decrypt/{key}"), &request)
            .await?;
        Ok(results.batch_results)
    }

    pub async fn rewrap_batch(
        &self,
        key: &str,
        items: Vec<RewrapItem>,
    ) -> Result<Vec<EncryptResult>, ClientError> {
        let request = RewrapRequest {
            batch_input: Some(items),
            ..Default::default()
        };
        let results: BatchResults<EncryptResult> = self
            .post(&format!("/v1/transit/rewrap/{key}"), &request)
            .await?;
        Ok(results.batch_results)
    }

    /// HMACs with `key_version` (absent: the latest version).
    pub async fn hmac_batch(
        &self,
        key: &str,
        algorithm: &str,
        key_version: Option<i64>,
        items: Vec<HmacItem>,
    ) -> Result<Vec<HmacResult>, ClientError> {
        let request = HmacRequest {
            batch_input: Some(items),
            key_version,
            ..Default::default()
        };
        let results: BatchResults<HmacResult> = self
            .post(&format!("/v1/transit/hmac/{key}/{algorithm}"), &request)
            .await?;
        Ok(results.batch_results)
    }

    pub async fn sign_batch(
        &self,
        key: &str,
        options: &SignatureOptions,
        items: Vec<SignItem>,
    ) -> Result<Vec<SignResult>, ClientError> {
        let request = SignRequest {
            batch_input: Some(items),
            hash_algorithm: options.hash_algorithm.clone(),
            prehashed: options.prehashed,
            signature_algorithm: options.signature_algorithm.clone(),
            marshaling_algorithm: options.marshaling_algorithm.clone(),
            ..Default::default()
        };
        let results: BatchResults<SignResult> = self
            .post(&format!("/v1/transit/sign/{key}"), &request)
            .await?;
        Ok(results.batch_results)
    }

    pub async fn verify_batch(
        &self,
        key: &str,
        options: &SignatureOptions,
        items: Vec<VerifyItem>,
    ) -> Result<Vec<VerifyResult>, ClientError> {
        let request = VerifyRequest {
            batch_input: Some(items),
            hash_algorithm: options.hash_algorithm.clone(),
            prehashed: options.prehashed,
            signature_algorithm: options.signature_algorithm.clone(),
            marshaling_algorithm: options.marshaling_algorithm.clone(),
            ..Default::default()
        };
        let results: BatchResults<VerifyResult> = self
            .post(&format!("/v1/transit/verify/{key}"), &request)
            .await?;
        Ok(results.batch_results)
    }

    pub async fn create_key(
        &self,
        name: &str,
        request: &CreateKeyRequest,
    ) -> Result<KeyInfo, ClientError> {
        self.post(&format!("/v1/transit/keys/{name}"), request)
            .await
    }

    /// Destroys the data key of one `context` (raw bytes) of a `context_keys` key, for good.
    pub async fn destroy_context(&self, key: &str, context: &[u8]) -> Result<(), ClientError> {
        let request = DestroyContextRequest {
            context: Some(base64::engine::general_purpose::STANDARD.encode(context)),
        };
        let _: ContextDestroyed = self
            .post(
                &format!("/v1/transit/keys/{key}/contexts/destroy"),
                &request,
            )
            .await?;
        Ok(())
    }

    pub async fn read_key(&self, name: &str) -> Result<KeyInfo, ClientError> {
        self.send(self.request(reqwest::Method::GET, &format!("/v1/transit/keys/{name}")))
            .await
    }

    pub async fn rotate_key(&self, name: &str) -> Result<KeyInfo, ClientError> {
        self.post(
            &format!("/v1/transit/keys/{name}/rotate"),
            &serde_json::json!({}),
        )
        .await
    }

    pub async fn configure_key(
        &self,
        name: &str,
        request: &KeyConfigRequest,
    ) -> Result<KeyInfo, ClientError> {
        self.post(&format!("/v1/transit/keys/{name}/config"), request)
            .await
    }

    /// The seal status (unauthenticated in Vault; the token is sent anyway).
    pub async fn seal_status(&self) -> Result<SealStatus, ClientError> {
        let response = self
            .request(reqwest::Method::GET, "/v1/sys/seal-status")
            .send()
            .await
            .map_err(transport_error)?;
        if !response.status().is_success() {
            return Err(ClientError::Unavailable(format!(
                "seal status answered {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|error| ClientError::Server(error.to_string()))
    }
}
