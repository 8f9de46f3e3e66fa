//! Who is calling: a user with a JWT issued by the auth-service, or a service with a service
//! token. Identity is checked here once; roles are not taken from the token but read from the
//! database for every request (see `users::actor`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use ring::digest;
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use crate::configuration::AuthSettings;
use crate::error::ApiError;
use crate::ratelimit::{LimitKey, RateDecision};
use crate::startup::AppState;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A service holding a service token (the auth-service), by its configured name.
    Service(String),
    /// A user, by the id in the token's user-id claim.
    User(i32),
}

impl Principal {
    /// The user's id; none for a service.
    pub fn user_id(&self) -> Option<i32> {
        match self {
            Principal::User(id) => Some(*id),
            Principal::Service(_) => None,
        }
    }
}

/// Where verification keys come from.
enum Keys {
    Static(DecodingKey),
    Jwks {
        url: String,
        http: reqwest::Client,
        cache: RwLock<Option<(JwkSet, Instant)>>,
    },
}

/// Validates the auth-service's tokens.
pub struct JwtValidator {
    algorithm: Algorithm,
    keys: Keys,
    validation: Validation,
    user_id_claim: String,
}

/// Minimum time between two JWKS fetches caused by unknown key ids.
const JWKS_REFRESH: Duration = Duration::from_secs(30);

fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    match name {
        "HS256" => Ok(Algorithm::HS256),
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        other => Err(format!(
            "auth.algorithm {other:?} is not one of HS256, RS256, ES256, EdDSA"
        )),
    }
}

/// The PEM text, or the contents of the file it names.
fn pem_text(setting: &str) -> Result<String, String> {
    if setting.contains("-----BEGIN") {
        Ok(setting.to_owned())
    } else {
        std::fs::read_to_string(setting)
            .map_err(|error| format!("cannot read auth.public_key_pem file {setting}: {error}"))
    }
}

/// The configured key tokens are checked with, when no JWKS is configured.
fn static_key(settings: &AuthSettings, algorithm: Algorithm) -> Result<DecodingKey, String> {
    let pem = || pem_text(&settings.public_key_pem);
    match algorithm {
        Algorithm::HS256 => {
            let secret = settings.jwt_secret.expose_secret();
            if secret.len() < 16 {
                return Err("auth.jwt_secret must be at least 16 characters".into());
            }
            Ok(DecodingKey::from_secret(secret.as_bytes()))
        }
        Algorithm::RS256 => DecodingKey::from_rsa_pem(pem()?.as_bytes())
            .map_err(|error| format!("auth.public_key_pem is not an RSA public key: {error}")),
        Algorithm::ES256 => DecodingKey::from_ec_pem(pem()?.as_bytes())
            .map_err(|error| format!("auth.public_key_pem is not an EC public key: {error}")),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem()?.as_bytes())
            .map_err(|error| format!("auth.public_key_pem is not an Ed25519 public key: {error}")),
        other => Err(format!("auth.algorithm {other:?} is not supported")),
    }
}

/// What a valid token must carry: an expiry, and the configured issuer and audience if any.
fn validation(settings: &AuthSettings, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = settings.leeway_secs;
    let mut required = vec!["exp"];
    if !settings.issuer.is_empty() {
        validation.set_issuer(&[settings.issuer.as_str()]);
        required.push("iss");
    }
    if settings.audience.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&[settings.audience.as_str()]);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    validation
}

impl JwtValidator {
    pub fn new(settings: &AuthSettings) -> Result<Self, String> {
        let algorithm = parse_algorithm(&settings.algorithm)?;
        let keys = if settings.jwks_url.is_empty() {
            Keys::Static(static_key(settings, algorithm)?)
        } else {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(|error| format!("cannot build the JWKS client: {error}"))?;
            Keys::Jwks {
                url: settings.jwks_url.clone(),
                http,
                cache: RwLock::new(None),
            }
        };
        Ok(Self {
            algorithm,
            keys,
            validation: validation(settings, algorithm),
            user_id_claim: settings.user_id_claim.clone(),
        })
    }

    /// The key `kid` names in a key set (the first one without a `kid`), if it is of the
    /// configured algorithm's family. The algorithm is pinned by configuration, never taken
    /// from the token.
    fn key_in(&self, set: &JwkSet, kid: Option<&str>) -> Option<DecodingKey> {
        let jwk = match kid {
            Some(kid) => set.find(kid)?,
            None => set.keys.first()?,
        };
        let family_fits = matches!(
            (&jwk.algorithm, self.algorithm),
            (AlgorithmParameters::RSA(_), Algorithm::RS256)
                | (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
                | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
        );
        if family_fits {
            DecodingKey::from_jwk(jwk).ok()
        } else {
            None
        }
    }

    async fn jwks_key(
        &self,
        url: &str,
        http: &reqwest::Client,
        cache: &RwLock<Option<(JwkSet, Instant)>>,
        kid: Option<&str>,
    ) -> Result<DecodingKey, String> {
        let find = |set: &JwkSet| self.key_in(set, kid);
        let fresh = {
            let cached = cache.read().map_err(|_| "JWKS cache poisoned".to_owned())?;
            match &*cached {
                Some((set, fetched)) => {
                    if let Some(key) = find(set) {
                        return Ok(key);
                    }
                    fetched.elapsed() < JWKS_REFRESH
                }
                None => false,
            }
        };
        if fresh {
            return Err("the token's key id is not in the JWKS".into());
        }
        let set: JwkSet = http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| format!("cannot fetch the JWKS: {error}"))?
            .json()
            .await
            .map_err(|error| format!("the JWKS is not valid: {error}"))?;
        let key = find(&set);
        if let Ok(mut cached) = cache.write() {
            *cached = Some((set, Instant::now()));
        }
        key.ok_or_else(|| "the token's key id is not in the JWKS".into())
    }

    /// The user id a valid token carries.
    pub async fn user_id(&self, token: &str) -> Result<i32, String> {
        let header =
            decode_header(token).map_err(|_| "the bearer token is not a JWT".to_owned())?;
        if header.alg != self.algorithm {
            return Err(format!("tokens must be signed with {:?}", self.algorithm));
        }
        let claims = match &self.keys {
            Keys::Static(key) => decode::<Map<String, Value>>(token, key, &self.validation),
            Keys::Jwks { url, http, cache } => {
                let key = self
                    .jwks_key(url, http, cache, header.kid.as_deref())
                    .await?;
                decode::<Map<String, Value>>(token, &key, &self.validation)
            }
        }
        .map_err(|error| describe_jwt_error(&error))?
        .claims;
        match claims.get(&self.user_id_claim) {
            Some(Value::Number(number)) => number.as_i64().and_then(|id| i32::try_from(id).ok()),
            Some(Value::String(text)) => text.parse::<i32>().ok(),
            _ => None,
        }
        .filter(|id| *id > 0)
        .ok_or_else(|| format!("the token's {} claim is not a user id", self.user_id_claim))
    }
}

fn describe_jwt_error(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::InvalidIssuer => "the token's issuer is not accepted".into(),
        ErrorKind::InvalidAudience => "the token's audience is not accepted".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token lacks the {claim} claim"),
        ErrorKind::InvalidSignature => "the token's signature is not valid".into(),
        _ => "the token is not valid".into(),
    }
}

fn sha256(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, text.as_bytes()).as_ref());
    out
}

/// JWTs and service tokens.
pub struct Authenticator {
    jwt: JwtValidator,
    /// Service tokens by SHA-256 digest, to their names.
    services: HashMap<[u8; 32], String>,
}

impl Authenticator {
    pub fn new(settings: &AuthSettings) -> Result<Self, String> {
        let services = settings
            .service_tokens
            .iter()
            .filter(|(_, token)| !token.secret.expose_secret().is_empty())
            .map(|(name, token)| (sha256(token.secret.expose_secret()), name.clone()))
            .collect();
        Ok(Self {
            jwt: JwtValidator::new(settings)?,
            services,
        })
    }

    pub async fn authenticate(&self, token: &str) -> Result<Principal, String> {
        if let Some(name) = self.services.get(&sha256(token)) {
            return Ok(Principal::Service(name.clone()));
        }
        self.jwt.user_id(token).await.map(Principal::User)
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::Unauthorized("an Authorization: Bearer token is required".into())
        })?;
    let text = header
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not valid".into()))?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_owned())
        }
        _ => Err(ApiError::Unauthorized(
            "the Authorization header must be: Bearer <token>".into(),
        )),
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))?;
            let token = bearer(&req)?;
            let principal = state
                .auth
                .authenticate(&token)
                .await
                .map_err(ApiError::Unauthorized)?;
            if let Principal::User(id) = &principal {
                let decision = state.limiter.check(LimitKey::User(*id)).await;
                let limited = !decision.allowed;
                let retry_after = decision.reset_secs.max(1);
                req.extensions_mut().insert(UserRate(decision));
                if limited {
                    return Err(ApiError::RateLimited { retry_after });
                }
            }
            Ok(principal)
        })
    }
}

/// The per-user rate decision of this request, for the response headers.
#[derive(Debug, Clone, Copy)]
pub struct UserRate(pub RateDecision);
